"""`ordergate status --journal J`: rebuild the engine from the journal (latest snapshot +
the records after it) and show, readable in five seconds: the trading mode, big and coloured,
and why in plain words; the latest critical and warning alerts; positions; working orders; PnL.
When a live process holds the journal for writing (a SQLite journal's writer lock, a
PostgreSQL stream's lease), the banner says so: what is shown is what the journal holds, and
a gateway that stopped on a failed journal write could not journal that it stopped.

`ordergate status --url U [--token T]`: the same question asked of a running gateway over
HTTP (GET /v1/status with a viewer or operator token; the token may come from
$ORDERGATE_TOKEN instead, so it stays out of shell history)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.panel import Panel
from rich.table import Table

from ordergate.cli.console import out, plain, print_json
from ordergate.cli.errors import UserError, journal_problem
from ordergate.cli.run_cmd import (
    configure_logging,
    day_end_words,
    journal_url,
    loss_limit_words,
    money,
    plain_reason,
    pnl_parts,
)
from ordergate.engine.core import Engine
from ordergate.engine.status import EngineStatus, held_words, standing_firm_kills
from ordergate.evidence.report import alert_words, latest_alerts
from ordergate.journal import (
    Durability,
    JournalError,
    open_journal,
    writer_lock_path,
)
from ordergate.journal.urls import Backend, JournalUrl, parse_journal_url
from ordergate.model.events import Alert, KillScope
from ordergate.runtime.loop import rebuild

RECENT_ALERTS = 20  # as many as GET /v1/status lists
_PROC_LOCKS = Path("/proc/locks")

_STYLE = {"ACTIVE": "bold white on green", "REDUCE_ONLY": "bold black on yellow",
          "HALTED": "bold white on red"}
_MEANING = {
    "ACTIVE": "Trading normally: every order is checked against the policy.",
    "REDUCE_ONLY": "Only orders that shrink an existing position are allowed.",
    "HALTED": "No new orders. Only cancels and an operator-ordered flatten go through.",
}

# The same words as `ordergate status --url` (service/status_view.py) and the same data: the
# enforced policy's own `monitor: true`, and the policy of a dry run.
MONITOR_NOTE = ("MONITOR (the policy sets monitor: true): its limits are evaluated and recorded, "
                "not enforced; kill switches, the mode and data checks still are.")


# The engine's count of cancels a monitor-mode policy's cancel_rate would have refused and
# that were sent (`engine.lifecycle.on_cancel_request`).
CANCELS_SENT = "cancel_would_deny"


def dry_run_note(name: str, policy_hash: str) -> str:
    return (f"DRY RUN of policy {name} {policy_hash[:16]}: every intent is also judged under it "
            "and recorded; the policy above still decides.")


def policy_monitor(engine: Engine) -> bool:
    """Whether the enforced policy itself sets `monitor: true`."""
    return engine.active is not None and engine.active.monitor


def firm_kills(engine: Engine, status: EngineStatus) -> list[str]:
    """The kill switches that deny every order of the firm whatever the mode says, in words:
    the policy's own `kill_switch`, the one shared by all gateways, an operator's for the
    firm. With one of them engaged an ACTIVE mode still trades nothing."""
    kills = [plain(kill) for kill in standing_firm_kills(engine)]
    kills.extend(f"{plain(kill.operator)} engaged the firm-wide kill switch: "
                 f"{plain(kill.reason)}" for kill in status.kills
                 if kill.scope is KillScope.FIRM)
    return kills


def _flock_holders(lock: os.stat_result) -> set[int] | None:
    """The processes holding a flock on the file `lock` describes, from /proc/locks; None
    where the system has no such list (then the pid the lock file names is all there is)."""
    try:
        lines = _PROC_LOCKS.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    device = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    holders: set[int] = set()
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device \
                and fields[4].isdigit():
            holders.add(int(fields[4]))
    return holders


def _sqlite_writer(path: str) -> int | None:
    """The live process holding the SQLite journal's writer lock (its pid), or None. The lock
    file keeps the last writer's pid after it exits: a pid counts only while the lock is held
    (or, with no /proc/locks to ask, while a process of that pid lives)."""
    lock = writer_lock_path(path)
    try:
        described = os.stat(lock)
        text = Path(lock).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    named = int(text) if text.isdigit() else None
    holders = _flock_holders(described)
    if holders is not None:
        return named if named in holders else min(holders, default=None)
    if named is None:
        return None
    try:
        os.kill(named, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it lives, as another user
    return named


_LEASE_HOLDER = (
    "SELECT l.pid, coalesce(host(a.client_addr), '') FROM pg_locks l "
    "CROSS JOIN (SELECT hashtextextended(current_schema() || '/' || %s, 0) AS k) AS lease "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.classid = ((lease.k >> 32) & 4294967295)::oid "
    "AND l.objid = (lease.k & 4294967295)::oid")


def _lease_holder(location: JournalUrl) -> str | None:
    """Who holds the PostgreSQL stream's lease (as `journal.lease.ShardLease` takes it, which
    `serve` and `gateway` do): "database session PID[ from ADDRESS]", or None when nobody does
    or the database cannot say now."""
    import psycopg  # a PostgreSQL journal was read: the driver is there

    try:
        with psycopg.connect(location.target, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_LEASE_HOLDER, (location.stream,)).fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    return f"database session {row[0]}" + (f" from {row[1]}" if row[1] else "")


def live_writer(url: str) -> str:
    """In words, the live process that holds the journal at `url` for writing ("" when none
    is known): what status shows is then what the journal holds, which says nothing of what
    that process could not journal (a gateway stopped on a failed journal write)."""
    try:
        location = parse_journal_url(url)
    except JournalError:
        return ""
    if location.backend is Backend.SQLITE:
        pid = _sqlite_writer(location.target)
        who = None if pid is None else f"process {pid} holds its writer lock"
        what = "this journal"
    else:
        who = _lease_holder(location)
        who = None if who is None else f"{who} holds the lease of stream '{location.stream}'"
        what = "this journal's stream"
    if who is None:
        return ""
    return (f"A live gateway holds {what} ({who}): what is shown is what the journal holds. "
            "A gateway whose journal write failed has stopped taking anything without being "
            "able to journal it; `ordergate status --url` shows what it is doing now.")


def journal_alerts(url: str, limit: int = RECENT_ALERTS) -> list[Alert]:
    """The journal's latest critical and warning alerts, oldest first."""
    journal = open_journal(url, durability=Durability.NONE, create=False, reader=True)
    try:
        return latest_alerts(journal, limit)
    finally:
        journal.close()


def render_status(status: EngineStatus, all_denied: Sequence[str] = (),
                  monitor: bool = False, *, writer: str = "",
                  alerts: Sequence[Alert] = ()) -> None:
    """`all_denied`: the firm-wide kill switches engaged (`firm_kills`); with any, the banner
    says that no order passes, in red, whatever the mode. `monitor`: the enforced policy sets
    `monitor: true` (`policy_monitor`); said under the banner, as is a dry run. `writer`: a live
    process holding the journal (`live_writer`), said in the banner. `alerts`: the latest
    critical and warning alerts, oldest first (`journal_alerts`)."""
    mode = status.mode.value
    as_of = f"as of {status.now:%Y-%m-%d %H:%M:%S} UTC" if status.now else "no events yet"
    policy = (f"policy {plain(status.policy_name)} {status.policy_hash[:19]}"
              if status.policy_hash else "no policy active")
    if all_denied:
        also = "" if mode == "ACTIVE" else f" · {mode}"
        banner = (f"[{_STYLE['HALTED']}]  KILL SWITCH — ALL ORDERS DENIED{also}  [/]\n\n"
                  f"No trading: every order is denied ({'; '.join(all_denied)}). "
                  "An operator must release the kill switch.")
    else:
        banner = f"[{_STYLE[mode]}]  {mode}  [/]\n\n{_MEANING[mode]}"
    if writer:
        banner += f"\n\n[bold]{plain(writer)}[/]"
    title = "trading mode, as the journal holds it (a live gateway holds it)" if writer \
        else "trading mode"
    # wrapped inside the panel, never cut at the terminal's edge (the console soft-wraps)
    out.print(Panel(banner, title=title, subtitle=f"{as_of} · {policy}", expand=False),
              soft_wrap=False)
    if monitor:
        out.print(MONITOR_NOTE, style="bold black on yellow", markup=False, highlight=False)
        # cancels over cancel_rate go out in monitor mode: an info THR-005 alert each, which
        # the latest alerts below leave out
        if cancels := status.counters.get(CANCELS_SENT, 0):
            out.print(f"{cancels:,} cancel(s) the policy would have refused were sent since "
                      "the journal began (cancel_rate, THR-005).", markup=False, highlight=False)
    if status.shadow_policy_hash:
        out.print(dry_run_note(status.shadow_policy_name, status.shadow_policy_hash),
                  style="bold black on cyan", markup=False, highlight=False)
    why: list[str] = []
    for reason in status.reasons:
        since = f" since {reason.since:%Y-%m-%d %H:%M:%S} UTC" if reason.since else ""
        why.append(f"• {plain_reason(reason.code)} [dim]({reason.code}{since}, "
                   f"by {plain(reason.actor)})[/]")
        if reason.detail:
            why.append(f"  {plain(reason.detail)}")
    if status.held_after is not None and (
            line := held_words(status, plain_reason(status.held_after.code))) is not None:
        why.append(f"• {plain(line)}")
    for kill in status.kills:
        why.append(f"• kill switch on {kill.scope.value} {plain(kill.key or '')} by "
                   f"{plain(kill.operator)}: {plain(kill.reason)}")
    for disabled in status.disabled_strategies:
        # the repeated-execution limit (THR-006) never blocks an order that reduces risk; in
        # monitor mode it records, as every limit does (as /v1/status says it)
        denied = ("would be denied (monitor mode: still sent, the breach only recorded)"
                  if monitor else "are denied (orders that reduce risk still go through)")
        why.append(f"• strategy {plain(disabled.strategy)} ({plain(disabled.account)}) is "
                   f"disabled: its new orders that add risk {denied}")
    if why:
        out.print("[bold]why:[/]\n" + "\n".join(why))
    if alerts:
        said = []
        for alert in alerts:
            colour = "red" if alert.severity.value == "critical" else "yellow"
            meaning = alert_words(alert.code, alert.severity)
            said.append(f"• [{colour}]{alert.severity.value} {plain(alert.code)}[/] at "
                        f"{alert.ts:%Y-%m-%d %H:%M:%S} UTC" + (f": {plain(meaning)}" if meaning
                                                               else ""))
            said.append(f"  {plain(alert.message)}")
        out.print("[bold]latest critical and warning alerts (newest last):[/]\n"
                  + "\n".join(said))

    for account in status.accounts:
        drawdown = f"{float(account.drawdown_pct):.2f} %" if account.drawdown_pct is not None \
            else "-"
        out.print(f"[bold]{plain(account.account)}[/]  equity {money(account.equity)}   "
                  f"PnL today {money(account.daily_pnl)}   "
                  f"{pnl_parts(account).replace(', ', '   ')}   drawdown {drawdown}")
        if (words := loss_limit_words(account, status.day_ends_at)) is not None:
            out.print(f"  {words}")
    if status.accounts and status.day_ends_at is not None:
        out.print(day_end_words(status.day_ends_at), markup=False, highlight=False)
    held = [p for p in status.positions if p.qty != 0]
    if held:
        table = Table(title="positions", title_justify="left")
        for column in ("account", "symbol", "quantity", "avg price", "mark", "unrealized PnL"):
            table.add_column(column)
        for p in held:
            table.add_row(plain(p.account), plain(p.symbol), f"{p.qty:,}", money(p.avg_price),
                          money(p.mark) if p.mark is not None else "-",
                          money(p.unrealized_pnl))
        out.print(table)
    else:
        out.print("no open positions")
    if status.open_orders:
        table = Table(title="working orders", title_justify="left")
        for column in ("client order id", "strategy", "symbol", "side", "remaining", "limit"):
            table.add_column(column)
        for o in status.open_orders:
            table.add_row(plain(o.client_order_id), plain(o.strategy), plain(o.symbol),
                          o.side.value,
                          f"{o.remaining:,}", money(o.limit_price) if o.limit_price else "-")
        out.print(table)
    else:
        out.print("no working orders")


def status(
    journal: Annotated[str | None, typer.Option(
        "--journal", help="Journal: a .db file path, sqlite:///... or postgresql://...")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="A running gateway's base URL (http://host:port) instead of a journal.")
    ] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Viewer or operator token for --url (default: $ORDERGATE_TOKEN).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the trading mode and why, the latest critical and warning alerts, positions,
    working orders and PnL from a journal, or the live status of a running gateway (--url).
    With a journal a live gateway holds (its writer lock, or a PostgreSQL stream's lease), it
    says so: what is shown is what the journal holds (live_writer in --json). With a journal
    it also says when the trading day ends (the next day roll, in UTC), when PnL today and the
    daily loss limit start again: a weekend belongs to Friday's day, so with an exchange's
    day_roll_calendar a loss limit reached on a Saturday refuses new risk until Monday's
    close. --json gives it as day_ends_at."""
    configure_logging(False, logging.ERROR)
    if journal is None or url is not None:
        if journal is not None or url is None:
            raise UserError("status: give exactly one of --journal (read a journal) or --url "
                            "(ask a running gateway)")
        _remote(url, token, as_json)
        return
    url_of = journal_url(journal)
    try:
        engine = rebuild(url_of)
        alerts = journal_alerts(url_of)
    except JournalError as exc:
        raise UserError(journal_problem(journal, exc)) from None
    current = engine.status()
    monitor = policy_monitor(engine)
    writer = live_writer(url_of)
    if as_json:
        # policy_monitor and recent_alerts under the names GET /v1/status gives them; the dry
        # run's policy is in shadow_policy_name / shadow_policy_hash, as there.
        fields = msgspec.to_builtins(current)
        fields["policy_monitor"] = monitor
        fields["recent_alerts"] = [
            {"ts": msgspec.to_builtins(alert.ts), "severity": alert.severity.value,
             "code": alert.code, "meaning": alert_words(alert.code, alert.severity),
             "message": alert.message, "intent_id": alert.intent_id} for alert in alerts]
        fields["live_writer"] = writer
        print_json(msgspec.json.encode(fields))
        return
    render_status(current, firm_kills(engine, current), monitor, writer=writer, alerts=alerts)


def _remote(url: str, token: str | None, as_json: bool) -> None:
    # httpx and the service schemas load only when a remote status is asked for.
    from ordergate.service.status_view import TOKEN_ENV, fetch_status, show_remote_status

    if as_json:
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise UserError(f"--token: a viewer token is required (or set {TOKEN_ENV})")
        view = fetch_status(url, token)
        print_json(msgspec.json.encode(view))
        return
    show_remote_status(url, token, out)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
