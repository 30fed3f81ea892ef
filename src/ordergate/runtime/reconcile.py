"""Reconciliation: does the broker agree with the journal about orders and positions?

Run on start, every N batches and at the session close (`GuardedRuntime` schedules it). It
compares the engine's working orders and positions with the broker's `open_orders()` and
`positions()`:

* an **orphan** order: the broker has it working, the gateway holds no working order of that
  id: it never dispatched it (someone traded on the account behind the gateway's back, or a
  journal was lost), or it dispatched it and saw it end (canceled, say) and the broker shows it
  working again; the finding says which;
* a **zombie** order: the gateway thinks it is working, the broker has never heard of it;
* an **unbooked** order: the broker reports an order of the gateway finished, or filled beyond
  what the gateway has booked, and still does at a later pass at least `unbooked_grace` (event
  time) after it first did, the gateway not having caught up meanwhile. The grace is what a
  fill or cancel still in flight may take to arrive (a venue's, or the simulator's, latency);
  past it, the event was lost and the gateway's books are wrong;
* a **position mismatch**: the broker's quantity for an (account, symbol) is not the gateway's,
  or, with orders of the gateway working there, lies outside [position - unfilled working
  sells, position + unfilled working buys]: the range fills still in flight can explain.

Each finding becomes a journaled `DependencyStatus` (code SYS-009, dependency
`reconciliation:<kind>:<key>`, a detail with both sides' values); the engine raises it as a
mode reason (with an Alert) and moves the mode per `on_reconciliation_mismatch`. A finding
that is gone at a later pass is reported healthy, which clears only its own reason (the mode
stays until an operator resumes). A restarted process starts from the findings the replayed
engine holds (`recover`), so its first clean pass clears them as the old process would have.
With `cancel_unknown_on_start`, orphans found at start-up are canceled through the Dispatcher
(after a durable META note) instead of being raised.

Session close: DAY orders still working are canceled (journaled CancelRequests, in one
feedback batch of origin "session_close"), positions are reconciled, and a summary META record
(`SessionCloseNote`, in a later "session_close" batch of its own) is journaled. A crash can
interrupt it in two places, and the restart finishes either before anything else:

* before the close began (the rolling batch was durable, the close was not): the ended day's
  DAY orders are still working with no cancel requested; `day_orders_left_open` finds them
  and the whole close runs then;
* inside it (its cancels are durable, its summary is not): the newest "session_close" batch
  in the journal is a cancel batch, not a summary; `interrupted_close` finds it and the close
  is finished at its own event time: reconciled and summarized, listing the orders its
  CancelRequests named. Those are not requested again: recovery re-performs the batch's
  cancels (idempotently) if the crash came before they were sent. A close with no DAY order
  to cancel journals only its summary, so it never looks interrupted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import structlog

from ordergate.brokers.base import BrokerOrder, BrokerPosition
from ordergate.brokers.base import OrderStatus as BrokerOrderStatus
from ordergate.engine.calendar import CalendarUnavailable, next_roll
from ordergate.engine.core import Engine
from ordergate.engine.modes import Condition
from ordergate.engine.records import OrderRecord, OrderStatus
from ordergate.evidence.replay import journaled_input
from ordergate.journal import RecordKind
from ordergate.model.events import CancelRequest, DependencyStatus, InputEvent
from ordergate.model.intent import Side, TimeInForce
from ordergate.resilience.errors import DEPENDENCY_ERRORS
from ordergate.runtime import faults
from ordergate.runtime.dispatch import Outcome
from ordergate.runtime.loop import (
    BatchReport,
    Runtime,
    kept_on_stop,
    merge_report,
)
from ordergate.runtime.sources import FeedbackMark, SourceMark, decode_note

log = structlog.get_logger("ordergate.runtime.reconcile")

RECONCILIATION_MISMATCH = "SYS-009"
DEPENDENCY_UNAVAILABLE = "SYS-011"
PREFIX = "reconciliation"
SESSION_CLOSE = "session_close"  # the origin of a close's batches, and who its cancels name
UNREADABLE = f"{PREFIX}:broker"
ZERO = Decimal(0)


UNBOOKED_GRACE = timedelta(seconds=60)


@dataclass(slots=True)
class ReconcileSettings:
    cancel_unknown_on_start: bool = False
    # how long (event time) the broker may report an order finished or filled beyond the
    # gateway's books before the fill or cancel is taken as lost: a message in flight arrives
    # well within it, as the Dispatcher allows an unseen order 60 s before declaring it lost
    unbooked_grace: timedelta = UNBOOKED_GRACE


class ReconcileNote(msgspec.Struct, frozen=True, kw_only=True, tag="og.reconcile",
                    tag_field="type"):
    """META: one reconciliation pass and what it found."""

    ts: datetime
    on_start: bool
    orphans: list[str]
    zombies: list[str]
    positions: list[str]
    canceled: list[str]
    unbooked: list[str] = msgspec.field(default_factory=list)


class OrphanCancelNote(msgspec.Struct, frozen=True, kw_only=True, tag="og.orphan_cancel",
                       tag_field="type"):
    """META: the gateway is about to cancel an order it never dispatched (durable first)."""

    ts: datetime
    client_order_id: str
    symbol: str


class SessionCloseNote(msgspec.Struct, frozen=True, kw_only=True, tag="og.session_close",
                       tag_field="type"):
    """META: the session-close summary."""

    ts: datetime
    day_orders_canceled: list[str]
    positions: dict[str, str]
    mode: str
    mismatches: int


_SUMMARY_PREFIX = b'{"type":"og.session_close",'


@dataclass(frozen=True, slots=True)
class InterruptedClose:
    """A session close whose CancelRequests are in the journal and whose summary is not."""

    ts: datetime
    canceled: tuple[str, ...]


class PositionMismatch(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    symbol: str
    gateway_qty: Decimal
    broker_qty: Decimal


@dataclass(slots=True)
class ReconcileReport:
    ts: datetime
    orphans: list[BrokerOrder] = field(default_factory=list)
    zombies: list[str] = field(default_factory=list)
    unbooked: list[str] = field(default_factory=list)
    positions: list[PositionMismatch] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.zombies or self.unbooked or self.positions
                    or self.error)


_encode = msgspec.json.Encoder(order="deterministic").encode


class Reconciler:
    def __init__(self, runtime: Runtime, settings: ReconcileSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings if settings is not None else ReconcileSettings()
        self.last: ReconcileReport | None = None
        self._raised: dict[str, str] = {}  # dependency key -> detail, while unhealthy
        # orders the last pass saw finished or filled at the broker beyond the gateway's books:
        # client order id -> (finished, the broker's filled quantity, event time first seen so)
        self._unbooked_seen: dict[str, tuple[bool, Decimal, datetime]] = {}

    def recover(self, conditions: Iterable[Condition]) -> None:
        """Start from the findings the engine holds (replayed from the journal): a new process
        would otherwise think none is raised, so a clean pass would never clear them and the
        mode could never be resumed. Nothing is journaled here."""
        prefix = "dependency:"
        for condition in conditions:
            if not condition.key.startswith(f"{prefix}{PREFIX}:"):
                continue
            dependency = condition.key[len(prefix):]
            # the engine lists it as "<dependency>: <detail>"
            self._raised[dependency] = condition.detail.removeprefix(f"{dependency}: ")

    # ------------------------------------------------------------ one pass

    def reconcile(self, ts: datetime, *, on_start: bool = False) -> BatchReport:
        """Compare, journal what differs (and what was resolved), act; returns the batch."""
        found = ReconcileReport(ts=ts)
        self.last = found
        runtime = self.runtime
        broker = runtime.broker
        try:
            broker_orders = broker.open_orders()
            broker_positions = broker.positions()
        except DEPENDENCY_ERRORS as exc:
            found.error = f"{type(exc).__name__}: {exc}"
            log.warning("reconcile_broker_unreadable", error=found.error)
            return self._publish(ts, {UNREADABLE: (
                DEPENDENCY_UNAVAILABLE,
                f"cannot read the broker's orders and positions to reconcile: {found.error}")},
                keep_others=True)
        report = BatchReport()
        problems: dict[str, tuple[str, str]] = {}
        with kept_on_stop(report):  # the orphans canceled on start, should a later write fail
            self._orders(ts, broker_orders, found, problems, on_start, report)
            self._positions(broker_positions, found, problems)
            note = ReconcileNote(
                ts=ts, on_start=on_start, orphans=[o.client_order_id for o in found.orphans],
                zombies=found.zombies, unbooked=found.unbooked,
                positions=[f"{m.account}/{m.symbol}" for m in found.positions],
                canceled=found.canceled)
            merge_report(report, self._publish(ts, problems, notes=[_encode(note)]))
        if not found.clean:
            log.warning("reconcile_mismatch", orphans=len(found.orphans),
                        zombies=len(found.zombies), unbooked=len(found.unbooked),
                        positions=len(found.positions))
        return report

    def _orders(self, ts: datetime, broker_orders: list[BrokerOrder], found: ReconcileReport,
                problems: dict[str, tuple[str, str]], on_start: bool,
                report: BatchReport) -> None:
        runtime = self.runtime
        working = runtime.engine.state.open_orders
        ours = set(working)
        in_flight = set(runtime.awaiting)
        at_broker = {order.client_order_id: order for order in broker_orders}
        seen: dict[str, tuple[bool, Decimal, datetime]] = {}
        for cid in sorted(ours & set(at_broker) - in_flight):
            self._unbooked(ts, working[cid], at_broker[cid], seen, found, problems)
        for cid, order in sorted(at_broker.items()):
            if cid in ours or cid in in_flight:
                continue
            found.orphans.append(order)
            left = ""  # why an orphan canceled on start is still working at the broker
            if on_start and self.settings.cancel_unknown_on_start:
                outcome = self._cancel_orphan(ts, order, report)
                if not (outcome.unresolved or outcome.refused):
                    found.canceled.append(cid)
                    continue
                if outcome.refused:
                    left = f"; the broker refused its cancel at start-up: {outcome.refused}"
            problems[f"{PREFIX}:orphan:{cid}"] = (RECONCILIATION_MISMATCH, (
                f"orphan order {cid} ({order.symbol}, {order.qty} with {order.filled_qty} "
                f"filled): {_orphan_story(runtime.engine.state.done.get(cid))}{left}"))
        for cid in sorted(ours - set(at_broker) - in_flight):
            try:
                known = runtime.broker.get_order(cid)
            except DEPENDENCY_ERRORS as exc:
                log.warning("reconcile_lookup_failed", client_order_id=cid,
                            error=f"{type(exc).__name__}: {exc}")
                # not judged this pass: what is raised about it stays raised
                for kind in ("zombie", "unbooked"):
                    key = f"{PREFIX}:{kind}:{cid}"
                    if key in self._raised:
                        problems[key] = (RECONCILIATION_MISMATCH, self._raised[key])
                if cid in self._unbooked_seen:
                    seen[cid] = self._unbooked_seen[cid]
                continue
            if known is not None:  # finished at the broker: its events normally follow
                self._unbooked(ts, working[cid], known, seen, found, problems)
                continue
            record = working[cid]
            found.zombies.append(cid)
            problems[f"{PREFIX}:zombie:{cid}"] = (RECONCILIATION_MISMATCH, (
                f"zombie order {cid} ({_describe(record)}): working in the gateway, unknown to "
                f"the broker"))
        self._unbooked_seen = seen

    def _unbooked(self, ts: datetime, order: OrderRecord, reported: BrokerOrder,
                  seen: dict[str, tuple[bool, Decimal, datetime]], found: ReconcileReport,
                  problems: dict[str, tuple[str, str]]) -> None:
        """An order the gateway holds working that the broker reports finished, or filled
        beyond what the gateway booked. Raised only when it was so at an earlier pass at least
        `unbooked_grace` ago (and the gateway has not caught up with what the broker said
        then), or is already raised: a fill or cancel in flight arrives within the grace."""
        finished = reported.status not in (BrokerOrderStatus.NEW,
                                           BrokerOrderStatus.PARTIALLY_FILLED)
        if not finished and reported.filled_qty <= order.filled:
            return
        cid = order.client_order_id
        earlier = self._unbooked_seen.get(cid)
        behind = earlier is not None and (earlier[0] or order.filled < earlier[1])
        since = earlier[2] if earlier is not None and behind else ts
        seen[cid] = (finished, reported.filled_qty, since)
        key = f"{PREFIX}:unbooked:{cid}"
        if key not in self._raised and (
                not behind or ts - since < self.settings.unbooked_grace):
            return  # its fill or cancel may still be on its way
        found.unbooked.append(cid)
        problems[key] = (RECONCILIATION_MISMATCH, (
            f"unbooked order {cid} ({_describe(order)}): the broker reports it "
            f"{reported.status.value} with {reported.filled_qty} filled, the gateway has "
            f"booked {order.filled} filled and holds it working (a fill or cancel message "
            f"was lost)"))

    def _positions(self, broker_positions: list[BrokerPosition], found: ReconcileReport,
                   problems: dict[str, tuple[str, str]]) -> None:
        """The broker's quantity must be the gateway's, give or take what the gateway's
        working orders there could have filled without the gateway hearing of it yet."""
        runtime = self.runtime
        status = runtime.engine.status()
        ours = {(p.account, p.symbol): p.qty for p in status.positions}
        theirs = {(p.account, p.symbol): p.qty for p in broker_positions}
        unfilled: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}  # (buys, sells)
        working = [(order.account, order.symbol, order.side, order.remaining)
                   for order in runtime.engine.state.open_orders.values()]
        working += [(dispatch.account, dispatch.symbol, dispatch.side, dispatch.qty)
                    for cid, (_, dispatch) in runtime.awaiting.items()
                    if cid not in runtime.engine.state.open_orders]
        for account, symbol, side, remaining in working:
            buys, sells = unfilled.get((account, symbol), (ZERO, ZERO))
            if side is Side.BUY:
                buys += remaining
            else:
                sells += remaining
            unfilled[(account, symbol)] = (buys, sells)
        for key in sorted(set(ours) | set(theirs)):
            account, symbol = key
            gateway_qty, broker_qty = ours.get(key, ZERO), theirs.get(key, ZERO)
            buys, sells = unfilled.get(key, (ZERO, ZERO))
            low, high = gateway_qty - sells, gateway_qty + buys
            if low <= broker_qty <= high:
                continue
            found.positions.append(PositionMismatch(account=account, symbol=symbol,
                                                    gateway_qty=gateway_qty,
                                                    broker_qty=broker_qty))
            working_note = (f" (its working orders there explain {low} to {high})"
                            if buys or sells else "")
            problems[f"{PREFIX}:position:{account}:{symbol}"] = (RECONCILIATION_MISMATCH, (
                f"position mismatch {account}/{symbol}: gateway {gateway_qty}, "
                f"broker {broker_qty}{working_note}"))

    def _cancel_orphan(self, ts: datetime, order: BrokerOrder, report: BatchReport) -> Outcome:
        """Cancel an orphan through the Dispatcher (its note durable first): what the broker
        said. One it refused (`refused`) or that nobody knows the end of (`unresolved`) is
        still working there, and is raised like any orphan."""
        runtime = self.runtime
        note = OrphanCancelNote(ts=ts, client_order_id=order.client_order_id,
                                symbol=order.symbol)
        runtime.inject([], origin="reconcile", notes=[_encode(note)])
        seq = runtime.journal.last_seq()
        outcome = runtime.dispatcher.cancel_orphan(order.client_order_id, seq, ts)
        if outcome.refused:
            log.warning("orphan_cancel_refused_on_start", client_order_id=order.client_order_id,
                        reason=outcome.refused)
        else:
            log.warning("orphan_canceled_on_start", client_order_id=order.client_order_id,
                        unresolved=outcome.unresolved)
        if outcome.events:
            merge_report(report, runtime.inject(outcome.events, origin="reconcile"))
        return outcome

    def _publish(self, ts: datetime, problems: dict[str, tuple[str, str]], *,
                 notes: Iterable[bytes] = (), keep_others: bool = False) -> BatchReport:
        """Raise new findings, clear resolved ones (only what this pass could judge)."""
        events: list[InputEvent] = []
        for key, (code, detail) in sorted(problems.items()):
            if self._raised.get(key) == detail:
                continue
            self._raised[key] = detail
            events.append(DependencyStatus(ts=ts, dependency=key, healthy=False, code=code,
                                           detail=detail))
        if not keep_others:
            for key in sorted(set(self._raised) - set(problems)):
                del self._raised[key]
                code = DEPENDENCY_UNAVAILABLE if key == UNREADABLE else RECONCILIATION_MISMATCH
                events.append(DependencyStatus(ts=ts, dependency=key, healthy=True, code=code,
                                               detail="resolved"))
        notes = list(notes)
        if not events and not notes:
            return BatchReport()
        return self.runtime.inject(events, origin="reconcile", notes=notes)

    # ------------------------------------------------------------ session close

    def session_close(self, ts: datetime, *, reconcile: bool = True,
                      day_orders: Sequence[OrderRecord] | None = None) -> BatchReport:
        """Cancel working DAY orders (only `day_orders` when given: a close resumed after a
        restart leaves the new day's orders alone), reconcile (unless the broker keeps no book
        to compare with), journal a summary."""
        runtime = self.runtime
        if day_orders is None:
            day_orders = [order for order in runtime.engine.state.open_orders.values()
                          if order.tif is TimeInForce.DAY and not order.cancel_requested]
        closing = sorted(day_orders, key=lambda order: order.client_order_id)
        requests: list[InputEvent] = [
            CancelRequest(ts=ts, client_order_id=order.client_order_id, account=order.account,
                          requested_by="session_close")
            for order in closing]
        report = runtime.inject(requests, origin=SESSION_CLOSE) if requests else BatchReport()
        return self._summarize(ts, [order.client_order_id for order in closing], report,
                               reconcile=reconcile)

    def finish_session_close(self, interrupted: InterruptedClose, *,
                             reconcile: bool = True) -> BatchReport:
        """Finish a close a crash interrupted after its cancels were durable: reconcile and
        journal its summary at its own event time. Nothing is canceled again (recovery
        re-performed the durable cancels)."""
        return self._summarize(interrupted.ts, list(interrupted.canceled), BatchReport(),
                               reconcile=reconcile)

    def _summarize(self, ts: datetime, canceled: list[str], report: BatchReport, *,
                   reconcile: bool) -> BatchReport:
        runtime = self.runtime
        # `report` holds the close's cancels, durable and sent: a journal failure below (the
        # reconciliation, the summary) stops the runtime with them
        with kept_on_stop(report):
            if reconcile:
                merge_report(report, self.reconcile(ts))
            status = runtime.engine.status()
            found = self.last
            summary = SessionCloseNote(
                ts=ts, day_orders_canceled=canceled,
                positions={f"{p.account}/{p.symbol}": str(p.qty) for p in status.positions
                           if p.qty != 0},
                mode=status.mode.value,
                mismatches=0 if found is None else
                len(found.orphans) + len(found.zombies) + len(found.positions))
            faults.crossing("session_close_before_summary")
            merge_report(report, runtime.inject([], origin=SESSION_CLOSE, notes=[_encode(summary)]))
        log.info("session_closed", day_orders_canceled=len(canceled), mode=summary.mode)
        return report


def _describe(order: OrderRecord) -> str:
    return f"{order.symbol} {order.side.value} {order.qty}, intent {order.intent_id}"


def _orphan_story(finished: OrderRecord | None) -> str:
    """How an order the broker shows working came to be one the gateway does not hold:
    `finished` is the gateway's record of it when the gateway dispatched it and saw it end."""
    if finished is None:
        return "working at the broker, never dispatched by the gateway"
    again = " again" if finished.status is OrderStatus.CANCELED else ""
    return (f"the gateway dispatched it ({_describe(finished)}) and saw it "
            f"{finished.status.value} with {finished.filled} filled, the broker shows it "
            f"working{again}")


def interrupted_close(runtime: Runtime) -> InterruptedClose | None:
    """The newest session close recovery saw, if a crash stopped it between its cancels and
    its summary: its "session_close" batch holds CancelRequests instead of the summary note.

    Recovery sees every close that can be interrupted: a snapshot is taken between batches,
    never inside a close (the one at the end of a rolling batch comes before its close), and a
    restart finishes an interrupted close before a later batch could be snapshotted, so the
    close's cancel batch lies in the journal tail recovery scans.
    """
    seq = runtime.newest_feedback.get(SESSION_CLOSE)
    if seq is None:
        return None
    ts: datetime | None = None
    canceled: list[str] = []
    for record in runtime.journal.read(seq + 1):
        if record.kind is RecordKind.META:
            if record.payload.startswith(_SUMMARY_PREFIX):
                return None
            if isinstance(decode_note(record.payload), SourceMark | FeedbackMark):
                break  # the batch ended
        elif record.kind is RecordKind.INPUT:
            event = journaled_input(record.seq, record.payload)
            if isinstance(event, CancelRequest) and event.requested_by == SESSION_CLOSE:
                ts = event.ts
                canceled.append(event.client_order_id)
    if ts is None:
        return None
    return InterruptedClose(ts=ts, canceled=tuple(canceled))


def day_orders_left_open(engine: Engine) -> list[OrderRecord]:
    """Working DAY orders accepted on a trading day that has since rolled, with no cancel
    requested. The session close cancels every DAY order right after the batch that rolls the
    day, so these exist only when it never ran (the process died in between) or a cancel was
    refused (the cancel rate); left alone they would keep reserving exposure against the caps."""
    state = engine.state
    if state.next_roll_at is None:
        return []
    calendar = engine.settings.day_roll_calendar
    return [order for order in state.open_orders.values()
            if order.tif is TimeInForce.DAY and not order.cancel_requested
            and _day_end(order.created, calendar) <= state.now]


def _day_end(ts: datetime, calendar: str | None) -> datetime:
    """When the trading day `ts` belongs to rolls, as the engine schedules it (an unavailable
    calendar rolls at 00:00 UTC there too)."""
    try:
        return next_roll(ts, calendar)
    except CalendarUnavailable:
        return next_roll(ts, None)
