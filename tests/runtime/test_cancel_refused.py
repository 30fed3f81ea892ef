"""A cancel the venue refuses (`BrokerOrderRejected`, Alpaca's 422 "order is not cancelable")
reaches the engine as a journaled `CancelRefused` with the venue's words: an Alert names the
order and the reason, the order stays working, and its cancel-requested mark is cleared, so
the session close (which skips orders already asked to cancel) asks the venue again. A refusal
for an order that has ended at the venue meanwhile is left to the venue's own events.

Real GuardedRuntime, Dispatcher, SimBroker and SQLite journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

import ordergate
from ordergate.brokers.base import BrokerOrderRejected
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.chaos.harness import ChaosRun, at, chaos_policy, intent
from ordergate.engine.lifecycle import CANCEL_REFUSED
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import (
    Alert,
    CancelOrder,
    CancelRefused,
    CancelRequest,
    Dispatch,
    InputEvent,
    OrderCanceled,
)
from ordergate.model.intent import OrderType, Side
from ordergate.model.values import utc
from ordergate.runtime.dispatch import Dispatcher
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings
from ordergate.runtime.loop import decode_input
from ordergate.runtime.sources import decode_event

QUIET = GuardSettings(reconcile_every_batches=0, clock_check_every_s=3600)
REASON = "sim: cancel: HTTP 422: order is not cancelable"


class RefusingSim(SimBroker):
    """A venue that refuses cancels while `refuse` is set; with `end_first` the order ends
    there (canceled) just before the refusal, as when it filled on the way."""

    refuse = True
    end_first = False

    def cancel(self, client_order_id: str) -> None:
        if not self.refuse:
            super().cancel(client_order_id)
            return
        if self.end_first:
            super().cancel(client_order_id)
        raise BrokerOrderRejected(REASON, http_status=422)


def _open(directory: Path) -> ChaosRun:
    broker = RefusingSim(SimConfig(fill_model=FillModel.NEXT_MARKET))
    clock = EventClock()
    guard = GuardedRuntime.open(f"sqlite:///{directory / 'journal.db'}", chaos_policy(),
                                broker, clock, QUIET)
    return ChaosRun(directory=directory, broker=broker, guard=guard, clock=clock)


def _inputs(directory: Path) -> list[InputEvent]:
    journal = open_journal(f"sqlite:///{directory / 'journal.db'}",
                           durability=Durability.NONE, create=False, reader=True)
    try:
        return [decode_input(record.payload) for record in journal.read()
                if record.kind is RecordKind.INPUT]
    finally:
        journal.close()


def _verifies(directory: Path) -> None:
    journal = open_journal(f"sqlite:///{directory / 'journal.db'}",
                           durability=Durability.NONE, create=False, reader=True)
    try:
        report = verify_journal(journal)
    finally:
        journal.close()
    assert report.ok, report.message
    assert report.mismatches == 0


def test_a_refused_cancel_is_journaled_alerted_and_the_session_close_asks_again(
        tmp_path: Path) -> None:
    run = _open(tmp_path)
    try:
        run.start()
        run.step([intent("resting", Side.BUY, 10, 1, limit_price=Decimal(180))])
        [order] = run.runtime.engine.status().open_orders
        cid = order.client_order_id
        report = run.request_cancel(cid, 2)
        [alert] = [item for item in report.emitted
                   if isinstance(item, Alert) and item.code == CANCEL_REFUSED]
        assert cid in alert.message and REASON in alert.message
        [refused] = [event for event in _inputs(tmp_path) if isinstance(event, CancelRefused)]
        assert refused.client_order_id == cid and refused.reason == REASON
        [still] = run.runtime.engine.status().open_orders
        assert still.client_order_id == cid and not still.cancel_requested

        # the session close skips orders already asked to cancel: this one it asks again
        assert isinstance(run.broker, RefusingSim)
        run.broker.refuse = False
        run.guard.reconciler.session_close(at(3))
        closes = [event for event in _inputs(tmp_path)
                  if isinstance(event, CancelRequest) and event.requested_by == "session_close"]
        assert [event.client_order_id for event in closes] == [cid]
        run.tick(4)
        assert run.runtime.engine.status().open_orders == ()
        assert any(isinstance(event, OrderCanceled) and event.client_order_id == cid
                   for event in _inputs(tmp_path))
    finally:
        run.close()
    _verifies(tmp_path)


TS = utc(2026, 3, 2, 15, 0)
WORKING = SimConfig(fill_model=FillModel.NEXT_MARKET)  # no quote comes: orders rest


def _sent(broker: SimBroker) -> tuple[Dispatcher, CancelOrder]:
    """An order working at `broker`, and its cancel."""
    dispatcher = Dispatcher(broker, lambda: 10)
    order = Dispatch(ts=TS, client_order_id="og-1", intent_id="i-1", account="A",
                     strategy="s", symbol="AAPL", side=Side.BUY, qty=Decimal(10),
                     order_type=OrderType.LIMIT, limit_price=Decimal("100.00"))
    assert dispatcher.submit(order, 1).events == []
    assert broker.open_orders() != []
    return dispatcher, CancelOrder(ts=TS, client_order_id="og-1", reason="requested")


def test_the_dispatcher_answers_a_refused_cancel_with_the_venues_words() -> None:
    dispatcher, cancel = _sent(RefusingSim(WORKING))
    outcome = dispatcher.cancel(cancel, 2)
    assert not outcome.unresolved
    assert outcome.events == [CancelRefused(ts=TS, client_order_id="og-1", reason=REASON)]


def test_a_refusal_for_an_order_that_ended_at_the_venue_is_left_to_its_events() -> None:
    broker = RefusingSim(WORKING)
    broker.end_first = True
    dispatcher, cancel = _sent(broker)
    assert dispatcher.cancel(cancel, 2).events == []


def test_a_refused_cancel_of_an_orphan_is_only_logged() -> None:
    dispatcher, _ = _sent(RefusingSim(WORKING))
    assert dispatcher.cancel_orphan("og-1", 2, TS).events == []


def test_an_events_file_line_carries_a_refused_cancel_as_it_carries_other_answers() -> None:
    line = msgspec.json.encode({"type": "cancel_refused", "ts": "2026-03-02T15:00:00Z",
                                "client_order_id": "og-1", "reason": REASON})
    assert decode_event(line) == CancelRefused(ts=TS, client_order_id="og-1", reason=REASON)
    assert decode_input(msgspec.json.encode(decode_event(line))) == decode_event(line)


def test_the_public_api_names_a_refused_cancel_beside_the_other_broker_answers() -> None:
    """`Gateway.process` returns the broker's answers it journaled, a refused cancel among
    them: `ordergate` exports its class as it exports `OrderAck`, `Fill` and the others."""
    for name in ("OrderAck", "OrderReject", "Fill", "OrderCanceled", "CancelRefused"):
        assert name in ordergate.__all__
    assert ordergate.CancelRefused is CancelRefused
