"""The Tradier adapter against a local Tradier API: tags, sides, collections, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakes.server import ServerThread
from fakes.tradier import ACCOUNT, TOKEN, TradierState, build
from structlog.testing import capture_logs

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerNotSent,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
)
from ordergate.brokers.config import Secret
from ordergate.brokers.tradier import TradierAdapter
from ordergate.model.events import Dispatch, Fill, OrderAck, OrderCanceled
from ordergate.model.intent import OrderType, Side, TimeInForce

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
STATE = TradierState()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread(build(STATE))
    url = server.start()
    yield url
    server.stop()


def make_adapter(base_url: str, token: str = TOKEN) -> TradierAdapter:
    return TradierAdapter(token=Secret(token), broker_account=ACCOUNT, account="acct-t",
                          base_url=base_url, timeout_s=0.3)


@pytest.fixture
def adapter(base_url: str) -> Iterator[TradierAdapter]:
    STATE.reset()
    made = make_adapter(base_url)
    yield made
    made.close()


def dispatch(cid: str = "og-t-0001", **changes: object) -> Dispatch:
    fields: dict[str, object] = dict(
        ts=TS, client_order_id=cid, intent_id="i-1", account="acct-t", strategy="s-1",
        symbol="SPY", side=Side.BUY, qty=Decimal(5), order_type=OrderType.LIMIT,
        limit_price=Decimal("510.25"), tif=TimeInForce.DAY)
    fields.update(changes)
    return Dispatch(**fields)  # type: ignore[arg-type]


def last_order_form() -> dict[str, str]:
    return [form for method, _, form in STATE.requests if method == "POST"][-1]


def test_submit_query_cancel_round_trip(adapter: TradierAdapter) -> None:
    result = adapter.submit(dispatch())
    assert result.accepted and result.broker_order_id == "228175"
    form = last_order_form()
    assert form == {"class": "equity", "symbol": "SPY", "quantity": "5", "type": "limit",
                    "duration": "day", "tag": "og-t-0001", "price": "510.25", "side": "buy"}

    order = adapter.get_order("og-t-0001")
    assert order is not None and order.status is OrderStatus.NEW
    assert order.broker_order_id == "228175" and order.qty == Decimal(5)
    assert [o.client_order_id for o in adapter.open_orders()] == ["og-t-0001"]

    adapter.cancel("og-t-0001")
    canceled = adapter.get_order("og-t-0001")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert adapter.open_orders() == []


def test_order_sent_before_a_restart_is_found_by_tag(adapter: TradierAdapter,
                                                     base_url: str) -> None:
    adapter.submit(dispatch())
    adapter.submit(dispatch(cid="og-t-0002"))
    restarted = make_adapter(base_url)
    found = restarted.get_order("og-t-0002")
    assert found is not None and found.broker_order_id == "228176"
    assert restarted.get_order("never-sent") is None
    restarted.cancel("og-t-0001")
    assert STATE.orders[228175]["status"] == "canceled"
    restarted.close()


def test_empty_collections_are_empty_lists(adapter: TradierAdapter) -> None:
    assert adapter.open_orders() == []
    assert adapter.positions() == []
    assert adapter.get_order("og-t-0001") is None


def test_sides_follow_the_position(adapter: TradierAdapter) -> None:
    adapter.submit(dispatch(order_type=OrderType.MARKET, limit_price=None))
    assert last_order_form()["side"] == "buy"
    adapter.submit(dispatch(cid="og-t-0002", side=Side.SELL, qty=Decimal(5),
                            order_type=OrderType.MARKET, limit_price=None))
    assert last_order_form()["side"] == "sell"
    adapter.submit(dispatch(cid="og-t-0003", side=Side.SELL, qty=Decimal(2),
                            order_type=OrderType.MARKET, limit_price=None))
    assert last_order_form()["side"] == "sell_short"
    adapter.submit(dispatch(cid="og-t-0004", side=Side.BUY, qty=Decimal(2)))
    assert last_order_form()["side"] == "buy_to_cover"


def test_order_crossing_zero_is_refused_before_dispatch(adapter: TradierAdapter) -> None:
    adapter.submit(dispatch(order_type=OrderType.MARKET, limit_price=None))
    posts_before = len([r for r in STATE.requests if r[0] == "POST"])
    with pytest.raises(BrokerOrderRejected, match="cross"):
        adapter.submit(dispatch(cid="og-t-0002", side=Side.SELL, qty=Decimal(8)))
    assert len([r for r in STATE.requests if r[0] == "POST"]) == posts_before


@pytest.mark.parametrize("cid,reason", [
    ("og_t_0001", "letters, digits"),
    ("og:t", "letters, digits"),
    ("x" * 256, "255"),
])
def test_tags_tradier_cannot_carry_are_refused_not_altered(adapter: TradierAdapter, cid: str,
                                                           reason: str) -> None:
    with pytest.raises(BrokerOrderRejected, match=reason):
        adapter.submit(dispatch(cid=cid))
    assert STATE.requests == []


def test_unsupported_tif_and_fractions_are_refused(adapter: TradierAdapter) -> None:
    with pytest.raises(BrokerOrderRejected, match="ioc"):
        adapter.submit(dispatch(tif=TimeInForce.IOC))
    with pytest.raises(BrokerOrderRejected, match="whole shares"):
        adapter.submit(dispatch(qty=Decimal("1.5")))
    assert STATE.requests == []


@pytest.mark.parametrize("order_type,price,stop", [
    (OrderType.MARKET, None, None), (OrderType.LIMIT, "510.25", None),
    (OrderType.STOP, None, "500"), (OrderType.STOP_LIMIT, "499.5", "500"),
])
def test_order_types_use_tradier_fields(adapter: TradierAdapter, order_type: OrderType,
                                        price: str | None, stop: str | None) -> None:
    adapter.submit(dispatch(order_type=order_type, tif=TimeInForce.GTC,
                            limit_price=None if price is None else Decimal(price),
                            stop_price=None if stop is None else Decimal(stop)))
    form = last_order_form()
    assert form["type"] == order_type.value and form["duration"] == "gtc"
    assert form.get("price") == price and form.get("stop") == stop


def test_positions_and_server_time(adapter: TradierAdapter) -> None:
    STATE.prices["SPY"] = Decimal("512.5")
    adapter.submit(dispatch(order_type=OrderType.MARKET, limit_price=None))
    (position,) = adapter.positions()
    assert (position.symbol, position.qty, position.avg_price) == ("SPY", 5, Decimal("512.5"))
    assert position.account == "acct-t"
    # the venue answers with its real clock: a UTC time close to ours
    told = adapter.server_time()
    assert told.tzinfo is not None and told.utcoffset() == timedelta(0)
    assert abs(told - datetime.now(UTC)) < timedelta(minutes=1)


def test_poll_events_reports_ack_fills_and_cancel(adapter: TradierAdapter) -> None:
    adapter.submit(dispatch())
    assert [type(e) for e in adapter.poll_events(TS)] == [OrderAck]
    STATE.fill("og-t-0001", "2", "510")
    (fill,) = adapter.poll_events(TS)
    assert isinstance(fill, Fill) and fill.qty == 2 and fill.price == Decimal(510)
    adapter.cancel("og-t-0001")
    assert [type(e) for e in adapter.poll_events(TS)] == [OrderCanceled]


def test_capabilities_declare_what_tradier_offers(adapter: TradierAdapter) -> None:
    caps = adapter.capabilities
    assert caps.time_in_force == {TimeInForce.DAY, TimeInForce.GTC}
    assert not caps.fractional_qty and not caps.reduce_only and not caps.post_only
    assert caps.order_types == frozenset(OrderType)


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
def test_error_modes_map_to_broker_errors(adapter: TradierAdapter, mode: str,
                                          error: type[Exception], status: int | None) -> None:
    STATE.faults.set(mode)
    with pytest.raises(error) as caught:
        adapter.positions()
    assert getattr(caught.value, "http_status", None) == status
    if mode == "429":
        assert caught.value.retry_after_s == 3.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode,error", [
    ("422", BrokerOrderRejected), ("500", BrokerUnavailable), ("timeout", BrokerUnavailable),
])
def test_submit_maps_errors_of_the_order_post(adapter: TradierAdapter, mode: str,
                                              error: type[Exception]) -> None:
    STATE.faults.set(mode, times=1, after=1)  # the position read passes; the post fails
    with pytest.raises(error):
        adapter.submit(dispatch())
    assert [method for method, _, _ in STATE.requests] == ["GET", "POST"]


def test_wrong_token_is_an_auth_error(base_url: str) -> None:
    STATE.reset()
    wrong = make_adapter(base_url, token="expired")
    with pytest.raises(BrokerAuthError):
        wrong.open_orders()
    wrong.close()


def test_connection_refused_is_unavailable() -> None:
    closed = make_adapter("http://127.0.0.1:9")
    with pytest.raises(BrokerUnavailable):
        closed.server_time()
    closed.close()


def test_repr_shows_no_token(adapter: TradierAdapter) -> None:
    assert TOKEN not in repr(adapter) and TOKEN not in repr(adapter._http.headers)


def test_timed_out_submit_that_landed_is_found_by_tag(adapter: TradierAdapter) -> None:
    STATE.faults.stall_s = 0.5
    STATE.faults.set("timeout", times=1, after=1)
    with pytest.raises(BrokerUnavailable):
        adapter.submit(dispatch())
    deadline = time.monotonic() + 5
    while (found := adapter.get_order("og-t-0001")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found is not None and found.broker_order_id == "228175"
    assert len(STATE.orders) == 1


@pytest.mark.parametrize("mode,cause", [("timeout", "timed out"), ("503", "HTTP 503")])
def test_failed_position_read_sends_nothing_and_says_not_sent(adapter: TradierAdapter,
                                                              mode: str, cause: str) -> None:
    STATE.faults.stall_s = 0.5
    STATE.faults.set(mode, times=1)  # the position read that picks the side fails
    with pytest.raises(BrokerNotSent) as caught:
        adapter.submit(dispatch())
    assert "not sent" in str(caught.value) and cause in str(caught.value)
    assert [method for method, _, _ in STATE.requests] == ["GET"]  # no POST
    assert STATE.orders == {}


def _hand_order(order_id: int, symbol: str, qty: int, status: str = "open") -> None:
    """An order placed at Tradier by hand: no tag."""
    filled = qty if status == "filled" else 0
    STATE.orders[order_id] = {
        "id": order_id, "type": "limit", "symbol": symbol, "side": "buy", "quantity": qty,
        "status": status, "duration": "day", "price": 10.0,
        "avg_fill_price": 10.0 if filled else 0, "exec_quantity": filled,
        "last_fill_price": 0, "last_fill_quantity": 0, "remaining_quantity": qty - filled,
        "create_date": "2024-03-04T15:15:30.000Z", "transaction_date": "2024-03-04T15:15:30.000Z",
        "class": "equity", "tag": ""}


def test_untagged_orders_are_named_apart_and_each_cancel_reaches_its_own(
        adapter: TradierAdapter) -> None:
    _hand_order(1, "AAPL", 5, status="filled")
    _hand_order(2, "MSFT", 7)
    _hand_order(3, "TSLA", 3)
    working = adapter.open_orders()
    assert [(o.client_order_id, o.symbol) for o in working] == [
        ("og-untagged-2", "MSFT"), ("og-untagged-3", "TSLA")]
    assert adapter.get_order("") is None  # no longer every untagged order's name
    found = adapter.get_order("og-untagged-1")
    assert found is not None and found.status is OrderStatus.FILLED

    adapter.cancel("og-untagged-3")
    assert [path for method, path, _ in STATE.requests if method == "DELETE"] == [
        f"/v1/accounts/{ACCOUNT}/orders/3"]
    assert STATE.orders[3]["status"] == "canceled" and STATE.orders[2]["status"] == "open"
    assert [o.client_order_id for o in adapter.open_orders()] == ["og-untagged-2"]


def test_cancel_orphan_of_an_untagged_order_cancels_that_order(base_url: str) -> None:
    from ordergate.runtime.dispatch import Dispatcher

    STATE.reset()
    _hand_order(1, "AAPL", 5, status="filled")
    _hand_order(2, "MSFT", 7)
    fresh = make_adapter(base_url)  # as after a restart: nothing cached
    outcome = Dispatcher(fresh, lambda: 10**9).cancel_orphan("og-untagged-2", 1, TS)
    assert not outcome.unresolved
    assert STATE.orders[2]["status"] == "canceled"
    assert [path for method, path, _ in STATE.requests if method == "DELETE"] == [
        f"/v1/accounts/{ACCOUNT}/orders/2"]
    fresh.close()


def test_an_orders_fill_time_is_its_transaction_date_while_only_fills_changed_it(
        adapter: TradierAdapter) -> None:
    adapter.submit(dispatch())
    assert adapter.get_order("og-t-0001").filled_at is None  # type: ignore[union-attr]
    STATE.fill("og-t-0001", "2", "510")
    raw = STATE.by_tag("og-t-0001")
    raw["transaction_date"] = "2024-03-04T15:16:01.250Z"
    when = datetime(2024, 3, 4, 15, 16, 1, 250000, tzinfo=UTC)
    assert adapter.get_order("og-t-0001").filled_at == when  # type: ignore[union-attr]
    STATE.fill("og-t-0001", "3", "510")
    assert adapter.get_order("og-t-0001").filled_at == when  # type: ignore[union-attr]
    del raw["transaction_date"]
    assert adapter.get_order("og-t-0001").filled_at is None  # type: ignore[union-attr]
    # canceled after a part filled: its last change is the cancel, not a fill
    raw["transaction_date"] = "2024-03-04T15:16:01.250Z"
    raw["status"] = "canceled"
    assert adapter.get_order("og-t-0001").filled_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["not a date", "2024-03-04 15:16:01", 1709565361, True,
                                 {"at": "2024-03-04T15:16:01Z"}])
def test_a_transaction_date_that_is_no_time_is_left_out_and_the_order_still_read(
        adapter: TradierAdapter, bad: object) -> None:
    adapter.submit(dispatch())
    STATE.fill("og-t-0001", "2", "510")
    STATE.by_tag("og-t-0001")["transaction_date"] = bad
    with capture_logs() as logs:
        found = adapter.get_order("og-t-0001")
    assert found is not None and found.filled_at is None
    assert (found.status, found.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(2))
    (warning,) = [log for log in logs if log["event"] == "broker_bad_fill_time"]
    assert warning["field"] == "get_order: order og-t-0001: transaction_date"


@pytest.mark.parametrize("told", [10**19, 0, -5])
def test_a_clock_beyond_the_calendar_is_a_bad_answer(adapter: TradierAdapter, told: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an OverflowError escaping the clock check (which counts only dependency errors)."""
    monkeypatch.setattr(adapter, "_request",
                        lambda *args, **kwargs: {"clock": {"timestamp": told}})
    with pytest.raises(BrokerBadResponse, match="clock: timestamp: expected seconds"):
        adapter.server_time()
