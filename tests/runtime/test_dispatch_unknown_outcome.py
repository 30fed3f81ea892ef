"""A submit with no answer (timeout, dropped connection) at a venue whose order list lags:
the real Dispatcher never makes a second order where a repeated client order id would be
taken (a Tradier tag, a Deribit label), keeps the reservation while the order could be live,
and at a venue that refuses the repeat (Alpaca, the simulator) a refused resend of an order
the venue holds is not turned into a reject."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ordergate.brokers.base import (
    BrokerCapabilities,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerPosition,
    BrokerUnavailable,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.sim import SimBroker, SimConfig, SimFaults, SubmitOutcome
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy, intent, quote
from ordergate.model.events import AccountFunding, Dispatch, InputEvent, OrderReject
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.values import utc
from ordergate.runtime.dispatch import LOST_CODE, Dispatcher
from ordergate.runtime.loop import Runtime

TS = utc(2026, 3, 2, 15, 0)
CID = "og-tag-1"


def _order(cid: str = CID, ts: datetime = TS) -> Dispatch:
    return Dispatch(ts=ts, client_order_id=cid, intent_id="i-1", account="A", strategy="s",
                    symbol="AAPL", side=Side.BUY, qty=Decimal(10), order_type=OrderType.LIMIT,
                    limit_price=Decimal("100.00"))


class LaggingVenue:
    """A venue test double. `unique=False` takes a second order with a client order id it
    already holds (a Tradier tag, a Deribit label); `unique=True` refuses it with Alpaca's
    422. Its order list lags: the next `hidden_lookups` lookups miss every order."""

    def __init__(self, *, unique: bool = False, hidden_lookups: int = 0) -> None:
        self.unique = unique
        self.hidden_lookups = hidden_lookups
        self.take_then_drop = 0  # submits that take the order, then lose the answer
        self.drop_before_taking = 0  # submits whose connection drops before the venue saw it
        self.sent: list[str] = []  # every submit call
        self.orders: list[BrokerOrder] = []  # every order the venue holds, duplicates too

    @property
    def name(self) -> str:
        return "lagging"

    @property
    def capabilities(self) -> BrokerCapabilities:
        return BrokerCapabilities(order_types=frozenset(OrderType),
                                  time_in_force=frozenset(TimeInForce),
                                  unique_client_order_id=self.unique)

    def live(self, cid: str = CID) -> list[BrokerOrder]:
        return [o for o in self.orders if o.client_order_id == cid]

    def submit(self, order: Dispatch) -> SubmitResult:
        cid = order.client_order_id
        self.sent.append(cid)
        if self.drop_before_taking > 0:
            self.drop_before_taking -= 1
            raise BrokerUnavailable("lagging: submit: connection dropped")
        if self.unique and self.live(cid):
            raise BrokerOrderRejected("lagging: submit: HTTP 422: client_order_id must be "
                                      "unique", http_status=422)
        self.orders.append(BrokerOrder(client_order_id=cid,
                                       broker_order_id=f"L-{len(self.orders) + 1}",
                                       symbol=order.symbol, status=OrderStatus.NEW,
                                       qty=order.qty))
        if self.take_then_drop > 0:
            self.take_then_drop -= 1
            raise BrokerUnavailable("lagging: submit: timed out")
        return SubmitResult(accepted=True, broker_order_id=self.orders[-1].broker_order_id)

    def cancel(self, client_order_id: str) -> None:
        raise BrokerOrderRejected(f"lagging: cancel: {client_order_id} not supported")

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        if self.hidden_lookups > 0:
            self.hidden_lookups -= 1
            return None
        found = self.live(client_order_id)
        return found[0] if found else None

    def open_orders(self) -> list[BrokerOrder]:
        return [] if self.hidden_lookups > 0 else list(self.orders)

    def positions(self) -> list[BrokerPosition]:
        return []

    def poll_events(self, until: datetime) -> list[InputEvent]:
        return []

    def server_time(self) -> datetime:
        return TS


class LaggingSim(SimBroker):
    """The simulator (which refuses a repeated client order id), with an order list that
    misses every order for the next `hidden_lookups` lookups."""

    hidden_lookups = 0

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        if self.hidden_lookups > 0:
            self.hidden_lookups -= 1
            return None
        return super().get_order(client_order_id)


def _rejects(events: list[InputEvent]) -> list[OrderReject]:
    return [e for e in events if isinstance(e, OrderReject)]


# ---------------------------------------------------------------- venues that take a repeat


def test_no_second_order_after_a_timeout_while_the_order_is_not_yet_visible() -> None:
    venue = LaggingVenue(hidden_lookups=4)
    venue.take_then_drop = 1
    dispatcher = Dispatcher(venue, lambda: 10)
    first = dispatcher.submit(_order(), 1)
    assert first.unresolved and not _rejects(first.events)
    for second in range(1, 4):  # the runtime's later retries of the unresolved order
        dispatcher.poll(TS + timedelta(seconds=second))
        later = dispatcher.resolve(_order(), 1)
        assert later.unresolved and not _rejects(later.events)
    assert venue.sent == [CID]
    assert len(venue.live()) == 1
    dispatcher.poll(TS + timedelta(seconds=4))
    found = dispatcher.resolve(_order(), 1)  # visible at last: the original order
    assert not found.unresolved and not _rejects(found.events)
    assert venue.sent == [CID]


def test_dropped_connection_order_is_never_resent_and_declared_lost_only_after_the_grace(
) -> None:
    venue = LaggingVenue()
    venue.drop_before_taking = 1  # the venue never saw it: still not sent again
    dispatcher = Dispatcher(venue, lambda: 10)
    assert dispatcher.submit(_order(), 1).unresolved
    dispatcher.poll(TS + timedelta(seconds=59))
    waiting = dispatcher.resolve(_order(), 1)
    assert waiting.unresolved and not _rejects(waiting.events)
    dispatcher.poll(TS + timedelta(seconds=60))
    lost = dispatcher.resolve(_order(), 1)
    assert not lost.unresolved
    [reject] = _rejects(lost.events)
    assert reject.code == LOST_CODE and reject.client_order_id == CID
    assert reject.ts == TS + timedelta(seconds=60)
    assert "never sent again" in reject.reason
    assert venue.sent == [CID]


def test_failed_lookups_neither_resend_nor_count_as_not_found() -> None:
    venue = LaggingVenue()
    venue.drop_before_taking = 1
    dispatcher = Dispatcher(venue, lambda: 10, lost_after=timedelta(seconds=10))
    dispatcher.submit(_order(), 1)  # first "not found" at TS

    def unreadable(client_order_id: str) -> BrokerOrder | None:
        raise BrokerUnavailable("lagging: lookup: timed out")

    answer = venue.get_order
    venue.get_order = unreadable  # type: ignore[method-assign]
    dispatcher.poll(TS + timedelta(seconds=30))
    assert dispatcher.resolve(_order(), 1).unresolved  # no answer: no verdict either
    venue.get_order = answer  # type: ignore[method-assign]
    dispatcher.poll(TS + timedelta(seconds=31))
    assert _rejects(dispatcher.resolve(_order(), 1).events)
    assert venue.sent == [CID]


def test_restart_resolution_at_a_venue_that_takes_repeats_only_asks() -> None:
    venue = LaggingVenue()
    dispatcher = Dispatcher(venue, lambda: 10)
    outcome = dispatcher.resolve(_order(), 1)  # journaled, no answer, the venue shows nothing
    assert outcome.unresolved and not _rejects(outcome.events)
    assert venue.sent == []


def test_runtime_retries_of_an_unresolved_order_send_nothing_and_keep_its_reservation(
        tmp_path: Path) -> None:
    venue = LaggingVenue(hidden_lookups=1_000)
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), venue)
    try:
        runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                         quote("AAPL", 0)])
        venue.take_then_drop = 1
        runtime.process([quote("AAPL", 1), intent("open", Side.BUY, 10, 1)])
        [cid] = venue.sent
        for second in range(2, 40, 4):
            runtime.process([quote("AAPL", second)])
            assert cid in runtime.awaiting
            assert cid in {o.client_order_id for o in runtime.status().open_orders}
        assert venue.sent == [cid] and len(venue.live(cid)) == 1
        for second in range(40, 70, 4):
            runtime.process([quote("AAPL", second)])
        assert venue.sent == [cid]
        assert cid not in runtime.awaiting  # declared lost after 60 s of not-found answers
        assert cid not in {o.client_order_id for o in runtime.status().open_orders}
    finally:
        runtime.close()


# ---------------------------------------------------------------- venues that refuse a repeat


def test_refused_duplicate_after_a_lost_answer_ends_with_the_order_known_not_rejected(
) -> None:
    venue = LaggingVenue(unique=True, hidden_lookups=1)
    venue.take_then_drop = 1
    outcome = Dispatcher(venue, lambda: 10).submit(_order(), 1)
    assert venue.sent == [CID, CID]  # resent (never seen, as far as the lookup knew)...
    assert len(venue.live()) == 1  # ...and refused: one order
    assert not outcome.unresolved and not _rejects(outcome.events)


def test_simulator_duplicate_refusal_after_a_lost_answer_is_not_a_reject() -> None:
    broker = LaggingSim(SimConfig())
    broker.faults = SimFaults(fail_next_submits=1, accept_before_failing=True)
    broker.hidden_lookups = 1
    outcome = Dispatcher(broker, lambda: 10).submit(_order(), 1)
    assert [a.outcome for a in broker.submission_log()] == [SubmitOutcome.ACCEPTED,
                                                            SubmitOutcome.DUPLICATE]
    assert not outcome.unresolved and not _rejects(outcome.events)
    assert broker.get_order(CID) is not None  # the original, taken at the first submit


def test_resend_refused_for_the_order_itself_is_still_a_reject() -> None:
    broker = SimBroker(SimConfig())
    broker.faults = SimFaults(fail_next_submits=1, halted_symbols={"AAPL"})
    outcome = Dispatcher(broker, lambda: 10).submit(_order(), 1)
    [reject] = _rejects(outcome.events)
    assert "market halted" in reject.reason and reject.code == "broker"
