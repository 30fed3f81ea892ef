// ordergate status dashboard: polls the API once a second with a bearer token.
// Token: taken once from the URL fragment (#token=...; fragments are never sent to the
// server or written to its logs) or from the sign-in box, and kept in sessionStorage.
// Every request gives up after a few seconds and polling goes on whatever the last one did:
// a gateway that hangs, or a phone that loses its network, turns the banner grey NO CONTACT
// instead of leaving the last state (a green ACTIVE) on screen as if it were current.
"use strict";
(function () {
  const KEY = "ordergate.token";
  // ?poll_ms=N polls every N ms (100 to 60000; tests shorten it). Timeout and staleness follow.
  const asked = Number(new URLSearchParams(window.location.search).get("poll_ms"));
  const POLL_MS = asked >= 100 && asked <= 60000 ? asked : 1000;
  const REQUEST_TIMEOUT_MS = Math.min(5000, POLL_MS * 5);
  const COMMAND_TIMEOUT_MS = 15000;
  // No fresh status for this long: what is shown can no longer be vouched for.
  const STALE_AFTER_MS = POLL_MS * 3 + REQUEST_TIMEOUT_MS;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let inFlight = false;
  let lastFresh = null;       // Date of the last status received
  let lastMode = null;        // the mode it read
  let contactLost = "";       // why the last poll failed ("" when it did not)

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
    if (timer) { clearInterval(timer); timer = null; }
    lastFresh = null; lastMode = null; contactLost = "";
  }

  // fetch that gives up after `timeoutMs` (the error then says so).
  async function fetchWithin(path, options, timeoutMs) {
    const controller = new AbortController();
    const stop = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await fetch(path, { ...options, cache: "no-store", signal: controller.signal });
    } catch (err) {
      if (err.name === "AbortError") {
        throw new Error("no answer within " + timeoutMs / 1000 + " s");
      }
      throw new Error("network error (" + err.message + ")");
    } finally {
      clearTimeout(stop);
    }
  }

  function bearer() { return { Authorization: "Bearer " + sessionStorage.getItem(KEY) }; }

  async function api(path) {
    const response = await fetchWithin(path, { headers: bearer() }, REQUEST_TIMEOUT_MS);
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      const err = new Error(body.detail || ("HTTP " + response.status));
      err.auth = true;
      throw err;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  // /v1/health's checks (answered 503 while not ready), or null when it cannot be read.
  async function healthChecks() {
    try {
      const response = await fetchWithin("/v1/health", {}, REQUEST_TIMEOUT_MS);
      const body = await response.json();
      return body.checks || null;
    } catch (err) {
      return null;
    }
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

  // The server's detail names the file again ("the --policy file's NAME HASH is not enforced:
  // ..."), which the badge has just said: only the rest is kept.
  function fileDetail(file) {
    const self = "the --policy file's " + file.name + " " + file.hash + " ";
    let detail = text(file.detail);
    for (const said of ["is not enforced: ", "is NOT applied: "]) {
      detail = detail.split(self + said).join("");
    }
    const kept = "; " + self + "is NOT applied (";  // "...; (restart with ...)" reads badly
    if (detail.includes(kept) && detail.endsWith(")")) {
      detail = detail.replace(kept, "; ").slice(0, -1);
    }
    return detail.split(self).join("it ");
  }

  function renderStatus(s, checks) {
    const banner = $("mode-banner");
    const restrictions = s.restrictions || [];
    // A firm-wide kill switch denies every order whatever the mode: the banner says so in red
    // rather than reading ACTIVE.
    // A gateway whose journal failed takes nothing at all: red, whatever the mode says.
    const stopped = Boolean(s.stopped);
    const allDenied = stopped || Boolean(s.all_orders_denied);
    const active = !allDenied && s.mode === "ACTIVE";
    // Without market data (or with stale data) orders are denied however calm the mode is.
    const noData = active && Boolean(checks && checks.data && !checks.data.ok);
    // Some symbols stale (the headline names them; the others trade), not all data missing.
    const staleOnly = noData && /^stale market data/.test(checks.data.detail || "");
    // In monitor mode only the kill switches deny; a strategy disabled by the
    // repeated-execution limit (THR-006) is recorded and its orders still sent (as
    // `monitored_restriction` in status_view.py says), so it restricts nothing.
    const denying = restrictions.filter((r) => !s.policy_monitor || /^KIL-/.test(r.code));
    const restricted = active && !noData && denying.length > 0;
    // Monitor mode: the limits are recorded, not enforced; never a plain green ACTIVE, and
    // said whatever else the banner says.
    const monitor = active && Boolean(s.policy_monitor);
    banner.className = "banner mode-" + s.mode + (allDenied ? " all-denied" : "") +
      (restricted || noData ? " restricted" : "") + (monitor ? " monitor" : "");
    $("mode-text").textContent = stopped
      ? "STOPPED — NOTHING IS TAKEN (JOURNAL FAILED)"
      : allDenied
        ? "KILL SWITCH — ALL ORDERS DENIED" + (s.mode === "ACTIVE" ? "" : " · " + s.mode)
        : s.mode + (noData ? (staleOnly ? " — STALE MARKET DATA" : " — NO MARKET DATA")
          : restricted ? " — RESTRICTED" : "") +
          (monitor ? " — LIMITS NOT ENFORCED" : "");
    const headline = s.headline ||
      (s.mode === "ACTIVE" ? "Trading normally: no active reason." : "No reason recorded.");
    // A reason whose meaning the headline already says is listed without it (HALTED said
    // "Trading is HALTED: ..." twice).
    const words = (s.reasons || []).map((r) =>
      r.code + (r.meaning && !headline.includes(r.meaning) ? " — " + r.meaning : "") +
      (r.detail ? " (" + r.detail + ")" : "") +
      (r.actor ? " · set by " + r.actor : "") + (r.since ? " since " + r.since : ""));
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
      ? "--policy file " + file.name + " " + file.hash.slice(0, 16) + " NOT enforced: " +
        fileDetail(file)
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

    // The stop on a failed journal write ends the timeline, though no journal holds it.
    const timeline = (s.timeline || []).slice().reverse().map((t) => el("li", {}, [
      el("span", { class: "tag " + t.mode }, [t.mode]), " ", t.ts, " by ", t.actor,
      t.reasons.length ? " — " + t.reasons.join(", ") : "",
      t.journaled === false
        ? el("span", { class: "not-journaled" }, [" (" + (t.note || "not in the journal") + ")"])
        : ""]));
    fill("timeline", timeline.length ? timeline : [el("li", { class: "muted" }, ["no mode change yet"])]);

    const alerts = (s.recent_alerts || []).slice().reverse().map((a) => el("li", {}, [
      el("span", { class: "tag " + a.severity }, [a.severity]), " ",
      el("strong", {}, [a.code]), " ", a.ts, a.meaning ? " — " + a.meaning : "",
      el("div", { class: "muted" }, [a.message])]));
    fill("alerts", alerts.length ? alerts
      : [el("li", { class: "muted" }, ["no critical or warning alert"])]);

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

  // -- operator controls: halt and resume from the page (POST /v1/mode/halt, /v1/mode/resume)

  function renderControls(status) {
    // A stopped gateway takes no command: a restart on a healthy journal is what resumes it.
    $("resume-button").hidden = status.mode === "ACTIVE" || Boolean(status.stopped);
  }

  function say(message, kind) {
    const box = $("control-result");
    box.className = "control-result " + (kind || "");
    box.textContent = message;
  }

  // The reason the operator typed, or "" after saying it is needed.
  function reasonGiven() {
    const reason = $("control-reason").value.trim();
    if (!reason) {
      say("Write the reason first: it is journaled with the command.", "bad");
      $("control-reason").focus();
    }
    return reason;
  }

  async function command(action, body) {
    const verb = action === "halt" ? "halt trading" : "resume trading";
    say("Sending…", "");
    let response;
    try {
      response = await fetchWithin("/v1/mode/" + action, {
        method: "POST", headers: { ...bearer(), "Content-Type": "application/json" },
        body: JSON.stringify(body) }, COMMAND_TIMEOUT_MS);
    } catch (err) {
      say("Could not " + verb + ": " + err.message + ". It may or may not have been done; " +
          "check the banner before trying again.", "bad");
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      say("Done: " + text(answer.operator) + " asked to " + verb + "; the mode is now " +
          text(answer.mode) + "." + (answer.message ? " " + answer.message : ""), "ok");
      $("control-reason").value = "";
      $("halt-cancel-all").checked = false;
      poll();
    } else if (response.status === 403) {
      say("This token cannot " + verb + ": only an operator token may change the mode. " +
          "Sign in with an operator token.", "bad");
    } else if (response.status === 401) {
      say("The gateway did not accept this token (" + text(answer.detail) + "); sign in again.",
          "bad");
    } else {
      say("The gateway refused to " + verb + " (HTTP " + response.status + "): " +
          text(answer.detail || answer.error || "no reason given"), "bad");
    }
  }

  $("halt-button").addEventListener("click", () => {
    if (!reasonGiven()) return;
    $("halt-confirm-text").textContent = "Halt all trading now" +
      ($("halt-cancel-all").checked ? " and cancel every open order" : "") +
      "? Only cancels and an operator-ordered flatten are allowed until someone resumes.";
    $("halt-confirm").hidden = false;
    $("halt-confirm-yes").focus();
  });
  $("halt-confirm-no").addEventListener("click", () => { $("halt-confirm").hidden = true; });
  $("halt-confirm-yes").addEventListener("click", () => {
    $("halt-confirm").hidden = true;
    const reason = reasonGiven();
    if (reason) command("halt", { reason: reason, cancel_all: $("halt-cancel-all").checked });
  });
  $("resume-button").addEventListener("click", () => {
    const reason = reasonGiven();
    if (reason) command("resume", { reason: reason });
  });
  $("control-form").addEventListener("submit", (event) => { event.preventDefault(); });

  // Grey NO CONTACT, saying since when the state shown is stale.
  function showNoContact() {
    $("mode-banner").className = "banner mode-UNKNOWN";
    $("mode-text").textContent = "NO CONTACT";
    $("content").classList.add("stale");
    const why = contactLost ? " (" + contactLost + ")" : "";
    $("mode-reason").textContent = lastFresh
      ? "No status from the gateway since " + lastFresh.toLocaleTimeString() + why +
        ". Everything below is as it was then (the mode read " + lastMode +
        ") and may have changed since."
      : "Gateway unreachable" + why + ": no status received yet.";
  }

  async function poll() {
    if (inFlight) return;  // the one in hand times out by itself
    inFlight = true;
    try {
      const [status, decisions, checks] = await Promise.all([
        api("/v1/status"), api("/v1/decisions?limit=25"), healthChecks()]);
      if (!sessionStorage.getItem(KEY)) return;  // signed out meanwhile
      lastFresh = new Date();
      lastMode = status.mode;
      contactLost = "";
      $("login").hidden = true;
      $("content").hidden = false;
      $("content").classList.remove("stale");
      renderStatus(status, checks);
      renderDecisions(decisions);
      renderControls(status);
    } catch (err) {
      if (err.auth) { showLogin(err.message); return; }
      contactLost = err.message;
      showNoContact();
    } finally {
      inFlight = false;
    }
  }

  // Polls on a fixed beat whatever the last request did; between answers, a status older
  // than STALE_AFTER_MS turns the banner grey.
  function tick() {
    if (lastFresh && Date.now() - lastFresh.getTime() > STALE_AFTER_MS) {
      contactLost = contactLost || "no answer for " + Math.round(STALE_AFTER_MS / 1000) + " s";
      showNoContact();
    }
    poll();
  }

  function startPolling() {
    if (timer) clearInterval(timer);
    timer = setInterval(tick, POLL_MS);
    poll();
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("login-token").value.trim());
    $("login-token").value = "";
    startPolling();
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    say("", "");
    showLogin("");
  });

  const fragmentError = takeFragmentToken();
  if (fragmentError) showLogin(fragmentError);
  else if (sessionStorage.getItem(KEY)) startPolling();
  else showLogin("");
})();
