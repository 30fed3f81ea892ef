"""`ordergate status --journal J`: rebuild the engine from the journal (latest snapshot +
the records after it) and show, readable in five seconds: the trading mode, big and coloured,
and why in plain words; positions; working orders; PnL.

`ordergate status --url U [--token T]`: the same question asked of a running gateway over
HTTP (GET /v1/status with a viewer or operator token; the token may come from
$ORDERGATE_TOKEN instead, so it stays out of shell history)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Annotated

import msgspec
import typer
from rich.panel import Panel
from rich.table import Table

from ordergate.cli.console import out, plain
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
from ordergate.journal import JournalError
from ordergate.model.events import KillScope
from ordergate.runtime.loop import rebuild

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


def render_status(status: EngineStatus, all_denied: Sequence[str] = (),
                  monitor: bool = False) -> None:
    """`all_denied`: the firm-wide kill switches engaged (`firm_kills`); with any, the banner
    says that no order passes, in red, whatever the mode. `monitor`: the enforced policy sets
    `monitor: true` (`policy_monitor`); said under the banner, as is a dry run."""
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
    out.print(Panel(banner, title="trading mode", subtitle=f"{as_of} · {policy}",
                    expand=False))
    if monitor:
        out.print(MONITOR_NOTE, style="bold black on yellow", markup=False, highlight=False)
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
        why.append(f"• strategy {plain(disabled.strategy)} ({plain(disabled.account)}) is "
                   "disabled")
    if why:
        out.print("[bold]why:[/]\n" + "\n".join(why))

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
    """Show the trading mode and why, positions, working orders and PnL from a journal, or the
    live status of a running gateway (--url). With a journal it also says when the trading day
    ends (the next day roll, in UTC), when PnL today and the daily loss limit start again: a
    weekend belongs to Friday's day, so with an exchange's day_roll_calendar a loss limit
    reached on a Saturday refuses new risk until Monday's close. --json gives it as
    day_ends_at."""
    configure_logging(False, logging.ERROR)
    if journal is None or url is not None:
        if journal is not None or url is None:
            raise UserError("status: give exactly one of --journal (read a journal) or --url "
                            "(ask a running gateway)")
        _remote(url, token, as_json)
        return
    try:
        engine = rebuild(journal_url(journal))
    except JournalError as exc:
        raise UserError(journal_problem(journal, exc)) from None
    current = engine.status()
    monitor = policy_monitor(engine)
    if as_json:
        # policy_monitor under the name GET /v1/status gives it; the dry run's policy is in
        # shadow_policy_name / shadow_policy_hash, as there.
        fields = msgspec.to_builtins(current)
        fields["policy_monitor"] = monitor
        out.print(msgspec.json.encode(fields).decode(), markup=False, highlight=False)
        return
    render_status(current, firm_kills(engine, current), monitor)


def _remote(url: str, token: str | None, as_json: bool) -> None:
    # httpx and the service schemas load only when a remote status is asked for.
    from ordergate.service.status_view import TOKEN_ENV, fetch_status, show_remote_status

    if as_json:
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise UserError(f"--token: a viewer token is required (or set {TOKEN_ENV})")
        view = fetch_status(url, token)
        out.print(msgspec.json.encode(view).decode(), markup=False, highlight=False)
        return
    show_remote_status(url, token, out)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
