"""The Alpaca adapter against a local Alpaca API: orders, reads, and every error mapping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakes.alpaca import KEY_ID, SECRET, AlpacaState, build
from fakes.server import ServerThread
from structlog.testing import capture_logs

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
)
from ordergate.brokers.config import Secret
from ordergate.model.events import Dispatch, Fill, OrderAck, OrderCanceled
from ordergate.model.intent import OrderType, Side, TimeInForce

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
STATE = AlpacaState()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread(build(STATE))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def adapter(base_url: str) -> AlpacaAdapter:
    STATE.reset()
    STATE.faults.stall_s = 1.0
    return AlpacaAdapter(api_key=Secret(KEY_ID), secret_key=Secret(SECRET), account="acct-1",
                         paper=True, base_url=base_url, timeout_s=0.3)


def dispatch(cid: str = "og-0001", **changes: object) -> Dispatch:
    fields: dict[str, object] = dict(
        ts=TS, client_order_id=cid, intent_id="i-1", account="acct-1", strategy="s-1",
        symbol="AAPL", side=Side.BUY, qty=Decimal(10), order_type=OrderType.LIMIT,
        limit_price=Decimal("101.25"), tif=TimeInForce.DAY)
    fields.update(changes)
    return Dispatch(**fields)  # type: ignore[arg-type]


def test_submit_query_cancel_round_trip(adapter: AlpacaAdapter) -> None:
    result = adapter.submit(dispatch())
    assert result.accepted and result.broker_order_id
    sent = STATE.requests[-1][2]
    assert sent["client_order_id"] == "og-0001"
    assert sent["type"] == "limit" and sent["time_in_force"] == "day"
    assert Decimal(str(sent["limit_price"])) == Decimal("101.25")

    order = adapter.get_order("og-0001")
    assert order is not None
    assert order.broker_order_id == result.broker_order_id
    assert order.status is OrderStatus.NEW and order.qty == Decimal(10)
    assert [o.client_order_id for o in adapter.open_orders()] == ["og-0001"]

    adapter.cancel("og-0001")
    canceled = adapter.get_order("og-0001")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert adapter.open_orders() == []


def test_unknown_client_order_id_is_none(adapter: AlpacaAdapter) -> None:
    assert adapter.get_order("never-sent") is None


def test_cancel_of_unknown_order_is_rejected(adapter: AlpacaAdapter) -> None:
    with pytest.raises(BrokerOrderRejected, match="no order"):
        adapter.cancel("never-sent")


def test_cancel_of_filled_order_is_rejected(adapter: AlpacaAdapter) -> None:
    adapter.submit(dispatch(order_type=OrderType.MARKET, limit_price=None))
    with pytest.raises(BrokerOrderRejected) as caught:
        adapter.cancel("og-0001")
    assert caught.value.http_status == 422


@pytest.mark.parametrize("order_type,limit,stop", [
    (OrderType.MARKET, None, None),
    (OrderType.LIMIT, "101.25", None),
    (OrderType.STOP, None, "99.5"),
    (OrderType.STOP_LIMIT, "99", "99.5"),
])
@pytest.mark.parametrize("tif", list(TimeInForce))
def test_every_order_type_and_tif_is_sent_as_alpaca_names_it(
        adapter: AlpacaAdapter, order_type: OrderType, limit: str | None, stop: str | None,
        tif: TimeInForce) -> None:
    adapter.submit(dispatch(order_type=order_type, tif=tif,
                            limit_price=None if limit is None else Decimal(limit),
                            stop_price=None if stop is None else Decimal(stop)))
    sent = STATE.requests[-1][2]
    assert sent["type"] == order_type.value and sent["time_in_force"] == tif.value
    assert (sent.get("stop_price") is None) == (stop is None)


def test_fractional_quantity_is_sent_exactly(adapter: AlpacaAdapter) -> None:
    adapter.submit(dispatch(qty=Decimal("0.123456789"), order_type=OrderType.MARKET,
                            limit_price=None))
    assert Decimal(str(STATE.requests[-1][2]["qty"])) == Decimal("0.123456789")
    order = adapter.get_order("og-0001")
    assert order is not None and order.filled_qty == Decimal("0.123456789")


def test_quantity_a_float_cannot_carry_is_refused_before_dispatch(
        adapter: AlpacaAdapter) -> None:
    with pytest.raises(BrokerOrderRejected, match="exactly"):
        adapter.submit(dispatch(qty=Decimal("1.00000000000000000001")))
    assert STATE.orders == {}


def test_client_order_id_longer_than_48_is_refused_not_truncated(
        adapter: AlpacaAdapter) -> None:
    with pytest.raises(BrokerOrderRejected, match="48"):
        adapter.submit(dispatch(cid="x" * 49))
    assert STATE.requests == []
    adapter.submit(dispatch(cid="y" * 48))
    assert adapter.get_order("y" * 48) is not None


def test_reduce_only_orders_go_out_with_the_gateway_as_their_guard(
        adapter: AlpacaAdapter) -> None:
    # equities have no venue-side reduce-only flag; the gateway already checked the order
    # shrinks the position, and refusing it would block the very orders that must pass
    assert adapter.capabilities.reduce_only is False
    result = adapter.submit(dispatch(reduce_only=True))
    assert result.accepted
    assert len(STATE.requests) == 1


def test_capabilities_declare_what_alpaca_offers(adapter: AlpacaAdapter) -> None:
    caps = adapter.capabilities
    assert caps.order_types == frozenset(OrderType)
    assert caps.time_in_force == frozenset(TimeInForce)
    assert caps.fractional_qty and caps.query_by_client_id
    assert caps.max_client_order_id_length == 48


def test_positions_and_server_time(adapter: AlpacaAdapter) -> None:
    STATE.prices["AAPL"] = Decimal("187.5")
    adapter.submit(dispatch(order_type=OrderType.MARKET, limit_price=None))
    adapter.submit(dispatch(cid="og-0002", symbol="MSFT", side=Side.SELL,
                            order_type=OrderType.MARKET, limit_price=None, qty=Decimal(3)))
    positions = {p.symbol: p for p in adapter.positions()}
    assert positions["AAPL"].qty == Decimal(10)
    assert positions["AAPL"].avg_price == Decimal("187.5")
    assert positions["AAPL"].account == "acct-1"
    assert positions["MSFT"].qty == Decimal(-3)
    # the venue answers with its real clock: a UTC time close to ours
    told = adapter.server_time()
    assert told.tzinfo is not None and told.utcoffset() == timedelta(0)
    assert abs(told - datetime.now(UTC)) < timedelta(minutes=1)


def test_poll_events_reports_ack_partial_fills_and_cancel(adapter: AlpacaAdapter) -> None:
    adapter.submit(dispatch())
    first = adapter.poll_events(TS)
    assert [type(e) for e in first] == [OrderAck]
    STATE.fill("og-0001", "4", "101")
    STATE.fill("og-0001", "2", "102.5")
    fills = adapter.poll_events(TS)
    assert [type(e) for e in fills] == [Fill]
    assert fills[0].qty == Decimal(6)  # type: ignore[union-attr]
    STATE.fill("og-0001", "1", "100")
    more = adapter.poll_events(TS)
    assert isinstance(more[0], Fill) and more[0].qty == Decimal(1)
    assert more[0].price == Decimal(100)
    adapter.cancel("og-0001")
    assert [type(e) for e in adapter.poll_events(TS)] == [OrderCanceled]
    assert adapter.poll_events(TS) == []


def test_insufficient_buying_power_403_is_an_order_rejection(adapter: AlpacaAdapter) -> None:
    STATE.buying_power = Decimal(10)
    with pytest.raises(BrokerOrderRejected) as caught:
        adapter.submit(dispatch())
    assert caught.value.http_status == 403


def test_wrong_keys_are_an_auth_error(base_url: str) -> None:
    STATE.reset()
    wrong = AlpacaAdapter(api_key=Secret(KEY_ID), secret_key=Secret("wrong"), account="a",
                          paper=True, base_url=base_url, timeout_s=0.3)
    with pytest.raises(BrokerAuthError) as caught:
        wrong.open_orders()
    assert caught.value.http_status == 401


@pytest.mark.parametrize("mode,error,status", [
    ("401", BrokerAuthError, 401),
    ("403", BrokerAuthError, 403),
    ("422", BrokerOrderRejected, 422),
    ("429", BrokerRateLimited, 429),
    ("500", BrokerUnavailable, 500),
    ("503", BrokerUnavailable, 503),
    ("timeout", BrokerUnavailable, None),
    ("bad_shape", BrokerBadResponse, None),
])
def test_error_modes_map_to_broker_errors(adapter: AlpacaAdapter, mode: str,
                                          error: type[Exception], status: int | None) -> None:
    STATE.faults.set(mode)
    with pytest.raises(error) as caught:
        adapter.submit(dispatch())
    assert getattr(caught.value, "http_status", None) == status
    if mode == "429":
        assert caught.value.retry_after_s == 2.0  # type: ignore[attr-defined]


def test_rate_limit_is_not_retried_inside_the_sdk(adapter: AlpacaAdapter) -> None:
    STATE.faults.set("429")
    with pytest.raises(BrokerRateLimited):
        adapter.submit(dispatch())
    assert len(STATE.requests) == 1


def test_reads_map_errors_too(adapter: AlpacaAdapter) -> None:
    STATE.faults.set("503")
    with pytest.raises(BrokerUnavailable):
        adapter.get_order("og-0001")
    with pytest.raises(BrokerUnavailable):
        adapter.positions()
    STATE.faults.set("bad_shape")
    with pytest.raises(BrokerBadResponse):
        adapter.open_orders()
    with pytest.raises(BrokerBadResponse):
        adapter.server_time()


def test_connection_refused_is_unavailable() -> None:
    closed = AlpacaAdapter(api_key=Secret(KEY_ID), secret_key=Secret(SECRET), account="a",
                           paper=True, base_url="http://127.0.0.1:9", timeout_s=0.3)
    with pytest.raises(BrokerUnavailable):
        closed.server_time()


def test_paper_and_live_endpoints(base_url: str) -> None:
    paper = AlpacaAdapter(api_key=Secret("k"), secret_key=Secret("s"), account="a", paper=True)
    live = AlpacaAdapter(api_key=Secret("k"), secret_key=Secret("s"), account="a", paper=False)
    assert paper.base_url == "https://paper-api.alpaca.markets"
    assert live.base_url == "https://api.alpaca.markets"


def test_repr_shows_no_credentials(adapter: AlpacaAdapter) -> None:
    assert SECRET not in repr(adapter) and KEY_ID not in repr(adapter)


def test_timed_out_submit_that_landed_is_found_by_client_id(adapter: AlpacaAdapter) -> None:
    # The outcome of a timed-out submit is unknown; the query by client id is what tells.
    STATE.faults.stall_s = 0.5
    STATE.faults.set("timeout", times=1)
    with pytest.raises(BrokerUnavailable):
        adapter.submit(dispatch())
    deadline = time.monotonic() + 5
    while (found := adapter.get_order("og-0001")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found is not None and found.status is OrderStatus.NEW
    assert len(STATE.orders) == 1


def test_done_for_day_gtc_order_keeps_working_and_its_next_day_fills_are_reported(
        adapter: AlpacaAdapter) -> None:
    # Alpaca: done_for_day = "no further updates until the next trading day", not an end.
    adapter.submit(dispatch(qty=Decimal(100), tif=TimeInForce.GTC))
    STATE.fill("og-0001", "40", "101")
    assert [type(e) for e in adapter.poll_events(TS)] == [OrderAck, Fill]
    order = STATE.by_client_id("og-0001")
    assert order is not None
    order["status"] = "done_for_day"
    assert adapter.poll_events(TS + timedelta(hours=5)) == []  # no OrderCanceled
    paused = adapter.get_order("og-0001")
    assert paused is not None and paused.status is OrderStatus.PARTIALLY_FILLED
    STATE.fill("og-0001", "60", "101")  # day 2
    day_two = adapter.poll_events(TS + timedelta(days=1))
    assert [type(e) for e in day_two] == [Fill]
    assert day_two[0].qty == Decimal(60)  # type: ignore[union-attr]


@pytest.mark.parametrize("status,expected", [
    ("done_for_day", OrderStatus.NEW),
    ("calculated", OrderStatus.NEW),
    ("pending_review", OrderStatus.NEW),
    ("stopped", OrderStatus.NEW),
    ("suspended", OrderStatus.NEW),
    ("pending_cancel", OrderStatus.NEW),
    ("expired", OrderStatus.CANCELED),
    ("replaced", OrderStatus.CANCELED),
    ("canceled", OrderStatus.CANCELED),
    ("rejected", OrderStatus.REJECTED),
])
def test_only_alpacas_final_statuses_end_an_order(adapter: AlpacaAdapter, status: str,
                                                  expected: OrderStatus) -> None:
    adapter.submit(dispatch())
    order = STATE.by_client_id("og-0001")
    assert order is not None
    order["status"] = status
    found = adapter.get_order("og-0001")
    assert found is not None and found.status is expected


def test_every_status_the_sdk_knows_is_mapped(adapter: AlpacaAdapter) -> None:
    from alpaca.trading.enums import OrderStatus as AlpacaStatus

    adapter.submit(dispatch())
    order = STATE.by_client_id("og-0001")
    assert order is not None
    for status in AlpacaStatus:
        order["status"] = status.value
        assert adapter.get_order("og-0001") is not None, status


def test_an_orders_fill_time_is_alpacas_filled_at_in_utc(adapter: AlpacaAdapter) -> None:
    adapter.submit(dispatch())
    assert adapter.get_order("og-0001").filled_at is None  # type: ignore[union-attr]
    STATE.fill("og-0001", "10", "101")
    raw = STATE.by_client_id("og-0001")
    assert raw is not None
    raw["filled_at"] = "2024-03-04T10:16:01.987654321-05:00"
    found = adapter.get_order("og-0001")
    assert found is not None
    assert found.filled_at == datetime(2024, 3, 4, 15, 16, 1, 987654, tzinfo=UTC)
    del raw["filled_at"]
    assert adapter.get_order("og-0001").filled_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["yesterday", "", "2024-03-04T10:16:01", 1709565361,
                                 ["2024-03-04T15:16:01Z"], "0001-01-01T00:00:00+01:00"])
def test_a_filled_at_that_is_no_time_is_left_out_and_the_order_still_read(
        adapter: AlpacaAdapter, bad: object) -> None:
    adapter.submit(dispatch())
    STATE.fill("og-0001", "4", "101")
    raw = STATE.by_client_id("og-0001")
    assert raw is not None
    raw["filled_at"] = bad
    with capture_logs() as logs:
        found = adapter.get_order("og-0001")
    assert found is not None and found.filled_at is None
    assert (found.status, found.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(4))
    (warning,) = [log for log in logs if log["event"] == "broker_bad_fill_time"]
    assert warning["field"] == "get_order: order og-0001: filled_at"
