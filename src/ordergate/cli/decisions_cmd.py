"""`ordergate decisions`: list and filter a journal's decisions, or show one in full (the
intent, the decision, the state it was judged on, the limits it cited, what followed, its
evaluation latency, and whether the record alone re-derives it)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from ordergate.cli.console import out, plain
from ordergate.cli.errors import UserError
from ordergate.cli.replay_cmd import JournalOption, parse_time, read_journal
from ordergate.evidence.decisions import (
    DecisionDetail,
    DecisionFilter,
    find_decision,
    iter_decisions,
)
from ordergate.evidence.reproduce import IncompleteRecord, decode_limits, reproduce

_COLOURS = {"ALLOW": "green", "MODIFY": "yellow", "DENY": "red"}


def _json(value: object) -> Syntax:
    text = msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
    return Syntax(text, "json", word_wrap=True)


def _latency(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:,.1f} µs"


def show(detail: DecisionDetail) -> None:
    decision = detail.decision
    colour = _COLOURS[decision.decision.value]
    out.rule(f"[bold]intent {plain(decision.intent_id)}[/]: [{colour}]{decision.decision.value}[/]"
             + (f" {decision.blocking}" if decision.blocking else ""))
    out.print(f"journal seq {detail.seq}   evaluation latency {_latency(detail.latency_ns)}   "
              f"policy {decision.policy_hash or 'none'}", highlight=False)
    if detail.intent is not None:
        out.print(Panel(_json(detail.intent), title="intent (input)"))
    out.print(Panel(_json(decision), title="decision"))
    if detail.record is None:
        out.print("[yellow]no DecisionRecord: this journal predates decision records[/]")
    else:
        out.print(Panel(_json(detail.record.context),
                        title=f"state it was judged on (event time {detail.record.ts})"))
    if detail.limits is not None:
        limits = decode_limits(detail.limits)
        out.print(Panel(_json(limits), title=f"resolved limits {detail.limits.limits_hash}"))
    if detail.outputs:
        out.print(Panel(_json(detail.outputs), title="what followed (same step)"))
    if detail.intent is not None and detail.record is not None and detail.limits is not None:
        try:
            again = reproduce(detail.intent, detail.record, detail.limits)
        except IncompleteRecord as exc:
            out.print(f"[red]cannot re-derive from the record[/]: {plain(exc)}")
            return
        if again == decision:
            out.print("[green]re-derived from the record alone: identical decision[/]")
        else:
            out.print("[red]re-derived from the record alone: DIFFERENT decision[/]")
            out.print(Panel(_json(again), title="re-derived"))


def decisions(
    journal: JournalOption,
    since: Annotated[str | None, typer.Option(help="RFC 3339; decisions at or after.")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339; decisions at or before.")]
    = None,
    account: Annotated[str, typer.Option(help="Only this account.")] = "",
    symbol: Annotated[str, typer.Option(help="Only this symbol.")] = "",
    strategy: Annotated[str, typer.Option(help="Only this strategy.")] = "",
    decision: Annotated[str, typer.Option(help="ALLOW, DENY or MODIFY.")] = "",
    reason: Annotated[str, typer.Option(help="A reason code (blocking or violated).")] = "",
    limit: Annotated[int, typer.Option(min=1, help="Rows to show (the latest).")] = 50,
    show_id: Annotated[str | None, typer.Option("--show", help="Show one intent's decision "
                                                               "in full.")] = None,
) -> None:
    """List a journal's decisions (filtered), or show one in full with --show INTENT_ID."""
    if decision and decision.upper() not in _COLOURS:
        raise UserError(f"--decision {decision!r}: expected ALLOW, DENY or MODIFY")
    where = DecisionFilter(since=parse_time("--since", since), until=parse_time("--until", until),
                           account=account, symbol=symbol, strategy=strategy,
                           decision=decision.upper(), reason=reason)
    with read_journal(journal) as opened:
        if show_id is not None:
            detail = find_decision(opened, show_id)
            if detail is None:
                raise UserError(f"--show {show_id}: no decision for that intent id in the "
                                "journal")
            show(detail)
            return
        rows = list(iter_decisions(opened, where))
    table = Table(title=f"{len(rows):,} decisions" + (f" (latest {limit})" if len(rows) > limit
                                                       else ""), title_justify="left")
    for column in ("seq", "time", "intent", "account", "strategy", "symbol", "side", "qty",
                   "decision", "blocking", "mode", "latency"):
        # codes and outcomes are never cut; long values fold onto the next line
        table.add_column(column, overflow="fold",
                         min_width=7 if column in ("decision", "blocking") else None)
    for row in rows[-limit:]:
        colour = _COLOURS.get(row.decision, "white")
        table.add_row(str(row.seq), row.ts.isoformat(), plain(row.intent_id), plain(row.account),
                      plain(row.strategy), plain(row.symbol), row.side, str(row.qty),
                      f"[{colour}]{row.decision}[/]", row.blocking, row.mode,
                      _latency(row.latency_ns))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("decisions")(decisions)
