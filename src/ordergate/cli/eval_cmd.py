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

import contextlib
import os
import sys
import tempfile
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
from ordergate.cli.errors import UserError, journal_file_at
from ordergate.engine.core import (
    POLICY_NOT_EFFECTIVE,
    POLICY_REJECTED,
    POLICY_UNKNOWN,
    Engine,
)
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.model.decision import Decision
from ordergate.model.events import (
    AccountFunding,
    Alert,
    Command,
    CommandAction,
    EngineUpgrade,
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
STARTUP_ALERTS = (POLICY_NOT_EFFECTIVE, POLICY_REJECTED, POLICY_UNKNOWN)
"""Codes of the alerts raised by eval's own start-up events that leave it without a
policy (every intent then denied, SYS-005): shown as warnings."""


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
                if problem is None:
                    problem = describe_error(exc)
                    if b"\r" in stripped:
                        # A file whose lines end in a lone CR (old Mac line endings) reads as
                        # one long line: say so, not only where the JSON stops making sense.
                        # (Not of bytes that are no text: a CR among them ends nothing.)
                        problem += ("; the line holds carriage returns (CR) that do not end "
                                    "it: the file's lines must end in LF (\\n) or CR LF, not "
                                    "CR alone")
                yield number, BadLine(name, number, problem)
            else:
                # refused as `run` and `serve` refuse it (`runtime.sources.new_event`)
                yield number, new_event(name, number, event)


# Files given for intents by mistake that are plainly not JSON Lines, by how they begin: each
# of their "lines" would be one more error, thousands of them for a journal.
_NOT_TEXT = (
    (b"SQLite format 3\x00", "an SQLite database, such as an ordergate journal"),
    (b"ordergate-snapshot ", "a journal's engine snapshot"),
    (b"PAR1", "a Parquet file, such as `ordergate journal export` writes"),
    (b"\x1f\x8b", "a gzip-compressed file; decompress it first"),
    (b"PK\x03\x04", "a ZIP archive or an office document"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)
_SNIFFED_BYTES = 8192
SHOWN_BAD_LINES = 20
"""Bad lines shown one by one; the others are counted."""


def refuse_non_text(path: Path) -> None:
    """Refuse, in one line, an intents file that is plainly not JSON Lines: a database, an
    archive, UTF-16 text, or bytes holding a NUL (which no UTF-8 text holds), told by its
    first bytes. A pipe or a device is not read ahead (what is read is gone)."""
    if not path.is_file():
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFFED_BYTES)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the intents file: {exc.strerror or exc}") \
            from None
    looks = next((what for magic, what in _NOT_TEXT if head.startswith(magic)), None)
    nul = head.find(b"\x00")
    if looks is None and nul >= 0:
        looks = f"binary data, or text not saved as UTF-8: byte {nul + 1} is a NUL"
    if looks is not None:
        raise UserError(f"{path}: is not JSON Lines (it looks like {looks}); eval reads "
                        "intents one JSON object a line, as UTF-8 text")


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


class _GivenAccount(GivenMarks, frozen=True, kw_only=True):
    realized_pnl: Decimal | None = None


class _GivenState(msgspec.Struct, frozen=True, kw_only=True):
    accounts: tuple[_GivenAccount, ...] = ()


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
    _refuse_realized_pnl(path, given)
    marks = tuple(GivenMarks(equity=account.equity, day_start_equity=account.day_start_equity,
                             high_water_mark=account.high_water_mark)
                  for account in given.accounts)
    return StartingState(portfolio=portfolio, marks=marks)


def _refuse_realized_pnl(path: Path, given: _GivenState) -> None:
    """The engine has no input that seeds an account's realized PnL (it starts at 0 and
    grows with fills), so a figure given here could only be dropped; the loss limits read
    the day's loss from the equity marks, which the file can give."""
    for index, account in enumerate(given.accounts):
        if account.realized_pnl is not None:
            raise UserError(
                f"{path}: accounts[{index}].realized_pnl: not taken: every account starts "
                f"with a realized PnL of 0 (the engine cannot be given one); remove the field, "
                f"and to start from a loss already taken today give day_start_equity above "
                f"equity")


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
        # today's engine behaviour, as a new journal starts with (an engine built from
        # nothing runs the oldest, for replaying journals written before any upgrade)
        EngineUpgrade(ts=ts, behaviour=ENGINE_BEHAVIOUR),
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
    alerts: list[Alert] | None = None,
) -> Iterator[Decision | BadLine]:
    """Decisions for every intent, in file order; bad lines are yielded where they stand so
    the decisions before them are never lost. The alerts the start-up events raise that
    decide every intent to come (a policy refused: `STARTUP_ALERTS`) are added to
    `alerts`."""
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
                for output in engine.handle(event):
                    if (alerts is not None and isinstance(output, Alert)
                            and output.code in STARTUP_ALERTS):
                        alerts.append(output)
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
    inputs = [("the intents file", intents), ("the --policy file", policy_path),
              ("the --state file", state_path), ("the --market file", market_path)]
    if out_path is not None:
        refuse_output(out_path, inputs)
    refuse_non_text(intents)
    state = read_state(state_path) if state_path else None
    market = read_market(market_path) if market_path else []
    kinds: Counter[str] = Counter()
    blocking: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    bad: list[BadLine] = []
    start_alerts: list[Alert] = []
    where = "stdout" if out_path is None else f"--out {out_path}"
    with _decisions_sink(out_path) as sink:
        for result in evaluate_stream(policy, read_intents(intents), state=state,
                                      market=market, alerts=start_alerts):
            if isinstance(result, BadLine):
                bad.append(result)
                if len(bad) <= SHOWN_BAD_LINES:
                    err.print(f"[red]error:[/] {plain(result)}")
                continue
            with _writing(where):
                sink.write(_encoder.encode(result) + b"\n")
                if out_path is None:
                    sink.flush()
            kinds[result.decision.value] += 1
            code = result.blocking or result.would_block
            if code:
                blocking[code] += 1
            # once per decision, however many of its violations share the code
            seen.update({violation.code for violation in result.violations})
    if len(bad) > SHOWN_BAD_LINES:
        err.print(f"[red]error:[/] {len(bad) - SHOWN_BAD_LINES:,} more bad line(s) in "
                  f"{plain(intents)} not shown (the first {SHOWN_BAD_LINES} are)")
    _summary(policy, kinds, blocking, seen)
    for alert in start_alerts:  # after the tables, where it is read
        err.print(f"[bold yellow]warning:[/] {plain(_alert_warning(alert))}", highlight=False)
    if bad:
        decided = sum(kinds.values())
        rest = ("; the other lines were decided" if decided
                else "; no intent was decided")
        raise UserError(f"{len(bad)} bad line(s) in {intents}{rest}")


def _alert_warning(alert: Alert) -> str:
    """A start-up alert as a warning: a policy not in effect yet at the first event is
    refused by the engine, which then has no policy and denies every intent (SYS-005)."""
    if alert.code == POLICY_NOT_EFFECTIVE:
        said = alert.message.removeprefix("activate_policy: ").partition("; keeping ")[0]
        return (f"{said}: the engine refused "
                f"to activate it, so no policy is enforced and every intent is denied "
                f"SYS-005 (it activates a policy only when told to, never later at its "
                f"effective_from; start the file at or after that time)")
    return f"{alert.code}: {alert.message}"


def refuse_output(out_path: Path, inputs: list[tuple[str, Path | None]]) -> None:
    """Refuse, before anything is read or written, an --out that is one of the command's
    own input files (writing would empty it before it is read), a journal or one of its
    files, or a directory."""
    for what, path in inputs:
        if path is not None and _same_file(out_path, path):
            raise UserError(f"--out {out_path}: is {what} ({path}); writing the decisions "
                            f"would destroy it: choose another file")
    for journal in _journals_near(out_path):
        what_of = journal_file_at(f"sqlite:///{journal}", out_path)
        if what_of is not None:
            raise UserError(f"--out {out_path}: is {what_of} ({journal}); eval never writes "
                            f"over a journal: choose another file")
    if out_path.is_dir():
        raise UserError(f"--out {out_path}: cannot write the decisions: Is a directory")


def _same_file(left: Path, right: Path) -> bool:
    try:
        return os.path.samefile(left, right)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(left) == os.path.realpath(right)


_SQLITE_MAGIC = b"SQLite format 3\x00"
_JOURNAL_COMPANIONS = ("-wal", "-shm", "-journal", ".lock", ".head", ".manifest.json")


def _journals_near(path: Path) -> Iterator[str]:
    """The SQLite databases `path` may be or belong to: itself, the file it is a companion
    of (`journal_files`: write-ahead log, head file, manifest...) and the journal whose
    snapshot directory holds it."""
    real = os.path.realpath(path)
    candidates = [real, *(real.removesuffix(suffix) for suffix in _JOURNAL_COMPANIONS
                          if real.endswith(suffix))]
    candidates.extend(str(parent).removesuffix(".snapshots") for parent in Path(real).parents
                      if parent.name.endswith(".snapshots"))
    for candidate in candidates:
        try:
            with open(candidate, "rb") as handle:
                if handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                    yield candidate
        except OSError:
            continue


@contextlib.contextmanager
def _decisions_sink(out_path: Path | None) -> Iterator[BinaryIO]:
    """Where the decisions go. A regular file is written beside the target and renamed into
    place once every line is decided (bad lines included: their error says so), so a run
    that fails (a state file refused, a full disk) leaves an existing file as it was. A
    device or a pipe (/dev/stdout, a FIFO) is written directly."""
    if out_path is None:
        yield sys.stdout.buffer
        return
    where = f"--out {out_path}"
    if out_path.exists() and not out_path.is_file():
        with _writing(where):
            handle = out_path.open("wb")
        try:
            yield handle
            with _writing(where):
                handle.close()
        finally:
            with contextlib.suppress(OSError):
                handle.close()
        return
    with _writing(where):
        descriptor, temporary = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.",
                                                 suffix=".tmp")
    handle = os.fdopen(descriptor, "wb")
    try:
        with _writing(where):
            os.fchmod(descriptor, 0o666 & ~_umask())
        yield handle
        with _writing(where):
            handle.flush()
            os.fsync(descriptor)
            handle.close()
            os.replace(temporary, out_path)
    finally:
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # already gone once renamed into place


@contextlib.contextmanager
def _writing(where: str) -> Iterator[None]:
    """An OSError while writing the decisions, said as the user's problem (exit 1)."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"{where}: cannot write the decisions: {exc.strerror or exc}") from None


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then set back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
