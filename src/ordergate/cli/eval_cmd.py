"""`ordergate eval`: decide a file of intents against a policy, without a broker.

Intents run through the real engine (the same gate, the same state keeping), so throttles,
duplicate windows and exposure caps see the intents accepted before them. No order is sent
and none fills: every accepted order stays working and keeps counting against the caps, the
most conservative reading of a file of intents. Intent lines need no `type` field; the file
may interleave any other input event (`"type": "market"` snapshots to move prices and time,
`"type": "command"` operator actions, ...). `--market` supplies the starting snapshots and
`--state` the starting accounts and positions.

An account in the state file is funded with its `cash`; its equity, day-start equity and
high-water mark are then cash plus its positions at their entry prices, unless the file gives
them (`equity`, `day_start_equity`, `high_water_mark`): given, they are what the loss and
drawdown limits start from, as of the starting market, even when `equity` disagrees with cash
plus positions (the file's figure is taken as the truth).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec
import typer
from rich.table import Table

from ordergate.cli.console import err, plain
from ordergate.cli.errors import UserError
from ordergate.engine.core import Engine
from ordergate.model.decision import Decision
from ordergate.model.events import (
    AccountFunding,
    Command,
    CommandAction,
    InputEvent,
    PolicyDocument,
    PositionSeed,
)
from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.model.portfolio import AccountState, PortfolioState
from ordergate.model.reasons import REGISTRY
from ordergate.model.values import describe_error
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import Policy, load_policy
from ordergate.runtime.sources import UTF8_BOM, BadLine, new_event, text_problem


class _Kind(msgspec.Struct):
    """Only a line's top-level `type` key (the other keys are skipped, not built): a `"type"`
    inside a value or a nested object (a strategy named "type", a tag) does not name the
    event."""

    type: Any = msgspec.UNSET


_event_decoder = msgspec.json.Decoder(InputEvent)
_intent_decoder = msgspec.json.Decoder(OrderIntent)
_kind_decoder = msgspec.json.Decoder(_Kind)
_encoder = msgspec.json.Encoder(order="deterministic")


def decode_line(raw: bytes) -> InputEvent:
    """An intent (its `type` field is optional) or any other input event."""
    # The byte search keeps the usual intent line (no `type` anywhere) to one decode; only a
    # line that mentions "type" is read once more to see whether the key is a top-level one.
    if b'"type"' in raw and _kind_decoder.decode(raw).type is not msgspec.UNSET:
        event: InputEvent = _event_decoder.decode(raw)
    else:
        event = _intent_decoder.decode(raw)
    return event


def read_intents(path: Path) -> Iterator[tuple[int, InputEvent | BadLine]]:
    name = str(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            stripped = (raw.removeprefix(UTF8_BOM) if number == 1 else raw).strip()
            if not stripped:
                continue
            try:
                event = decode_line(stripped)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
                problem = text_problem(stripped, first=number == 1)
                yield number, BadLine(name, number, problem or describe_error(exc))
            else:
                # refused as `run` and `serve` refuse it (`runtime.sources.new_event`)
                yield number, new_event(name, number, event)


def read_market(path: Path) -> list[MarketSnapshot]:
    """Starting snapshots: a JSON array or JSON Lines of market snapshots."""
    raw = _read_json(path)
    try:
        if raw.lstrip().startswith(b"["):
            return msgspec.json.decode(raw, type=list[MarketSnapshot])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise UserError(f"{path}: {describe_error(exc)}") from None
    snapshots = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            snapshots.append(msgspec.json.decode(line, type=MarketSnapshot))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise UserError(f"{path}: line {number}: {describe_error(exc)}") from None
    return snapshots


def _read_json(path: Path) -> bytes:
    """A JSON file's bytes, without the byte order mark some editors write; a file that is
    not UTF-8 text is refused here, by name."""
    raw = path.read_bytes().removeprefix(UTF8_BOM)
    problem = text_problem(raw)
    if problem is not None:
        raise UserError(f"{path}: {problem}")
    return raw


class GivenMarks(msgspec.Struct, frozen=True, kw_only=True):
    """The equity marks a state file's account gives (`PortfolioState` reads an absent one as
    0, which is also a figure a file can give)."""

    equity: Decimal | None = None
    day_start_equity: Decimal | None = None
    high_water_mark: Decimal | None = None


_NO_MARKS = GivenMarks()


class _GivenState(msgspec.Struct, frozen=True, kw_only=True):
    accounts: tuple[GivenMarks, ...] = ()


class StartingState(msgspec.Struct, frozen=True, kw_only=True):
    """A state file: its accounts and positions, and for each account (in the same order) the
    equity marks it gives."""

    portfolio: PortfolioState
    marks: tuple[GivenMarks, ...] = ()


def read_state(path: Path) -> StartingState:
    raw = _read_json(path)
    try:
        portfolio = msgspec.json.decode(raw, type=PortfolioState)
        given = msgspec.json.decode(raw, type=_GivenState)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise UserError(f"{path}: {describe_error(exc)}") from None
    _refuse_repeats(path, portfolio)
    return StartingState(portfolio=portfolio, marks=given.accounts)


def _refuse_repeats(path: Path, portfolio: PortfolioState) -> None:
    """One row per account and per account and symbol: the engine keeps only the last of two
    rows for the same key, so a repeat would silently drop a position (or a cash figure) and
    let an order past a cap the file's author thought was reached."""
    accounts: dict[str, int] = {}
    for index, account in enumerate(portfolio.accounts):
        first = accounts.setdefault(account.account, index)
        if first != index:
            raise UserError(
                f"{path}: accounts[{index}]: account {account.account} is already given at "
                f"accounts[{first}]; give each account once")
    positions: dict[tuple[str, str], int] = {}
    for index, position in enumerate(portfolio.positions):
        first = positions.setdefault((position.account, position.symbol), index)
        if first != index:
            raise UserError(
                f"{path}: positions[{index}]: account {position.account} symbol "
                f"{position.symbol} is already given at positions[{first}]; give one position "
                f"per account and symbol (their net quantity)")


def _funding(account: AccountState, marks: GivenMarks, ts: datetime) -> AccountFunding:
    return AccountFunding(ts=ts, account=account.account, cash=account.cash,
                          equity=marks.equity, day_start_equity=marks.day_start_equity,
                          high_water_mark=marks.high_water_mark)


def start_events(policy: Policy, state: StartingState | None,
                 market: Iterable[MarketSnapshot], ts: datetime) -> list[InputEvent]:
    """The events that set the scene before the first intent: the policy, then the accounts'
    cash and positions, then the starting market, then the accounts whose equity marks the
    state file gives (so the marks are as of that market)."""
    events: list[InputEvent] = [
        PolicyDocument(ts=ts, policy_hash=policy.hash, document=policy.document),
        Command(ts=ts, action=CommandAction.ACTIVATE_POLICY, policy_hash=policy.hash,
                operator="eval", reason="ordergate eval"),
    ]
    marked: list[InputEvent] = []
    if state is not None:
        portfolio = state.portfolio
        # Positions first: funding then baselines equity (day start, high-water mark) on the
        # cash plus the positions valued at their entry prices.
        events.extend(PositionSeed(ts=ts, account=position.account, symbol=position.symbol,
                                   qty=position.qty, avg_price=position.avg_price)
                      for position in portfolio.positions)
        for account, marks in zip(portfolio.accounts, state.marks, strict=True):
            if marks == _NO_MARKS:
                events.append(_funding(account, marks, ts))
            else:
                marked.append(_funding(account, marks, ts))
    events.extend(market)
    events.extend(marked)
    return events


def evaluate_stream(
    policy: Policy,
    items: Iterable[tuple[int, InputEvent | BadLine]],
    *,
    state: StartingState | None = None,
    market: Iterable[MarketSnapshot] = (),
) -> Iterator[Decision | BadLine]:
    """Decisions for every intent, in file order; bad lines are yielded where they stand so
    the decisions before them are never lost."""
    engine: Engine | None = None
    market = list(market)
    for _, item in items:
        if isinstance(item, BadLine):
            yield item
            continue
        if engine is None:
            engine = Engine()
            start = min([item.ts, *(snapshot.ts for snapshot in market)])
            for event in start_events(policy, state, market, start):
                engine.handle(event)
        for output in engine.handle(item):
            if isinstance(output, Decision):
                yield output


def eval_command(
    intents: Annotated[Path, typer.Argument(help="JSON Lines of intents (market lines allowed).",
                                            exists=True, dir_okay=False)],
    policy_path: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML.",
                                              exists=True, dir_okay=False)],
    state_path: Annotated[Path | None, typer.Option(
        "--state", help="Starting accounts and positions (JSON). An account's equity, "
        "day_start_equity and high_water_mark, when given, are what the loss and drawdown "
        "limits start from (as of the starting market), even an equity that disagrees with "
        "cash plus positions; otherwise they are cash plus positions at entry prices.",
        exists=True,
        dir_okay=False)] = None,
    market_path: Annotated[Path | None, typer.Option(
        "--market", help="Starting market snapshots (JSON array or JSON Lines).", exists=True,
        dir_okay=False)] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write decisions here instead of stdout.")] = None,
) -> None:
    """Decide each intent against the policy: one decision JSON per line, summary on stderr."""
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        raise UserError(str(exc)) from None
    state = read_state(state_path) if state_path else None
    market = read_market(market_path) if market_path else []
    sink: BinaryIO
    if out_path is None:
        import sys

        sink = sys.stdout.buffer
    else:
        try:
            sink = out_path.open("wb")
        except OSError as exc:
            raise UserError(f"--out {out_path}: cannot write the decisions: "
                            f"{exc.strerror or exc}") from None
    kinds: Counter[str] = Counter()
    blocking: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    bad: list[BadLine] = []
    try:
        for result in evaluate_stream(policy, read_intents(intents), state=state,
                                      market=market):
            if isinstance(result, BadLine):
                bad.append(result)
                err.print(f"[red]error:[/] {plain(result)}")
                continue
            sink.write(_encoder.encode(result) + b"\n")
            sink.flush()
            kinds[result.decision.value] += 1
            code = result.blocking or result.would_block
            if code:
                blocking[code] += 1
            # once per decision, however many of its violations share the code
            seen.update({violation.code for violation in result.violations})
    finally:
        if out_path is not None:
            sink.close()
    _summary(policy, kinds, blocking, seen)
    if bad:
        raise UserError(f"{len(bad)} bad line(s) in {intents}; the other lines were decided")


def _summary(policy: Policy, kinds: Counter[str], blocking: Counter[str],
             seen: Counter[str]) -> None:
    err.print(f"[bold]{sum(kinds.values())} intents[/] decided under policy "
              f"[bold]{policy.name}[/] ({policy.hash[:19]}...)")
    table = Table()
    table.add_column("decision")
    table.add_column("count", justify="right")
    for kind in ("ALLOW", "MODIFY", "DENY"):
        table.add_row(kind, str(kinds.get(kind, 0)))
    err.print(table)
    codes = set(blocking) | set(seen)
    if codes:
        err.print("Reason codes: [bold]blocking[/] counts the decisions a code decided (in "
                  "monitor mode, would have); [bold]seen[/] counts every decision that recorded "
                  "it as a violation, blocking or not.")
        reasons = Table()
        for column in ("code", "name", "blocking", "seen", "meaning"):
            reasons.add_column(column, overflow="fold",
                               justify="right" if column in ("blocking", "seen") else "left")
        for code in sorted(codes, key=lambda code: (-blocking[code], -seen[code], code)):
            entry = REGISTRY[code]
            reasons.add_row(code, entry.name, str(blocking[code]), str(seen[code]),
                            entry.meaning)
        err.print(reasons)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
