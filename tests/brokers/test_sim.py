"""The simulated broker: deterministic fills in event time, duplicates refused and counted,
rejects and faults on demand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.brokers.base import (
    BrokerAdapter,
    BrokerAuthError,
    BrokerOrderRejected,
    BrokerPosition,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
)
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig, SubmitFault, SubmitOutcome
from ordergate.model.events import Dispatch, Fill, OrderAck, OrderCanceled, OrderReject
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

T0 = utc(2024, 3, 1, 15, 0)
END = utc(2030, 1, 1)


def order(n: int = 1, *, side: Side = Side.BUY, qty: str = "10", symbol: str = "AAPL",
          order_type: OrderType = OrderType.MARKET, limit: str | None = None,
          stop: str | None = None, tif: TimeInForce = TimeInForce.DAY,
          at: datetime = T0, account: str = "acct1") -> Dispatch:
    return Dispatch(
        ts=at, client_order_id=f"{account}-s-{n:04d}", intent_id=f"i-{n}", account=account,
        strategy="s", symbol=symbol, side=side, qty=Decimal(qty), order_type=order_type,
        limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None, tif=tif,
    )


def quote(bid: str, ask: str, *, at: datetime = T0, symbol: str = "AAPL",
          volume: str | None = None, last: str | None = None) -> MarketSnapshot:
    return MarketSnapshot(symbol=symbol, ts=at, bid=Decimal(bid), ask=Decimal(ask),
                          last=Decimal(last) if last else None,
                          volume=Decimal(volume) if volume else None)


def fills(events: Sequence[object]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def kinds(events: Sequence[object]) -> list[tuple[str, str]]:
    return [(type(e).__name__, getattr(e, "client_order_id", "")) for e in events]


def status(broker: SimBroker, client_order_id: str) -> OrderStatus | None:
    found = broker.get_order(client_order_id)
    return None if found is None else found.status


def test_sim_broker_satisfies_the_adapter_contract() -> None:
    broker: BrokerAdapter = SimBroker()
    assert broker.name == "sim"
    caps = broker.capabilities
    assert caps.order_types == frozenset(OrderType)
    assert caps.time_in_force == frozenset(TimeInForce)
    assert caps.fractional_qty


# ---------------------------------------------------------------- fill models and prices

def test_immediate_limit_fills_at_its_limit_price() -> None:
    broker = SimBroker(SimConfig(fee_bps=Decimal(10)))
    result = broker.submit(order(order_type=OrderType.LIMIT, limit="101.25"))
    assert result.accepted and result.broker_order_id == "sim-00000001"
    ack, fill = broker.poll_events(T0)
    assert isinstance(ack, OrderAck) and ack.broker_order_id == "sim-00000001"
    assert isinstance(fill, Fill)
    assert (fill.qty, fill.price, fill.fee) == (Decimal(10), Decimal("101.25"),
                                                Decimal("1.0125"))


def test_immediate_market_fills_at_mid_plus_adverse_slippage() -> None:
    broker = SimBroker(SimConfig(slippage_bps=Decimal(5)))
    broker.on_market(quote("99", "101"))
    broker.submit(order(1))
    broker.submit(order(2, side=Side.SELL))
    buy, sell = fills(broker.poll_events(END))
    assert buy.price == Decimal("100.05")
    assert sell.price == Decimal("99.95")


def test_immediate_market_without_prices_waits_for_the_next_snapshot() -> None:
    broker = SimBroker()
    broker.submit(order())
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("50", "52", at=T0 + timedelta(seconds=3)))
    [fill] = fills(broker.poll_events(END))
    assert (fill.price, fill.ts) == (Decimal(51), T0 + timedelta(seconds=3))


def test_next_market_fills_against_the_next_snapshot_not_the_previous_one() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.on_market(quote("10", "12"))
    broker.submit(order(at=T0 + timedelta(seconds=1)))
    broker.on_market(quote("20", "22", at=T0 + timedelta(milliseconds=500)))  # older than order
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("30", "32", at=T0 + timedelta(seconds=2)))
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal(31)
    assert fill.ts == T0 + timedelta(seconds=2)


def test_next_market_limit_fills_only_when_marketable_and_never_worse() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET, slippage_bps=Decimal(100)))
    broker.submit(order(order_type=OrderType.LIMIT, limit="100"))
    broker.on_market(quote("100.5", "101.5", at=T0 + timedelta(seconds=1)))  # mid 101 > 100
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("99.5", "100.5", at=T0 + timedelta(seconds=2)))  # mid 100
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal(100)  # slippage would make it 101: capped at the limit


def test_participation_cap_gives_partial_fills_shared_oldest_first() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET,
                                 max_participation_pct=Decimal(10)))
    broker.submit(order(1, qty="30"))
    broker.submit(order(2, qty="5"))
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=1), volume="200"))  # 20 available
    first = fills(broker.poll_events(END))
    assert [(f.client_order_id, f.qty) for f in first] == [("acct1-s-0001", Decimal(20))]
    assert status(broker, "acct1-s-0001") is OrderStatus.PARTIALLY_FILLED
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=2), volume="120"))  # 12
    second = fills(broker.poll_events(END))
    assert [(f.client_order_id, f.qty) for f in second] == [
        ("acct1-s-0001", Decimal(10)), ("acct1-s-0002", Decimal(2))]
    assert status(broker, "acct1-s-0001") is OrderStatus.FILLED


def test_participation_cap_with_unknown_volume_fills_nothing() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET,
                                 max_participation_pct=Decimal(50)))
    broker.submit(order())
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=1)))
    assert fills(broker.poll_events(END)) == []


def test_ioc_cancels_the_unfilled_remainder_and_fok_fills_all_or_nothing() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET,
                                 max_participation_pct=Decimal(10)))
    broker.submit(order(1, qty="30", tif=TimeInForce.IOC))
    broker.submit(order(2, qty="30", tif=TimeInForce.FOK, symbol="MSFT"))
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=1), volume="100"))
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=1), volume="100",
                           symbol="MSFT"))
    events = [e for e in broker.poll_events(END) if not isinstance(e, OrderAck)]
    assert kinds(events) == [
        ("Fill", "acct1-s-0001"), ("OrderCanceled", "acct1-s-0001"),
        ("OrderCanceled", "acct1-s-0002")]
    assert fills(events)[0].qty == Decimal(10)


def test_non_fractional_broker_fills_whole_units_only() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET, fractional_qty=False,
                                 max_participation_pct=Decimal(10)))
    broker.submit(order(qty="10"))
    broker.on_market(quote("9", "11", at=T0 + timedelta(seconds=1), volume="37"))
    [fill] = fills(broker.poll_events(END))
    assert fill.qty == Decimal(3)


def test_stop_rests_until_touched_then_trades_as_market() -> None:
    broker = SimBroker()
    broker.on_market(quote("99", "101", last="100"))
    broker.submit(order(order_type=OrderType.STOP, stop="105"))
    broker.on_market(quote("103", "105", at=T0 + timedelta(seconds=1), last="104.99"))
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("105", "107", at=T0 + timedelta(seconds=2), last="105"))
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal(106)


def test_bad_market_data_never_produces_a_fill() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.submit(order())
    for n, (bid, ask) in enumerate([("NaN", "1"), ("-2", "-1"), ("0", "0"), ("11", "9")]):
        broker.on_market(quote(bid, ask, at=T0 + timedelta(seconds=n)))
    assert fills(broker.poll_events(END)) == []
    assert status(broker, "acct1-s-0001") is OrderStatus.NEW


# ---------------------------------------------------------------- event time and ordering

def test_events_carry_submit_time_plus_latency_and_come_out_in_order() -> None:
    broker = SimBroker(SimConfig(ack_latency=timedelta(milliseconds=20),
                                 fill_latency=timedelta(milliseconds=50)))
    broker.submit(order(1, order_type=OrderType.LIMIT, limit="10"))
    broker.submit(order(2, order_type=OrderType.LIMIT, limit="10",
                        at=T0 + timedelta(milliseconds=10)))
    assert broker.poll_events(T0 + timedelta(milliseconds=19)) == []
    first = broker.poll_events(T0 + timedelta(milliseconds=30))
    assert kinds(first) == [
        ("OrderAck", "acct1-s-0001"), ("OrderAck", "acct1-s-0002")]
    assert first[0].ts == T0 + timedelta(milliseconds=20)
    rest = broker.poll_events(T0 + timedelta(milliseconds=60))
    assert [(type(e).__name__, e.ts) for e in rest] == [
        ("Fill", T0 + timedelta(milliseconds=50)), ("Fill", T0 + timedelta(milliseconds=60))]
    assert broker.pending_count() == 0


def test_server_time_is_latest_event_time_plus_offset() -> None:
    broker = SimBroker(SimConfig(clock_offset=timedelta(milliseconds=-1500)))
    with pytest.raises(BrokerUnavailable):
        broker.server_time()
    broker.on_market(quote("1", "2", at=T0 + timedelta(seconds=5)))
    broker.submit(order(at=T0))  # older: time does not go back
    assert broker.server_time() == T0 + timedelta(seconds=5) - timedelta(milliseconds=1500)


# ---------------------------------------------------------------- duplicates and rejects

def test_duplicate_client_order_id_is_refused_and_every_attempt_recorded() -> None:
    broker = SimBroker()
    assert broker.submit(order(1, order_type=OrderType.LIMIT, limit="5")).accepted
    again = broker.submit(order(1, order_type=OrderType.LIMIT, limit="6"))
    assert (again.accepted, again.reason) == (False, "duplicate client_order_id")
    broker.submit(order(2, order_type=OrderType.LIMIT, limit="5"))
    assert broker.submissions() == ["acct1-s-0001", "acct1-s-0001", "acct1-s-0002"]
    assert [a.outcome for a in broker.submission_log()] == [
        SubmitOutcome.ACCEPTED, SubmitOutcome.DUPLICATE, SubmitOutcome.ACCEPTED]
    assert len(fills(broker.poll_events(END))) == 2  # the duplicate never traded


def test_every_nth_order_and_listed_symbols_are_rejected_asynchronously() -> None:
    broker = SimBroker(SimConfig(reject_every_nth=3, reject_symbols=frozenset({"GME"}),
                                 reject_reason="insufficient buying power"))
    results = [broker.submit(order(n, order_type=OrderType.LIMIT, limit="5"))
               for n in range(1, 7)]
    results.append(broker.submit(order(7, symbol="GME", order_type=OrderType.LIMIT,
                                       limit="5")))
    assert all(r.accepted for r in results)
    rejects = [e for e in broker.poll_events(END) if isinstance(e, OrderReject)]
    assert [r.client_order_id for r in rejects] == ["acct1-s-0003", "acct1-s-0006",
                                                    "acct1-s-0007"]
    assert {r.reason for r in rejects} == {"insufficient buying power"}
    assert status(broker, "acct1-s-0003") is OrderStatus.REJECTED


def test_sync_rejects_answer_in_the_submit_result() -> None:
    broker = SimBroker(SimConfig(sync_rejects=True, order_types=frozenset({OrderType.LIMIT})))
    result = broker.submit(order())
    assert not result.accepted
    assert "order type 'market' is not supported" in result.reason
    assert broker.poll_events(END) == []


def test_prices_must_fit_the_order_type() -> None:
    broker = SimBroker(SimConfig(sync_rejects=True))
    assert not broker.submit(order(1, order_type=OrderType.LIMIT)).accepted
    assert not broker.submit(order(2, limit="5")).accepted
    assert not broker.submit(order(3, order_type=OrderType.STOP_LIMIT, limit="5")).accepted


def test_random_rejects_repeat_exactly_for_the_same_seed() -> None:
    def rejected(seed: int) -> list[str]:
        broker = SimBroker(SimConfig(seed=seed, reject_probability=0.5, sync_rejects=True))
        return [o.client_order_id for o in (order(n, order_type=OrderType.LIMIT, limit="1")
                                            for n in range(40))
                if not broker.submit(o).accepted]

    assert rejected(11) == rejected(11)
    assert 0 < len(rejected(11)) < 40
    assert rejected(11) != rejected(12)


# ---------------------------------------------------------------- cancels and reads

def test_cancel_working_order_emits_canceled_and_unknown_is_rejected() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET,
                                 ack_latency=timedelta(milliseconds=5)))
    broker.submit(order(1, order_type=OrderType.LIMIT, limit="5"))
    assert [o.client_order_id for o in broker.open_orders()] == ["acct1-s-0001"]
    broker.cancel("acct1-s-0001")
    ack, canceled = broker.poll_events(END)
    assert isinstance(ack, OrderAck) and isinstance(canceled, OrderCanceled)
    assert canceled.ts == T0 + timedelta(milliseconds=5)
    assert broker.open_orders() == []
    with pytest.raises(BrokerOrderRejected, match="not working"):
        broker.cancel("acct1-s-0001")
    with pytest.raises(BrokerOrderRejected, match="unknown order"):
        broker.cancel("nope")


def test_positions_track_fills_per_account_with_average_price() -> None:
    broker = SimBroker()
    broker.submit(order(1, qty="10", order_type=OrderType.LIMIT, limit="100"))
    broker.submit(order(2, qty="30", order_type=OrderType.LIMIT, limit="104"))
    broker.submit(order(3, qty="15", side=Side.SELL, order_type=OrderType.LIMIT, limit="110"))
    broker.submit(order(4, qty="2", side=Side.SELL, order_type=OrderType.LIMIT, limit="50",
                        account="acct2"))
    broker.submit(order(5, qty="5", order_type=OrderType.LIMIT, limit="20", symbol="X",
                        account="acct2"))
    broker.submit(order(6, qty="5", side=Side.SELL, order_type=OrderType.LIMIT, limit="21",
                        symbol="X", account="acct2"))
    assert broker.positions() == [
        BrokerPosition(account="acct1", symbol="AAPL", qty=Decimal(25), avg_price=Decimal(103)),
        BrokerPosition(account="acct2", symbol="AAPL", qty=Decimal(-2), avg_price=Decimal(50)),
    ]
    view = broker.get_order("acct1-s-0002")
    assert view is not None and view.avg_fill_price == Decimal(104)
    assert broker.get_order("never-sent") is None


# ---------------------------------------------------------------- fault hooks

@pytest.mark.parametrize(("fault", "error"), [
    (SubmitFault.UNAVAILABLE, BrokerUnavailable),
    (SubmitFault.RATE_LIMITED, BrokerRateLimited),
    (SubmitFault.AUTH, BrokerAuthError),
])
def test_submit_faults_raise_then_clear(fault: SubmitFault, error: type[Exception]) -> None:
    broker = SimBroker()
    broker.faults.fail_next_submits = 2
    broker.faults.submit_fault = fault
    broker.faults.retry_after_s = 3.0
    for _ in range(2):
        with pytest.raises(error):
            broker.submit(order())
    assert broker.get_order("acct1-s-0001") is None  # never reached the book
    assert broker.submit(order()).accepted
    assert broker.submissions() == ["acct1-s-0001"] * 3


def test_rate_limit_fault_carries_retry_after() -> None:
    broker = SimBroker()
    broker.faults.fail_next_submits = 1
    broker.faults.submit_fault = SubmitFault.RATE_LIMITED
    broker.faults.retry_after_s = 3.0
    with pytest.raises(BrokerRateLimited) as caught:
        broker.submit(order())
    assert (caught.value.http_status, caught.value.retry_after_s) == (429, 3.0)


def test_lost_answer_leaves_the_order_with_the_broker() -> None:
    broker = SimBroker()
    broker.faults.fail_next_submits = 1
    broker.faults.accept_before_failing = True
    with pytest.raises(BrokerUnavailable):
        broker.submit(order(order_type=OrderType.LIMIT, limit="5"))
    assert broker.get_order("acct1-s-0001") is not None
    assert not broker.submit(order(order_type=OrderType.LIMIT, limit="5")).accepted


def test_dropped_ack_still_delivers_the_fill() -> None:
    broker = SimBroker()
    broker.faults.drop_next_acks = 1
    broker.submit(order(order_type=OrderType.LIMIT, limit="5"))
    events = broker.poll_events(END)
    assert [type(e) for e in events] == [Fill]


def test_late_fill_arrives_after_the_cancel() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.on_market(quote("9", "11"))
    broker.submit(order(order_type=OrderType.LIMIT, limit="8"))
    broker.faults.late_fill_next_cancels = 1
    broker.cancel("acct1-s-0001")
    events = [e for e in broker.poll_events(END) if not isinstance(e, OrderAck)]
    assert [type(e) for e in events] == [OrderCanceled, Fill]
    assert fills(events)[0].qty == Decimal(10)
    assert status(broker, "acct1-s-0001") is OrderStatus.FILLED
    assert broker.faults.late_fill_next_cancels == 0


def test_halted_symbol_raises_market_halted_reject() -> None:
    broker = SimBroker()
    broker.faults.halted_symbols.add("AAPL")
    with pytest.raises(BrokerOrderRejected, match="market halted"):
        broker.submit(order())
    found = broker.get_order("acct1-s-0001")
    assert found is not None and found.status is OrderStatus.REJECTED


def test_position_changed_outside_the_gateway_shows_in_positions() -> None:
    broker = SimBroker()
    broker.set_position("acct1", "TSLA", Decimal(-7), Decimal(200))
    assert broker.positions() == [
        BrokerPosition(account="acct1", symbol="TSLA", qty=Decimal(-7), avg_price=Decimal(200))]


def test_read_faults_fail_the_next_reads_only() -> None:
    broker = SimBroker()
    broker.faults.fail_next_reads = 2
    with pytest.raises(BrokerUnavailable):
        broker.open_orders()
    with pytest.raises(BrokerUnavailable):
        broker.positions()
    assert broker.open_orders() == []


# ---------------------------------------------------------------- determinism

_steps = st.lists(
    st.one_of(
        st.tuples(st.just("quote"), st.integers(90, 110), st.integers(0, 500)),
        st.tuples(st.just("order"), st.sampled_from(list(Side)),
                  st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.STOP]),
                  st.integers(1, 50), st.sampled_from(list(TimeInForce))),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("poll"), st.integers(0, 3)),
    ),
    max_size=30,
)


class Played(msgspec.Struct, frozen=True):
    events: list[bytes]
    fills: list[Fill]
    positions: list[BrokerPosition]
    orders: dict[str, Dispatch]


def _play(steps: list[tuple[object, ...]]) -> Played:
    broker = SimBroker(SimConfig(
        fill_model=FillModel.NEXT_MARKET, max_participation_pct=Decimal(25),
        slippage_bps=Decimal(3), fee_bps=Decimal(1), seed=5, reject_probability=0.1,
        ack_latency=timedelta(milliseconds=3), fill_latency=timedelta(milliseconds=7)))
    events: list[object] = []
    sent: dict[str, Dispatch] = {}
    now = T0
    for step in steps:
        now += timedelta(milliseconds=2)
        match step:
            case ("quote", int(mid), int(volume)):
                broker.on_market(MarketSnapshot(
                    symbol="AAPL", ts=now, bid=Decimal(mid - 1), ask=Decimal(mid + 1),
                    last=Decimal(mid), volume=Decimal(volume)))
            case ("order", Side() as side, OrderType() as kind, int(qty), TimeInForce() as tif):
                dispatch = order(len(sent) + 1, side=side, order_type=kind, qty=str(qty),
                                 tif=tif, at=now,
                                 limit="100" if kind is OrderType.LIMIT else None,
                                 stop="100" if kind is OrderType.STOP else None)
                sent[dispatch.client_order_id] = dispatch
                broker.submit(dispatch)
            case ("cancel", int(number)):
                found = broker.get_order(f"acct1-s-{number:04d}")
                if found is not None and found.status in (OrderStatus.NEW,
                                                          OrderStatus.PARTIALLY_FILLED):
                    broker.cancel(found.client_order_id)
            case _:
                events.extend(broker.poll_events(now))
    events.extend(broker.poll_events(END))
    return Played(events=[msgspec.json.encode(e) for e in events],
                  fills=[e for e in events if isinstance(e, Fill)],
                  positions=broker.positions(), orders=sent)


@settings(max_examples=40, deadline=None)
@given(_steps)
def test_same_inputs_give_the_same_events_and_positions(steps: list[tuple[object, ...]]) -> None:
    assert _play(steps) == _play(steps)


@settings(max_examples=40, deadline=None)
@given(_steps)
def test_fills_never_exceed_order_quantity_and_positions_match_fills(
        steps: list[tuple[object, ...]]) -> None:
    played = _play(steps)
    filled: dict[str, Decimal] = {}
    for fill in played.fills:
        filled[fill.client_order_id] = filled.get(fill.client_order_id, Decimal(0)) + fill.qty
    net = Decimal(0)
    for client_id, qty in filled.items():
        dispatch = played.orders[client_id]
        assert qty <= dispatch.qty
        net += qty * dispatch.side.sign
    assert sum((p.qty for p in played.positions), Decimal(0)) == net
    assert len({f.fill_id for f in played.fills}) == len(played.fills)


# ---------------------------------------------------------------- the working-order index

class _ScanEveryOrder(SimBroker):
    """The matching as it reads without the index: every order ever received, in arrival
    order, filtered by symbol and status. The reference the indexed broker must equal."""

    def _working_entries(self, symbol: str) -> list:  # type: ignore[type-arg]
        return [entry for entry in self._book.orders.values()
                if entry.dispatch.symbol == symbol and entry.status in (
                    OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]


def test_a_quote_fills_exactly_the_marketable_orders_of_its_symbol_in_arrival_order() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    symbols = ("AAPL", "MSFT", "TSLA")
    for n in range(1, 301):
        broker.submit(order(n, symbol=symbols[n % 3], order_type=OrderType.LIMIT,
                            limit=str(90 + n % 40), side=Side.BUY))
    broker.poll_events(END)  # the acks
    broker.on_market(quote("109.99", "110.01", symbol="MSFT", at=T0 + timedelta(seconds=1)))
    filled = fills(broker.poll_events(END))
    expected = [n for n in range(1, 301) if n % 3 == 1 and 90 + n % 40 >= 110]
    assert [f.client_order_id for f in filled] == [f"acct1-s-{n:04d}" for n in expected]
    assert all(f.price == Decimal("110.00") for f in filled)
    still_open = [o.client_order_id for o in broker.open_orders()]
    assert still_open == [f"acct1-s-{n:04d}" for n in range(1, 301) if n not in expected]


@st.composite
def _sessions(draw: st.DrawFn) -> list[tuple[str, int, str, int, str]]:
    steps = draw(st.lists(st.tuples(
        st.sampled_from(["submit", "submit", "quote", "cancel"]),
        st.integers(0, 2),  # symbol
        st.sampled_from(["limit", "market", "stop", "stop_limit"]),
        st.integers(95, 105),  # a price
        st.sampled_from(["day", "ioc", "fok"]),
    ), min_size=1, max_size=60))
    return steps


@settings(max_examples=60, deadline=None)
@given(_sessions(), st.sampled_from([None, Decimal(30)]))
def test_indexed_matching_gives_the_same_events_as_scanning_every_order(
        steps: list[tuple[str, int, str, int, str]], participation: Decimal | None) -> None:
    config = SimConfig(fill_model=FillModel.NEXT_MARKET, max_participation_pct=participation)
    indexed, scanning = SimBroker(config), _ScanEveryOrder(config)
    symbols = ("AAPL", "MSFT", "TSLA")
    at = T0
    for number, (action, symbol_at, kind, price, tif) in enumerate(steps, start=1):
        at += timedelta(milliseconds=1)
        symbol = symbols[symbol_at]
        for broker in (indexed, scanning):
            if action == "quote":
                broker.on_market(quote(f"{price - 0.5}", f"{price + 0.5}", symbol=symbol,
                                       at=at, volume="100", last=str(price)))
            elif action == "cancel":
                working = broker.open_orders()
                if working:
                    broker.cancel(working[price % len(working)].client_order_id)
            else:
                order_type = OrderType(kind)
                broker.submit(order(
                    number, symbol=symbol, order_type=order_type, at=at,
                    side=Side.BUY if price % 2 else Side.SELL, qty=str(1 + price % 7 * 10),
                    limit=str(price) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
                    else None,
                    stop=str(price) if order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
                    else None,
                    tif=TimeInForce(tif)))
        assert indexed.poll_events(at) == scanning.poll_events(at)
        assert indexed.open_orders() == scanning.open_orders()
    assert indexed.poll_events(END) == scanning.poll_events(END)
    assert indexed.positions() == scanning.positions()


def test_open_orders_after_a_restart_are_the_working_ones_in_arrival_order(tmp_path) -> None:
    state = str(tmp_path / "sim.db")
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET, state_path=state))
    for n in range(1, 21):
        broker.submit(order(n, symbol=("AAPL", "MSFT")[n % 2], order_type=OrderType.LIMIT,
                            limit=str(100 + n)))
    broker.on_market(quote("109.99", "110.01", symbol="AAPL", at=T0 + timedelta(seconds=1)))
    broker.cancel("acct1-s-0003")
    broker.close()
    restarted = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET, state_path=state))
    filled = {n for n in range(1, 21) if n % 2 == 0 and 100 + n >= 110}
    assert [o.client_order_id for o in restarted.open_orders()] == [
        f"acct1-s-{n:04d}" for n in range(1, 21) if n not in filled and n != 3]
    restarted.close()
