"""The engine: `handle(event) -> outputs`, a pure function of (state, event).

No wall clock, I/O or randomness: time is the event's timestamp, and every output order
comes from insertion-ordered dicts or explicit sorting, never from iterating a set. Feeding
two engines the same events gives byte-identical outputs; so does restoring a snapshot and
feeding the rest.

This module holds the dispatch on event type, policies, intents, market data, time and
dependencies. Broker callbacks and cancel requests are in `engine.lifecycle`, operator
commands in `engine.commands`, snapshots in `engine.image`, the status view in
`engine.status`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, getcontext, setcontext

import msgspec
import structlog

from ordergate.engine import commands, lifecycle
from ordergate.engine.calendar import CalendarUnavailable, next_roll, open_since, resolved
from ordergate.engine.ids import derive_client_order_id
from ordergate.engine.image import apply_image, encode_image
from ordergate.engine.modes import Condition, fault_mode
from ordergate.engine.records import AccountRecord, OrderRecord, resting_price
from ordergate.engine.state import (
    ENGINE_BEHAVIOUR,
    EngineState,
    EngineTooNew,
    OrderIdInUse,
    too_new,
)
from ordergate.engine.status import EngineStatus, build_status
from ordergate.engine.windows import WindowKind
from ordergate.gate.context import RuleContext, fingerprint
from ordergate.gate.evaluate import decide, precision_denial
from ordergate.gate.explain import LimitsDigests, explain
from ordergate.gate.plan import PlanCache
from ordergate.gate.rules.sanity import resting_text
from ordergate.gate.view import RateScope
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import (
    AccountFunding,
    Alert,
    AlertSeverity,
    CancelOrder,
    CancelRefused,
    CancelRequest,
    ClockTick,
    Command,
    DecisionContext,
    DecisionRecord,
    DependencyStatus,
    Dispatch,
    EngineUpgrade,
    Fill,
    FirmRateLimited,
    FirmState,
    InputEvent,
    LimitsRecord,
    ModeChanged,
    OrderAck,
    OrderCanceled,
    OrderReject,
    OutputEvent,
    PolicyDocument,
    PositionSeed,
    ShadowDecision,
)
from ordergate.model.intent import OrderIntent, OrderType, retry_differences
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY, REPORTED, Family
from ordergate.model.values import EXACT, ZERO
from ordergate.policy import EngineSettings, Policy, PolicyError
from ordergate.policy.limits import ResolvedLimits, SelfMatch, TradingSessions
from ordergate.policy.spec import Limits, Throttle, parse_duration

CENT = Decimal("0.01")
log = structlog.get_logger(__name__)


# Rounding to the cent keeps at most Decimal's 28 digits: 25 before the point, 2 after.
_CENTS_MAX_ADJUSTED = 25


def _cents(amount: Decimal) -> Decimal:
    """Money as people read it in a reason (the exact values stay in the state and records).
    A figure too large to show to the cent in 28 digits is shown as it is: `quantize` would
    raise on it, and this only words an alert."""
    if amount.adjusted() > _CENTS_MAX_ADJUSTED:
        return amount
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _day(epoch_seconds: int) -> str:
    """The UTC date of a session bound (`TradingSessions` epoch seconds)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).date().isoformat()


def _marks_moved(given_day_start: Decimal | None, given_high: Decimal | None) -> str:
    """What an account event for a funded account did to its equity marks, in words."""
    if given_day_start is None and given_high is None:
        return "day-start equity and high-water mark moved by the same amount"
    if given_day_start is not None and given_high is not None:
        return "day-start equity and high-water mark set as the event gives them"
    if given_day_start is not None:
        return ("day-start equity set as the event gives it, high-water mark moved by the "
                "same amount")
    return ("day-start equity moved by the same amount, high-water mark set as the event "
            "gives it")


DEFAULT_SETTINGS = EngineSettings()
HUNDRED = Decimal(100)

# Alert codes that are not reason codes: what the engine refused or noticed.
POLICY_REJECTED = "POLICY_REJECTED"
POLICY_ACTIVATED = "POLICY_ACTIVATED"
POLICY_UNKNOWN = "POLICY_UNKNOWN"
POLICY_SHADOW = "POLICY_SHADOW"
POLICY_NOT_EFFECTIVE = "POLICY_NOT_EFFECTIVE"
# a funded account's cash moved by an account event (behaviour 5 on: `Engine._refunding`)
ACCOUNT_CASH = "ACCOUNT_CASH"

# The mode condition an event that could not be handled raises (`Engine._quarantine`).
_UNHANDLED = "engine:unhandled_input"
_INVARIANT = "SYS-008"
_REUSED = "DUP-003"
# the counter that marks a monitor-mode drawdown kill said (`Engine._drawdown_would_halt`)
_DRAWDOWN_WOULD_HALT = "drawdown_would_halt"
# The firm limits store's dependency (`runtime.firm.REDIS_DEPENDENCY`, which the engine may
# not import): found whole again it answers, but what it lost is not back (`_answered_words`).
FIRM_STORE_DEPENDENCY = "redis"
_ORDER_SCOPES = (
    (RateScope.GLOBAL, WindowKind.GLOBAL, "rate_global"),
    (RateScope.ACCOUNT, WindowKind.ACCOUNT, "rate_account"),
    (RateScope.STRATEGY, WindowKind.STRATEGY, "rate_strategy"),
    (RateScope.SYMBOL, WindowKind.SYMBOL, "rate_symbol"),
)
_GLOBAL_WINDOW, _ACCOUNT_WINDOW, _STRATEGY_WINDOW, _SYMBOL_WINDOW = (
    kind for _, kind, _ in _ORDER_SCOPES
)
# counter names per decision kind, built once (reading `.value` off an Enum is a Python call)
_DECISION_COUNTERS = {kind: f"decision:{kind.value}" for kind in DecisionKind}
_WINDOW_FIELDS = (
    *((kind, name) for _, kind, name in _ORDER_SCOPES),
    (WindowKind.CANCEL, "cancel_rate"),
    (WindowKind.FILL, "repeated_execution"),
)


def _longest_windows(policy: Policy) -> dict[WindowKind, timedelta]:
    """The longest window each series kind can be asked about under a policy, so the
    series keep enough history from the moment the policy is active."""
    spec = policy.spec
    sections: list[Limits] = [
        spec.defaults, *spec.accounts.values(), *spec.strategies.values(),
        *spec.symbols.values(),
    ]
    longest: dict[WindowKind, timedelta] = {}
    for section in sections:
        for kind, name in _WINDOW_FIELDS:
            throttle = getattr(section, name)
            if isinstance(throttle, Throttle):
                window = parse_duration(throttle.window)
                longest[kind] = max(window, longest.get(kind, window))
    return longest


class Engine:
    """The deterministic state machine. Single-threaded: one caller at a time."""

    def __init__(self) -> None:
        self.state = EngineState()
        self.policies: dict[str, Policy] = {}
        self.active: Policy | None = None
        # judged beside the active policy for every intent, never enforced (a dry run)
        self.shadow: Policy | None = None
        self.limits_digests = LimitsDigests()
        self.plans = PlanCache()
        # derived from the active policy, never part of the state (see `_drawdown_kill_pct`)
        self._drawdown_policy: Policy | None = None
        self._drawdown_pcts: dict[str, tuple[Decimal, bool] | None] = {}
        # this engine's own copy of the exact context: its flags are nobody else's
        self._exact = EXACT.copy()

    # ------------------------------------------------------------------ entry point

    def handle(self, event: InputEvent) -> list[OutputEvent]:
        if self.state.behaviour < 5:  # sums and products rounded to 28 digits, as written
            return self._handle(event)
        # behaviour 5: exact sums and products (`model.values.EXACT`), for this event only, so
        # the caller's own arithmetic is left as it was
        previous = getcontext()
        setcontext(self._exact)
        try:
            return self._handle(event)
        finally:
            setcontext(previous)

    def _handle(self, event: InputEvent) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        state = self.state
        # The event is journaled before it gets here, so anything it makes `handle` raise
        # would come back on every restart's replay: the gateway could never start again on
        # its journal. The errors a figure or a time the computations cannot hold raises
        # (ArithmeticError: decimal overflow or invalid operation, datetime overflow;
        # ValueError: a value a model struct refuses) are therefore answered, not raised: see
        # `_quarantine`. Only those: the same input raises the same error on every replay, so
        # the halt is reproduced byte for byte, while a bug that raises anything else (a
        # KeyError, a TypeError) still surfaces. Whatever the event changed in the state
        # before it raised stays changed, and is changed the same way by every replay, so a
        # rebuilt engine equals the live one. (A try block costs nothing until it catches.)
        try:
            ts = event.ts
            if ts > state.clock or not state.started:
                state.advance(ts)
            # `_on_time`'s two tests inlined: this runs for every event, and almost always
            # neither the day rolls nor a reset window is running
            next_roll_at = state.next_roll_at
            if (next_roll_at is None or state.clock >= next_roll_at
                    or state.guard.last_cleared is not None):
                self._on_time(out)
            # market data first: it is most of any event stream
            if type(event) is MarketSnapshot:
                self._market(event, out)
            elif isinstance(event, OrderIntent):
                self._intent(event, out)
            elif isinstance(event, Fill):
                lifecycle.on_fill(self, event, out)
            elif isinstance(event, OrderAck):
                lifecycle.on_ack(self, event, out)
            elif isinstance(event, OrderReject):
                lifecycle.on_reject(self, event, out)
            elif isinstance(event, OrderCanceled):
                lifecycle.on_canceled(self, event, out)
            elif isinstance(event, CancelRequest):
                lifecycle.on_cancel_request(self, event, out)
            elif isinstance(event, CancelRefused):
                lifecycle.on_cancel_refused(self, event, out)
            elif isinstance(event, Command):
                commands.on_command(self, event, out)
            elif isinstance(event, PolicyDocument):
                self._policy_document(event, out)
            elif isinstance(event, ClockTick):
                self._clock_tick(out)
            elif isinstance(event, DependencyStatus):
                self._dependency(event, out)
            elif isinstance(event, AccountFunding):
                self._funding(event, out)
            elif isinstance(event, PositionSeed):
                self._position_seed(event)
            elif isinstance(event, FirmState):
                self.state.firm = event
            elif isinstance(event, FirmRateLimited):
                key = (event.account, event.strategy, event.intent_id)
                state.firm_rate_limited[key] = event
            elif isinstance(event, EngineUpgrade):
                self._upgrade(event)
            else:  # pragma: no cover - the InputEvent union is exhaustive
                raise TypeError(f"unknown event type {type(event).__name__}")
        except (ArithmeticError, ValueError) as exc:
            return self._quarantine(event, exc)
        return out

    def _quarantine(self, event: InputEvent, exc: ArithmeticError | ValueError,
                    ) -> list[OutputEvent]:
        """Fail closed on an event that could not be handled: what it had produced is dropped
        (none of it is acted on), trading is HALTED (SYS-008, latched: an operator resumes)
        and an Alert says which event and why, once for every such event."""
        out: list[OutputEvent] = []
        tag = str(type(event).__struct_config__.tag).replace("_", " ")
        article = "an" if tag[0] in "aeiou" else "a"
        message = str(exc)
        # decimal's signals say only their own class list: "[<class 'decimal.Overflow'>]"
        why = type(exc).__name__ if not message or message.startswith("[<class") \
            else f"{type(exc).__name__}: {message}"
        detail = (f"{article} {tag} event at {event.ts.isoformat().replace('+00:00', 'Z')} "
                  f"could not be handled ({why}): trading is halted until an operator resumes")
        log.error("input_unhandled", event_type=tag, ts=event.ts.isoformat(), error=why)
        self.state.count("input_unhandled")
        repeat = self.state.guard.has(_UNHANDLED)
        self.raise_condition(out, _UNHANDLED, _INVARIANT, detail, Mode.HALTED, latched=True)
        if repeat:  # the condition is listed already: `raise_condition` announces only a new one
            self.alert(out, AlertSeverity(REGISTRY[_INVARIANT].severity.value), _INVARIANT,
                       detail)
        return out

    def _upgrade(self, event: EngineUpgrade) -> None:
        """Raise the behaviour epoch (`state.ENGINE_BEHAVIOUR`) to the event's, never lower
        it: the inputs journaled after it are decided under the newer behaviour, those before
        it as they were. A behaviour this engine does not know (a journal written by a newer
        version) stops whatever opens or replays the journal (`EngineTooNew`)."""
        if event.behaviour > ENGINE_BEHAVIOUR:
            raise EngineTooNew(too_new(event.behaviour))
        if event.behaviour > self.state.behaviour:
            self.state.set_behaviour(event.behaviour)

    # ------------------------------------------------------------------ shared helpers

    @property
    def settings(self) -> EngineSettings:
        return DEFAULT_SETTINGS if self.active is None else self.active.engine

    def account_limits(self, account: str) -> ResolvedLimits | None:
        """Account-scope limits (defaults + the account's overrides)."""
        return None if self.active is None else self.active.limits_for(account, "", "")

    def alert(self, out: list[OutputEvent], severity: AlertSeverity, code: str, message: str,
              intent_id: str = "") -> None:
        out.append(Alert(ts=self.state.now, severity=severity, code=code, message=message,
                         intent_id=intent_id))

    def raise_condition(self, out: list[OutputEvent], key: str, code: str, detail: str,
                        level: Mode, *, latched: bool = False, actor: str = "system") -> None:
        """List a mode reason; a new one is announced with an Alert, a tighter mode with a
        ModeChanged."""
        state = self.state
        is_new = not state.guard.has(key)
        change = state.guard.raise_condition(
            Condition(key=key, code=code, detail=detail, actor=actor, since=state.now,
                      level=level, latched=latched),
            state.now,
        )
        if is_new:
            severity = REGISTRY[code].severity.value if code in REGISTRY else "critical"
            self.alert(out, AlertSeverity(severity), code, detail)
        self._emit_change(out, change)

    def _emit_change(self, out: list[OutputEvent], change: ModeChanged | None) -> None:
        # Not logged here: a replay rebuilds every past change, and an old change logged as
        # new would page someone. The runtime logs the changes it journals (live only).
        if change is not None:
            out.append(change)

    def clear_condition(self, key: str) -> bool:
        return self.state.guard.clear(key, self.state.now)

    def check_drawdown(self, out: list[OutputEvent], record: AccountRecord) -> None:
        """Trip the drawdown halt when equity fell from its high-water mark by more than
        max_drawdown_pct and the policy arms `drawdown_kill` (same arithmetic as the gate:
        cross-multiplied, no division at the boundary)."""
        high = record.high_water_mark
        equity = record.cash + record.market_value
        if equity >= high:
            return  # no drop at all (limits are never negative): the usual case, and cheap
        armed = self._drawdown_kill_pct(record.account)
        if armed is None or high <= 0:
            return
        max_drawdown_pct, monitor = armed
        if (high - equity) * HUNDRED <= max_drawdown_pct * high:
            return
        key = f"drawdown:{record.account}"
        if self.state.guard.has(key):
            return
        detail = (f"account {record.account}: equity {_cents(equity)} is more than "
                  f"{max_drawdown_pct}% below its high-water mark {_cents(high)}")
        level = fault_mode(self.settings.on_drawdown)
        if monitor and self.state.behaviour >= 5:
            self._drawdown_would_halt(out, record.account, _cents(high), detail, level)
            return
        self.raise_condition(out, key, "LOS-003", detail, level, latched=True)

    def _drawdown_would_halt(self, out: list[OutputEvent], account: str, high: Decimal,
                             detail: str, level: Mode) -> None:
        """A monitor-mode policy's drawdown kill trips nothing (a dry run): say once per
        account and high-water mark what it would have done. The counter marks it said, so a
        replay or a snapshot agrees; the account's older marks go."""
        counters = self.state.counters
        marker = f"{_DRAWDOWN_WOULD_HALT}:{account}:{high}"
        if marker in counters:
            return
        for name in [name for name in counters
                     if name.rpartition(":")[0] == f"{_DRAWDOWN_WOULD_HALT}:{account}"]:
            del counters[name]
        self.state.count(marker)
        self.alert(out, AlertSeverity(REGISTRY["LOS-003"].severity.value), "LOS-003",
                   f"{detail}; drawdown_kill would have moved the mode to {level.value} "
                   "(monitor mode: trading goes on)")

    def _drawdown_kill_pct(self, account: str) -> tuple[Decimal, bool] | None:
        """The account's max_drawdown_pct and whether its policy is a monitor-mode dry run,
        when the active policy arms `drawdown_kill`, else None; remembered per account until
        another policy is active (asked on every mark change of every position the account
        holds)."""
        if self._drawdown_policy is not self.active:
            self._drawdown_policy = self.active
            self._drawdown_pcts.clear()
        try:
            return self._drawdown_pcts[account]
        except KeyError:
            limits = self.account_limits(account)
            armed = (None if limits is None or not limits.drawdown_kill
                     or limits.max_drawdown_pct is None
                     else (limits.max_drawdown_pct, limits.monitor))
            self._drawdown_pcts[account] = armed
            return armed

    # ------------------------------------------------------------------ time

    def _on_time(self, out: list[OutputEvent]) -> None:
        state = self.state
        if state.next_roll_at is None or state.now >= state.next_roll_at:
            if state.next_roll_at is not None:
                state.roll_day()
            self._schedule_roll(out)
        self._emit_change(out, state.guard.on_time(state.now, self.settings.reset_window))

    def _schedule_roll(self, out: list[OutputEvent]) -> None:
        state = self.state
        calendar = self.settings.day_roll_calendar
        try:
            state.next_roll_at = next_roll(state.now, calendar)
        except CalendarUnavailable as exc:
            # Without a known day boundary daily loss limits cannot be trusted.
            state.next_roll_at = next_roll(state.now, None)
            self.raise_condition(out, "config:day_roll_calendar", "SYS-005", str(exc),
                                 fault_mode(self.settings.on_dependency_down), latched=True)

    def _clock_tick(self, out: list[OutputEvent]) -> None:
        state = self.state
        state.windows.prune(state.now)
        state.duplicates.prune(state.now)
        self._check_stale(out)

    def _check_stale(self, out: list[OutputEvent]) -> None:
        """Symbols the engine holds positions or orders in must keep fresh marks; the
        tightest max_market_data_age among the holders applies (`staleness` says how old
        the data is). O(held symbols)."""
        state = self.state
        if self.active is None:
            return
        for symbol, holders in state.holders.items():
            snapshot = state.markets.get(symbol)
            if snapshot is None:
                continue
            ages = [
                age for account in holders
                if (age := self.active.limits_for(account, "", symbol).max_market_data_age)
                is not None
            ]
            if not ages:
                continue
            detail = self.staleness(symbol, snapshot, min(ages))
            if detail is not None:
                self.raise_condition(
                    out, f"data:stale:{symbol}", "SYS-002", detail,
                    fault_mode(self.settings.on_stale_data),
                )

    def staleness(self, symbol: str, snapshot: MarketSnapshot, limit: timedelta) -> str | None:
        """Why `symbol`'s market data is stale against `limit` (an alert's words), or None
        while it is fresh (`is_stale` judges; this only puts it into words)."""
        judged = self._stale_since(symbol, snapshot, limit)
        if judged is None:
            return None
        since, sessions = judged
        now = self.state.now
        plain = f"{symbol}: last market data is {now - snapshot.ts} old (limit {limit})"
        if sessions is None:
            return plain
        if not resolved(sessions, now):
            return (f"{plain}; the policy resolves {symbol}'s {sessions.calendar} sessions "
                    f"only from {_day(sessions.opens[0])} to {_day(sessions.closes[-1])} "
                    f"(market_hours.years), so every hour counts outside them")
        if since == snapshot.ts:
            return plain
        return (f"{symbol}: no market data in the {now - since} its {sessions.calendar} "
                f"session has been open (last at {_iso(snapshot.ts)}; limit {limit})")

    def is_stale(self, symbol: str, snapshot: MarketSnapshot, limit: timedelta) -> bool:
        """Whether `symbol`'s market data is stale against `limit`, as `staleness` says, without
        putting it into words (a quote asks it to clear the symbol's stale reason)."""
        return self._stale_since(symbol, snapshot, limit) is not None

    def stale_symbols(self, limit: timedelta) -> list[str]:
        """The quoted symbols whose market data is stale against `limit`, sorted, each as
        `is_stale` judges it, in one pass: /v1/health asks it of every quoted symbol, twice a
        second per dashboard, on the engine thread. A market-hours symbol whose quote is older
        than `limit` is stale exactly when its market has been open for longer than `limit`
        without a break, whatever the quote's age: one answer for all such symbols of the
        same market hours, asked once."""
        now = self.state.now
        aged = [(symbol, snapshot) for symbol, snapshot in self.state.markets.items()
                if now - snapshot.ts > limit]
        if self.state.behaviour < 4 or self.active is None:
            return sorted(symbol for symbol, _ in aged)
        stale: list[str] = []
        open_too_long: dict[int, bool] = {}  # by market hours (`id` of the policy's sessions)
        for symbol, snapshot in aged:
            sessions = self.active.limits_for("", "", symbol).sessions
            if sessions is None:
                stale.append(symbol)
                continue
            verdict = open_too_long.get(id(sessions))
            if verdict is None:
                verdict = self._stale_since(symbol, snapshot, limit) is not None
                open_too_long[id(sessions)] = verdict
            if verdict:
                stale.append(symbol)
        return sorted(stale)

    def _stale_since(self, symbol: str, snapshot: MarketSnapshot, limit: timedelta
                     ) -> tuple[datetime, TradingSessions | None] | None:
        """None while `symbol`'s data is fresh against `limit`; once stale, since when its age
        counts and the market hours that decided it (None when every hour counts). The age
        is the time since the snapshot. From engine behaviour 4 on, for a symbol the policy
        binds to `market_hours`, only the time its market has been open counts: none while it
        is closed (the last quote, the close, is still the right mark), and from the open the
        time since the open until a quote arrives; outside the years the policy resolves
        sessions for, every hour counts again (fails closed)."""
        now = self.state.now
        if now - snapshot.ts <= limit:
            return None  # the usual answer: no open time exceeds it either
        if self.state.behaviour < 4 or self.active is None:
            return snapshot.ts, None  # behaviour 1 to 3 counted every hour, market hours or not
        sessions = self.active.limits_for("", "", symbol).sessions
        if sessions is None:
            return snapshot.ts, None
        since = open_since(sessions, now, snapshot.ts)  # the snapshot's time when unresolved
        if since is None or now - since <= limit:
            return None  # its market is closed, or has not been open for `limit` yet
        return since, sessions

    # ------------------------------------------------------------------ policies

    def _policy_document(self, event: PolicyDocument, out: list[OutputEvent]) -> None:
        try:
            policy = Policy.from_document(event.document, source=f"policy {event.policy_hash}")
        except PolicyError as exc:
            self.alert(out, AlertSeverity.CRITICAL, POLICY_REJECTED, str(exc))
            return
        if policy.hash != event.policy_hash:
            self.alert(out, AlertSeverity.CRITICAL, POLICY_REJECTED,
                       f"policy document hash mismatch: announced {event.policy_hash}, "
                       f"computed {policy.hash}; not stored")
            return
        self.policies.setdefault(policy.hash, policy)

    def activate(self, policy_hash: str, out: list[OutputEvent]) -> None:
        policy = self.policies.get(policy_hash)
        if policy is None:
            active = "none" if self.active is None else self.active.hash
            self.alert(out, AlertSeverity.CRITICAL, POLICY_UNKNOWN,
                       f"activate_policy: no stored policy {policy_hash or '(empty)'}; "
                       f"keeping {active}")
            return
        effective = policy.effective_from
        if effective is not None and self.state.now < effective:
            # Not in force yet: whatever decides now (or nothing: every intent is then
            # denied, SYS-005) keeps deciding. Event time, so a replay agrees.
            self.alert(out, AlertSeverity.CRITICAL, POLICY_NOT_EFFECTIVE,
                       f"activate_policy: policy {policy.name} {policy.hash} takes effect at "
                       f"{effective.isoformat().replace('+00:00', 'Z')}, after "
                       f"{self.state.now.isoformat().replace('+00:00', 'Z')}; "
                       f"keeping {self._enforced()}")
            return
        if (self.settings.resume_requires_two_operators
                and not policy.engine.resume_requires_two_operators
                and self.state.guard.has_code("LOS-003")):
            # The halt's own terms: a drawdown halt taken under a policy that wants two
            # operators to resume is not ended by one operator swapping the policy first.
            self.alert(out, AlertSeverity.CRITICAL, POLICY_REJECTED,
                       f"activate_policy: policy {policy.name} {policy.hash} drops "
                       f"resume_requires_two_operators while a drawdown halt (LOS-003) awaits "
                       f"a resume by two operators; resume first; keeping {self._enforced()}")
            return
        if self.shadow is not None and self.shadow.hash == policy.hash:
            # the dry run is over: the policy is enforced now
            self.shadow = None
        previous_calendar = self.settings.day_roll_calendar
        self.active = policy
        for kind, window in _longest_windows(policy).items():
            self.state.windows.retain(kind, window)
        if policy.engine.day_roll_calendar != previous_calendar:
            self._schedule_roll(out)
        self.alert(out, AlertSeverity.INFO, POLICY_ACTIVATED,
                   f"policy {policy.name} {policy.hash} is active")
        if self.state.behaviour >= 5:
            # The new policy judges the drawdown the accounts are already in: an enforcing
            # drawdown_kill (a monitor policy made enforcing, a lower max_drawdown_pct) halts
            # now, not at the next mark change. Behaviour 4 waited for one.
            accounts = self.state.accounts
            for account in sorted(accounts):
                record = accounts[account]
                if record.funded:
                    self.check_drawdown(out, record)

    def _enforced(self) -> str:
        """The enforced policy as an alert names it: "<name> <hash>", or "none"."""
        return "none" if self.active is None else f"{self.active.name} {self.active.hash}"

    def set_shadow(self, policy_hash: str, actor: str, out: list[OutputEvent]) -> None:
        """Judge every intent under the stored policy `policy_hash` as well, without enforcing
        it ("" clears the shadow). The active policy is never touched."""
        if not policy_hash:
            if self.shadow is not None:
                self.alert(out, AlertSeverity.INFO, POLICY_SHADOW,
                           f"shadow policy {self.shadow.name} {self.shadow.hash} cleared "
                           f"by {actor}")
                self.shadow = None
            return
        policy = self.policies.get(policy_hash)
        if policy is None:
            shadow = "none" if self.shadow is None else self.shadow.hash
            self.alert(out, AlertSeverity.CRITICAL, POLICY_UNKNOWN,
                       f"shadow_policy: no stored policy {policy_hash}; keeping {shadow}")
            return
        self.shadow = policy
        # Keep the history its throttles ask about; more history never changes a count.
        for kind, window in _longest_windows(policy).items():
            self.state.windows.retain(kind, window)
        self.alert(out, AlertSeverity.INFO, POLICY_SHADOW,
                   f"policy {policy.name} {policy.hash} is the shadow policy (set by {actor}): "
                   f"judged for every intent, not enforced")

    # ------------------------------------------------------------------ intents

    def _intent(self, intent: OrderIntent, out: list[OutputEvent]) -> None:
        state = self.state
        key = (intent.account, intent.strategy, intent.intent_id)
        limited = state.firm_rate_limited.pop(key, None) if state.firm_rate_limited else None
        previous = state.decided.get(key)
        if previous is not None:
            earlier = state.decided_intents.get(key)
            differs = () if earlier is None else retry_differences(earlier, intent)
            if differs:
                self._reused(intent, differs, out)
                return
            # A retry: the same answer, and never a second dispatch.
            state.count("intent_retry")
            out.append(previous)
            return
        # judged before anything below changes the state, so both see the same view
        shadow = None if self.shadow is None else self._shadow_decision(intent, limited)
        policy = self.active
        limits: ResolvedLimits | None = None
        ctx: RuleContext | None = None
        if policy is None:
            decision = Decision(
                intent_id=intent.intent_id, decision=DecisionKind.DENY, blocking="SYS-005",
                violations=(Violation(code="SYS-005", observed="none",
                                      limit="an active policy", detail="no policy is active"),),
                mode=state.mode,
            )
        else:
            limits = policy.limits_for(intent.account, intent.strategy, intent.symbol)
            decision, ctx = self._judge(intent, limits, policy.hash)
            if limited is not None:
                decision = with_firm_rate_limit(decision, limited)
        # what the decision was judged on, read before anything below changes the state
        try:
            context = explain(intent, state, limits, mode_reasons=state.guard.reasons(),
                              context=ctx, id_seen=state.client_order_id_in_use(intent))
        except ArithmeticError as exc:
            # the same for the record's figures: without them, and the intent refused
            context = explain(intent, state, limits, mode_reasons=state.guard.reasons(),
                              figures=False, id_seen=state.client_order_id_in_use(intent))
            if decision.decision is not DecisionKind.DENY:
                decision = precision_denial(intent, exc, mode=state.mode,
                                            monitor=decision.monitor,
                                            policy_hash=decision.policy_hash)
                if limited is not None:
                    decision = with_firm_rate_limit(decision, limited)
        crossing: list[OrderRecord] = []
        if limits is not None:
            decision, crossing = self._self_match_cancels(intent, limits, decision)
        state.decided[key] = decision
        state.decided_intents[key] = intent
        state.count(_DECISION_COUNTERS[decision.decision])
        if decision.blocking:
            state.count(f"blocking:{decision.blocking}")
        out.append(decision)
        if shadow is not None:
            out.append(shadow)
        self._explain(intent, decision, limits, context, out)
        if decision.decision is DecisionKind.DENY or limits is None:
            return
        # Accepting cannot raise: it adds the quantity to the working totals and revalues
        # the book (sums and products of inputs below 10**15 round within 28 digits, far
        # from Decimal's exponent limit); no remainder, quantize or division.
        self._accept(intent, decision, limits, ctx, crossing, out)

    def _reused(self, intent: OrderIntent, differs: tuple[str, ...],
                out: list[OutputEvent]) -> None:
        """DENY DUP-003: the intent_id already names a decided intent and this one differs from
        it. Never judged by a policy (so no policy hash and no decision record), never an order
        (its client order id would be the first intent's), in monitor mode too; the first
        intent's decision stays the one a retry of it gets."""
        state = self.state
        fields = ", ".join(differs)
        decision = Decision(
            intent_id=intent.intent_id, decision=DecisionKind.DENY, blocking=_REUSED,
            violations=(Violation(
                code=_REUSED, observed=f"differs in {fields}",
                limit="the intent first decided under this intent_id",
                detail=f"intent_id {intent.intent_id} was already used for a different intent "
                       f"(it differs in {fields}); a retry must repeat the intent exactly, and "
                       "a new intent needs a new intent_id"),),
            mode=state.mode,
        )
        state.count("intent_id_reused")
        state.count(_DECISION_COUNTERS[DecisionKind.DENY])
        state.count(f"blocking:{_REUSED}")
        out.append(decision)

    def _judge(self, intent: OrderIntent, limits: ResolvedLimits,
               policy_hash: str) -> tuple[Decision, RuleContext | None]:
        """The gate's decision, or DENY SYS-008 when a figure is beyond exact decimal
        precision (inputs inside the model's bound can still make 10**34 lots of a tiny lot
        size): refused, never raised. The intent is journaled already, so a raise would come
        back on every restart."""
        try:
            return decide(intent, self.state, limits, policy_hash, self.plans.plan(limits))
        except ArithmeticError as exc:
            return precision_denial(intent, exc, mode=self.state.mode, monitor=limits.monitor,
                                    policy_hash=policy_hash), None

    def _shadow_decision(self, intent: OrderIntent,
                         limited: FirmRateLimited | None) -> ShadowDecision:
        """What the shadow policy would answer, read-only: no counter, reservation or record."""
        shadow = self.shadow
        assert shadow is not None
        limits = shadow.limits_for(intent.account, intent.strategy, intent.symbol)
        decision, _ = self._judge(intent, limits, shadow.hash)
        if limited is not None:
            decision = with_firm_rate_limit(decision, limited)
        decision, _ = self._self_match_cancels(intent, limits, decision)
        return ShadowDecision(
            ts=self.state.now, intent_id=intent.intent_id, policy_hash=shadow.hash,
            decision=decision.decision, blocking=decision.blocking,
            violations=decision.violations, modified_qty=decision.modified_qty,
            would_block=decision.would_block,
        )

    def _explain(self, intent: OrderIntent, decision: Decision, limits: ResolvedLimits | None,
                 context: DecisionContext, out: list[OutputEvent]) -> None:
        """Journal what the decision was judged on (`context`, read before any state
        changed): the resolved limits (once per distinct value) and a DecisionRecord citing
        them."""
        state = self.state
        limits_hash = ""
        if limits is not None:
            limits_hash, data = self.limits_digests.digest(limits)
            if limits_hash not in state.limits_journaled:
                state.limits_journaled[limits_hash] = None
                out.append(LimitsRecord(ts=state.now, limits_hash=limits_hash,
                                        limits=msgspec.Raw(data)))
        out.append(DecisionRecord(
            ts=state.now, intent_id=intent.intent_id, account=intent.account,
            strategy=intent.strategy, symbol=intent.symbol, policy_hash=decision.policy_hash,
            limits_hash=limits_hash, context=context,
        ))

    def _accept(self, intent: OrderIntent, decision: Decision, limits: ResolvedLimits,
                ctx: RuleContext | None, crossing: list[OrderRecord],
                out: list[OutputEvent]) -> None:
        """Reserve, record and dispatch an allowed intent, after cancelling the account's own
        orders it would trade against (`crossing`, under `self_match: cancel_resting`)."""
        state = self.state
        now = state.now
        qty = intent.qty
        if decision.decision is DecisionKind.MODIFY and decision.modified_qty is not None:
            qty = decision.modified_qty
        derived = intent.client_order_id is None
        client_order_id = intent.client_order_id or derive_client_order_id(
            intent.account, intent.strategy, intent.intent_id
        )
        if client_order_id in state.open_orders:
            # allowed with the id working (a dry-run policy records DUP-001 as would_block):
            # refused before any cancel below is marked, so nothing is half done
            raise OrderIdInUse(
                f"client_order_id {client_order_id}: an order is already working under it; "
                f"intent {intent.intent_id} was not sent")
        for order in crossing:
            order.cancel_requested = True
            out.append(CancelOrder(
                ts=now, client_order_id=order.client_order_id,
                reason=f"self-match: intent {intent.intent_id} would trade against it",
            ))
        reduce_only = intent.reduce_only or state.mode is not Mode.ACTIVE
        state.add_order(OrderRecord(
            client_order_id=client_order_id, intent_id=intent.intent_id,
            account=intent.account, strategy=intent.strategy, symbol=intent.symbol,
            side=intent.side, qty=qty, remaining=qty, order_type=intent.order_type,
            limit_price=intent.limit_price, stop_price=intent.stop_price, tif=intent.tif,
            reduce_only=reduce_only, created=now,
        ), derived=derived)
        windows = state.windows
        # the keys `gate.rate_key` gives each scope, inlined on the hot path
        for kind, key, rate in (
            (_GLOBAL_WINDOW, "", limits.rate_global),
            (_ACCOUNT_WINDOW, intent.account, limits.rate_account),
            (_STRATEGY_WINDOW, intent.strategy, limits.rate_strategy),
            (_SYMBOL_WINDOW, intent.symbol, limits.rate_symbol),
        ):
            windows.record(kind, key, now, None if rate is None else rate.window)
        key = ctx.fingerprint if ctx is not None and ctx.fingerprint else fingerprint(intent)
        state.duplicates.record(key, now, limits.duplicate_window)
        out.append(Dispatch(
            ts=now, client_order_id=client_order_id, intent_id=intent.intent_id,
            account=intent.account, strategy=intent.strategy, symbol=intent.symbol,
            side=intent.side, qty=qty, order_type=intent.order_type,
            limit_price=intent.limit_price, stop_price=intent.stop_price, tif=intent.tif,
            reduce_only=reduce_only,
        ))

    def _self_match_cancels(self, intent: OrderIntent, limits: ResolvedLimits,
                            decision: Decision) -> tuple[Decision, list[OrderRecord]]:
        """The orders an allowed intent cancels under `self_match: cancel_resting`, and the
        decision naming them (`with_self_match_cancels`). Read only: `_accept` cancels them."""
        if (limits.self_match is not SelfMatch.CANCEL_RESTING
                or decision.decision is DecisionKind.DENY):
            return decision, []
        crossing = self._crossing(intent)
        if not crossing or self.state.behaviour < 2:
            return decision, crossing  # behaviour 1 cancelled them without a note
        return with_self_match_cancels(decision, intent, crossing), crossing

    def _crossing(self, intent: OrderIntent) -> list[OrderRecord]:
        """The account's working orders the intent would trade against and no cancel was asked
        for yet, best price first: `self_match: cancel_resting` cancels them. Read only."""
        state = self.state
        ladder = state.ladder(intent.account, intent.symbol)
        if ladder is None:
            return []
        priced = intent.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        price = intent.limit_price if priced else None
        open_orders = state.open_orders
        return [order for client_order_id in ladder.crossing(intent.side, price)
                if not (order := open_orders[client_order_id]).cancel_requested]

    # ------------------------------------------------------------------ market and accounts

    def _market(self, snapshot: MarketSnapshot, out: list[OutputEvent]) -> None:
        state = self.state
        symbol = snapshot.symbol
        current = state.markets.get(symbol)
        if current is not None and snapshot.ts < current.ts:
            state.count("market_out_of_order")
            return
        fault, revalued = state.set_market(snapshot)
        if fault:
            self.raise_condition(out, f"data:invalid:{symbol}", "SYS-003",
                                 f"{symbol}: invalid market data: {fault}",
                                 fault_mode(self.settings.on_bad_data))
            return
        guard = state.guard
        # only a listed condition can clear; most of the time none is listed at all
        if guard.any() and symbol in state.marks:
            self.clear_condition(f"data:invalid:{symbol}")
            stale = f"data:stale:{symbol}"
            if guard.has(stale) and not self.is_stale(symbol, snapshot,
                                                      self._max_age(symbol)):
                self.clear_condition(stale)
        for record in revalued:
            self.check_drawdown(out, record)

    def _max_age(self, symbol: str) -> timedelta:
        if self.active is None:
            return timedelta(0)
        ages = [
            age for account in self.state.holders.get(symbol, ())
            if (age := self.active.limits_for(account, "", symbol).max_market_data_age)
            is not None
        ]
        fallback = self.active.limits_for("", "", symbol).max_market_data_age
        if fallback is not None:
            ages.append(fallback)
        return min(ages) if ages else timedelta.max

    def _position_seed(self, event: PositionSeed) -> None:
        state = self.state
        book = state.book(event.account, event.symbol)
        book.qty = event.qty
        book.avg_price = event.avg_price if event.qty else ZERO
        state.refresh(book)

    def _funding(self, event: AccountFunding, out: list[OutputEvent]) -> None:
        state = self.state
        known = state.accounts.get(event.account)
        if known is not None and known.funded and state.behaviour >= 5:
            self._refunding(known, event, out)
            return
        record = state.fund(event.account, event.cash)
        if (event.equity is not None or event.day_start_equity is not None
                or event.high_water_mark is not None):
            if event.equity is not None:
                # Equity is cash plus the positions' value: a given equity that disagrees with
                # them (a state file's own figure) is kept by moving the cash, so the limits
                # see it and fills and marks move it from there.
                record.cash = event.equity - record.market_value
            equity = record.equity
            given_day_start, given_high = event.day_start_equity, event.high_water_mark
            record.day_start_equity = equity if given_day_start is None else given_day_start
            # a high-water mark below the equity is raised to it, as any new high raises it
            record.high_water_mark = (equity if given_high is None or given_high < equity
                                      else given_high)
        self.check_drawdown(out, record)

    def _refunding(self, record: AccountRecord, event: AccountFunding,
                   out: list[OutputEvent]) -> None:
        """An account event for a funded account (behaviour 5 on): funds moved in or out, or a
        balance sync. Its cash moves to the event's (or to what leaves the given equity) and
        the day-start equity and high-water mark move by the same change, as money moved is no
        profit or loss: the day's PnL and the drawdown stay what they were. A mark the event
        gives is taken as given. Behaviour 4 started both marks again at the new equity, so a
        deposit, or a sync of the cash already held, wiped the day's loss and drawdown."""
        before = record.cash
        cash = event.cash if event.equity is None else event.equity - record.market_value
        self.state.fund(event.account, cash)
        given_day_start, given_high = event.day_start_equity, event.high_water_mark
        if given_day_start is not None:
            record.day_start_equity = given_day_start
        if given_high is not None:
            equity = record.equity
            # a high-water mark below the equity is raised to it, as any new high raises it
            record.high_water_mark = given_high if given_high > equity else equity
        if cash != before:
            self.alert(out, AlertSeverity.INFO, ACCOUNT_CASH,
                       f"cash of {event.account} set from {before} to {cash} by an account "
                       f"event: {_marks_moved(given_day_start, given_high)}")
        self.check_drawdown(out, record)

    # ------------------------------------------------------------------ dependencies

    def _dependency(self, event: DependencyStatus, out: list[OutputEvent]) -> None:
        key = f"dependency:{event.dependency}"
        if event.healthy:
            if self.clear_condition(key):
                if self.state.behaviour < 5:
                    self.alert(out, AlertSeverity.INFO, event.code or "SYS-011",
                               f"{event.dependency} is healthy again")
                elif event.detail != REPORTED:
                    self.alert(out, AlertSeverity.INFO, event.code or "SYS-011",
                               self._answered_words(event))
            return
        code = event.code if event.code in REGISTRY else "SYS-011"
        detail = f"{event.dependency}: {event.detail or 'unhealthy'}"
        if event.code and event.code != code:
            detail += f" (unregistered code {event.code})"
        settings = self.settings
        if REGISTRY[code].family is Family.CLOCK:
            level = settings.on_clock_fault
        elif code == "SYS-009":
            level = settings.on_reconciliation_mismatch
        elif code in ("SYS-002", "SYS-003"):
            level = settings.on_stale_data if code == "SYS-002" else settings.on_bad_data
        else:
            level = settings.on_dependency_down
        self.raise_condition(out, key, code, detail, fault_mode(level))

    def _answered_words(self, event: DependencyStatus) -> str:
        """The Alert for a dependency reason cleared under behaviour 5 on: that the dependency
        is healthy again (the firm store: that it answers again, as data it lost is not back),
        then what it said when that adds words, and, when the mode stays tighter than the
        remaining reasons demand (it is never loosened by itself), until when. It never opens
        with what the dependency said: a clock back within tolerance reports its drift in the
        words its drifting did. Behaviour 4 and before said `<dependency> is healthy again`
        for every clearance, a reason only marked reported (`model.reasons.REPORTED`, a trade
        bust) included."""
        back = ("answers again" if event.dependency == FIRM_STORE_DEPENDENCY
                else "is healthy again")
        words = f"{event.dependency} {back}"
        detail = event.detail.strip()
        if " " in detail:  # one word (a breaker's CIRCUIT_CLOSED_<name>, `resolved`) adds none
            words += f": {detail}"
        state = self.state
        mode = state.mode
        if mode.rank <= state.guard.required().rank:
            return words
        held = "new risk stays refused" if mode is Mode.REDUCE_ONLY else "trading stays halted"
        window = self.settings.reset_window
        until = ("until an operator resumes" if window is None else
                 f"until {state.now + window:%Y-%m-%d %H:%M:%S} UTC, when the reset window has "
                 "passed, or until an operator resumes sooner")
        return f"{words}; {held} ({mode.value}) {until}"

    # ------------------------------------------------------------------ snapshots and status

    def snapshot(self) -> bytes:
        """The whole state, deterministically encoded (same state, same bytes)."""
        return encode_image(self)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """An engine in exactly the state `snapshot()` captured."""
        engine = cls()
        apply_image(engine, data)
        return engine

    def status(self) -> EngineStatus:
        return build_status(self)


_FIRM_RATE = "THR-007"
_SELF_MATCH = "ORD-010"


def with_self_match_cancels(decision: Decision, intent: OrderIntent,
                            crossing: list[OrderRecord]) -> Decision:
    """Record on an allowed decision the account's own orders it cancels to avoid a self-match
    (`self_match: cancel_resting`): an ORD-010 violation, in precedence order, that decides
    nothing (the intent is allowed) and names every order cancelled, with its resting price."""
    prices = [(order, price) for order in crossing
              if (price := resting_price(order)) is not None]  # all: they are on the ladder
    first = prices[0][1]
    priced = intent.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    price = intent.limit_price if priced else None
    orders = ", ".join(f"{order.client_order_id} at {resting_text(resting)}"
                       for order, resting in prices)
    noun = "order" if len(crossing) == 1 else "orders"
    violation = Violation(
        code=_SELF_MATCH, observed="marketable" if price is None else str(price),
        limit=resting_text(first),
        detail=f"cancelled the account's own {noun} it would trade against "
               f"(self_match: cancel_resting): {orders}",
    )
    violations = tuple(sorted((*decision.violations, violation),
                              key=lambda item: _precedence(item.code)))
    return msgspec.structs.replace(decision, violations=violations)


def _precedence(code: str) -> int:
    entry = REGISTRY.get(code)
    return REGISTRY["SYS-008"].precedence if entry is None else entry.precedence


def with_firm_rate_limit(decision: Decision, limited: FirmRateLimited) -> Decision:
    """Add THR-007 (decided in the firm-wide store before the intent was journaled) to the
    gate's decision, as the gate treats any throttle: recorded only for a risk-reducing
    intent, `would_block` in monitor mode, otherwise a DENY unless a rule of higher
    precedence already blocks."""
    rank = REGISTRY[_FIRM_RATE].precedence
    precedence = _precedence
    violation = Violation(code=_FIRM_RATE, observed=str(limited.count),
                          limit=str(limited.max_count),
                          detail=f"firm-wide orders in the last {limited.window}")
    violations = tuple(sorted((*decision.violations, violation),
                              key=lambda item: precedence(item.code)))
    if decision.risk_reducing:
        return msgspec.structs.replace(decision, violations=violations)
    if decision.monitor:
        would_block = decision.would_block
        if not would_block or precedence(would_block) > rank:
            would_block = _FIRM_RATE
        return msgspec.structs.replace(decision, violations=violations, would_block=would_block)
    blocking = decision.blocking
    if decision.decision is not DecisionKind.DENY or not blocking or precedence(blocking) > rank:
        blocking = _FIRM_RATE
    return msgspec.structs.replace(decision, decision=DecisionKind.DENY, blocking=blocking,
                                   violations=violations, modified_qty=None)
