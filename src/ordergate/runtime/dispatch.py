"""The Dispatcher: the ONLY code that calls a broker adapter's `submit` and `cancel`
(invariant 1; `tests/runtime/test_single_dispatch_chokepoint.py` walks the package's AST to
prove it).

It is handed `Dispatch` and `CancelOrder` outputs together with the sequence number of the
journal record that holds them, and refuses any that is not yet durable (invariant 2: the
journal is the write-ahead log, the broker call comes after the flush). Whatever the broker
answers comes back as input events (`OrderAck`, `OrderReject`, `OrderCanceled`,
`CancelRefused`, and a `DependencyStatus` when the broker's health changes; an accepted
order's acknowledgement arrives with the broker's own events from `poll_events`) for the
runtime to journal and feed to the engine like any other input.

A submit whose outcome is unknown (timeout, connection reset, a malformed answer) is never
re-sent blindly (`resolve`): the broker is asked by client order id
(`resilience.retry.safe_to_resubmit`) and the order is sent again only when the venue refuses
a repeated client order id (`BrokerCapabilities.unique_client_order_id`) AND has never seen
it. A lookup that misses may only mean "not visible yet" (eventual consistency), so at a
venue that would take a second order with the same id (a Tradier tag, a Deribit label) the
order is never sent again: it stays *unresolved* and every later `resolve` only asks. When
the question cannot be answered at all, the order stays unresolved too; the runtime notes it
in the journal and asks again later, and the engine has been told the broker is unhealthy
(no new risk). A resend that the venue refuses is followed by one more lookup: a venue that
now shows the client order id holds the original order (the refusal was of the duplicate),
which its own events report; it is not rejected. A venue that still does not show it may be
lagging behind a live original, so the order stays unresolved and is rejected only once the
venue has refused it without showing it for `lost_after`.

A submit the venue refused as rate limited (HTTP 429, `BrokerRateLimited`), or one the adapter
never sent (`BrokerNotSent`: a read it needs before sending failed), is a definite answer that
nothing was placed: the order is rejected at once (`OrderReject`, code "broker", a reason that
starts "not placed:" and gives the venue's Retry-After when it sent one), which frees its
reservation so the strategy can send it again; it is never resolved or resent here. The
failure still counts for the broker_submit breaker and health as `resilience.errors.classify`
says (a 429 as RATE_LIMIT, a BrokerNotSent as what stopped it: a timeout as TRANSIENT_NETWORK).
A resend refused as rate limited is different: the original submit had no answer, so the
order may be live and is not rejected; its resend is held as the circuit would hold it (only
asked about from then on, declared lost after `lost_after`), never sent a third time at once
against the venue's Retry-After.

The circuit refusal (`CallMonitor.allow_submit`) turns only a first submit into an
`OrderReject` "not sent": the venue has never been asked. An order whose outcome is unknown
may already be live there, so when its resend is held by the circuit (or an automatic halt)
it stays unresolved and is from then on only asked about, never sent again: late, after the
outage, it would be a stale order. It ends like an order at a venue that takes repeated ids:
shown by the venue, or declared lost after `lost_after`. The hold outlives a restart: the
runtime journals it (`UnresolvedDispatch.resend_held`) and hands it back (`recover_held`), and
when the replayed engine still holds the broker_submit circuit open, start-up, which runs
before any monitor is attached, holds every resend it would make (`hold_resends`).

What ends the wait for a venue that never shows the order: the reservation stays while the
order could be live, so the order stays unresolved (visible in the journal and in
`Runtime.awaiting`) until the venue shows it, or until it has answered "not found" for
`lost_after` (60 s by default) of event time. Only then is it declared lost with an
`OrderReject` (code `lost_unseen`) whose reason says it was never sent again, which frees the
reservation: a venue that has not shown an order a minute after taking it is not going to,
and keeping it unresolved forever would hold the exposure and every snapshot with it. If it
shows up after all, reconciliation reports it as an orphan and its fills are still booked.
The clock is event time (the newest timestamp the Dispatcher has been handed: orders, polls,
market data, and the runtime's clock before it retries), never the wall clock, so the same
inputs and answers declare it at the same point. A restart starts the wait again (a longer
wait, never a shorter one): the lookups made during start-up, on the journal's past clock,
do not start it; the first retry after start-up does.

A cancel of an order the broker says it does not know (its lookup finds nothing: the broker
never received the order or has lost it, a "zombie" that reconciliation reports) would
otherwise do nothing, and the order would stay working in the gateway for good, with its
reservation and the reconciliation reason that holds the mode. Such an order is ended by the
Dispatcher with an `OrderCanceled` whose reason says so (`UNKNOWN_TO_BROKER_REASON`), which
frees its reservation; the next reconciliation then finds the books agreeing. The decision
waits for the batch's poll (`poll`), after the runtime has asked again about its unresolved
orders, and it is never made for an order whose submit outcome this process has not learned:
sent or asked about with no answer yet (`_unanswered`), unseen while the wait runs, or held.
Those may still appear at the venue, so their cancel keeps the existing wait (it does
nothing; the venue's own events or the lost declaration end them).

A cancel the venue refuses (`BrokerOrderRejected`: Alpaca's 422 "order is not cancelable")
comes back as a `CancelRefused` with the venue's words, which the engine journals like any
answer: it alerts and clears the order's cancel-requested mark, so a later cancel request,
cancel-all or session close asks again. The order is looked up once first: one that has
ended at the venue meanwhile (filled or canceled, the usual reason for the refusal) is left
to the venue's own events. A refused cancel of an orphan (`cancel_orphan`) is only logged: the
gateway holds no such order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog

from ordergate.brokers.base import BrokerAdapter, BrokerError, BrokerNotSent, OrderStatus
from ordergate.model.events import (
    CancelOrder,
    CancelRefused,
    DependencyStatus,
    Dispatch,
    Fill,
    InputEvent,
    OrderAck,
    OrderCanceled,
    OrderReject,
)
from ordergate.model.market import MarketSnapshot
from ordergate.resilience.errors import (
    DEPENDENCY_ERRORS,
    Action,
    Category,
    Classification,
    category_of,
    classify,
    retry_after_s,
    to_event,
)
from ordergate.resilience.retry import safe_to_resubmit
from ordergate.runtime import faults

log = structlog.get_logger("ordergate.runtime.dispatch")

SUBMIT_DEPENDENCY = "broker_submit"
READS_DEPENDENCY = "broker_reads"
CIRCUIT_PREFIX = "circuit:"
"""A breaker's own dependency name as the engine sees it (`circuit:broker_submit`)."""
CIRCUIT_OPEN_CODE = "circuit_open"
LOST_CODE = "lost_unseen"
_BROKER_ANSWERS = (OrderAck, OrderReject, Fill, OrderCanceled)
UNKNOWN_TO_BROKER_REASON = (
    "ended by the gateway: the cancel found no order {client_order_id} at {broker} (it never "
    "received it or has lost it), so nothing is working there to cancel (cancel: "
    "{cancel_reason})")
"""The reason of the `OrderCanceled` that ends an order the broker does not know (module doc)."""
_HELD_BY_CIRCUIT = (f"its resend was held: {SUBMIT_DEPENDENCY} circuit open or automatic halt; "
                    "an order that may be live is not sent late")
LOST_AFTER = timedelta(seconds=60)
"""Event time of "not found" answers after which an order with no submit answer, at a venue
that does not refuse a repeated client order id, is declared lost (see the module doc)."""


class CallMonitor(Protocol):
    """Watches every broker call the Dispatcher makes (circuit breakers, disconnect storms;
    see `runtime.health.BrokerHealth`). What it returns are input events for the runtime to
    journal with the broker's own answers."""

    def allow_submit(self) -> bool:
        """May an order be sent now? False while the broker_submit circuit is open."""
        ...

    def succeeded(self, dependency: str, ts: datetime) -> list[InputEvent]: ...

    def failed(self, verdict: Classification, ts: datetime) -> list[InputEvent]: ...


@runtime_checkable
class MarketListener(Protocol):
    """A simulated broker that fills against the same market data the gateway sees."""

    def on_market(self, snapshot: MarketSnapshot) -> None: ...


class NotDurable(RuntimeError):
    """A broker call was attempted for a record that is not yet durable: a runtime bug."""


@dataclass(slots=True)
class Outcome:
    """What the broker said, as input events; `unresolved` when nobody knows yet."""

    events: list[InputEvent] = field(default_factory=list)
    unresolved: bool = False
    detail: str = ""
    # the broker refused the cancel of an order the gateway holds no record of (an orphan):
    # its words; no event says so, as the engine knows no such order
    refused: str = ""


class Dispatcher:
    """Sends durable orders and cancels to one broker adapter and reports what happened."""

    def __init__(self, broker: BrokerAdapter, durable_through: Callable[[], int], *,
                 show_market: bool = True, run_id: str = "",
                 lost_after: timedelta = LOST_AFTER) -> None:
        """`show_market=False` keeps market data from a simulated broker (it then fills only
        what it can without quotes, e.g. limit orders at their limit). `lost_after`: see
        `LOST_AFTER`."""
        self._broker = broker
        self._durable_through = durable_through
        self._market = broker if show_market and isinstance(broker, MarketListener) else None
        self._healthy: dict[str, bool] = {SUBMIT_DEPENDENCY: True, READS_DEPENDENCY: True}
        # event time before which the broker asked not to be called again (its Retry-After,
        # or the classification's minimum backoff), from its last failure
        self.quiet_until: datetime | None = None
        self._log = log.bind(run_id=run_id, broker=broker.name)
        self._monitor: CallMonitor | None = None
        self._lost_after = lost_after
        self._event_time: datetime | None = None
        # client order id -> event time of the first "not found" answer since the last time
        # the order was sent or seen (orders whose submit had no answer; see `resolve`).
        self._unseen_since: dict[str, datetime] = {}
        # Orders with no submit answer whose resend was held (by the circuit, or refused as
        # rate limited) -> why: only asked about since.
        self._resend_held: dict[str, str] = {}
        # Start-up on an engine that holds the broker_submit circuit open: no resend until a
        # monitor (with the recovered breaker) takes over (`hold_resends`).
        self._holding_resends = False
        # Orders sent or asked about whose outcome this process has not learned (no broker
        # answer seen, not shown by the venue): a cancel never ends them as unknown.
        self._unanswered: set[str] = set()
        # Cancels of orders the broker did not show, decided at the next poll (module doc).
        self._unknown_cancels: dict[str, CancelOrder] = {}

    def attach(self, monitor: CallMonitor) -> None:
        """Report every broker call to `monitor`, and ask it before each submit (it now
        decides about resends: `hold_resends` ends)."""
        self._monitor = monitor
        self._holding_resends = False

    def hold_resends(self) -> None:
        """The replayed engine holds the broker_submit circuit open (the process stopped
        inside its open period), and no monitor is attached yet to say so: until one is, an
        order that would be sent again is held instead, for good, as the open circuit would
        have held it. Nothing is journaled here."""
        self._holding_resends = True

    def recover_held(self, client_order_id: str) -> None:
        """The journal says the resend of this unresolved order was held before the restart:
        it stays held (only asked about, declared lost after the wait). Nothing is journaled
        here."""
        self._resend_held[client_order_id] = _HELD_BY_CIRCUIT

    def resend_is_held(self, client_order_id: str) -> bool:
        """Is this order only asked about from now on because its resend was held?"""
        return client_order_id in self._resend_held

    def _may_resend(self) -> bool:
        if self._holding_resends:
            return False
        return self._monitor is None or self._monitor.allow_submit()

    @property
    def monitor(self) -> CallMonitor | None:
        return self._monitor

    @property
    def broker(self) -> BrokerAdapter:
        return self._broker

    @property
    def listens_to_market(self) -> bool:
        return self._market is not None

    def _saw(self, ts: datetime) -> datetime:
        """Note an event time handed in; the newest one is the Dispatcher's clock."""
        if self._event_time is None or ts > self._event_time:
            self._event_time = ts
        return self._event_time

    def _require_durable(self, seq: int, what: str) -> None:
        durable = self._durable_through()
        if seq > durable:
            raise NotDurable(f"{what}: journal record {seq} is not durable yet "
                             f"(durable through {durable}); flush before acting")

    # ------------------------------------------------------------ health reporting

    def _health(self, dependency: str, healthy: bool, ts: datetime,
                failure: DependencyStatus | None = None) -> list[InputEvent]:
        """A DependencyStatus event only when the dependency's health changes (plus what the
        monitor says about a successful call)."""
        watched = (self._monitor.succeeded(dependency, ts)
                   if healthy and self._monitor is not None else [])
        if self._healthy[dependency] == healthy:
            return watched
        self._healthy[dependency] = healthy
        if healthy:
            return [DependencyStatus(ts=ts, dependency=dependency, healthy=True), *watched]
        assert failure is not None
        return [failure]

    def recover_unhealthy(self, dependency: str) -> None:
        """The replayed engine holds `dependency` unhealthy (the process stopped before it
        answered again): start from that, so its next good answer reports it healthy. Nothing
        is journaled here."""
        if dependency in self._healthy:
            self._healthy[dependency] = False

    def unhealthy(self) -> list[str]:
        """The broker dependencies this dispatcher last reported unhealthy."""
        return [name for name, healthy in self._healthy.items() if not healthy]

    def mark_healthy(self, dependency: str, ts: datetime) -> list[InputEvent]:
        """The dependency answered a health probe: report it healthy if it was not."""
        if self._healthy.get(dependency, True):
            return []
        self._healthy[dependency] = True
        return [DependencyStatus(ts=ts, dependency=dependency, healthy=True)]

    def _failure(self, exc: BaseException, dependency: str, ts: datetime,
                 symbol: str | None) -> tuple[list[InputEvent], bool]:
        """(health events, order definitively rejected) for a broker error."""
        verdict = classify(exc, dependency, symbol)
        monitor = self._monitor
        if verdict.category is Category.ORDER_REJECTED or verdict.action is Action.NONE:
            # The broker answered: the connection is fine, only this order is not.
            watched = monitor.succeeded(dependency, ts) if monitor is not None else []
            return watched, verdict.category is Category.ORDER_REJECTED
        status = to_event(verdict, ts)
        if verdict.backoff_hint_s is not None:
            self.quiet_until = ts + timedelta(seconds=verdict.backoff_hint_s)
        watched = monitor.failed(verdict, ts) if monitor is not None else []
        return [*self._health(dependency, False, ts, status), *watched], False

    def _circuit_refusal(self, order: Dispatch) -> Outcome | None:
        """While the broker_submit circuit is open no order is sent: it is rejected here, so
        the engine releases what it reserved (the broker never saw it)."""
        if self._monitor is None or self._monitor.allow_submit():
            return None
        log.warning("submit_refused_circuit_open", intent_id=order.intent_id,
                    client_order_id=order.client_order_id)
        return Outcome(events=[OrderReject(
            ts=order.ts, client_order_id=order.client_order_id,
            reason=f"not sent: {SUBMIT_DEPENDENCY} is held (circuit open or automatic halt)",
            code=CIRCUIT_OPEN_CODE)])

    # ------------------------------------------------------------ market data (simulation)

    def show_market(self, snapshot: MarketSnapshot, seq: int) -> None:
        if self._market is None:
            return
        self._require_durable(seq, f"market {snapshot.symbol}")
        self._saw(snapshot.ts)
        faults.crossing("before_market_to_broker")
        self._market.on_market(snapshot)

    # ------------------------------------------------------------ orders

    def submit(self, order: Dispatch, seq: int) -> Outcome:
        """Send a durable order once. Unknown outcome -> ask the broker, never resend blindly."""
        self._require_durable(seq, f"dispatch {order.client_order_id}")
        self._saw(order.ts)
        refused = self._circuit_refusal(order)
        if refused is not None:
            return refused
        self._unanswered.add(order.client_order_id)
        faults.crossing("before_submit")
        try:
            result = self._broker.submit(order)
        except DEPENDENCY_ERRORS as exc:
            bound = self._log.bind(intent_id=order.intent_id,
                                   client_order_id=order.client_order_id)
            health, rejected = self._failure(exc, SUBMIT_DEPENDENCY, order.ts, order.symbol)
            not_placed = _not_placed(exc, self._broker.name)
            if rejected or not_placed is not None:
                # A definite answer: rejected, or nothing was placed (module doc).
                self._unanswered.discard(order.client_order_id)
                reason = not_placed if not_placed is not None else str(exc)
                bound.info("order_rejected", reason=reason)
                return Outcome(events=[*health, OrderReject(
                    ts=order.ts, client_order_id=order.client_order_id, reason=reason,
                    code=exc.code if isinstance(exc, BrokerError) else "broker")])
            bound.warning("submit_outcome_unknown", error=f"{type(exc).__name__}: {exc}")
            outcome = self.resolve(order, seq, journal_has_ack=False)
            outcome.events[:0] = health
            return outcome
        faults.crossing("after_submit")
        health = self._health(SUBMIT_DEPENDENCY, True, order.ts)
        if result.accepted:
            # The acknowledgement itself arrives with the broker's events (poll_events) and is
            # journaled; a log line per accepted order would only cost time on the hot path.
            return Outcome(events=health)
        self._unanswered.discard(order.client_order_id)
        self._log.info("order_rejected", intent_id=order.intent_id,
                       client_order_id=order.client_order_id, reason=result.reason)
        return Outcome(events=[*health, OrderReject(
            ts=order.ts, client_order_id=order.client_order_id, reason=result.reason,
            code=result.code or "broker")])

    def advance(self, ts: datetime) -> None:
        """Event time has reached `ts` (the runtime's clock, before it retries unresolved
        orders): the wait of an order not found is measured on it."""
        self._saw(ts)

    def resolve(self, order: Dispatch, seq: int, *, journal_has_ack: bool = False,
                recovering: bool = False) -> Outcome:
        """An order whose fate is unknown (after a timeout, or found unanswered in the journal
        on restart): ask the broker by client order id. It is sent again only when the venue
        refuses a repeated client order id and has never seen it (`safe_to_resubmit`); at any
        other venue this only asks, and an order it keeps not finding is declared lost after
        `lost_after` of event time (module doc), never sent twice. `recovering`: asked during
        start-up, on the clock of the journal's past, so a miss there does not start the wait
        (the first retry after start-up does)."""
        self._require_durable(seq, f"dispatch {order.client_order_id}")
        now = self._saw(order.ts)
        cid = order.client_order_id
        self._unanswered.add(cid)
        if cid not in self._resend_held and safe_to_resubmit(cid, self._broker,
                                                             journal_has_ack):
            if not self._may_resend():
                # Its outcome is unknown (the venue may hold it and not show it yet): held,
                # not rejected, and from now on only asked about.
                self._resend_held[cid] = _HELD_BY_CIRCUIT
                self._log.warning("resend_held_circuit_open", intent_id=order.intent_id,
                                  client_order_id=cid)
                return self._not_found(order, now, [], recovering)
            self._log.info("resubmitting_unseen_order", intent_id=order.intent_id,
                           client_order_id=cid)
            return self._resubmit_unseen(order, now, recovering)
        try:
            known = self._broker.get_order(cid)
        except DEPENDENCY_ERRORS as exc:
            health, _ = self._failure(exc, READS_DEPENDENCY, order.ts, order.symbol)
            return Outcome(events=health, unresolved=True,
                           detail=f"{type(exc).__name__}: {exc}")
        health = self._health(READS_DEPENDENCY, True, order.ts)
        if known is None:
            return self._not_found(order, now, health, recovering)
        self._settled(cid)
        # The broker has the order: its own events (ack, fills...) say what became of it.
        self._log.info("order_known_to_broker", intent_id=order.intent_id,
                       client_order_id=cid, status=known.status.value)
        return Outcome(events=health)

    def _not_found(self, order: Dispatch, now: datetime, health: list[InputEvent],
                   recovering: bool) -> Outcome:
        """The broker does not show an order whose submit had no answer, and it may not be
        sent again: wait (unresolved), or declare it lost once the wait is over."""
        cid = order.client_order_id
        name = self._broker.name
        if cid in self._resend_held:
            why = self._resend_held[cid]
        elif self._broker.capabilities.unique_client_order_id:
            # It was found by `safe_to_resubmit` (or that lookup failed) and missed now: the
            # next `resolve` asks again and, if it is still unseen, sends it (refused if held).
            return Outcome(events=health, unresolved=True, detail="broker lookup inconsistent")
        else:
            why = f"{name} does not refuse a repeated client order id"
        return self._wait(
            order, now, health, recovering,
            waiting=(f"no answer to the submit and not shown by {name} for {{waited}} s; not "
                     f"sent again ({why})"),
            lost=(f"declared lost: no answer to the submit, and {name} did not show client "
                  f"order id {order.client_order_id} in {{waited}} s of lookups; it was never "
                  "sent again"),
            code=LOST_CODE)

    def _wait(self, order: Dispatch, now: datetime, health: list[InputEvent],
              recovering: bool, *, waiting: str, lost: str, code: str) -> Outcome:
        """Unresolved until the venue has not shown the order for `lost_after` of event time
        (`waiting` / `lost` take the seconds waited as `{waited}`), then an OrderReject with
        `lost` as its reason. A miss while recovering neither starts nor ends the wait."""
        cid = order.client_order_id
        if recovering:
            return Outcome(events=health, unresolved=True, detail=(
                f"{waiting.format(waited=0)} (asked at start-up; the wait starts with the next "
                "batch)"))
        since = self._unseen_since.setdefault(cid, now)
        waited = now - since
        seconds = f"{waited.total_seconds():g}"
        if waited < self._lost_after:
            return Outcome(events=health, unresolved=True, detail=waiting.format(waited=seconds))
        self._settled(cid)
        self._log.warning("order_declared_lost", intent_id=order.intent_id,
                          client_order_id=cid, waited_s=waited.total_seconds(), code=code)
        return Outcome(events=[*health, OrderReject(
            ts=now, client_order_id=cid, reason=lost.format(waited=seconds), code=code)])

    def _settled(self, cid: str) -> None:
        """The venue showed or answered the order, or it was ended here: nothing left to wait
        for."""
        self._unseen_since.pop(cid, None)
        self._resend_held.pop(cid, None)
        self._unanswered.discard(cid)

    def _outcome_unknown(self, cid: str) -> bool:
        """Sent or asked about with no answer yet, unseen while the wait runs, or held: the
        order may still appear at the venue."""
        return cid in self._unanswered or cid in self._unseen_since or cid in self._resend_held

    def _resubmit_unseen(self, order: Dispatch, now: datetime, recovering: bool) -> Outcome:
        """Send again an order that the venue, which refuses a repeated client order id, says
        it has never seen (the circuit allowed it: `resolve`). A refusal is checked with one
        more lookup before it counts."""
        cid = order.client_order_id
        faults.crossing("before_submit")
        try:
            result = self._broker.submit(order)
        except DEPENDENCY_ERRORS as exc:
            health, rejected = self._failure(exc, SUBMIT_DEPENDENCY, order.ts, order.symbol)
            if rejected:
                return self._after_refused_resend(order, health, str(exc), now, recovering)
            if category_of(exc) is Category.RATE_LIMIT:
                # The resend was not placed, but the first submit had no answer (the order
                # may be live): not rejected, and not sent a third time against the venue's
                # Retry-After either. Held like a resend the circuit holds.
                self._resend_held[cid] = (
                    f"its resend was refused as rate limited{_retry_after_text(exc)} "
                    f"({type(exc).__name__}: {exc}); an order that may be live is not sent "
                    "late")
                self._log.warning("resend_held_rate_limited", intent_id=order.intent_id,
                                  client_order_id=cid, retry_after_s=retry_after_s(exc))
                return self._not_found(order, now, health, recovering)
            return Outcome(events=health, unresolved=True, detail=f"{type(exc).__name__}: {exc}")
        faults.crossing("after_submit")
        health = self._health(SUBMIT_DEPENDENCY, True, order.ts)
        if result.accepted:
            self._unseen_since.pop(cid, None)
            return Outcome(events=health)
        return self._after_refused_resend(order, health, result.reason, now, recovering)

    def _after_refused_resend(self, order: Dispatch, health: list[InputEvent],
                              reason: str, now: datetime, recovering: bool) -> Outcome:
        """The venue refused the resend. If it now shows the client order id, it holds the
        original order (the refusal was of the duplicate, e.g. Alpaca's 422 "client_order_id
        must be unique"), which its own events report: not a reject. If it shows it as
        rejected, the order is rejected. If it does not show it, the refusal may be of the
        duplicate while the venue's lookups lag (the original is live) or of the order itself:
        the order stays unresolved, asked and sent again (refused if held) each batch, and is
        rejected only once the venue has refused it without showing it for `lost_after`."""
        cid = order.client_order_id
        try:
            known = self._broker.get_order(cid)
        except DEPENDENCY_ERRORS as exc:
            more, _ = self._failure(exc, READS_DEPENDENCY, order.ts, order.symbol)
            return Outcome(events=[*health, *more], unresolved=True, detail=(
                f"resend refused ({reason}) and the broker could not be asked whether it "
                f"holds the order: {type(exc).__name__}: {exc}"))
        health = [*health, *self._health(READS_DEPENDENCY, True, order.ts)]
        if known is not None and known.status is not OrderStatus.REJECTED:
            self._settled(cid)
            self._log.info("resend_refused_original_known", intent_id=order.intent_id,
                           client_order_id=cid, status=known.status.value, reason=reason)
            return Outcome(events=health)
        if known is None:
            return self._wait(
                order, now, health, recovering,
                waiting=(f"no answer to the submit; the resend was refused ({reason}) and "
                         f"{self._broker.name} has not shown the order for {{waited}} s"),
                lost=(f"{reason} (the resend of an order whose submit had no answer; "
                      f"{self._broker.name} did not show it in {{waited}} s of lookups)"),
                code="broker")
        self._settled(cid)
        self._log.info("order_rejected", intent_id=order.intent_id, client_order_id=cid,
                       reason=reason)
        return Outcome(events=[*health, OrderReject(ts=order.ts, client_order_id=cid,
                                                    reason=reason, code="broker")])

    def cancel(self, order: CancelOrder, seq: int) -> Outcome:
        """Cancel a working order. Asking twice is harmless; the confirmation comes back as
        OrderCanceled (here, or later through the broker's events). An order the broker does
        not know is ended at the next `poll` unless its submit outcome is still unknown
        (module doc)."""
        return self._cancel(order, seq, end_unknown=True)

    def _cancel(self, order: CancelOrder, seq: int, *, end_unknown: bool) -> Outcome:
        self._require_durable(seq, f"cancel {order.client_order_id}")
        self._saw(order.ts)
        cid = order.client_order_id
        try:
            known = self._broker.get_order(cid)
        except DEPENDENCY_ERRORS as exc:
            health, _ = self._failure(exc, READS_DEPENDENCY, order.ts, None)
            return Outcome(events=health, unresolved=True, detail=f"{type(exc).__name__}: {exc}")
        if known is None and end_unknown:
            if self._outcome_unknown(cid):
                # It may yet appear at the venue: the wait (or the venue's events) ends it.
                self._log.info("cancel_waits_for_unresolved_order", client_order_id=cid)
            else:
                self._unknown_cancels[cid] = order
            return Outcome()
        if known is None or known.status in (OrderStatus.FILLED, OrderStatus.CANCELED,
                                             OrderStatus.REJECTED):
            # Nothing working at the broker: its own events say what became of the order.
            return Outcome()
        faults.crossing("before_cancel")
        try:
            self._broker.cancel(cid)
        except BrokerError as exc:
            health, rejected = self._failure(exc, SUBMIT_DEPENDENCY, order.ts, None)
            if rejected:
                self._log.warning("cancel_refused", client_order_id=cid, reason=str(exc))
                if not end_unknown:  # an orphan: the gateway holds no such order
                    return Outcome(events=health, refused=str(exc))
                return Outcome(events=[*health, *self._refused(order, str(exc))])
            return Outcome(events=health, unresolved=True, detail=f"{type(exc).__name__}: {exc}")
        faults.crossing("after_cancel")
        return Outcome(events=self._health(SUBMIT_DEPENDENCY, True, order.ts))

    def _refused(self, order: CancelOrder, reason: str) -> list[InputEvent]:
        """The broker refused the cancel of a working order: a `CancelRefused` for the engine
        (module doc), unless the order has ended there meanwhile (filled or canceled, the
        usual reason for "not cancelable"), which the broker's own events report."""
        cid = order.client_order_id
        try:
            known = self._broker.get_order(cid)
        except DEPENDENCY_ERRORS as exc:
            health, _ = self._failure(exc, READS_DEPENDENCY, order.ts, None)
            return [*health, CancelRefused(ts=order.ts, client_order_id=cid, reason=reason)]
        health = self._health(READS_DEPENDENCY, True, order.ts)
        if known is not None and known.status in (OrderStatus.FILLED, OrderStatus.CANCELED,
                                                  OrderStatus.REJECTED):
            self._log.info("cancel_refused_order_ended", client_order_id=cid,
                           status=known.status.value)
            return health
        return [*health, CancelRefused(ts=order.ts, client_order_id=cid, reason=reason)]

    def cancel_orphan(self, client_order_id: str, seq: int, ts: datetime) -> Outcome:
        """Cancel an order the broker holds and the journal never dispatched (found by
        reconciliation); `seq` is the durable journal record that says so."""
        # The gateway holds no such order: a miss here is never ended as unknown.
        return self._cancel(CancelOrder(ts=ts, client_order_id=client_order_id,
                                        reason="unknown to the gateway (orphan)"), seq,
                            end_unknown=False)

    def poll(self, until: datetime) -> tuple[list[InputEvent], str]:
        """Broker callbacks up to `until` ('' or an error detail when the broker cannot be read)."""
        self._saw(until)
        try:
            events = self._broker.poll_events(until)
        except DEPENDENCY_ERRORS as exc:
            health, _ = self._failure(exc, READS_DEPENDENCY, until, None)
            return health, f"{type(exc).__name__}: {exc}"
        faults.crossing("after_poll")
        if self._unseen_since or self._resend_held or self._unanswered or self._unknown_cancels:
            for event in events:
                if isinstance(event, _BROKER_ANSWERS):  # the venue shows it after all
                    self._settled(event.client_order_id)
                    self._unknown_cancels.pop(event.client_order_id, None)
        return [*self._health(READS_DEPENDENCY, True, until), *events,
                *self._end_unknown_orders()], ""

    def _end_unknown_orders(self) -> list[InputEvent]:
        """End the orders whose cancel found nothing at the broker (module doc). Decided here,
        after the runtime asked again about its unresolved orders: one that turned out to be
        unresolved keeps its wait."""
        if not self._unknown_cancels:
            return []
        pending, self._unknown_cancels = self._unknown_cancels, {}
        ended: list[InputEvent] = []
        for cid, cancel in pending.items():
            if self._outcome_unknown(cid):
                self._log.info("cancel_waits_for_unresolved_order", client_order_id=cid)
                continue
            self._log.warning("order_ended_unknown_to_broker", client_order_id=cid,
                              cancel_reason=cancel.reason)
            ended.append(OrderCanceled(ts=cancel.ts, client_order_id=cid, reason=(
                UNKNOWN_TO_BROKER_REASON.format(client_order_id=cid, broker=self._broker.name,
                                                cancel_reason=cancel.reason or "requested"))))
        return ended


def _retry_after_text(exc: BaseException) -> str:
    wait = retry_after_s(exc)
    return f" (Retry-After {wait:g} s)" if wait is not None else ""


def _not_placed(exc: BaseException, broker: str) -> str | None:
    """The reject reason for a submit error that says for certain nothing was placed: the
    adapter never sent the order (`BrokerNotSent`), or the venue refused it as rate limited
    (HTTP 429); None for any other error."""
    if isinstance(exc, BrokerNotSent):
        return (f"not placed: the order never left for {broker}{_retry_after_text(exc)}; "
                f"{_SEND_AGAIN} ({exc})")
    if category_of(exc) is Category.RATE_LIMIT:
        return (f"not placed: {broker} refused the submit as rate limited"
                f"{_retry_after_text(exc)}; {_SEND_AGAIN} ({type(exc).__name__}: {exc})")
    return None


# the same intent_id is answered its first decision and sends nothing (idempotency)
_SEND_AGAIN = "to try again, send it as a new intent (a new intent_id)"
