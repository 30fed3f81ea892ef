"""The embedding API: ordergate inside your own Python process.

    from ordergate import Gateway

    with Gateway.open("policy.yaml", journal="sqlite:///og.db") as gateway:
        if not gateway.is_funded("ACC-1"):  # a new journal; a restart keeps its cash
            gateway.fund("ACC-1", "100000")
        gateway.on_market({"symbol": "AAPL", "bid": "189.99", "ask": "190.01", ...})
        decision = gateway.submit({"intent_id": "i-1", "account": "ACC-1", ...})

A `Gateway` is a thin, typed front of the one `Runtime` (journal, engine, dispatcher, broker):
every call becomes one input batch that is journaled, decided, made durable and only then acted
on, exactly as under `ordergate run` or `ordergate serve`. There is no second pipeline.

Threads: the Runtime is a single writer, so a Gateway serialises its callers with a lock.
`AsyncGateway` runs one Gateway on one worker thread and offers the same methods as
coroutines, so an asyncio strategy never blocks its event loop on a journal flush.

Time: intents and market snapshots carry their own timestamps (event time). Operator commands,
account funding and clock ticks are stamped by the gateway's clock: the wall clock by default
(live and paper trading), or with `clock="event"` the latest event time the gateway has seen
(backtests and replays over historical data, where the wall clock would make every quote
look stale), or any callable or `resilience.clock.Clock` (tests drive a `ManualClock`).

Time bound: except with `clock="event"`, a NEW intent stamped more than the policy's
`max_intent_skew` (else 5 s) ahead of the gateway's clock or more than 24 h behind it, and a
market snapshot stamped more than 5 s ahead of it, are refused (`InvalidInput` naming `ts`)
before anything is journaled, as the HTTP service refuses them (`runtime.timebound`). Event
time never goes back: one intent stamped two days ahead would roll the trading day (the daily
loss forgotten, DAY orders canceled) and leave every later intent denied. With
`clock="event"` event time IS the data's time, so a backtest keeps full control of it.

Guard: every call goes through `runtime.health.GuardedRuntime`, as under `ordergate run` and
`ordergate serve`: circuit breakers on the broker and the feed (an open broker_submit circuit
sends nothing and tightens the mode, SYS-007), reconnect probes, clock sync against a broker
with a clock of its own, reconciliation with the broker before the first event and every N
batches, and automatic halts on authentication failures and disconnect storms. The guard's
timers run on the gateway's clock (the wall clock, event time, or the injected one).

Arithmetic: every public method computes in a fixed decimal context (`model.values.STANDARD`,
Decimal's default: 28 digits, half even), set for the call and the caller's own put back
after it, so a program that sets `decimal.getcontext().prec = 6` or traps `Inexact` for its
own figures gets the decisions and the journal `ordergate run` would, and its journal replays
clean. `AsyncGateway` runs those same methods on its worker thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import msgspec
import structlog

from ordergate.brokers.base import BrokerAdapter
from ordergate.engine.status import EngineStatus
from ordergate.journal import Durability, open_journal
from ordergate.model.decision import Decision
from ordergate.model.events import (
    AccountFunding,
    Alert,
    CancelRequest,
    ClockTick,
    Command,
    CommandAction,
    EngineUpgrade,
    InputEvent,
    KillScope,
    OutputEvent,
)
from ordergate.model.intent import OrderIntent, reserved_id_problem, retry_differences
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import (
    InvalidValue,
    control_character_problem,
    describe_error,
    in_standard_arithmetic,
    is_blank,
    require_utc,
    same_person_key,
)
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import Policy, load_policy, parse_policy
from ordergate.resilience.breakers import BreakerSnapshot
from ordergate.resilience.clock import Clock, SystemClock
from ordergate.runtime.health import (
    EventClock,
    GuardedRuntime,
    GuardSettings,
    open_proven,
    settings_for,
)
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.runtime.policy_choice import PolicyChoice, PolicyReplacement
from ordergate.runtime.sources import UPGRADE_REFUSED
from ordergate.runtime.timebound import (
    MAX_TS_AHEAD,
    MAX_TS_BEHIND,
    TimeBound,
    intent_out_of_time,
    snapshot_out_of_time,
)

log = structlog.get_logger("ordergate.gateway")

T = TypeVar("T")

Emitted = InputEvent | OutputEvent
ClockChoice = Literal["wall", "event"] | Callable[[], datetime] | Clock


class InvalidInput(ValueError):
    """An intent, snapshot or argument given to the Gateway is malformed. The message names
    the field (`qty: expected a positive decimal, got '-5'`). Nothing was journaled."""


class GatewayClosed(RuntimeError):
    """The gateway was closed, or stopped taking events because its journal failed (no new
    risk is created until it is reopened on a healthy journal)."""


class CommandOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator command did: the mode after it, every event it caused (mode changes,
    cancels, alerts, broker answers) and the engine's messages in plain words (a refused or
    still-pending command says why here)."""

    mode: Mode
    events: tuple[Emitted, ...]
    messages: tuple[str, ...]


def wall_clock() -> datetime:
    """The shell's wall clock in UTC (the engine itself never reads it)."""
    return datetime.now(UTC)


class CallableClock:
    """A `Clock` over a callable that returns UTC datetimes: durations are measured on the
    same readings, so breakers and probes follow whatever time the callable gives."""

    def __init__(self, read: Callable[[], datetime]) -> None:
        self._read = read
        self._origin: datetime | None = None

    def now(self) -> datetime:
        return self._read()

    def monotonic(self) -> float:
        reading = self._read()
        if self._origin is None or reading < self._origin:
            self._origin = reading
        return (reading - self._origin).total_seconds()


def _is_clock(value: object) -> bool:
    return callable(getattr(value, "now", None)) and callable(getattr(value, "monotonic", None))


def guard_clock(clock: ClockChoice) -> Clock:
    """The clock the guard's breakers, probes and clock checks run on, for a `clock` choice."""
    if clock == "wall":
        return SystemClock()
    if clock == "event":
        return EventClock()
    if _is_clock(clock):
        return clock  # type: ignore[return-value]
    if callable(clock):
        return CallableClock(clock)
    raise InvalidInput(f"clock: expected 'wall', 'event', a callable or a Clock, got {clock!r}")


def _journal_url(journal: str | os.PathLike[str]) -> str:
    text = os.fspath(journal)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def _policy(policy: str | os.PathLike[str] | Policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str | os.PathLike):
        raise InvalidInput(f"policy: expected a policy file path, YAML text or a Policy, "
                           f"got {type(policy).__name__}")
    if isinstance(policy, str) and "\n" in policy:
        return parse_policy(policy, source="<policy text>")
    try:
        return load_policy(policy)
    except PolicyError as exc:
        if isinstance(policy, str) and not os.path.exists(policy):
            # One-line YAML ("{apiVersion: ...}") lands here: say how a string is read.
            raise PolicyError(exc.source, f"{exc.detail} (a policy given as a string without "
                              f"a newline is read as a file path; pass the YAML document "
                              f"itself as text with newlines, or a Policy from "
                              f"ordergate.policy.loader.parse_policy)") from None
        raise


def _replacement(replace_policy: object) -> PolicyReplacement | None:
    """The operator's order to replace the journal's policy, its text checked as an operator
    command's is (both fields are journaled with the activation)."""
    if replace_policy is None:
        return None
    if not isinstance(replace_policy, PolicyReplacement):
        raise InvalidInput(f"replace_policy: expected an ordergate.PolicyReplacement(operator, "
                           f"reason) or None, got {type(replace_policy).__name__}")
    for field in ("operator", "reason"):
        _refuse_lone_surrogates(getattr(replace_policy, field), f"replace_policy.{field}")
        problem = control_character_problem(getattr(replace_policy, field))
        if problem:
            raise InvalidInput(f"replace_policy.{field}: {problem}; journaled text is one line "
                               "of plain words")
    return PolicyReplacement(operator=replace_policy.operator.strip(),
                             reason=replace_policy.reason.strip())


def _durability(durability: Durability | str) -> Durability:
    try:
        return Durability(durability)
    except ValueError:
        choices = ", ".join(repr(item.value) for item in Durability)
        raise InvalidInput(f"durability: expected one of {choices}, "
                           f"got {durability!r}") from None


_BROKER_METHODS = ("submit", "cancel", "open_orders", "positions", "poll_events")


def _broker(broker: object) -> BrokerAdapter:
    missing = [name for name in _BROKER_METHODS if not callable(getattr(broker, name, None))]
    if missing or isinstance(broker, str | bytes | os.PathLike):
        # Only a string is quoted: another object's repr may carry credentials.
        given = f"the string {broker!r:.40}" if isinstance(broker, str) else type(broker).__name__
        raise InvalidInput(f"broker: expected a BrokerAdapter instance such as "
                           f"SimBroker(SimConfig()) (or None for the simulated broker), "
                           f"got {given}")
    return broker  # type: ignore[return-value]


def _reject_floats(data: Mapping[str, Any], what: str) -> None:
    for key, value in data.items():
        if isinstance(value, float):
            raise InvalidInput(f"{what}.{key}: expected a decimal string such as \"{value!r}\", "
                               f"got the float {value!r} (floats are not exact)")


# A problem that names its field: "field qty: ..." (msgspec, via describe_error) or
# "qty: ..." (a value check of the model).
_NAMED_PROBLEM = re.compile(
    r"^(?:field )?(?P<field>[A-Za-z_][A-Za-z0-9_.\[\]]*)(?P<key> \(a key\))?: (?P<problem>.*)$",
    re.DOTALL)


# msgspec's word for a missing field, which names the field at the end, not in front:
# "Object missing required field `qty`" (or "field tags: Object missing ..." when nested).
_MISSING_FIELD = re.compile(
    r"^(?:field (?P<path>[A-Za-z_][A-Za-z0-9_.\[\]]*): )?"
    r"Object missing required field `(?P<field>[^`]+)`$")


def _at(what: str, problem: str) -> str:
    """One form for every input error: `intent.qty: <problem>` when the problem names a field
    (as the float and lone-surrogate checks write it), else `intent: <problem>`."""
    missing = _MISSING_FIELD.match(problem)
    if missing is not None:
        path = ".".join(part for part in (what, missing["path"], missing["field"]) if part)
        return f"{path}: required field missing"
    named = _NAMED_PROBLEM.match(problem)
    if named is None:
        return f"{what}: {problem}"
    return f"{what}.{named['field']}{named['key'] or ''}: {named['problem']}"


def _surrogate_at(value: Any, path: str) -> str | None:
    """The path of the first string holding a lone surrogate, which no UTF-8 (no journal
    record, no JSON) can carry; None if there is none."""
    if isinstance(value, str):
        return path if any("\ud800" <= char <= "\udfff" for char in value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _surrogate_at(key, f"{path}.{key!a}") or _surrogate_at(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _refuse_lone_surrogates(value: Any, what: str) -> None:
    where = _surrogate_at(value, what)
    if where is not None:
        raise InvalidInput(f"{where}: expected text that UTF-8 can encode, got a lone "
                           f"surrogate (a broken UTF-16 pair)")


def _checked(event: T, what: str) -> T:
    """`event` as the journal's decoder would accept it. A struct built in Python skips the
    constraints that only decoding checks (identifier patterns, lengths, tag limits), and a
    lone surrogate in a string fails the journal write: both are refused here, naming the
    field, before anything is journaled."""
    plain = msgspec.to_builtins(event)
    _refuse_lone_surrogates(plain, what)
    try:
        return _own_id(msgspec.convert(plain, type(event)), what)
    except (msgspec.ValidationError, InvalidValue) as exc:
        raise InvalidInput(_at(what, describe_error(exc))) from None


def _own_id(event: T, what: str) -> T:
    """`event`, unless it is an intent whose own client_order_id is reserved for the ids the
    engine derives (`model.intent.reserved_id_problem`) or an engine upgrade (the runtime's
    own input, as in an events file: `runtime.sources.new_event`): then InvalidInput."""
    if isinstance(event, OrderIntent):
        problem = reserved_id_problem(event)
        if problem is not None:
            raise InvalidInput(f"{what}.client_order_id: {problem}")
    elif isinstance(event, EngineUpgrade):
        raise InvalidInput(f"{what}: {UPGRADE_REFUSED}")
    return event


def _built(kind: Callable[..., T], what: str, **fields: Any) -> T:
    """`kind(**fields)`, its own value checks (range, sign, UTC) reported as `InvalidInput`."""
    try:
        return kind(**fields)
    except InvalidValue as exc:
        raise InvalidInput(_at(what, str(exc))) from None


def _convert(data: OrderIntent | MarketSnapshot | Mapping[str, Any], kind: type[T], what: str,
             now: Callable[[], datetime]) -> T:
    if isinstance(data, kind):
        return _checked(data, what)
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{what}: expected a {kind.__name__} or a dict, "
                           f"got {type(data).__name__}")
    _reject_floats(data, what)
    fields = dict(data)
    fields.pop("type", None)
    if "ts" not in fields:
        fields["ts"] = now()
    _refuse_lone_surrogates(fields, what)
    try:
        converted = msgspec.convert(fields, kind)
    except (msgspec.ValidationError, InvalidValue) as exc:
        raise InvalidInput(_at(what, describe_error(exc))) from None
    return _own_id(converted, what)


def _input_event(event: object, what: str) -> InputEvent:
    if not isinstance(event, InputEvent):
        raise InvalidInput(f"{what}: expected an input event (an OrderIntent, MarketSnapshot, "
                           f"CancelRequest, Command, ClockTick, AccountFunding...), got "
                           f"{type(event).__name__}; build the event, or pass an intent or "
                           f"snapshot dict to submit() or on_market()")
    return event


def _start_reading(clock: Clock) -> datetime | None:
    """The clock's time at start-up, or None when it is not a UTC datetime (the first call
    that stamps an event names the clock's fault)."""
    try:
        return _utc_reading(clock.now())
    except InvalidInput:
        return None


def _logs_to_stderr() -> None:
    """ordergate logs through structlog, which prints to stdout until a program configures
    it: a bot that writes its own output (JSON lines, say) to stdout would find ordergate's
    log lines in it. So when the embedding program has not configured structlog, its logs go
    to stderr; a program that configured structlog keeps its own choice."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _utc_reading(now: object) -> datetime:
    """What an injected clock returned, if it is a UTC datetime; else InvalidInput."""
    if not isinstance(now, datetime):
        raise InvalidInput(f"clock: expected the clock to return a UTC datetime, got "
                           f"{type(now).__name__} {now!r:.60}")
    try:
        return require_utc("clock", now)
    except InvalidValue as exc:
        raise InvalidInput(f"{exc} (the gateway's injected clock must return UTC, e.g. "
                           "datetime.now(UTC))") from None


def _rfc3339(stamp: datetime) -> str:
    return stamp.isoformat().replace("+00:00", "Z")


def _decimal(value: Decimal | str | int, field: str) -> Decimal:
    if isinstance(value, float):
        raise InvalidInput(f"{field}: expected a decimal string, got the float {value!r}")
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise InvalidInput(f"{field}: expected a decimal string such as '100000', "
                           f"got {type(value).__name__} {value!r:.60}")
    try:
        result = Decimal(value)
    except ArithmeticError:
        raise InvalidInput(f"{field}: expected a decimal, got {value!r}") from None
    if not result.is_finite():
        raise InvalidInput(f"{field}: expected a finite decimal, got {value!r}")
    return result


class Gateway:
    """ordergate embedded in a Python process. Open one with `Gateway.open(...)`; use it as a
    context manager or call `close()`."""

    def __init__(self, runtime: Runtime | GuardedRuntime, *, clock: ClockChoice = "wall",
                 guard: GuardSettings | None = None) -> None:
        """Front a recovered runtime. A bare `Runtime` is guarded here, on `clock`, with
        `guard` settings (defaults: `runtime.health.settings_for` its broker)."""
        if isinstance(runtime, GuardedRuntime):
            self._guard = runtime
        else:
            self._guard = GuardedRuntime(runtime, guard_clock(clock),
                                         settings_for(runtime.broker, guard))
        self._runtime = self._guard.runtime
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        state = self._runtime.engine.state
        self._last_ts: datetime | None = state.now if state.started else None

    @classmethod
    @in_standard_arithmetic
    def open(cls, policy: str | os.PathLike[str] | Policy,
             journal: str | os.PathLike[str] = "sqlite:///ordergate.db",
             broker: BrokerAdapter | None = None,
             durability: Durability | str = Durability.BATCH, *,
             clock: ClockChoice = "wall", run_id: str | None = None,
             guard: GuardSettings | None = None,
             replace_policy: PolicyReplacement | None = None) -> Gateway:
        """Open (or recover) a gateway.

        `policy`: a policy file path, YAML text (anything with a newline), or a `Policy`.
        `journal`: a journal URL (`sqlite:///path.db`, `postgresql://...`) or a file path.
        `broker`: any `BrokerAdapter`; default the deterministic `SimBroker` (paper).
        `durability`: `batch` (one flush per call, the default), `always` or `none`.
        `clock`: `"wall"`, `"event"`, a callable returning a UTC datetime, or a
        `resilience.clock.Clock`; stamps operator commands, funding and ticks that are given
        no `ts`, and runs the guard's breakers, probes and clock checks.
        `guard`: breaker, probe, clock-sync and reconciliation settings (`GuardSettings`).
        `replace_policy`: on a journal that enforces another policy, enforce `policy`
        instead, journaled as this operator's activation with this reason. Without it the
        journal's policy stays enforced (`policy` is then not applied; a warning says so and
        `policy_choice` tells). A replacement not in effect yet at the clock's time (its
        `effective_from` is later) raises `PolicyChoiceError` (`PolicyNotInEffect`): the
        engine would refuse it. On
        the event clock the engine judges it at the first event; if it refuses,
        `policy_choice` says so (outcome `refused`) and `policy` stays the journal's.

        On an existing journal this verifies its hash chain (`StartRefused` when it does not
        hold) and replays it (crash recovery): positions, open orders and the mode are exactly
        what they were. Raises `PolicyError` (names file, line and field) or `JournalError`.
        """
        _logs_to_stderr()
        loaded = _policy(policy)
        chosen_durability = _durability(durability)
        replacement = _replacement(replace_policy)
        if broker is None:
            from ordergate.brokers.sim import SimBroker, SimConfig

            broker = SimBroker(SimConfig())
        broker = _broker(broker)
        settings = settings_for(broker, guard)
        url = _journal_url(journal)
        guard_time = guard_clock(clock)
        # Events are stamped near this clock's time, unless they bring their own (event time).
        start_time = None if clock == "event" else _start_reading(guard_time)
        handle = open_journal(url, durability=chosen_durability, run_id=run_id)
        if settings.verify_journal_on_start:
            # Checked in this process: a second one would import the embedding program's main
            # module again, and an embedding script need not guard its entry point.
            runtime = open_proven(handle, None, lambda on_replayed: Runtime.open_on(
                handle, loaded, broker, replace_policy=replacement, on_replayed=on_replayed,
                start_time=start_time))
        else:
            runtime = Runtime.open_on(handle, loaded, broker, replace_policy=replacement,
                                      start_time=start_time)
        gateway = cls(GuardedRuntime(runtime, guard_time, settings), clock=clock)
        enforced = runtime.deciding_policy
        log.info("gateway_opened", run_id=runtime.journal.run_id,
                 policy=enforced.name if enforced is not None else "",
                 policy_hash=enforced.hash if enforced is not None else "",
                 no_policy=runtime.policy_not_in_effect, broker=broker.name)
        return gateway

    # ------------------------------------------------------------------ properties

    @property
    def run_id(self) -> str:
        """This process's id in every journal record it writes."""
        return self._runtime.journal.run_id

    @property
    def policy(self) -> Policy | None:
        """The policy the engine enforces (the one the next call is judged under), or None
        when none is in effect: every intent is then denied (SYS-005). See `policy_choice`
        for what start-up decided about the given policy."""
        return self._runtime.deciding_policy

    @property
    def policy_choice(self) -> PolicyChoice | None:
        """What start-up decided about the given policy: new journal, same as the journal's,
        the journal's kept (the given one not applied), replaced by an operator, or refused
        by the engine (`refusal` says why)."""
        return self._runtime.policy_choice

    @property
    def broker(self) -> BrokerAdapter:
        return self._runtime.broker

    @property
    def mode(self) -> Mode:
        return self._runtime.engine.state.mode

    @in_standard_arithmetic
    def breakers(self) -> list[BreakerSnapshot]:
        """Every circuit breaker's state (broker_submit, broker_reads, clock, feeds)."""
        with self._lock:
            return self._guard.breakers()

    @property
    def event_time(self) -> datetime | None:
        """The latest event time the gateway has processed (None before the first event)."""
        return self._last_ts

    # ------------------------------------------------------------------ inputs

    @in_standard_arithmetic
    def submit(self, intent: OrderIntent | Mapping[str, Any]) -> Decision:
        """Decide one intent: ALLOW, DENY or MODIFY with every violated rule. An allowed intent
        is journaled and sent to the broker before this returns. Idempotent on `intent_id`: a
        retry returns the original decision and never sends a second order. A dict without
        `ts` is stamped with the gateway's clock.

        Unless the clock is `"event"`, a new intent stamped outside the time bound (see the
        module's "Time bound") raises `InvalidInput` naming `ts` and journals nothing; a retry
        of an intent already decided gets its original decision whatever its `ts` (one
        stamped outside the bound is answered from the engine's memory, unjournaled, so its
        `ts` moves no clock)."""
        order = _convert(intent, OrderIntent, "intent", self._now)
        emitted, recalled = self._admitted([order], ["intent"])
        if recalled:
            return recalled[0]
        for item in emitted:
            if isinstance(item, Decision) and item.intent_id == order.intent_id:
                return item
        raise GatewayClosed(f"intent {order.intent_id}: the engine gave no decision")

    @in_standard_arithmetic
    def submit_many(self, intents: Sequence[OrderIntent | Mapping[str, Any]]) -> list[Decision]:
        """Decide several intents as one batch (one journal flush); decisions in input order.

        The time bound is checked for the whole batch first, as the HTTP API does: if any new
        intent is stamped outside it, `InvalidInput` names it (`intents[2].ts: ...`) and none
        of the batch is journaled or decided, so resend the batch with that one fixed."""
        names = [f"intents[{index}]" for index in range(len(intents))]
        orders = [_convert(item, OrderIntent, name, self._now)
                  for name, item in zip(names, intents, strict=True)]
        emitted, recalled = self._admitted(orders, names)
        # The engine emits one decision per intent, in input order; an intent_id repeated in
        # the batch gets its own decision (the second may be DUP-003), so match in order, not
        # by id.
        decisions = iter(item for item in emitted if isinstance(item, Decision))
        matched = []
        for position, order in enumerate(orders):
            if position in recalled:
                matched.append(recalled[position])
                continue
            found = next((item for item in decisions if item.intent_id == order.intent_id), None)
            if found is None:
                raise GatewayClosed(f"intent {order.intent_id}: the engine gave no decision")
            matched.append(found)
        return matched

    @in_standard_arithmetic
    def on_market(self, snapshot: MarketSnapshot | Mapping[str, Any]) -> list[Emitted]:
        """Feed one market snapshot. Returns what it caused (fills at a simulated broker,
        mode changes on bad or stale data, drawdown alerts...). Unless the clock is `"event"`,
        a snapshot stamped more than 5 s ahead of the gateway's clock raises `InvalidInput`
        naming `ts` and journals nothing (an old one is harmless: ignored when older than the
        symbol's latest)."""
        event = _convert(snapshot, MarketSnapshot, "market", self._now)
        return self._admitted([event], ["market"])[0]

    @in_standard_arithmetic
    def fund(self, account: str, cash: Decimal | str | int, *,
             ts: datetime | str | None = None, again: bool = False) -> list[Emitted]:
        """Fund an account: set its cash; loss and drawdown limits start from it.

        Once. An account this journal has funded already (`is_funded`) is refused with
        `InvalidInput`, journaling nothing: a program that funds at start-up would otherwise,
        on every restart, put its starting cash back beside the positions that cash bought
        (equity that is not there, and a loss limit that no longer binds). Fund only a new
        journal (`if not gateway.is_funded(account)`), or pass `again=True` to set the cash
        on purpose (a balance sync with the broker, a deposit or a withdrawal): the cash
        becomes exactly the figure given, and the positions are kept.

        A `ts` earlier than the gateway's event time is refused too (`InvalidInput` naming
        `ts`): event time never goes back, so funding stamped in the past would be applied
        now as if it were current (a start-up script's fixed timestamp, run again)."""
        if not isinstance(again, bool):
            raise InvalidInput(f"again: expected True or False, got {type(again).__name__} "
                               f"{again!r:.60}")
        stamp = self._stamp(ts)
        event = _checked(_built(AccountFunding, "funding", ts=stamp, account=account,
                                cash=_decimal(cash, "cash")), "funding")
        with self._lock:
            self._check_open()
            self._refuse_funding(event, again=again, stamped=ts is not None)
            return self._process([event])

    def is_funded(self, account: str) -> bool:
        """Whether this journal has funded `account` (by `fund`, or an `account` event of a
        feed or a state file). A program that funds at start-up asks this first, so that a
        restart on the same journal keeps the account's cash, day's loss and drawdown."""
        with self._lock:
            record = self._runtime.engine.state.accounts.get(account)
            return record is not None and record.funded

    def _refuse_funding(self, event: AccountFunding, *, again: bool, stamped: bool) -> None:
        """`InvalidInput` for a funding `fund` must not journal: a second funding not asked
        for with `again`, or one stamped (`stamped`: by the caller) before event time."""
        account, last = event.account, self._last_ts
        record = self._runtime.engine.state.accounts.get(account)
        if record is not None and record.funded and not again:
            when = f" before event time {_rfc3339(last)}" if last is not None else ""
            raise InvalidInput(
                f"funding.account: {account} is already funded in this journal{when} (cash "
                f"now {record.cash}, equity {record.equity}); funding it again would put that "
                f"cash back beside the positions it bought (equity that is not there). Fund "
                f"only a new journal (`if not gateway.is_funded({account!r}): ...`), or, to "
                f"set its cash on purpose (a balance sync or a deposit), call "
                f"fund({account!r}, cash, again=True): the cash becomes the figure given")
        if stamped and last is not None and event.ts < last:
            raise InvalidInput(
                f"funding.ts: {_rfc3339(event.ts)} is before the gateway's event time "
                f"({_rfc3339(last)}), and event time never goes back: funding stamped in the "
                f"past would be applied now as if current. Stamp it at or after the event "
                f"time, or leave ts out to use the gateway's clock")

    @in_standard_arithmetic
    def cancel(self, client_order_id: str, account: str, *, requested_by: str = "",
               ts: datetime | str | None = None) -> list[Emitted]:
        """Ask to cancel a working order."""
        event = CancelRequest(ts=self._stamp(ts), client_order_id=client_order_id,
                              account=account, requested_by=requested_by)
        return self._process([_checked(event, "cancel")])

    @in_standard_arithmetic
    def tick(self, ts: datetime | str | None = None) -> list[Emitted]:
        """Advance event time with no other event (timers, data staleness, broker polling)."""
        return self._process([ClockTick(ts=self._stamp(ts))])

    @in_standard_arithmetic
    def process(self, events: Sequence[InputEvent]) -> list[Emitted]:
        """Any input events as one batch; returns everything the batch journaled after them.
        Each is checked as the journal's decoder checks it (`InvalidInput` names the event and
        its field; nothing of the batch is journaled then), and its intents and snapshots are
        held to the time bound as `submit_many` and `on_market` hold them. A retry of a
        decided intent stamped outside the bound is not sent again: its original decision
        comes first in the returned events."""
        names = [f"events[{index}]" for index in range(len(events))]
        checked = [_checked(_input_event(event, name), name)
                   for name, event in zip(names, events, strict=True)]
        emitted, recalled = self._admitted(checked, names)
        return [*recalled.values(), *emitted]

    # ------------------------------------------------------------------ operator commands

    @in_standard_arithmetic
    def halt(self, operator: str, reason: str, cancel_all: bool = False, *,
             ts: datetime | str | None = None) -> CommandOutcome:
        """Stop all new risk (HALTED): only cancels and an operator-ordered flatten pass.
        `cancel_all` also cancels every working order."""
        return self._command(CommandAction.HALT, operator, reason, ts, cancel_all=cancel_all)

    @in_standard_arithmetic
    def reduce_only(self, operator: str, reason: str, *,
                    ts: datetime | str | None = None) -> CommandOutcome:
        """Only orders that shrink an existing position pass (REDUCE_ONLY)."""
        return self._command(CommandAction.REDUCE_ONLY, operator, reason, ts)

    @in_standard_arithmetic
    def resume(self, operator: str, reason: str, *,
               ts: datetime | str | None = None) -> CommandOutcome:
        """Clear operator-set and latched reasons. After a drawdown halt a policy with
        `engine.resume_requires_two_operators` needs this from two different operators:
        the first call records the approval and the mode stays HALTED."""
        return self._command(CommandAction.RESUME, operator, reason, ts)

    @in_standard_arithmetic
    def kill(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
             key: str = "", cancel_all: bool = False,
             ts: datetime | str | None = None) -> CommandOutcome:
        """Engage a kill switch for the firm, an account, a strategy or a symbol."""
        return self._command(CommandAction.KILL, operator, reason, ts, scope=scope, key=key,
                             cancel_all=cancel_all)

    @in_standard_arithmetic
    def unkill(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
               key: str = "", ts: datetime | str | None = None) -> CommandOutcome:
        """Release a kill switch."""
        return self._command(CommandAction.UNKILL, operator, reason, ts, scope=scope, key=key)

    @in_standard_arithmetic
    def flatten(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
                key: str = "", ts: datetime | str | None = None) -> CommandOutcome:
        """Cancel working orders and close every position in scope with reduce-only market
        orders (allowed in any mode: it only removes risk)."""
        return self._command(CommandAction.FLATTEN, operator, reason, ts, scope=scope, key=key)

    def _command(self, action: CommandAction, operator: str, reason: str,
                 ts: datetime | str | None, **fields: Any) -> CommandOutcome:
        named = (("operator", operator), ("reason", reason), ("key", fields.get("key", "")))
        for field, text in named:
            if not isinstance(text, str):
                raise InvalidInput(f"{field}: expected text, got {type(text).__name__} "
                                   f"{text!r:.60}")
            problem = control_character_problem(text)
            if problem:
                raise InvalidInput(f"{field}: {problem}; journaled text is one line of plain words")
        if is_blank(operator):
            raise InvalidInput("operator: required (who gives the command; it is journaled)")
        if is_blank(reason):
            raise InvalidInput("reason: required (why, in plain words; it is journaled)")
        command = _checked(Command(ts=self._stamp(ts), action=action, operator=operator.strip(),
                                   reason=reason.strip(), **fields), "command")
        with self._lock:
            if action is CommandAction.RESUME:
                self._refuse_same_approver(command.operator)
            log.info("operator_command", action=action.value, operator=command.operator,
                     run_id=self.run_id)
            emitted = self._process([command])
        messages = tuple(item.message for item in emitted if isinstance(item, Alert))
        return CommandOutcome(mode=self.mode, events=tuple(emitted), messages=messages)

    def _refuse_same_approver(self, operator: str) -> None:
        """A resume that would complete a two-operator resume under the first approver's id
        written another way ("alice", then "Alice"). The engine compares ids exactly (journals
        already written replay that way), so the lookalike is refused here, unjournaled."""
        engine = self._runtime.engine
        guard = engine.state.guard
        first = guard.first_resume_operator
        if not (first and engine.settings.resume_requires_two_operators
                and guard.has_code("LOS-003")):
            return
        if operator != first and same_person_key(operator) == same_person_key(first):
            raise InvalidInput(f"operator: {operator!r} is {first!r}, who already approved this "
                               f"resume, written another way; a resume after a drawdown halt "
                               f"needs a second, different operator")

    # ------------------------------------------------------------------ reads and lifecycle

    @in_standard_arithmetic
    def status(self) -> EngineStatus:
        """Mode and its reasons, positions, working orders, accounts with PnL and exposure,
        kill switches and the active policy."""
        with self._lock:
            return self._runtime.status()  # type: ignore[no-any-return]

    @in_standard_arithmetic
    def snapshot(self) -> None:
        """Save the engine state now so the next start replays less of the journal."""
        with self._lock:
            self._check_open()
            self._runtime.snapshot()

    @in_standard_arithmetic
    def close(self) -> None:
        """Flush and close the journal. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._guard.close()
            log.info("gateway_closed", run_id=self.run_id)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _stamp(self, ts: datetime | str | None) -> datetime:
        """`ts` as a UTC datetime (a datetime or an RFC 3339 string), or the clock's now."""
        if ts is None:
            return self._now()
        try:
            stamp = msgspec.convert(ts, datetime)
            require_utc("ts", stamp)
        except (msgspec.ValidationError, InvalidValue) as exc:
            raise InvalidInput(f"ts: expected an RFC 3339 UTC timestamp, got {ts!r} "
                               f"({exc})") from None
        return stamp

    def _now(self) -> datetime:
        clock = self._clock
        if clock == "wall":
            return wall_clock()
        if clock == "event":
            if self._last_ts is None:
                raise InvalidInput("ts: required before the first event when clock='event' "
                                   "(nothing has set the event time yet)")
            return self._last_ts
        if _is_clock(clock):
            return _utc_reading(clock.now())  # type: ignore[union-attr]
        if callable(clock):
            return _utc_reading(clock())
        raise InvalidInput(f"clock: expected 'wall', 'event', a callable or a Clock, "
                           f"got {clock!r}")

    def _admitted(self, events: Sequence[InputEvent], names: Sequence[str],
                  ) -> tuple[list[Emitted], dict[int, Decision]]:
        """`events` through the time bound, then processed as one batch: what the batch
        emitted, and the original decisions of retries left out of it (by position)."""
        with self._lock:
            self._check_open()
            batch, recalled = self._time_bound(events, names)
            return (self._process(batch) if batch else []), recalled

    def _time_bound(self, events: Sequence[InputEvent], names: Sequence[str],
                    ) -> tuple[list[InputEvent], dict[int, Decision]]:
        """The events to journal, and the retries answered from the engine's memory instead.

        Raises `InvalidInput` for the first new intent or snapshot stamped outside the bound
        (see the module's "Time bound"), so nothing of the batch is journaled. With
        `clock="event"` nothing is bounded: event time is the data's. A retry of an intent
        already decided is never refused, as under the HTTP bridge: within the bound it goes
        to the engine as ever (which answers the original decision); outside it, it is
        answered here and left out of the batch, so that its `ts` moves no clock."""
        if self._clock == "event":
            return list(events), {}
        now = self._now()
        bound = TimeBound(now=now, ahead=MAX_TS_AHEAD, behind=MAX_TS_BEHIND)
        engine = self._runtime.engine
        batch: list[InputEvent] = []
        recalled: dict[int, Decision] = {}
        for position, (event, name) in enumerate(zip(events, names, strict=True)):
            if isinstance(event, MarketSnapshot):
                problem = snapshot_out_of_time(event.ts, now, owner="gateway")
            elif isinstance(event, OrderIntent):
                key = (event.account, event.strategy, event.intent_id)
                policy = self._runtime.deciding_policy
                skew = None if policy is None else policy.limits_for(
                    event.account, event.strategy, event.symbol).max_intent_skew
                problem = intent_out_of_time(event.ts, bound, skew, owner="gateway")
                earlier = engine.state.decided_intents.get(key)
                decided = engine.state.decided.get(key)
                if (problem and earlier is not None and decided is not None
                        and not retry_differences(earlier, event)):
                    recalled[position] = decided
                    continue
            else:
                problem = None
            if problem:
                raise InvalidInput(f"{name}.ts: {problem}")
            batch.append(event)
        return batch, recalled

    def _check_open(self) -> None:
        if self._closed:
            raise GatewayClosed("the gateway is closed")
        if self._runtime.stopped:
            raise GatewayClosed(self._runtime.stopped)

    def _process(self, events: Sequence[InputEvent]) -> list[Emitted]:
        from ordergate.runtime.loop import RuntimeStopped

        with self._lock:
            self._check_open()
            batch = list(events)
            try:
                report = self._guarded(batch)
            except RuntimeStopped as exc:
                raise GatewayClosed(str(exc)) from exc
            for event in events:
                if self._last_ts is None or event.ts > self._last_ts:
                    self._last_ts = event.ts
            return report.emitted

    def _guarded(self, batch: list[InputEvent]) -> BatchReport:
        """The batch through the guard; its start-up reconciliation first, before the first
        batch, at that batch's time."""
        guard = self._guard
        if not batch:
            return BatchReport()
        if not guard.started:
            state = self._runtime.engine.state
            first = batch[0].ts
            started = guard.start(max(first, state.now) if state.started else first)
            report = guard.process(batch)
            report.emitted[:0] = started.emitted
            report.inputs += started.inputs
            return report
        return guard.process(batch)


class AsyncGateway:
    """A Gateway for asyncio code: the gateway lives on ONE worker thread and every method is
    a coroutine, so journal flushes and broker calls never block the event loop.

        async with await AsyncGateway.open("policy.yaml") as gateway:
            decision = await gateway.submit(intent)
    """

    def __init__(self, gateway: Gateway, executor: ThreadPoolExecutor) -> None:
        self._gateway = gateway
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(cls, policy: str | os.PathLike[str] | Policy,
                   journal: str | os.PathLike[str] = "sqlite:///ordergate.db",
                   broker: BrokerAdapter | None = None,
                   durability: Durability | str = Durability.BATCH, *,
                   clock: ClockChoice = "wall", run_id: str | None = None,
                   guard: GuardSettings | None = None,
                   replace_policy: PolicyReplacement | None = None) -> AsyncGateway:
        """Like `Gateway.open`, with the recovery run on the worker thread."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ordergate-gateway")
        loop = asyncio.get_running_loop()
        try:
            gateway = await loop.run_in_executor(
                executor, lambda: Gateway.open(policy, journal, broker, durability, clock=clock,
                                               run_id=run_id, guard=guard,
                                               replace_policy=replace_policy))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(gateway, executor)

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise GatewayClosed("the gateway is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def gateway(self) -> Gateway:
        """The synchronous gateway (call it only from the worker thread, via `run`)."""
        return self._gateway

    @property
    def run_id(self) -> str:
        return self._gateway.run_id

    async def run(self, fn: Callable[[Gateway], T]) -> T:
        """Run `fn(gateway)` on the worker thread."""
        return await self._call(lambda: fn(self._gateway))

    async def submit(self, intent: OrderIntent | Mapping[str, Any]) -> Decision:
        return await self._call(lambda: self._gateway.submit(intent))

    async def submit_many(self, intents: Sequence[OrderIntent | Mapping[str, Any]]
                          ) -> list[Decision]:
        return await self._call(lambda: self._gateway.submit_many(intents))

    async def on_market(self, snapshot: MarketSnapshot | Mapping[str, Any]) -> list[Emitted]:
        return await self._call(lambda: self._gateway.on_market(snapshot))

    async def fund(self, account: str, cash: Decimal | str | int, *,
                   ts: datetime | str | None = None, again: bool = False) -> list[Emitted]:
        return await self._call(lambda: self._gateway.fund(account, cash, ts=ts, again=again))

    async def is_funded(self, account: str) -> bool:
        return await self._call(lambda: self._gateway.is_funded(account))

    async def tick(self, ts: datetime | str | None = None) -> list[Emitted]:
        return await self._call(lambda: self._gateway.tick(ts))

    async def status(self) -> EngineStatus:
        return await self._call(self._gateway.status)

    async def breakers(self) -> list[BreakerSnapshot]:
        return await self._call(self._gateway.breakers)

    async def cancel(self, client_order_id: str, account: str, *, requested_by: str = "",
                     ts: datetime | str | None = None) -> list[Emitted]:
        return await self._call(lambda: self._gateway.cancel(
            client_order_id, account, requested_by=requested_by, ts=ts))

    async def halt(self, operator: str, reason: str, cancel_all: bool = False, *,
                   ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.halt(operator, reason, cancel_all, ts=ts))

    async def reduce_only(self, operator: str, reason: str, *,
                          ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.reduce_only(operator, reason, ts=ts))

    async def resume(self, operator: str, reason: str, *,
                     ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.resume(operator, reason, ts=ts))

    async def kill(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
                   key: str = "", cancel_all: bool = False,
                   ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.kill(
            operator, reason, scope=scope, key=key, cancel_all=cancel_all, ts=ts))

    async def unkill(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
                     key: str = "", ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.unkill(
            operator, reason, scope=scope, key=key, ts=ts))

    async def flatten(self, operator: str, reason: str, *, scope: KillScope = KillScope.FIRM,
                      key: str = "", ts: datetime | str | None = None) -> CommandOutcome:
        return await self._call(lambda: self._gateway.flatten(
            operator, reason, scope=scope, key=key, ts=ts))

    async def process(self, events: Sequence[InputEvent]) -> list[Emitted]:
        return await self._call(lambda: self._gateway.process(events))

    async def snapshot(self) -> None:
        await self._call(self._gateway.snapshot)

    async def close(self) -> None:
        """Flush and close the journal, then stop the worker thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor,
                                                             self._gateway.close)
        finally:
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncGateway:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
