"""`ordergate status --url U --token T`: the gateway's live status, rendered with rich.

`show_remote_status(url, token)` fetches GET /v1/status from a running gateway and prints the
same picture as the dashboard: the mode banner with its reasons in plain words (or, while a
firm-wide kill switch denies every order, a red KILL SWITCH banner saying so), the `--policy`
file of start-up when its policy is not the one enforced, the restrictions (kill switches,
disabled strategies) and approvals waiting for a second operator, the latest critical and
warning alerts, exposure against caps, rate windows (the busiest per strategy and per symbol),
dependencies, positions, the mode timeline (ending with a stop on a failed journal write,
marked as not in the journal) and the recent decisions (GET /v1/decisions, newest first, each
with its reason code and what it means). The token may come from `--token` or the
ORDERGATE_TOKEN environment variable (so it stays out of shell history).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import httpx
import msgspec
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ordergate.cli.errors import UserError
from ordergate.gate.table import RULES
from ordergate.service.schemas import (
    DecisionPage,
    DecisionView,
    ErrorBody,
    RestrictionView,
    StatusView,
)

TOKEN_ENV = "ORDERGATE_TOKEN"
RECENT_DECISIONS = 25  # as many as the dashboard shows
_MODE_STYLE = {"ACTIVE": "bold white on green", "REDUCE_ONLY": "bold black on dark_orange",
               "HALTED": "bold white on red", "STOPPED": "bold white on red"}
_SEVERITY_STYLE = {"critical": "bold red", "warning": "dark_orange"}
ALL_DENIED_TITLE = "KILL SWITCH — ALL ORDERS DENIED"
STOPPED_TITLE = "STOPPED — NOTHING IS TAKEN (JOURNAL FAILED)"
_DECISION_STYLE = {"ALLOW": "green", "MODIFY": "dark_orange", "DENY": "bold red"}
T = TypeVar("T")
# The gate rules that still deny in monitor mode: every kill switch among them, not THR-006
IN_MONITOR_CODES = frozenset(rule.code for rule in RULES if rule.in_monitor)


def monitored_restriction(restriction: RestrictionView, monitor: bool) -> bool:
    """Whether `restriction` only records, not denies: while the enforced policy sets
    `monitor: true` (`monitor`), a strategy disabled by the repeated-execution limit (THR-006,
    a limit like the others) still trades; kill switches deny in monitor mode too. The
    dashboard (static/dashboard.js) counts restrictions by the same rule."""
    return monitor and restriction.code not in IN_MONITOR_CODES


# the end of a URL's userinfo: an '@' followed by a host (and port) that ends the authority
_HOST_AFTER_AT = re.compile(r"@[\w.\-\[\]:%]*(?=[/?#]|$)")


def shown_url(url: str) -> str:
    """What messages may show of a gateway URL: a user and password become `***@`, a query
    and fragment `?***` (either may carry a token). The userinfo runs to the last '@' that a
    host follows, so a password holding '/', '?', '#' or '@' is hidden whole."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    ends = [found.start() for found in _HOST_AFTER_AT.finditer(rest)]
    if ends:
        rest = "***" + rest[ends[-1]:]
    cut = min((at for at in (rest.find("?"), rest.find("#")) if at >= 0), default=-1)
    if cut >= 0:
        rest = rest[:cut] + "?***"
    return f"{scheme}{separator}{rest}"


def _get(url: str, path: str, token: str, answer: type[T], timeout_s: float) -> T:
    """GET {url}{path}. Failures raise UserError naming the URL (as `shown_url` shows it) and
    what went wrong."""
    endpoint = url.rstrip("/") + path
    try:
        response = httpx.get(endpoint, headers={"Authorization": f"Bearer {token}"},
                             timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise UserError(f"--url {shown_url(url)}: cannot reach the gateway "
                        f"({type(exc).__name__})") from None
    if response.status_code != 200:
        try:
            detail = msgspec.json.decode(response.content, type=ErrorBody).detail
        except msgspec.DecodeError:
            detail = response.text[:200]
        raise UserError(f"--url {shown_url(endpoint)}: HTTP {response.status_code}: {detail}")
    try:
        return msgspec.json.decode(response.content, type=answer)
    except msgspec.DecodeError as exc:
        raise UserError(f"--url {shown_url(endpoint)}: unexpected answer: {exc}") from None


def fetch_status(url: str, token: str, timeout_s: float = 5.0) -> StatusView:
    """GET {url}/v1/status. Failures raise UserError naming the URL and what went wrong."""
    return _get(url, "/v1/status", token, StatusView, timeout_s)


def fetch_recent_decisions(url: str, token: str, limit: int = RECENT_DECISIONS,
                           timeout_s: float = 5.0) -> list[DecisionView]:
    """The newest `limit` decisions (GET {url}/v1/decisions), newest first."""
    return _get(url, f"/v1/decisions?limit={limit}", token, DecisionPage, timeout_s).items


def _ratio(value: str, cap: str | None) -> str:
    if cap is None:
        return "no cap"
    try:
        limit = Decimal(cap)
        if limit <= 0:
            return "cap 0"
        return f"{abs(Decimal(value)) / limit * 100:.0f}%"
    except (InvalidOperation, ArithmeticError):
        return "?"


def _literal(*cells: str | Text) -> list[Text]:
    """Table cells shown as written: a plain string in a cell would be read as rich markup
    (and emoji codes), so an intent id, account, kill name or reason holding "[/x]" would
    break the rendering and "[red]" would restyle it. Ids, names and reasons come from
    traders and operators."""
    return [Text(cell) if isinstance(cell, str) else cell for cell in cells]


def _decisions_table(decisions: Sequence[DecisionView]) -> Table:
    table = Table(title="Recent decisions")
    for column in ("time", "intent", "account", "symbol", "order", "decision", "code"):
        table.add_column(column, overflow="fold")  # ids and codes fold, never cut
    table.add_column("reason", overflow="fold")
    for d in decisions:
        intent, decision = d.intent, d.decision
        kind = decision.decision.value
        # An ALLOW has no reason code; a monitored one may still say what would have blocked.
        code = decision.blocking or (f"would {decision.would_block}"
                                     if decision.would_block else "")
        table.add_row(*_literal(f"{intent.ts:%Y-%m-%d %H:%M:%S}Z", intent.intent_id,
                                intent.account, intent.symbol,
                                f"{intent.side.value} {intent.qty}",
                                Text(kind, style=_DECISION_STYLE.get(kind, "")), code,
                                d.blocking_meaning))
    return table


def render_status(view: StatusView, decisions: Sequence[DecisionView] | None = None) -> Group:
    """The status picture; `decisions` (newest first) adds the recent-decisions table."""
    lines = [view.headline] if view.headline else []
    lines += [
        f"{r.code} {r.name}: {r.meaning}" + (f" ({r.detail})" if r.detail else "")
        + f" — set by {r.actor or 'system'}" + (f" since {r.since:%Y-%m-%d %H:%M:%S}Z"
                                                  if r.since else "")
        for r in view.reasons
    ]
    if not lines:  # a gateway that does not send a headline
        lines.append("Trading normally: no active reason." if view.mode == "ACTIVE"
                     else "No reason recorded.")
    if view.stopped:
        # The journal failed: no intent, market data or command is taken, whatever the mode.
        title, title_style, border = f" {STOPPED_TITLE} ", _MODE_STYLE["HALTED"], "red"
    elif view.all_orders_denied:
        # A firm-wide kill switch: nothing trades, so the banner must not read ACTIVE.
        title = f" {ALL_DENIED_TITLE} " + (f"· {view.mode} " if view.mode != "ACTIVE" else "")
        title_style, border = _MODE_STYLE["HALTED"], "red"
    else:
        # a restriction that only records in monitor mode restricts nothing
        restricted = view.mode == "ACTIVE" and any(
            not monitored_restriction(r, view.policy_monitor) for r in view.restrictions)
        title = f" {view.mode} " + (" — RESTRICTED " if restricted else "")
        title_style = _MODE_STYLE.get(view.mode, "bold")
        border = ("dark_orange" if restricted else
                  {"ACTIVE": "green", "REDUCE_ONLY": "dark_orange"}.get(view.mode, "red"))
    banner = Panel(Text("\n".join(lines)), title=Text(title, style=title_style),
                   title_align="left", border_style=border)
    parts: list[object] = [banner, Text(
        f"policy {view.policy_name} {view.policy_hash[:16]}   run {view.run_id}   "
        f"journal seq {view.journal.last_seq} (lag {view.journal.lag})   "
        f"event time {view.event_time or '-'}")]
    if view.policy_file is not None and not view.policy_file.enforced:
        file = view.policy_file
        parts.append(Text(f"--policy file {file.name} {file.hash[:16]} NOT enforced: "
                          f"{file.detail}", style="bold black on yellow"))
    if view.policy_monitor:
        parts.append(Text("MONITOR (the policy sets monitor: true): its limits are evaluated "
                          "and recorded, not enforced; kill switches, the mode and data checks "
                          "still are.", style="bold black on yellow"))
    if view.shadow_policy_hash:
        parts.append(Text(f"DRY RUN of policy {view.shadow_policy_name} "
                          f"{view.shadow_policy_hash[:16]}: every intent is also judged under "
                          "it and recorded; the policy above still decides.",
                          style="bold black on cyan"))
    if view.restrictions:
        recorded = any(monitored_restriction(r, view.policy_monitor)
                       for r in view.restrictions)
        table = Table(title="Restrictions: orders denied whatever the mode" + (
            " (in monitor mode a disabled strategy's orders are still sent)" if recorded
            else ""))
        for column in ("code", "scope", "key", "account", "set by", "since", "what it means"):
            table.add_column(column, overflow="fold")
        for r in view.restrictions:
            table.add_row(*_literal(r.code, r.scope, r.key or "-", r.account or "-",
                                    r.actor or "-",
                                    f"{r.since:%Y-%m-%d %H:%M:%S}Z" if r.since else "-",
                                    r.text))
        parts.append(table)
    for pending in view.pending_approvals:
        parts.append(Text(f"PENDING {pending.action.upper()}: {pending.text}",
                          style="bold black on yellow"))
    if view.recent_alerts:
        table = Table(title="Recent alerts (critical and warning, newest last)")
        for column in ("time", "severity", "code", "what it means", "the alert said"):
            table.add_column(column, overflow="fold")
        for a in view.recent_alerts:
            table.add_row(*_literal(f"{a.ts:%Y-%m-%d %H:%M:%S}Z",
                                    Text(a.severity, style=_SEVERITY_STYLE.get(a.severity, "")),
                                    a.code, a.meaning or "-", a.message))
        parts.append(table)
    if view.exposure:
        table = Table(title="Exposure vs caps")
        for column in ("account", "gross", "gross cap", "used", "net", "net cap", "used"):
            table.add_column(column, justify="right" if column != "account" else "left")
        for e in view.exposure:
            table.add_row(*_literal(e.account, e.gross, e.gross_cap or "-",
                                    _ratio(e.gross, e.gross_cap), e.net, e.net_cap or "-",
                                    _ratio(e.net, e.net_cap)))
        parts.append(table)
    if view.rate_windows:
        table = Table(title="Rate windows")
        for column in ("scope", "key", "count", "max", "window s", "used"):
            table.add_column(column)
        for w in view.rate_windows:
            table.add_row(*_literal(w.scope, w.key, str(w.count), str(w.max_count),
                                    f"{w.window_s:g}", f"{w.utilisation * 100:.0f}%"))
        parts.append(table)
    for omitted in view.rate_windows_omitted:
        parts.append(Text(f"Rate windows by {omitted.scope}: the {omitted.shown} busiest of "
                          f"{omitted.in_use} in use are shown.", style="dim"))
    if view.dependencies:
        table = Table(title="Dependencies and breakers")
        for column in ("name", "state", "detail"):
            table.add_column(column)
        for d in view.dependencies:
            table.add_row(*_literal(d.name, Text(d.state, style="green" if d.healthy
                                                 else "bold red"), d.detail))
        parts.append(table)
    if view.positions:
        table = Table(title="Positions")
        for column in ("account", "symbol", "qty", "avg price"):
            table.add_column(column)
        for p in view.positions:
            table.add_row(*_literal(p.account, p.symbol, p.qty, p.avg_price))
        parts.append(table)
    if view.timeline:
        table = Table(title="Mode timeline")
        for column in ("time", "mode", "from", "by", "reasons"):
            table.add_column(column)
        for t in view.timeline[-10:]:
            reasons = ", ".join(t.reasons)
            if not t.journaled:
                reasons = f"{reasons} — {t.note or 'not in the journal'}"
            table.add_row(*_literal(f"{t.ts:%Y-%m-%d %H:%M:%S}Z", t.mode, t.previous,
                                    t.actor, reasons))
        parts.append(table)
    if decisions is not None:
        parts.append(_decisions_table(decisions) if decisions
                     else Text("Recent decisions: none yet.", style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


def show_remote_status(url: str, token: str | None, console: Console | None = None) -> StatusView:
    """Fetch and print; returns the view (so callers can pick an exit code from the mode)."""
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError(f"--token: a viewer token is required (or set {TOKEN_ENV})")
    view = fetch_status(url, token)
    decisions = fetch_recent_decisions(url, token)
    # Wrap inside panels and tables even on a console that soft-wraps plain output: a reason
    # cut at the terminal's edge would hide the why.
    (console or Console()).print(render_status(view, decisions), soft_wrap=False)
    return view
