"""The Deribit adapter (ccxt) against a local Deribit API: labels, flags, errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakes.deribit import CLIENT_ID, CLIENT_SECRET, DeribitState, build
from fakes.server import ServerThread
from structlog.testing import capture_logs

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
)
from ordergate.brokers.ccxt_venue import CcxtVenue, currency_of
from ordergate.brokers.config import Secret
from ordergate.model.events import Dispatch, Fill, OrderAck, OrderCanceled
from ordergate.model.intent import OrderType, Side, TimeInForce

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
STATE = DeribitState()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread(build(STATE))
    url = server.start()
    yield url
    server.stop()


def make_venue(base_url: str, **options: object) -> CcxtVenue:
    return CcxtVenue(api_key=Secret(CLIENT_ID), secret=Secret(CLIENT_SECRET), account="acct-c",
                     base_url=base_url, timeout_s=0.3, client_rate_limit=False,
                     **options)  # type: ignore[arg-type]


@pytest.fixture
def venue(base_url: str) -> CcxtVenue:
    STATE.reset()
    return make_venue(base_url)


def dispatch(cid: str = "og-c-0001", **changes: object) -> Dispatch:
    fields: dict[str, object] = dict(
        ts=TS, client_order_id=cid, intent_id="i-1", account="acct-c", strategy="s-1",
        symbol="BTC-PERPETUAL", side=Side.BUY, qty=Decimal(100), order_type=OrderType.LIMIT,
        limit_price=Decimal("60000.5"), tif=TimeInForce.GTC)
    fields.update(changes)
    return Dispatch(**fields)  # type: ignore[arg-type]


def test_submit_query_cancel_round_trip(venue: CcxtVenue) -> None:
    result = venue.submit(dispatch())
    assert result.accepted and result.broker_order_id
    method, sent = STATE.requests[-1]
    assert method == "buy"
    assert sent["label"] == "og-c-0001" and sent["instrument_name"] == "BTC-PERPETUAL"
    assert sent["amount"] == "100" and sent["price"] == "60000.5"
    assert sent["type"] == "limit" and sent["time_in_force"] == "good_til_cancelled"

    order = venue.get_order("og-c-0001")
    assert order is not None
    assert order.broker_order_id == result.broker_order_id
    assert order.status is OrderStatus.NEW and order.qty == Decimal(100)
    assert [o.client_order_id for o in venue.open_orders()] == ["og-c-0001"]

    venue.cancel("og-c-0001")
    canceled = venue.get_order("og-c-0001")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert venue.open_orders() == []


def test_sell_goes_to_private_sell(venue: CcxtVenue) -> None:
    venue.submit(dispatch(side=Side.SELL))
    assert STATE.requests[-1][0] == "sell"


def test_order_unknown_to_the_venue_is_none(venue: CcxtVenue) -> None:
    assert venue.get_order("never-sent") is None
    asked = [q["currency"] for m, q in STATE.requests if m == "get_order_state_by_label"]
    assert asked == ["BTC", "ETH"]


def test_cancel_with_no_open_order_is_rejected(venue: CcxtVenue) -> None:
    with pytest.raises(BrokerOrderRejected, match="no open order"):
        venue.cancel("never-sent")


def test_label_over_64_characters_is_refused_before_dispatch(venue: CcxtVenue) -> None:
    with pytest.raises(BrokerOrderRejected, match="64") as caught:
        venue.submit(dispatch(cid="L" * 65))
    assert "truncated" in str(caught.value)
    assert STATE.requests == []
    venue.submit(dispatch(cid="M" * 64))
    assert STATE.requests[-1][1]["label"] == "M" * 64


def test_reduce_only_and_post_only_reach_the_venue(base_url: str) -> None:
    STATE.reset()
    venue = make_venue(base_url, post_only=True)
    venue.submit(dispatch(reduce_only=True))
    sent = STATE.requests[-1][1]
    assert sent["reduce_only"] == "true"
    assert sent["post_only"] == "true" and sent["reject_post_only"] == "true"
    venue.submit(dispatch(cid="og-c-0002", order_type=OrderType.MARKET, limit_price=None))
    market = STATE.requests[-1][1]
    assert "post_only" not in market and "reduce_only" not in market


def test_plain_orders_carry_no_flags(venue: CcxtVenue) -> None:
    venue.submit(dispatch())
    sent = STATE.requests[-1][1]
    assert "reduce_only" not in sent and "post_only" not in sent


@pytest.mark.parametrize("order_type,venue_type", [
    (OrderType.MARKET, "market"), (OrderType.LIMIT, "limit"),
    (OrderType.STOP, "stop_market"), (OrderType.STOP_LIMIT, "stop_limit"),
])
@pytest.mark.parametrize("tif,venue_tif", [
    (TimeInForce.DAY, "good_til_day"), (TimeInForce.GTC, "good_til_cancelled"),
    (TimeInForce.IOC, "immediate_or_cancel"), (TimeInForce.FOK, "fill_or_kill"),
])
def test_order_types_and_tifs_use_deribit_names(
        venue: CcxtVenue, order_type: OrderType, venue_type: str, tif: TimeInForce,
        venue_tif: str) -> None:
    venue.submit(dispatch(order_type=order_type, tif=tif, stop_price=Decimal("59000")))
    sent = STATE.requests[-1][1]
    assert sent["type"] == venue_type and sent["time_in_force"] == venue_tif
    assert ("trigger_price" in sent) == (order_type in (OrderType.STOP, OrderType.STOP_LIMIT))
    assert ("price" in sent) == (order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT))


def test_amounts_are_sent_as_exact_contract_amounts(venue: CcxtVenue) -> None:
    venue.submit(dispatch(symbol="ETH-PERPETUAL", qty=Decimal("0.00001")))
    assert STATE.requests[-1][1]["amount"] == "0.00001"


def test_fills_positions_and_server_time(venue: CcxtVenue) -> None:
    STATE.prices["BTC-PERPETUAL"] = Decimal("61000.5")
    venue.submit(dispatch(order_type=OrderType.MARKET, limit_price=None, qty=Decimal(250)))
    venue.submit(dispatch(cid="og-c-0002", symbol="ETH-PERPETUAL", side=Side.SELL,
                          order_type=OrderType.MARKET, limit_price=None, qty=Decimal(7)))
    positions = {p.symbol: p for p in venue.positions()}
    assert positions["BTC-PERPETUAL"].qty == Decimal(250)
    assert positions["BTC-PERPETUAL"].avg_price == Decimal("61000.5")
    assert positions["ETH-PERPETUAL"].qty == Decimal(-7)
    assert {p.account for p in positions.values()} == {"acct-c"}
    order = venue.get_order("og-c-0001")
    assert order is not None and order.status is OrderStatus.FILLED
    # the venue answers with its real clock: a UTC time close to ours
    told = venue.server_time()
    assert told.tzinfo is not None and told.utcoffset() == timedelta(0)
    assert abs(told - datetime.now(UTC)) < timedelta(minutes=1)


def test_poll_events_reports_ack_fill_and_cancel(venue: CcxtVenue) -> None:
    venue.submit(dispatch())
    assert [type(e) for e in venue.poll_events(TS)] == [OrderAck]
    STATE.fill("og-c-0001", "40", "60000.5")
    events = venue.poll_events(TS)
    assert len(events) == 1 and isinstance(events[0], Fill)
    assert events[0].qty == Decimal(40) and events[0].price == Decimal("60000.5")
    venue.cancel("og-c-0001")
    assert [type(e) for e in venue.poll_events(TS)] == [OrderCanceled]


def test_capabilities_declare_deribit_features(venue: CcxtVenue) -> None:
    caps = venue.capabilities
    assert caps.reduce_only and caps.post_only and caps.query_by_client_id
    assert caps.max_client_order_id_length == 64
    assert caps.order_types == frozenset(OrderType)


def test_currency_of_instrument() -> None:
    assert currency_of("BTC-PERPETUAL") == "BTC"
    assert currency_of("ETH-29MAR24-3000-C") == "ETH"
    assert currency_of("BTC_USDC-PERPETUAL") == "USDC"


@pytest.mark.parametrize("mode,error", [
    ("401", BrokerAuthError),
    ("403", BrokerAuthError),
    ("422", BrokerOrderRejected),
    ("429", BrokerRateLimited),
    ("500", BrokerUnavailable),
    ("503", BrokerUnavailable),
    ("timeout", BrokerUnavailable),
    ("bad_shape", BrokerBadResponse),
])
def test_error_modes_map_to_broker_errors(venue: CcxtVenue, mode: str,
                                          error: type[Exception]) -> None:
    STATE.faults.set(mode)
    with pytest.raises(error) as caught:
        venue.submit(dispatch())
    if mode == "429":
        assert caught.value.retry_after_s == 1.5  # type: ignore[attr-defined]


def test_wrong_secret_is_an_auth_error(base_url: str) -> None:
    STATE.reset()
    wrong = CcxtVenue(api_key=Secret(CLIENT_ID), secret=Secret("nope"), account="a",
                      base_url=base_url, timeout_s=0.3, client_rate_limit=False)
    with pytest.raises(BrokerAuthError):
        wrong.open_orders()


def test_reads_map_errors_too(venue: CcxtVenue) -> None:
    STATE.faults.set("503")
    with pytest.raises(BrokerUnavailable):
        venue.positions()
    STATE.faults.set("bad_shape")
    with pytest.raises(BrokerBadResponse):
        venue.get_order("og-c-0001")
    with pytest.raises(BrokerBadResponse):
        venue.server_time()


def test_connection_refused_is_unavailable() -> None:
    closed = make_venue("http://127.0.0.1:9")
    with pytest.raises(BrokerUnavailable):
        closed.server_time()


def test_credentials_never_logged_or_shown(venue: CcxtVenue,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    venue.submit(dispatch())
    venue.get_order("og-c-0001")
    text = caplog.text + repr(venue)
    assert CLIENT_SECRET not in text and CLIENT_ID not in text


def test_timed_out_submit_that_landed_is_found_by_label(venue: CcxtVenue) -> None:
    STATE.faults.stall_s = 0.5
    STATE.faults.set("timeout", times=1)
    with pytest.raises(BrokerUnavailable):
        venue.submit(dispatch())
    deadline = time.monotonic() + 5
    while (found := venue.get_order("og-c-0001")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found is not None and found.client_order_id == "og-c-0001"
    assert len(STATE.orders) == 1


def _unlabel(label: str) -> str:
    """Make the order placed under `label` look placed by hand (no label); its Deribit id."""
    (order,) = STATE.by_label(label)
    order["label"] = ""
    return str(order["order_id"])


def test_unlabelled_orders_are_named_apart_and_each_cancel_reaches_its_own(
        venue: CcxtVenue) -> None:
    venue.submit(dispatch(cid="hand-1", order_type=OrderType.MARKET, limit_price=None))
    venue.submit(dispatch(cid="hand-2"))
    venue.submit(dispatch(cid="hand-3", symbol="ETH-PERPETUAL"))
    filled, second, third = _unlabel("hand-1"), _unlabel("hand-2"), _unlabel("hand-3")
    fresh = make_venue(venue.base_url)  # as after a restart: nothing remembered
    names = sorted(o.client_order_id for o in fresh.open_orders())
    assert names == sorted([f"og-untagged-{second}", f"og-untagged-{third}"])
    assert fresh.get_order("") is None
    with pytest.raises(BrokerOrderRejected):
        fresh.cancel("")  # never every unlabelled order at once
    done = fresh.get_order(f"og-untagged-{filled}")
    assert done is not None and done.status is OrderStatus.FILLED

    fresh.cancel(f"og-untagged-{third}")
    assert [q for m, q in STATE.requests if m == "cancel"] == [{"order_id": third}]
    assert STATE.orders[third]["order_state"] == "cancelled"
    assert STATE.orders[second]["order_state"] == "open"
    with pytest.raises(BrokerOrderRejected):
        fresh.cancel(f"og-untagged-{filled}")  # the venue refuses: not open
    assert fresh.get_order("og-untagged-999") is None  # no such Deribit order


def test_a_labelled_order_is_not_reached_by_an_untagged_name(venue: CcxtVenue) -> None:
    venue.submit(dispatch(cid="og-c-0001"))
    (order,) = STATE.by_label("og-c-0001")
    assert venue.get_order(f"og-untagged-{order['order_id']}") is None
    with pytest.raises(BrokerOrderRejected):
        venue.cancel(f"og-untagged-{order['order_id']}")
    assert order["order_state"] == "open"


def test_a_timeout_below_one_millisecond_is_refused_when_built(base_url: str) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        CcxtVenue(api_key=Secret(CLIENT_ID), secret=Secret(CLIENT_SECRET), account="acct-c",
                  base_url=base_url, timeout_s=0.0004)


def test_a_request_the_http_stack_refuses_is_a_broker_error_not_a_value_error(
        venue: CcxtVenue) -> None:
    venue._exchange.timeout = 0  # the stack raises ValueError: a timeout of 0 s
    with pytest.raises(BrokerBadResponse, match="could not be made"):
        venue.server_time()
    with pytest.raises(BrokerBadResponse):
        venue.submit(dispatch())


def test_an_orders_fill_time_is_its_last_update_while_only_fills_changed_it(
        venue: CcxtVenue) -> None:
    venue.submit(dispatch())
    assert venue.get_order("og-c-0001").filled_at is None  # type: ignore[union-attr]
    STATE.fill("og-c-0001", "40", "60000.5")
    (raw,) = STATE.by_label("og-c-0001")
    raw["last_update_timestamp"] = 1709565361250
    when = datetime(2024, 3, 4, 15, 16, 1, 250000, tzinfo=UTC)
    assert venue.get_order("og-c-0001").filled_at == when  # type: ignore[union-attr]
    raw["last_update_timestamp"] = 1709565361250.0  # a whole number written as a float
    assert venue.get_order("og-c-0001").filled_at == when  # type: ignore[union-attr]
    STATE.fill("og-c-0001", "60", "60000.5")
    assert venue.get_order("og-c-0001").filled_at == when  # type: ignore[union-attr]
    del raw["last_update_timestamp"]
    assert venue.get_order("og-c-0001").filled_at is None  # type: ignore[union-attr]
    # cancelled after a part filled: its last update is the cancel, not a fill
    raw["last_update_timestamp"] = 1709565361250
    raw["filled_amount"] = 40
    raw["order_state"] = "cancelled"
    assert venue.get_order("og-c-0001").filled_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["1709565361250", 1709565361250.5, 0, -5, 10**20, True,
                                 [1709565361250]])
def test_a_last_update_that_is_no_time_is_left_out_and_the_order_still_read(
        venue: CcxtVenue, bad: object) -> None:
    venue.submit(dispatch())
    STATE.fill("og-c-0001", "40", "60000.5")
    (raw,) = STATE.by_label("og-c-0001")
    raw["last_update_timestamp"] = bad
    with capture_logs() as logs:
        found = venue.get_order("og-c-0001")
    assert found is not None and found.filled_at is None
    assert (found.status, found.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal(40))
    (warning,) = [log for log in logs if log["event"] == "broker_bad_fill_time"]
    assert warning["field"] == "get_order: order og-c-0001: last_update_timestamp"


@pytest.mark.parametrize("told", [10**22, 0, -5])
def test_a_server_time_beyond_the_calendar_is_a_bad_answer(venue: CcxtVenue, told: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an OverflowError escaping the clock check (which counts only dependency errors)."""
    monkeypatch.setattr(venue._exchange, "publicGetGetTime", lambda params: {"result": told})
    with pytest.raises(BrokerBadResponse, match="server_time: expected milliseconds"):
        venue.server_time()
