// ordergate status dashboard: polls the API once a second with a bearer token.
// Token: taken once from the URL fragment (#token=...; fragments are never sent to the
// server or written to its logs) or from the sign-in box, and kept in sessionStorage.
"use strict";
(function () {
  const KEY = "ordergate.token";
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  let timer = null;

  // The token, if the fragment holds one; the fragment is cleared either way, so a token
  // never stays in the address bar. Returns an error message for a fragment token that is not
  // valid percent-encoding (the sign-in box then says so).
  function takeFragmentToken() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash);
    if (!match) return "";
    history.replaceState(null, "", window.location.pathname + window.location.search);
    let token;
    try {
      token = decodeURIComponent(match[1]);
    } catch (err) {
      if (!(err instanceof URIError)) throw err;
      sessionStorage.removeItem(KEY);
      return "The token in the address (#token=...) is not valid percent-encoding; " +
        "paste it here instead.";
    }
    sessionStorage.setItem(KEY, token);
    return "";
  }

  function text(value) { return value === null || value === undefined ? "" : String(value); }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children || []) {
      node.append(child instanceof Node ? child : document.createTextNode(text(child)));
    }
    return node;
  }
  function fill(id, nodes) { const box = $(id); box.replaceChildren(...nodes); }

  function showLogin(message) {
    $("content").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    const banner = $("mode-banner");
    banner.className = "banner mode-UNKNOWN";
    $("mode-text").textContent = "signed out";
    $("mode-reason").textContent = "Sign in with a viewer token to see the gateway's status.";
    if (timer) { clearTimeout(timer); timer = null; }
  }

  async function api(path) {
    const token = sessionStorage.getItem(KEY);
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token },
                                         cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      const err = new Error(body.detail || ("HTTP " + response.status));
      err.auth = true;
      throw err;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function bar(label, value, cap) {
    const v = Number(value), c = cap === null || cap === undefined ? null : Number(cap);
    const ratio = c && c > 0 ? Math.min(Math.abs(v) / c, 1) : 0;
    const cls = c === null ? "bar" : ratio >= 1 ? "bar over" : ratio >= 0.8 ? "bar warn" : "bar";
    const right = c === null ? text(value) + " (no cap)" :
      text(value) + " / " + text(cap) + " (" + Math.round(ratio * 100) + "%)";
    return el("div", { class: "bar-row" }, [
      el("div", { class: "bar-label" }, [el("span", {}, [label]), el("span", {}, [right])]),
      el("div", { class: cls }, [el("span", { style: "width:" + (ratio * 100).toFixed(1) + "%" })]),
    ]);
  }

  function renderStatus(s) {
    const banner = $("mode-banner");
    const restrictions = s.restrictions || [];
    // A firm-wide kill switch denies every order whatever the mode: the banner says so in red
    // rather than reading ACTIVE.
    // A gateway whose journal failed takes nothing at all: red, whatever the mode says.
    const stopped = Boolean(s.stopped);
    const allDenied = stopped || Boolean(s.all_orders_denied);
    const restricted = !allDenied && s.mode === "ACTIVE" && restrictions.length > 0;
    banner.className = "banner mode-" + s.mode + (allDenied ? " all-denied" : "") +
      (restricted ? " restricted" : "");
    $("mode-text").textContent = stopped
      ? "STOPPED — NOTHING IS TAKEN (JOURNAL FAILED)"
      : allDenied
        ? "KILL SWITCH — ALL ORDERS DENIED" + (s.mode === "ACTIVE" ? "" : " · " + s.mode)
        : s.mode + (restricted ? " — RESTRICTED" : "");
    const words = (s.reasons || []).map((r) =>
      r.code + " — " + r.meaning + (r.detail ? " (" + r.detail + ")" : "") +
      (r.actor ? " · set by " + r.actor : "") + (r.since ? " since " + r.since : ""));
    const headline = s.headline ||
      (s.mode === "ACTIVE" ? "Trading normally: no active reason." : "No reason recorded.");
    $("mode-reason").textContent = [headline].concat(words).join("\n");
    fill("pending", (s.pending_approvals || []).map((p) =>
      el("div", { class: "pending" }, ["PENDING " + text(p.action).toUpperCase() + ": " + p.text])));

    fill("restrictions", restrictions.length ? restrictions.map((r) => el("li", {}, [
      el("span", { class: "tag code" }, [r.code]), " ", r.text,
      el("span", { class: "muted" }, [
        " · " + r.scope + (r.key ? " " + r.key : "") + (r.account ? " in " + r.account : "") +
        (r.actor ? " · set by " + r.actor : "") + (r.since ? " since " + r.since : "")])]))
      : [el("li", { class: "muted" }, ["no kill switch engaged, no strategy disabled"])]);
    $("policy-hash").textContent = (s.policy_name ? s.policy_name + " " : "") +
      (s.policy_hash || "–").slice(0, 16) +
      (s.policy_monitor ? " · MONITOR (the policy sets monitor: true): limits recorded, not enforced" : "") +
      (s.shadow_policy_hash ? " · DRY RUN of " + (s.shadow_policy_name ? s.shadow_policy_name + " " : "") +
        s.shadow_policy_hash.slice(0, 16) + ": judged beside, not enforced" : "");
    // The --policy file of start-up, when its policy is not the one enforced (the journal kept
    // its own): said beside the policy, so nobody reads the file as what decides.
    const file = s.policy_file;
    const fileIgnored = Boolean(file && !file.enforced);
    $("policy-file").hidden = !fileIgnored;
    $("policy-file").textContent = fileIgnored
      ? "--policy file " + file.name + " " + file.hash.slice(0, 16) + " NOT enforced: " + file.detail
      : "";
    $("run-id").textContent = s.run_id || "–";
    $("journal-seq").textContent = text(s.journal.last_seq);
    $("journal-lag").textContent = text(s.journal.lag);
    $("updated-at").textContent = new Date().toLocaleTimeString();

    const exposure = [];
    for (const e of s.exposure || []) {
      exposure.push(bar(e.account + " gross", e.gross, e.gross_cap));
      exposure.push(bar(e.account + " net", e.net, e.net_cap));
    }
    fill("exposure", exposure.length ? exposure : [el("p", { class: "muted" }, ["no exposure"])]);

    const throttles = (s.rate_windows || []).map((w) =>
      bar(w.scope + (w.key ? " " + w.key : "") + " (" + w.window_s + " s)", w.count, w.max_count));
    for (const o of s.rate_windows_omitted || []) {
      throttles.push(el("p", { class: "muted" }, [
        "by " + o.scope + ": the " + o.shown + " busiest of " + o.in_use + " in use are shown"]));
    }
    fill("throttles", throttles.length ? throttles : [el("p", { class: "muted" }, ["no rate limit in use"])]);

    const deps = (s.dependencies || []).map((d) => el("li", {}, [
      el("span", { class: "dot " + (d.healthy ? "ok" : "bad") }),
      d.name + ": " + d.state + (d.detail ? " — " + d.detail : "")]));
    fill("breakers", deps.length ? deps : [el("li", { class: "muted" }, ["no dependency reported"])]);

    const timeline = (s.timeline || []).slice().reverse().map((t) => el("li", {}, [
      el("span", { class: "tag " + t.mode }, [t.mode]), " ", t.ts, " by ", t.actor,
      t.reasons.length ? " — " + t.reasons.join(", ") : ""]));
    fill("timeline", timeline.length ? timeline : [el("li", { class: "muted" }, ["no mode change yet"])]);

    fill("positions", (s.positions || []).map((p) => el("tr", {}, [
      el("td", {}, [p.account]), el("td", {}, [p.symbol]),
      el("td", { class: "num" }, [p.qty]), el("td", { class: "num" }, [p.avg_price])])));
  }

  function renderDecisions(page) {
    fill("decisions", (page.items || []).map((d) => el("tr", {}, [
      el("td", {}, [d.intent.ts]), el("td", {}, [d.intent.intent_id]),
      el("td", {}, [d.intent.account]), el("td", {}, [d.intent.symbol]),
      el("td", {}, [d.intent.side]), el("td", { class: "num" }, [d.intent.qty]),
      el("td", { class: d.decision.decision }, [d.decision.decision]),
      el("td", { title: d.blocking_meaning || "" }, [d.decision.blocking || ""])])));
  }

  async function poll() {
    timer = null;
    try {
      const [status, decisions] = await Promise.all([
        api("/v1/status"), api("/v1/decisions?limit=25")]);
      $("login").hidden = true;
      $("content").hidden = false;
      renderStatus(status);
      renderDecisions(decisions);
    } catch (err) {
      if (err.auth) { showLogin(err.message); return; }
      $("mode-reason").textContent = "Gateway unreachable: " + err.message;
      $("mode-banner").className = "banner mode-UNKNOWN";
      $("mode-text").textContent = "NO CONTACT";
    }
    timer = setTimeout(poll, POLL_MS);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("login-token").value.trim());
    $("login-token").value = "";
    poll();
  });
  $("sign-out").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(""); });

  const fragmentError = takeFragmentToken();
  if (fragmentError) showLogin(fragmentError);
  else if (sessionStorage.getItem(KEY)) poll();
  else showLogin("");
})();
