"""The REST adapters follow every order from before its submit is sent, and lose no event
they observed: a submit with no answer that reached the venue is reported (ack, then fills)
by a later poll; a bad answer for one order neither drops the others' events nor ends the
following of the bad one. Each adapter runs against its local fake venue on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fakes import alpaca as fake_alpaca
from fakes import deribit as fake_deribit
from fakes import tradier as fake_tradier
from fakes.server import Faults, ServerThread

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.base import BrokerBadResponse, BrokerOrderRejected, BrokerUnavailable
from ordergate.brokers.ccxt_venue import CcxtVenue
from ordergate.brokers.config import Secret
from ordergate.brokers.tradier import TradierAdapter
from ordergate.model.events import Dispatch, Fill, InputEvent, OrderAck
from ordergate.model.intent import OrderType, Side, TimeInForce

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
ALPACA = fake_alpaca.AlpacaState()
TRADIER = fake_tradier.TradierState()
DERIBIT = fake_deribit.DeribitState()


@dataclass
class Venue:
    """One adapter and the hooks of its fake venue the tests need."""

    name: str
    adapter: Any
    faults: Faults
    symbol: str
    qty: Decimal
    price: Decimal
    submits_before_post: int  # reads a submit makes before it sends the order
    fill: Callable[[str, str, str], None]
    order_fields: Callable[[str], dict[str, Any]]
    unpriced_fill: Callable[[str, str], None]  # a fill reported without an average price
    orders_count: Callable[[], int]

    def dispatch(self, cid: str) -> Dispatch:
        return Dispatch(ts=TS, client_order_id=cid, intent_id=f"i-{cid}", account="acct-1",
                        strategy="s-1", symbol=self.symbol, side=Side.BUY, qty=self.qty,
                        order_type=OrderType.LIMIT, limit_price=self.price,
                        tif=TimeInForce.DAY)


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    servers = {"alpaca": ServerThread(fake_alpaca.build(ALPACA)),
               "tradier": ServerThread(fake_tradier.build(TRADIER)),
               "deribit": ServerThread(fake_deribit.build(DERIBIT))}
    started = {name: server.start() for name, server in servers.items()}
    yield started
    for server in servers.values():
        server.stop()


def _alpaca(url: str) -> Venue:
    ALPACA.reset()

    def unpriced(cid: str, qty: str) -> None:
        order = ALPACA.by_client_id(cid)
        assert order is not None
        order.update(status="partially_filled", filled_qty=qty, filled_avg_price=None)

    def fields(cid: str) -> dict[str, Any]:
        order = ALPACA.by_client_id(cid)
        assert order is not None
        return order

    adapter = AlpacaAdapter(api_key=Secret(fake_alpaca.KEY_ID),
                            secret_key=Secret(fake_alpaca.SECRET), account="acct-1",
                            paper=True, base_url=url, timeout_s=0.3)
    return Venue("alpaca", adapter, ALPACA.faults, "AAPL", Decimal(10), Decimal("101.25"), 0,
                 ALPACA.fill, fields, unpriced, lambda: len(ALPACA.orders))


def _tradier(url: str) -> Venue:
    TRADIER.reset()

    def unpriced(cid: str, qty: str) -> None:
        TRADIER.by_tag(cid).update(status="partially_filled", exec_quantity=int(qty),
                                   avg_fill_price=0)

    adapter = TradierAdapter(token=Secret(fake_tradier.TOKEN),
                             broker_account=fake_tradier.ACCOUNT, account="acct-1",
                             base_url=url, timeout_s=0.3)
    return Venue("tradier", adapter, TRADIER.faults, "SPY", Decimal(5), Decimal("510.25"), 1,
                 TRADIER.fill, TRADIER.by_tag, unpriced, lambda: len(TRADIER.orders))


def _deribit(url: str) -> Venue:
    DERIBIT.reset()

    def unpriced(cid: str, qty: str) -> None:
        (order,) = DERIBIT.by_label(cid)
        order.update(filled_amount=int(qty), average_price=0)

    def fields(cid: str) -> dict[str, Any]:
        (order,) = DERIBIT.by_label(cid)
        return order

    adapter = CcxtVenue(api_key=Secret(fake_deribit.CLIENT_ID),
                        secret=Secret(fake_deribit.CLIENT_SECRET), account="acct-1",
                        base_url=url, timeout_s=0.3, client_rate_limit=False)
    return Venue("deribit", adapter, DERIBIT.faults, "BTC-PERPETUAL", Decimal(100),
                 Decimal("60000.5"), 0, DERIBIT.fill, fields, unpriced,
                 lambda: len(DERIBIT.orders))


BUILDERS = {"alpaca": _alpaca, "tradier": _tradier, "deribit": _deribit}


@pytest.fixture(params=sorted(BUILDERS))
def venue(request: pytest.FixtureRequest, urls: dict[str, str]) -> Iterator[Venue]:
    made = BUILDERS[request.param](urls[request.param])
    made.faults.stall_s = 0.6
    yield made
    if isinstance(made.adapter, TradierAdapter):
        made.adapter.close()


def kinds(events: list[InputEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def poll_until_something(venue: Venue) -> list[InputEvent]:
    """Poll until the venue shows what a stalled submit left there (it lands after the stall)."""
    deadline = time.monotonic() + 10
    while not (events := venue.adapter.poll_events(TS)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return events


def test_a_timed_out_submit_that_reached_the_venue_is_reported_by_a_later_poll(
        venue: Venue) -> None:
    venue.faults.set("timeout", times=1, after=venue.submits_before_post)
    with pytest.raises(BrokerUnavailable):
        venue.adapter.submit(venue.dispatch("og-late-1"))
    (ack,) = poll_until_something(venue)
    assert isinstance(ack, OrderAck) and ack.client_order_id == "og-late-1"
    assert ack.broker_order_id
    venue.fill("og-late-1", str(venue.qty), str(venue.price))
    (fill,) = venue.adapter.poll_events(TS)
    assert isinstance(fill, Fill) and fill.qty == venue.qty and fill.price == venue.price
    assert venue.adapter.poll_events(TS) == []
    assert venue.orders_count() == 1


def test_a_poll_that_does_not_find_an_unanswered_order_yet_skips_it_and_keeps_following(
        venue: Venue) -> None:
    # The venue answers 503 without taking the order: nothing to find, and no error for it.
    venue.faults.set("503", times=1, after=venue.submits_before_post)
    with pytest.raises(BrokerUnavailable):
        venue.adapter.submit(venue.dispatch("og-later"))
    assert venue.adapter.poll_events(TS) == []
    assert venue.adapter.poll_events(TS) == []
    # ...until the order does show at the venue (put there by a second client here).
    _same_venue_adapter(venue).submit(venue.dispatch("og-later"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck"]


def _same_venue_adapter(venue: Venue) -> Any:
    adapter = venue.adapter
    if isinstance(adapter, AlpacaAdapter):
        return AlpacaAdapter(api_key=Secret(fake_alpaca.KEY_ID),
                             secret_key=Secret(fake_alpaca.SECRET), account="acct-1",
                             paper=True, base_url=adapter.base_url, timeout_s=2)
    if isinstance(adapter, TradierAdapter):
        return TradierAdapter(token=Secret(fake_tradier.TOKEN),
                              broker_account=fake_tradier.ACCOUNT, account="acct-1",
                              base_url=adapter.base_url, timeout_s=2)
    return CcxtVenue(api_key=Secret(fake_deribit.CLIENT_ID),
                     secret=Secret(fake_deribit.CLIENT_SECRET), account="acct-1",
                     base_url=adapter.base_url, timeout_s=2, client_rate_limit=False)


def test_a_submit_the_venue_refuses_is_not_followed(venue: Venue) -> None:
    venue.faults.set("422", times=1, after=venue.submits_before_post)
    with pytest.raises(BrokerOrderRejected):
        venue.adapter.submit(venue.dispatch("og-refused"))
    assert venue.adapter.poll_events(TS) == []
    assert venue.adapter._watch.working() == []


def test_a_bad_answer_for_one_order_loses_no_event_of_another(venue: Venue) -> None:
    venue.adapter.submit(venue.dispatch("og-good"))
    venue.adapter.submit(venue.dispatch("og-bad"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck", "OrderAck"]
    venue.fill("og-good", str(venue.qty), str(venue.price))
    venue.unpriced_fill("og-bad", "3")
    with pytest.raises(BrokerBadResponse, match="og-bad"):
        venue.adapter.poll_events(TS)  # the broker error still reaches the dispatcher
    (kept,) = venue.adapter.poll_events(TS)  # ...and the good order's fill is not lost
    assert isinstance(kept, Fill) and kept.client_order_id == "og-good"
    assert kept.qty == venue.qty
    with pytest.raises(BrokerBadResponse, match="og-bad"):
        venue.adapter.poll_events(TS)  # still bad: still followed, still reported as such


def test_the_bad_order_is_reported_once_the_venue_answers_properly(venue: Venue) -> None:
    venue.adapter.submit(venue.dispatch("og-b"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck"]
    venue.unpriced_fill("og-b", "3")
    with pytest.raises(BrokerBadResponse):
        venue.adapter.poll_events(TS)
    fields = venue.order_fields("og-b")
    price_field = {"alpaca": "filled_avg_price", "tradier": "avg_fill_price",
                   "deribit": "average_price"}[venue.name]
    fields[price_field] = str(venue.price) if venue.name == "alpaca" else float(venue.price)
    (fill,) = venue.adapter.poll_events(TS)
    assert isinstance(fill, Fill) and fill.qty == 3 and fill.price == venue.price


def test_an_order_reported_filled_with_nothing_executed_is_a_bad_answer_and_stays_followed(
        venue: Venue) -> None:
    venue.adapter.submit(venue.dispatch("og-z"))
    venue.adapter.submit(venue.dispatch("og-ok"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck", "OrderAck"]
    status_field, filled = {"alpaca": ("status", "filled"), "tradier": ("status", "filled"),
                            "deribit": ("order_state", "filled")}[venue.name]
    venue.order_fields("og-z")[status_field] = filled
    with pytest.raises(BrokerBadResponse, match="og-z: reported filled with 0"):
        venue.adapter.poll_events(TS)
    assert "og-z" in venue.adapter._watch.working()
    venue.fill("og-z", str(venue.qty), str(venue.price))
    (fill,) = venue.adapter.poll_events(TS)
    assert isinstance(fill, Fill) and fill.client_order_id == "og-z" and fill.qty == venue.qty


def test_an_unanswered_order_sent_again_and_refused_as_a_duplicate_stays_followed(
        urls: dict[str, str]) -> None:
    venue = _alpaca(urls["alpaca"])
    venue.faults.stall_s = 0.6
    venue.faults.set("timeout", times=1)
    with pytest.raises(BrokerUnavailable):
        venue.adapter.submit(venue.dispatch("og-dup"))
    deadline = time.monotonic() + 10
    while venue.adapter.get_order("og-dup") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(BrokerOrderRejected, match="unique"):
        venue.adapter.submit(venue.dispatch("og-dup"))  # the venue holds the original
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck"]
