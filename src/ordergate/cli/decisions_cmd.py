"""`ordergate decisions`: list and filter a journal's decisions, or show one in full (the
intent, the decision, the state it was judged on, the limits it cited, what followed, its
evaluation latency, and whether the record alone re-derives it)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

import msgspec
import typer
from rich.measure import Measurement
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ordergate.cli.console import out, plain
from ordergate.cli.errors import UserError
from ordergate.cli.journal_cmd import read_journal
from ordergate.cli.replay_cmd import JournalOption, parse_time
from ordergate.evidence.decisions import (
    DecisionDetail,
    DecisionFilter,
    DecisionRow,
    find_decisions,
    iter_decisions,
)
from ordergate.evidence.reproduce import (
    IncompleteRecord,
    behaviour_at,
    decode_limits,
    reproduce,
)
from ordergate.gate.table import RULES
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderIntent
from ordergate.model.reasons import REGISTRY

_COLOURS = {"ALLOW": "green", "MODIFY": "yellow", "DENY": "red"}
_SELF_MATCH_CANCEL = "cancelled the account's own"
_VERDICTS = {"ALLOW": "ALLOWED", "MODIFY": "MODIFIED", "DENY": "DENIED"}


def _json(value: object) -> Syntax:
    text = msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
    return Syntax(text, "json", word_wrap=True)


def _when(ts: datetime) -> str:
    """An event time as a short UTC stamp that fits a table cell on one line."""
    text = ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{ts.microsecond // 1000:03d}" if ts.microsecond else "")


def _latency(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:,.1f} µs"


def _meaning(code: str) -> str:
    entry = REGISTRY.get(code)
    return entry.meaning if entry is not None else f"unregistered reason code {code}"


# the codes whose rule may cut an order to fit instead of refusing it (`exposure_modify`)
_MODIFIABLE = frozenset(rule.code for rule in RULES if rule.modifiable)


def _number(value: Decimal) -> str:
    """A decimal as people write it: never in exponent form ("1.25E-7" is 0.000000125,
    "2E+9" is 2000000000), its trailing zeros kept as given."""
    return format(value, "f")


def _figure(text: str) -> str:
    """A violation's observed or limit text as people read it: a text that is exactly one
    decimal in exponent form is written out; any other text (words, a duration, a number
    with its unit) is shown as recorded."""
    if "E" not in text:
        return text
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return _number(value) if value.is_finite() else text


def _evidence(violation: Violation) -> str:
    """What was observed against what limit, and the rule's own detail, in one phrase."""
    parts = []
    if violation.observed or violation.limit:
        parts.append(f"observed {_figure(violation.observed) or '-'}, "
                     f"limit {_figure(violation.limit) or '-'}")
    if violation.detail:
        parts.append(violation.detail)
    return "; ".join(parts)


def _order_words(intent: OrderIntent) -> str:
    """"buy 300 AAPL limit 101.5, account A, strategy S": the price terms as a trader says
    them ("at market", "stop 99", "stop 99 limit 98.5")."""
    terms = []
    if intent.stop_price is not None:
        terms.append(f"stop {_number(intent.stop_price)}")
    if intent.limit_price is not None:
        terms.append(f"limit {_number(intent.limit_price)}")
    price = " ".join(terms) or "at market"
    reduce = ", reduce-only" if intent.reduce_only else ""
    return (f"{intent.side.value} {_number(intent.qty)} {intent.symbol} {price}{reduce}, "
            f"account {intent.account}, strategy {intent.strategy}")


def plain_words(decision: Decision, intent: OrderIntent | None,
                sent: Dispatch | None) -> list[str]:
    """The decision said for someone who does not read JSON: the outcome and the rule that
    decided it with its meaning and evidence, then every other limit the order broke and
    what happened next. Rich markup; user-given values are escaped."""
    kind = decision.decision
    colour = _COLOURS[kind.value]
    # Under `self_match: cancel_resting` an allowed decision notes, as an ORD-010 entry, the
    # account's own orders cancelled so it would not trade with itself: an action, not a
    # limit broken (`engine.core.with_self_match_cancels` writes it).
    cancels = [violation for violation in decision.violations
               if kind is DecisionKind.ALLOW and violation.code == "ORD-010"
               and violation.detail.startswith(_SELF_MATCH_CANCEL)]
    if cancels:
        decision = msgspec.structs.replace(decision, violations=tuple(
            violation for violation in decision.violations if violation not in cancels))
    by_code = {violation.code: violation for violation in decision.violations}
    lines: list[str] = []
    if intent is not None:
        lines.append(f"order: {plain(_order_words(intent))}")
    if kind is DecisionKind.ALLOW:
        head = f"[bold {colour}]ALLOWED[/]"
        if decision.monitor and decision.would_block:
            would = decision.would_block
            # a cap the gate may trim to (`exposure_modify`): enforced, the policy decides
            outcome = ("refused, or cut to fit where the policy sets exposure_modify,"
                       if would in _MODIFIABLE else "refused")
            head += (f": the policy is in monitor mode; enforced, it would have been "
                     f"{outcome} by {would}: {plain(_meaning(would))}")
        elif not decision.violations:
            head += ": no limit was broken"
        elif decision.risk_reducing:
            head += (": the order shrinks the position, so the limits below it broke do not "
                     "stop it")
        lines.append(head)
    else:
        blocking = decision.blocking
        head = (f"[bold {colour}]{_VERDICTS[kind.value]}[/] by {blocking}: "
                f"{plain(_meaning(blocking))}")
        if kind is DecisionKind.MODIFY and intent is not None and decision.modified_qty is not None:
            head = (f"[bold {colour}]MODIFIED[/]: quantity cut from {_number(intent.qty)} to "
                    f"{_number(decision.modified_qty)} to fit {blocking}: "
                    f"{plain(_meaning(blocking))}")
        lines.append(head)
        found = by_code.get(blocking)
        if found is not None and _evidence(found):
            lines.append(f"  {plain(_evidence(found))}")
    others = [violation for violation in decision.violations
              if violation.code != decision.blocking]
    if others:
        lines.append("also broken:" if kind is not DecisionKind.ALLOW or decision.monitor
                     else "broken:")
        for violation in others:
            evidence = _evidence(violation)
            lines.append(f"  • {violation.code} {plain(_meaning(violation.code))}"
                         + (f" ({plain(evidence)})" if evidence else ""))
    for cancel in cancels:
        lines.append(f"to keep it from trading with the account's own orders, the gate "
                     f"{plain(cancel.detail.split(' (self_match', 1)[0])}: "
                     f"{plain(cancel.detail.rsplit(': ', 1)[-1])}")
    lines.append(f"trading mode then: {decision.mode.value}")
    if sent is not None:
        lines.append(f"sent to the broker as order {plain(sent.client_order_id)} "
                     f"({sent.side.value} {_number(sent.qty)})")
    elif kind is not DecisionKind.DENY:
        lines.append("no order was sent in the same step")
    return lines


def show(detail: DecisionDetail, behaviour: int) -> None:
    """One decision in full; `behaviour` is the engine behaviour it was decided under
    (`evidence.reproduce.behaviour_at`), whose arithmetic re-derives it."""
    decision = detail.decision
    colour = _COLOURS[decision.decision.value]
    out.rule(f"[bold]intent {plain(decision.intent_id)}[/]: [{colour}]{decision.decision.value}[/]"
             + (f" {decision.blocking}" if decision.blocking else ""))
    sent = next((output for output in detail.outputs if isinstance(output, Dispatch)), None)
    words = Text.from_markup("\n".join(plain_words(decision, detail.intent, sent)))
    out.print(Panel(words, title="in plain words"), highlight=False, soft_wrap=False)
    out.print(f"journal seq {detail.seq}   evaluation latency {_latency(detail.latency_ns)}   "
              f"policy {decision.policy_hash or 'none'}", highlight=False)
    if detail.intent is not None:
        out.print(Panel(_json(detail.intent), title="intent (input)"))
    out.print(Panel(_json(decision), title="decision"))
    if detail.record is None and not decision.policy_hash:
        # DUP-003: a reused intent id is refused before any policy judges it
        out.print("[yellow]no DecisionRecord: no policy judged this intent, so no state was "
                  "recorded for it[/]")
    elif detail.record is None:
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
            again = reproduce(detail.intent, detail.record, detail.limits,
                              behaviour=behaviour)
        except IncompleteRecord as exc:
            out.print(f"[red]cannot re-derive from the record[/]: {plain(exc)}")
            return
        if again == decision:
            out.print("[green]re-derived from the record alone: identical decision[/]")
        else:
            out.print("[red]re-derived from the record alone: DIFFERENT decision[/]")
            out.print(Panel(_json(again), title="re-derived"))


def decision_filter(*, since: str | None, until: str | None, account: str = "",
                    symbol: str = "", strategy: str = "", decision: str = "",
                    reason: str = "") -> DecisionFilter:
    """The rows the filter options keep, or the UserError naming the option that cannot
    keep any: an unknown outcome or reason code, or a window that ends before it starts.
    Outcomes and reason codes are matched in any case."""
    if decision and decision.upper() not in _COLOURS:
        raise UserError(f"--decision {decision!r}: expected ALLOW, DENY or MODIFY")
    if reason and reason.upper() not in REGISTRY:
        raise UserError(f"--reason {reason!r}: no such reason code; `ordergate reasons` "
                        "lists them")
    start, end = parse_time("--since", since), parse_time("--until", until)
    if start is not None and end is not None and start > end:
        raise UserError(f"--since {since} is later than --until {until}: the window holds "
                        "no time; swap them")
    return DecisionFilter(since=start, until=end, account=account, symbol=symbol,
                          strategy=strategy, decision=decision.upper(), reason=reason.upper())


def _outcome(detail: DecisionDetail) -> str:
    decision = detail.decision
    return f"seq {detail.seq} {decision.decision.value}" + (
        f" {decision.blocking}" if decision.blocking else "")


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
    show_id: Annotated[str | None, typer.Option(
        "--show", help="Show one intent's decision in full (every one, when the intent id "
                       "was sent more than once).")] = None,
) -> None:
    """List a journal's decisions (filtered), or show one in full with --show INTENT_ID
    (every decision for it, when the intent id was sent more than once)."""
    where = decision_filter(since=since, until=until, account=account, symbol=symbol,
                            strategy=strategy, decision=decision, reason=reason)
    with read_journal(journal) as opened:
        if show_id is not None:
            found = find_decisions(opened, show_id)
            if not found:
                raise UserError(f"--show {show_id}: no decision for that intent id in the "
                                "journal")
            if len(found) > 1:
                # A resent intent id is evidence in itself (a retry, a duplicate the gateway
                # refused): every decision is shown, never only the first.
                out.print(f"[bold]intent {plain(show_id)} was decided {len(found)} times[/]: "
                          + ", ".join(_outcome(detail) for detail in found), highlight=False)
            behaviours = behaviour_at(opened, (detail.seq for detail in found))
            for detail in found:
                show(detail, behaviours[detail.seq])
            return
        rows = list(iter_decisions(opened, where))
    title = f"{len(rows):,} decisions" + (f" (latest {limit})" if len(rows) > limit else "")
    if not rows:
        out.print("no decisions" + (" match" if where != DecisionFilter() else ""))
        return
    for line in _listing(title, rows[-limit:], rows, out.width):
        out.print(line)


# Columns a narrow terminal drops first, least needed first: `--show` still has them.
_DROPPABLE = ("latency", "seq", "strategy", "account", "mode")
_UNBOUNDED = 10_000  # measure a table's natural width, not the width it is given


def _listing(title: str, rows: list[DecisionRow], matching: list[DecisionRow],
             width: int) -> list[Text | Table | str]:
    """The decisions table (`rows`, the latest of `matching`) as it fits `width` columns,
    with no value cut across lines (a folded "HALT/ED" or "3442/6" is misread). What every
    matching decision shares (one account, one strategy, one mode, one date) goes into the
    title instead of a column; if the table is still too wide, the columns in `_DROPPABLE`
    go, in that order, and a line says which. A terminal too narrow even then gets a line
    per decision instead of a table."""
    cells: dict[str, list[str]] = {
        "seq": [str(row.seq) for row in rows],
        "time (UTC)": [_when(row.ts) for row in rows],
        "intent": [plain(row.intent_id) for row in rows],
        "account": [plain(row.account) for row in rows],
        "strategy": [plain(row.strategy) for row in rows],
        "symbol": [plain(row.symbol) for row in rows],
        "side": [row.side for row in rows],
        "qty": [_number(row.qty) if row.modified_qty is None
                else f"{_number(row.qty)}→{_number(row.modified_qty)}" for row in rows],
        "decision": [f"[{_COLOURS.get(row.decision, 'white')}]{row.decision}[/]"
                     for row in rows],
        "blocking": [row.blocking for row in rows],
        "mode": [row.mode for row in rows],
        "latency": [_latency(row.latency_ns) for row in rows],
    }
    shared: list[str] = []
    if rows:
        for column, distinct in (("account", {row.account for row in matching}),
                                 ("strategy", {row.strategy for row in matching}),
                                 ("mode", {row.mode for row in matching})):
            if len(distinct) == 1:
                shared.append(f"{column} {cells.pop(column)[0]}")
        days = {row.ts.astimezone(UTC).date() for row in matching}
        if len(days) == 1:
            shared.append(f"{days.pop().isoformat()} (UTC)")
            cells["time (UTC)"] = [text.split(" ", 1)[1] for text in cells["time (UTC)"]]
    heading = Text.from_markup(", ".join([title, *shared]) if shared else title, style="italic")
    hidden: list[str] = []
    while True:
        droppable = [column for column in _DROPPABLE if column in cells]
        table = Table()
        for column in cells:
            table.add_column(column, no_wrap=True)
        for values in zip(*cells.values(), strict=True):
            table.add_row(*values)
        needed = Measurement.get(out, out.options.update_width(_UNBOUNDED), table).maximum
        if needed <= width or not droppable:
            break
        del cells[droppable[0]]
        hidden.append(droppable[0])
    shown: list[Text | Table | str] = [heading]
    if needed <= width:
        shown.append(table)
    else:
        # narrower than any table: a line per decision, its values whole, wrapped by the
        # terminal between them, never inside one
        shown.append("  ".join(cells))
        shown.extend("  ".join(values) for values in zip(*cells.values(), strict=True))
    if hidden:
        shown.append(f"hidden to fit {width} columns: {', '.join(hidden)} (widen the terminal, "
                     "or --show INTENT_ID for one decision in full)")
    return shown


def register(app: typer.Typer) -> None:
    app.command("decisions")(decisions)
