"""Damage containment for the runtime: circuit breakers on every dependency, disconnect-storm
and authentication halts, clock sync against the broker, market-data feed health, and the
`GuardedRuntime` that runs them (with reconciliation) around a `Runtime`.

Everything here turns what the shell observes into journaled input events, so the engine's
mode follows and replay reproduces it:

* a breaker that opens yields `DependencyStatus(dependency="circuit:<name>", code="SYS-007",
  detail="CIRCUIT_OPEN_<name>")`; the engine tightens the mode per `on_dependency_down`; its
  closing yields the healthy event for the same key, which clears only that reason;
* while the broker_submit circuit is open the Dispatcher sends nothing (`allow_submit`);
* an authentication failure, or `storm_threshold` failed broker calls in a row (submits,
  reads, reconnect probes), yields `Command(HALT)` from operator "ordergate" with the
  reason: HALTED, latched until an operator resumes;
* clock drift beyond tolerance yields `clock:drift` CLK-002 and an unavailable reference
  `clock:reference` CLK-003, each cleared only by its own recovery.

After a restart the watchers start from the health the journal replayed into the engine
(`GuardedRuntime.recover_health`): a circuit whose reason is active starts half-open, a broker
dependency or clock condition the engine holds unhealthy starts unhealthy, so the first good
answer clears each reason as it would have without the restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import structlog

from ordergate.brokers.base import BrokerAdapter
from ordergate.brokers.sim import SimBroker
from ordergate.engine.calendar import CalendarUnavailable, next_roll
from ordergate.engine.core import Engine
from ordergate.engine.records import OrderRecord
from ordergate.journal import (
    ChainCheckProcess,
    Durability,
    Journal,
    JournalError,
    Verdict,
    check_kept_heads,
    open_journal,
)
from ordergate.journal.chain import JournalDamaged, SnapshotFailure
from ordergate.model.events import Command, CommandAction, DependencyStatus, InputEvent
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.policy.loader import Policy
from ordergate.resilience.breakers import BreakerBoard, BreakerSnapshot, BreakerState
from ordergate.resilience.clock import CLOCK_DRIFT, CLOCK_UNAVAILABLE, Clock, ClockSync
from ordergate.resilience.errors import (
    DEPENDENCY_ERRORS,
    Action,
    Category,
    Classification,
    classify,
)
from ordergate.runtime.dispatch import CIRCUIT_PREFIX as CIRCUIT_PREFIX  # re-exported
from ordergate.runtime.dispatch import READS_DEPENDENCY, SUBMIT_DEPENDENCY, MarketListener
from ordergate.runtime.loop import (
    BatchReport,
    Runtime,
    kept_on_stop,
    merge_report,
)
from ordergate.runtime.reconcile import (
    Reconciler,
    ReconcileSettings,
    day_orders_left_open,
    interrupted_close,
)

log = structlog.get_logger("ordergate.runtime.health")

HALT_OPERATOR = "ordergate"
CLOCK_DEPENDENCIES = {CLOCK_DRIFT: "clock:drift", CLOCK_UNAVAILABLE: "clock:reference"}
BROKER_DEPENDENCIES = (SUBMIT_DEPENDENCY, READS_DEPENDENCY)
DEFAULT_FEED = "market"


class StartRefused(Exception):
    """The runtime will not start: its journal or state cannot be trusted. The message says
    what was found and where."""


class EventClock:
    """A `Clock` that follows event time: it moves only when `observe` sees a later event.
    Breakers and clock sync then measure in event time, so a run (and its replay, and a
    chaos scenario) behaves the same whatever the machine's speed."""

    def __init__(self, start: datetime | None = None) -> None:
        self._origin = start
        self._now = start

    def observe(self, ts: datetime) -> None:
        if self._now is None or ts > self._now:
            self._now = ts
        if self._origin is None:
            self._origin = ts

    def now(self) -> datetime:
        return self._now if self._now is not None else datetime(1970, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        if self._now is None or self._origin is None:
            return 0.0
        return (self._now - self._origin).total_seconds()


def circuit_event(event: DependencyStatus, ts: datetime) -> DependencyStatus:
    """A breaker transition as the engine sees it: its own key (`circuit:<name>`) so that it
    neither hides nor clears the Dispatcher's own health report for the dependency."""
    return DependencyStatus(ts=ts, dependency=CIRCUIT_PREFIX + event.dependency,
                            healthy=event.healthy, code=event.code, detail=event.detail)


class BrokerHealth:
    """The Dispatcher's call monitor (`runtime.dispatch.CallMonitor`): feeds the broker
    breakers, counts failures in a row, halts on authentication failures and disconnect
    storms, and probes a broker that is down (`probe`)."""

    def __init__(self, board: BreakerBoard, *, storm_threshold: int = 5) -> None:
        if storm_threshold < 1:
            raise ValueError(f"storm_threshold: expected at least 1, got {storm_threshold}")
        self.board = board
        self.storm_threshold = storm_threshold
        # Failed submits and reconnect probes since the last one that got through. Reads
        # (order lookups, polls) neither count nor reset: they may work while orders cannot.
        self.failures_in_row = 0
        self._halted_for: set[str] = set()

    @property
    def halted(self) -> bool:
        """An automatic halt was demanded and no operator has resumed since."""
        return bool(self._halted_for)

    def operator_resumed(self) -> None:
        """The engine left HALTED (an operator resumed): submits may be tried again."""
        if self._halted_for:
            log.info("automatic_halt_lifted", causes=sorted(self._halted_for))
        self._halted_for.clear()
        self.failures_in_row = 0

    # ------------------------------------------------------------ CallMonitor

    def allow_submit(self) -> bool:
        # After a halt was demanded nothing more is sent, even before the engine has seen
        # the halt command (it is journaled with the answers of this very batch).
        if self._halted_for:
            return False
        return self.board.get(SUBMIT_DEPENDENCY).allow()

    def succeeded(self, dependency: str, ts: datetime) -> list[InputEvent]:
        if dependency == SUBMIT_DEPENDENCY:
            self.failures_in_row = 0
        event = self.board.get(dependency).record_success()
        return [circuit_event(event, ts)] if event is not None else []

    def failed(self, verdict: Classification, ts: datetime) -> list[InputEvent]:
        return self._failed(verdict, ts, counts=verdict.dependency == SUBMIT_DEPENDENCY)

    def _failed(self, verdict: Classification, ts: datetime, *,
                counts: bool) -> list[InputEvent]:
        events: list[InputEvent] = []
        opened = self.board.get(verdict.dependency).record_failure()
        if opened is not None:
            events.append(circuit_event(opened, ts))
        if counts and verdict.category is Category.TRANSIENT_NETWORK:
            self.failures_in_row += 1
            if self.failures_in_row >= self.storm_threshold:
                events.extend(self._halt(
                    "disconnect_storm", ts,
                    f"disconnect storm: {self.failures_in_row} submits or reconnects failed "
                    f"in a row (last: {verdict.dependency}, {verdict.detail})"))
        if verdict.action is Action.HALT:
            events.extend(self._halt(
                verdict.category.value, ts,
                f"{verdict.category.value} from {verdict.dependency}: {verdict.detail}"))
        return events

    def _halt(self, key: str, ts: datetime, reason: str) -> list[InputEvent]:
        if key in self._halted_for:
            return []
        self._halted_for.add(key)
        log.error("automatic_halt", cause=key, reason=reason)
        return [Command(ts=ts, action=CommandAction.HALT, operator=HALT_OPERATOR, reason=reason)]

    # ------------------------------------------------------------ reconnect probes

    def broker_down(self) -> bool:
        return any(self.board.get(name).state is not BreakerState.CLOSED
                   for name in BROKER_DEPENDENCIES)

    def probe(self, runtime: Runtime, ts: datetime) -> list[InputEvent]:
        """Try to reach a broker whose circuit is not closed (a reconnect attempt, counted
        toward a storm), or that is still reported unhealthy though its circuit stayed closed
        (one 429 or timeout marks it so, and while the mode that holds refuses new risk, no
        submit may come to clear it). A successful probe closes half-open circuits and tells
        the engine the broker answers again.

        The second kind of probe waits for the broker's Retry-After (`quiet_until`) and, when
        it fails, counts toward no circuit: the broker is only asked whether it answers
        again, and a rate-limited answer to that question is no failure of a call the
        gateway needed."""
        down = self.broker_down()
        if not down:
            dispatcher = runtime.dispatcher
            if not dispatcher.unhealthy() or (
                    dispatcher.quiet_until is not None and ts < dispatcher.quiet_until):
                return []
        try:
            runtime.broker.server_time()
        except DEPENDENCY_ERRORS as exc:
            if not down:
                return []
            failed = self._failed(classify(exc, READS_DEPENDENCY), ts, counts=True)
            # The probe stood in for every half-open circuit's own probe: they re-open at
            # their next tier.
            for name in BROKER_DEPENDENCIES:
                breaker = self.board.get(name)
                if name != READS_DEPENDENCY and breaker.state is BreakerState.HALF_OPEN \
                        and breaker.allow():
                    reopened = breaker.record_failure()
                    if reopened is not None:
                        failed.append(circuit_event(reopened, ts))
            return failed
        events: list[InputEvent] = []
        self.failures_in_row = 0
        for name in BROKER_DEPENDENCIES:
            breaker = self.board.get(name)
            if breaker.state is BreakerState.HALF_OPEN and breaker.allow():
                closed = breaker.record_success()
                if closed is not None:
                    events.append(circuit_event(closed, ts))
            if breaker.state is BreakerState.CLOSED:
                events.extend(runtime.dispatcher.mark_healthy(name, ts))
        return events

    def snapshot(self) -> list[BreakerSnapshot]:
        return self.board.snapshot()


class ClockWatch:
    """Clock sync against the broker's clock: drift beyond `max_drift_ms` raises CLK-002,
    an unavailable reference CLK-003 (and a failure on the clock breaker); each clears only
    itself when it recovers.

    A broker clock that reads in steps of `resolution_ms` (Tradier: whole seconds, truncated)
    only says its true time lies in [reading, reading + resolution). Drift is then declared
    only when the local time lies outside [reading - max_drift_ms, reading + resolution +
    max_drift_ms]: the reading is taken at the middle of its step and the tolerance widened
    by half a step, which is that interval exactly. Otherwise a local clock a few
    milliseconds off would trip CLK-002 whenever the broker's second had just begun."""

    def __init__(self, clock: Clock, reference: Callable[[], datetime], board: BreakerBoard,
                 *, max_drift_ms: float = 1000, resolution_ms: int = 0) -> None:
        if resolution_ms < 0:
            raise ValueError(f"resolution_ms: expected 0 or more, got {resolution_ms}")
        half_step = timedelta(milliseconds=resolution_ms) / 2
        self.resolution_ms = resolution_ms
        self.sync = ClockSync(clock, lambda: reference() + half_step,
                              max_drift_ms + resolution_ms / 2)
        self.board = board
        # Clock conditions (codes) the replayed engine holds and no check has answered yet.
        self._recovered: set[str] = set()

    def recover_unhealthy(self, code: str) -> None:
        """The replayed engine holds the clock condition `code` (CLK-002 or CLK-003): the
        first check that finds it gone reports it healthy (a new sync only reports changes)."""
        self._recovered.add(code)

    def check(self, ts: datetime) -> list[InputEvent]:
        events: list[InputEvent] = []
        for change in self.sync.check():
            detail = change.detail
            if change.code == CLOCK_DRIFT and self.resolution_ms:
                detail += (f"; the broker clock reads in {self.resolution_ms} ms steps, so it is"
                           " compared at the middle of its step with the tolerance widened by"
                           " half a step")
            events.append(DependencyStatus(
                ts=ts, dependency=CLOCK_DEPENDENCIES.get(change.code, change.dependency),
                healthy=change.healthy, code=change.code, detail=detail))
        if self._recovered:
            events.extend(self._recovered_cleared(ts))
        breaker = self.board.get("clock")
        if CLOCK_UNAVAILABLE in self.sync.active_codes:
            transition = breaker.record_failure()
        else:
            transition = breaker.record_success()
        if transition is not None:
            events.append(circuit_event(transition, ts))
        return events

    def _recovered_cleared(self, ts: datetime) -> list[InputEvent]:
        """Healthy events for recovered conditions this check found gone (one still present
        was just reported again by the sync, which keeps it from now on). Drift is answered
        only by a check that could read the reference."""
        active = self.sync.active_codes
        answered = {code for code in self._recovered
                    if code != CLOCK_DRIFT or CLOCK_UNAVAILABLE not in active}
        cleared = sorted(code for code in answered if code not in active)
        self._recovered -= answered
        return [DependencyStatus(ts=ts, dependency=CLOCK_DEPENDENCIES[code], healthy=True,
                                 code=code, detail="cleared by the first check after a restart")
                for code in cleared]


def _usable(value: Decimal | None) -> bool:
    return value is None or (value.is_finite() and value > 0)


def snapshot_is_sane(snapshot: MarketSnapshot) -> bool:
    """No NaN, infinite, zero or negative price, at least one price, bid not above ask."""
    prices = (snapshot.bid, snapshot.ask, snapshot.last)
    if all(price is None for price in prices) or not all(_usable(p) for p in prices):
        return False
    bid, ask = snapshot.bid, snapshot.ask
    return bid is None or ask is None or bid <= ask


class FeedWatch:
    """One breaker per market-data feed: a burst of bad snapshots opens the feed's circuit
    (the gate already refuses each bad symbol; the circuit says the provider is suspect)."""

    def __init__(self, board: BreakerBoard) -> None:
        self.board = board

    def observe(self, feed: str, events: Sequence[InputEvent], ts: datetime) -> list[InputEvent]:
        out: list[InputEvent] = []
        breaker = self.board.feed(feed)
        for event in events:
            if not isinstance(event, MarketSnapshot):
                continue
            change = (breaker.record_success() if snapshot_is_sane(event)
                      else breaker.record_failure())
            if change is not None:
                out.append(circuit_event(change, ts))
        return out


@dataclass(slots=True)
class GuardSettings:
    """How often the guard looks. Intervals are seconds of the injected clock."""

    storm_threshold: int = 5
    max_clock_drift_ms: float = 1000
    clock_check_every_s: float = 30.0
    probe_every_s: float = 5.0
    reconcile_every_batches: int = 50
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    verify_journal_on_start: bool = True
    # Off for a broker without a clock of its own (see `keeps_own_clock`).
    check_clock: bool = True
    # Off for a broker without a book of its own (see `keeps_own_book`).
    reconcile_with_broker: bool = True


def keeps_own_clock(broker: BrokerAdapter) -> bool:
    """Does the broker's `server_time` come from a clock of its own? A simulator that learns
    prices (and time) from the gateway's own market data only echoes the events it was
    shown, so measuring drift against it would measure nothing."""
    return not isinstance(broker, MarketListener)


def day_end_of(engine: Engine) -> Callable[[datetime], datetime]:
    """When the trading day holding a time ends, as `engine` rolls its days (its active
    policy's `day_roll_calendar`, read at each call; an unavailable calendar rolls at 00:00
    UTC, as the engine does then)."""
    def day_end(ts: datetime) -> datetime:
        try:
            return next_roll(ts, engine.settings.day_roll_calendar)
        except CalendarUnavailable:
            return next_roll(ts, None)
    return day_end


def keeps_own_book(broker: BrokerAdapter) -> bool:
    """Does the broker keep its orders and positions across the gateway's restarts? A
    simulator without a state file holds only what this process sent it: reconciling the
    journal with it would find nothing but its amnesia."""
    return not (isinstance(broker, SimBroker) and broker.config.state_path is None)


def settings_for(broker: BrokerAdapter, settings: GuardSettings | None = None) -> GuardSettings:
    """`settings` (or the defaults) with clock sync only against a broker that keeps its own
    clock, and reconciliation only with one that keeps its own book."""
    chosen = settings if settings is not None else GuardSettings()
    if chosen.check_clock and not keeps_own_clock(broker):
        chosen = replace(chosen, check_clock=False)
    if chosen.reconcile_with_broker and not keeps_own_book(broker):
        chosen = replace(chosen, reconcile_with_broker=False)
    return chosen


class GuardedRuntime:
    """A Runtime with its health wired in: breakers on every broker call and feed, reconnect
    probes, clock sync on a schedule, reconciliation on start and every N batches, and
    session-close hygiene. Every observation becomes a journaled input (`Runtime.inject`)."""

    def __init__(self, runtime: Runtime, clock: Clock, settings: GuardSettings | None = None,
                 board: BreakerBoard | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        self.settings = settings if settings is not None else GuardSettings()
        self.board = board if board is not None else BreakerBoard(clock)
        self.broker_health = BrokerHealth(self.board,
                                          storm_threshold=self.settings.storm_threshold)
        runtime.dispatcher.attach(self.broker_health)
        broker: BrokerAdapter = runtime.broker
        if isinstance(broker, SimBroker):
            # The simulator fills against the gateway's market data, and is shown the quotes
            # of a batch before the session close that follows the batch cancels the ended
            # day's DAY orders: it learns the gateway's trading days too, so that no quote of
            # the next day fills one of them.
            broker.follow_sessions(day_end_of(runtime.engine))
        self.clock_watch = ClockWatch(clock, broker.server_time, self.board,
                                      max_drift_ms=self.settings.max_clock_drift_ms,
                                      resolution_ms=broker.capabilities.clock_resolution_ms)
        self.feeds = FeedWatch(self.board)
        self.reconciler = Reconciler(runtime, self.settings.reconcile)
        self._batches = 0
        self._last_clock_check: float | None = None
        self._last_probe: float | None = None
        self._event_time: datetime | None = None
        self.started = False
        self._log = log.bind(run_id=runtime.journal.run_id)
        self.recover_health()

    def recover_health(self) -> None:
        """Start the breakers, the Dispatcher's health and clock sync from the dependency
        reasons the engine holds (replayed from the journal): a new process would otherwise
        start them all healthy, so no change would ever be reported and the reasons would hold
        for good. The reconciler likewise starts from the findings it raised, so its first
        clean pass clears them. Nothing is journaled here."""
        prefix = "dependency:"
        circuits: list[str] = []
        clock_codes = {dependency: code for code, dependency in CLOCK_DEPENDENCIES.items()}
        for condition in self.runtime.engine.state.guard.conditions():
            if not condition.key.startswith(prefix):
                continue
            dependency = condition.key[len(prefix):]
            if dependency.startswith(CIRCUIT_PREFIX):
                circuits.append(dependency[len(CIRCUIT_PREFIX):])
            elif dependency in BROKER_DEPENDENCIES:
                self.runtime.dispatcher.recover_unhealthy(dependency)
            elif dependency in clock_codes:
                self.clock_watch.recover_unhealthy(clock_codes[dependency])
        if circuits:
            self.board.recover_open(circuits)
            self._log.info("circuits_recovered_half_open", dependencies=sorted(circuits))
        self.reconciler.recover(self.runtime.engine.state.guard.conditions())

    # ------------------------------------------------------------ start

    @classmethod
    def open(cls, journal_url: str, policy: Policy, broker: BrokerAdapter, clock: Clock,
             settings: GuardSettings | None = None, *,
             durability: Durability = Durability.BATCH,
             run_id: str | None = None) -> GuardedRuntime:
        """Open the journal, refuse to start on one that does not verify (`StartRefused`),
        recover the runtime from it and wire the guard in."""
        settings = settings if settings is not None else GuardSettings()
        journal = open_journal(journal_url, durability=durability, run_id=run_id)
        try:
            if settings.verify_journal_on_start:
                require_intact_journal(journal)
        except BaseException:
            journal.close()
            raise
        runtime = Runtime.open_on(journal, policy, broker)
        return cls(runtime, clock, settings)

    def start(self, ts: datetime) -> BatchReport:
        """Before the first event: finish or run a session close a crash interrupted, then
        reconcile with the broker (and cancel orders unknown to the gateway when the settings
        say so)."""
        self._note_time(ts)
        self.started = True
        report = self._resume_session_close()
        # The clock is first checked after the first batch: a broker may have no time to
        # give before it has seen an event.
        if self.settings.reconcile_with_broker:
            with kept_on_stop(report):
                rolled_before = self.runtime.engine.state.days_rolled
                merge_report(report, self.reconciler.reconcile(ts, on_start=True))
                if self.runtime.engine.state.days_rolled != rolled_before:
                    # the reconciliation's events were the first past the day's end
                    merge_report(report, self._close_ended_day(ts))
        return report

    def close_to_resume(self) -> bool:
        """Does `start` have a session close to finish or run (a crash interrupted one)?"""
        return (interrupted_close(self.runtime) is not None
                or bool(day_orders_left_open(self.runtime.engine)))

    def _resume_session_close(self) -> BatchReport:
        """Finish a close the process died in (its cancels durable, its summary not), at that
        close's event time. Then run the close of a day the engine rolled in a batch whose
        close never ran (the process died in between, or a cancel was refused): that day's DAY
        orders are still working. It runs at the engine's own event time, as the live close
        would have: a later time could roll the day again inside the close, where `process`
        would not see it."""
        report = BatchReport()
        interrupted = interrupted_close(self.runtime)
        if interrupted is not None:
            self._log.warning("session_close_finished", day_orders=len(interrupted.canceled),
                              ts=interrupted.ts.isoformat())
            self._note_time(interrupted.ts)
            merge_report(report, self.reconciler.finish_session_close(
                interrupted, reconcile=self.settings.reconcile_with_broker))
        engine = self.runtime.engine
        left_open = day_orders_left_open(engine)
        if left_open:
            ts = engine.state.now
            self._log.warning("session_close_resumed", day_orders=len(left_open),
                              ts=ts.isoformat())
            with kept_on_stop(report):
                merge_report(report, self.session_close(ts, day_orders=left_open))
        return report

    # ------------------------------------------------------------ the batch path

    def process(self, events: Sequence[InputEvent], *, source: str = "", line: int = 0,
                feed: str = DEFAULT_FEED,
                on_durable: Callable[[BatchReport], None] | None = None) -> BatchReport:
        if not events:
            return BatchReport()
        if self.broker_health.halted and \
                self.runtime.engine.state.guard.mode is not Mode.HALTED:
            self.broker_health.operator_resumed()
        latest = max(event.ts for event in events)
        self._note_time(latest)
        rolled_before = self.runtime.engine.state.days_rolled
        report = self.runtime.process(events, source=source, line=line, on_durable=on_durable)
        # The batch is durable and its orders sent: a journal failure in the steps below
        # stops the runtime with it (and with what they made durable before the failure).
        with kept_on_stop(report):
            if self.runtime.engine.state.days_rolled != rolled_before:
                # The engine rolled the trading day (the calendar's session close, or 00:00
                # UTC): the session's hygiene runs right after, on the same event time.
                merge_report(report, self._close_ended_day(latest))
            self._batches += 1
            observed = self.feeds.observe(feed, events, latest)
            if observed:
                merge_report(report, self.runtime.inject(observed, origin="health"))
            merge_report(report, self.housekeeping(latest))
        return report

    def housekeeping(self, ts: datetime) -> BatchReport:
        """Reconnect probes, clock sync and reconciliation when they are due."""
        self._note_time(ts)
        report = BatchReport()
        now = self.clock.monotonic()
        if self._due(self._last_probe, self.settings.probe_every_s, now):
            self._last_probe = now
            probed = self.broker_health.probe(self.runtime, ts)
            if probed:
                merge_report(report, self.runtime.inject(probed, origin="health"))
        with kept_on_stop(report):
            merge_report(report, self._clock_check(ts))
            every = self.settings.reconcile_every_batches
            if every and self._batches and self._batches % every == 0 \
                    and self.settings.reconcile_with_broker:
                merge_report(report, self.reconciler.reconcile(ts))
        return report

    def _close_ended_day(self, ts: datetime) -> BatchReport:
        """The session close after the engine rolled the day: it cancels the DAY orders of the
        day that ended, not those a later event of the same batch placed on the new day."""
        return self.session_close(ts, day_orders=day_orders_left_open(self.runtime.engine))

    def session_close(self, ts: datetime, *,
                      day_orders: Sequence[OrderRecord] | None = None) -> BatchReport:
        self._note_time(ts)
        return self.reconciler.session_close(
            ts, reconcile=self.settings.reconcile_with_broker, day_orders=day_orders)

    def _clock_check(self, ts: datetime) -> BatchReport:
        if not self.settings.check_clock:
            return BatchReport()
        now = self.clock.monotonic()
        if not self._due(self._last_clock_check,
                                       self.settings.clock_check_every_s, now):
            return BatchReport()
        self._last_clock_check = now
        events = self.clock_watch.check(ts)
        return self.runtime.inject(events, origin="clock") if events else BatchReport()

    @staticmethod
    def _due(last: float | None, every: float, now: float) -> bool:
        return last is None or now - last >= every

    def _note_time(self, ts: datetime) -> None:
        if isinstance(self.clock, EventClock):
            self.clock.observe(ts)
        if self._event_time is None or ts > self._event_time:
            self._event_time = ts

    # ------------------------------------------------------------ views

    def breakers(self) -> list[BreakerSnapshot]:
        """Every breaker's state, sorted by dependency (for status pages and metrics)."""
        return self.board.snapshot()

    def close(self) -> None:
        self.runtime.close()


def require_intact_journal(journal: Journal) -> None:
    """Refuse to start on a journal whose hash chain is broken (a corrupted tail, an edited
    record) or that ends before the head its head file kept (records cut from the end, an
    older copy restored): acting on a state it cannot prove would be guessing."""
    try:
        verdict = check_kept_heads(journal, journal.verify())
    except JournalDamaged as exc:
        raise _unreadable(journal.url, exc) from exc
    _require(journal.url, verdict)


_CANNOT_PROVE = ("the gateway will not start on a journal it cannot prove (restore it from a "
                 "replica or start a new one)")


def _require(url: str, verdict: Verdict) -> None:
    report, note = verdict
    if note:
        log.warning("journal_head_file_ignored", note=note)
    if report.ok:
        return
    if isinstance(report, SnapshotFailure):
        # Every record is intact: the message says how to set the snapshot aside, and a new
        # journal would forget positions and decided intents the records hold.
        raise StartRefused(
            f"{url}: journal verification failed at seq {report.first_bad_seq}: "
            f"{report.message}; the gateway will not start on a snapshot it cannot prove")
    raise StartRefused(f"{url}: journal verification failed at seq {report.first_bad_seq}: "
                       f"{report.message}; {_CANNOT_PROVE}")


def _unreadable(url: str, exc: JournalDamaged) -> StartRefused:
    """The refusal for a journal whose storage is damaged: its chain cannot be read to the
    end, so it cannot be proven (`journal verify` stops on it as well)."""
    return StartRefused(f"{url}: journal verification failed: the journal could not be read "
                        f"to the end: {exc}; {_CANNOT_PROVE}")


# What a replay raises on a record it cannot use (an undecodable payload, a value the model
# refuses, arithmetic on it, a journal read failing): when the chain check finds the journal
# broken as well, the broken chain is the cause to report.
_REPLAY_DAMAGE = (JournalError, msgspec.DecodeError, ValueError, ArithmeticError, LookupError,
                  TypeError)


def open_proven(journal: Journal, url: str | None,
                open_runtime: Callable[[Callable[[], None]], Runtime]) -> Runtime:
    """`open_runtime(on_replayed)` (a `Runtime.open_on` call passing `on_replayed` on) once the
    journal's chain is proven: checked beside the replay on a large journal, before it on a
    small one (`StartupCheck`). Raises StartRefused for a broken chain, also when the replay
    failed on the damaged record first; anything else `open_runtime` raises passes through.
    The journal is closed on every failure (`Runtime.open_on` closes it itself)."""
    try:
        check = StartupCheck.begin(journal, url)
    except BaseException:
        journal.close()
        raise
    try:
        return open_runtime(check.require)
    except StartRefused:
        raise
    except _REPLAY_DAMAGE:
        broken = check.broken()
        if broken is not None:
            raise broken from None
        raise
    finally:
        check.close()


PARALLEL_CHECK_MIN_RECORDS = 100_000
"""From this many records on, start-up checks the chain in a second process while it replays
(`StartupCheck`); below it, starting that process costs more than it saves."""


class StartupCheck:
    """`require_intact_journal`, run beside the start-up's snapshot load and tail replay.

    `begin` starts the chain check of a large journal in a second process (`journal.checker`),
    on its own read-only handle opened from `url` (the journal's full URL: `journal.url` is
    redacted; pass None where the program's entry point may not be guarded, since the second
    process imports the main module again); `Runtime.open_on(..., on_replayed=check.require)`
    then replays while it runs and waits for the verdict before anything is appended or sent
    to a broker. A small
    journal, or no `url`, is checked in this process by `begin`, before the replay, which
    raises StartRefused at once for a broken chain. Either way the same verdict refuses the
    same journals, with the same message.

    When the replay itself fails (a record edited into something the engine cannot read is
    met by the replay before the check reaches it), `broken()` gives the chain's refusal, which
    names the damaged record, in place of the replay's error."""

    def __init__(self, journal: Journal, child: ChainCheckProcess | None) -> None:
        self._journal = journal
        self._child = child
        self._verdict: Verdict | None = None

    @classmethod
    def begin(cls, journal: Journal, url: str | None) -> StartupCheck:
        if url is not None and journal.last_seq() >= PARALLEL_CHECK_MIN_RECORDS:
            try:
                return cls(journal, ChainCheckProcess(url, getattr(journal, "epoch", None)))
            except (OSError, RuntimeError) as exc:  # no second process: check here instead
                log.warning("chain_check_process_not_started", error=str(exc))
        check = cls(journal, None)
        check.require()  # here and now, before the journal is read for anything else
        return check

    def require(self) -> None:
        """Raise StartRefused unless the chain is intact (waits for the second process), also
        when damaged storage keeps it from being read to the end."""
        try:
            verdict = self._result()
        except JournalDamaged as exc:
            raise _unreadable(self._journal.url, exc) from exc
        _require(self._journal.url, verdict)

    def broken(self) -> StartRefused | None:
        """The refusal, if the chain is broken; None if it is intact or cannot be read."""
        try:
            self.require()
        except StartRefused as exc:
            return exc
        except JournalError:
            return None
        return None

    def close(self) -> None:
        if self._child is not None:
            self._child.close()

    def _result(self) -> Verdict:
        if self._verdict is None:
            verdict = None
            if self._child is not None:
                try:
                    verdict = self._child.result()
                except JournalError as exc:  # it could not read what this process reads
                    log.warning("chain_check_process_failed", error=str(exc))
            if verdict is None:  # checked here: no second process, or it gave no answer
                self._child = None
                verdict = check_kept_heads(self._journal, self._journal.verify())
            self._verdict = verdict
        return self._verdict
