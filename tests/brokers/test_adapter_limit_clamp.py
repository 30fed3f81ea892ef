"""A REST adapter tells its order watch the limit of each order it sends (or is told to follow
after a restart), so a part-fill it prices from the venue's rounded cumulative averages is
booked at the limit when the rounding alone puts it a hair past, and the engine raises no
FILL_PRICE alert for it; a venue that really fills past the limit still books that price and
the alert stays critical.

Each adapter runs against its fake venue on loopback, which is made to report averages
rounded half up to 4 decimals, as a venue writing fixed-point averages does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from fakes import alpaca as fake_alpaca
from fakes import deribit as fake_deribit
from fakes import tradier as fake_tradier
from fakes.server import ServerThread
from tests.engine.harness import Harness, of_type

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.ccxt_venue import CcxtVenue
from ordergate.brokers.config import Secret
from ordergate.brokers.labels import order_limit
from ordergate.brokers.tradier import TradierAdapter
from ordergate.engine.lifecycle import FILL_PRICE
from ordergate.model.events import Alert, Dispatch, Fill, OrderAck
from ordergate.model.intent import Side

D = Decimal
FOUR_DECIMALS = D("0.0001")
ALPACA = fake_alpaca.AlpacaState()
TRADIER = fake_tradier.TradierState()
DERIBIT = fake_deribit.DeribitState()


@dataclass
class Venue:
    """An adapter, and a hook executing part of an order at its fake venue, which then reports
    the order's average price rounded to 4 decimals (the exact notional kept here)."""

    adapter: Any
    restarted: Callable[[], Any]  # a new adapter on the same venue, following nothing yet
    symbol: str
    execute: Callable[[str, str, str], None]
    set_average: Callable[[str, Decimal], None]
    executed: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def fill(self, cid: str, qty: str, price: str) -> None:
        self.execute(cid, qty, price)
        done, notional = self.executed.get(cid, (D(0), D(0)))
        done, notional = done + D(qty), notional + D(qty) * D(price)
        self.executed[cid] = (done, notional)
        self.set_average(cid, (notional / done).quantize(FOUR_DECIMALS, ROUND_HALF_UP))


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

    def set_average(cid: str, avg: Decimal) -> None:
        order = ALPACA.by_client_id(cid)
        assert order is not None
        order["filled_avg_price"] = str(avg)

    def adapter() -> AlpacaAdapter:
        return AlpacaAdapter(api_key=Secret(fake_alpaca.KEY_ID),
                             secret_key=Secret(fake_alpaca.SECRET), account="A",
                             paper=True, base_url=url, timeout_s=2)

    return Venue(adapter(), adapter, "AAPL", ALPACA.fill, set_average)


def _tradier(url: str) -> Venue:
    TRADIER.reset()

    def set_average(cid: str, avg: Decimal) -> None:
        TRADIER.by_tag(cid)["avg_fill_price"] = float(avg)

    def adapter() -> TradierAdapter:
        return TradierAdapter(token=Secret(fake_tradier.TOKEN),
                              broker_account=fake_tradier.ACCOUNT, account="A",
                              base_url=url, timeout_s=2)

    return Venue(adapter(), adapter, "SPY", TRADIER.fill, set_average)


def _deribit(url: str) -> Venue:
    DERIBIT.reset()

    def set_average(cid: str, avg: Decimal) -> None:
        (order,) = DERIBIT.by_label(cid)
        order["average_price"] = float(avg)

    def adapter() -> CcxtVenue:
        return CcxtVenue(api_key=Secret(fake_deribit.CLIENT_ID),
                         secret=Secret(fake_deribit.CLIENT_SECRET), account="A",
                         base_url=url, timeout_s=2, client_rate_limit=False)

    return Venue(adapter(), adapter, "BTC-PERPETUAL", DERIBIT.fill, set_average)


BUILDERS = {"alpaca": _alpaca, "tradier": _tradier, "deribit": _deribit}


@pytest.fixture(params=sorted(BUILDERS))
def venue(request: pytest.FixtureRequest, urls: dict[str, str]) -> Iterator[Venue]:
    made = BUILDERS[request.param](urls[request.param])
    yield made
    if isinstance(made.adapter, TradierAdapter):
        made.adapter.close()


def _world(venue: Venue) -> Harness:
    return Harness(symbols=(venue.symbol,))


def _polled(world: Harness, venue: Venue) -> tuple[list[Fill], list[Alert]]:
    """One poll of the adapter, each event it reports fed to the engine."""
    fills: list[Fill] = []
    alerts: list[Alert] = []
    world.advance(1)
    for event in venue.adapter.poll_events(world.now):
        outputs = world.send(event)
        if isinstance(event, Fill):
            fills.append(event)
        alerts.extend(alert for alert in of_type(outputs, Alert) if alert.code == FILL_PRICE)
    return fills, alerts


def _sent(world: Harness, venue: Venue, qty: str) -> Dispatch:
    """A buy limit at 100 the engine allows, submitted to the venue and acked."""
    order = world.accepted(Side.BUY, qty=qty, limit_price="100", symbol=venue.symbol)
    assert venue.adapter.submit(order).accepted
    world.advance(1)
    (ack,) = venue.adapter.poll_events(world.now)
    assert isinstance(ack, OrderAck)
    world.send(ack)
    return order


def test_a_part_the_venue_rounding_prices_a_hair_past_the_limit_is_booked_at_it(
        venue: Venue) -> None:
    world = _world(venue)
    cid = _sent(world, venue, "10").client_order_id
    venue.fill(cid, "3", "99.99")
    fills, alerts = _polled(world, venue)
    assert [(fill.qty, fill.price) for fill in fills] == [(D(3), D("99.99"))]
    # 5 more at the limit: 8 @ 99.99625, reported as 99.9963, which prices the part at
    # (8 x 99.9963 - 3 x 99.99) / 5 = 100.00008, past the limit by the rounding alone
    venue.fill(cid, "5", "100")
    assert venue.adapter.get_order(cid).avg_fill_price == D("99.9963")
    fills, alerts = _polled(world, venue)
    assert [(fill.qty, fill.price) for fill in fills] == [(D(5), D(100))]
    assert alerts == []
    # the rest at the limit: what booking at the limit left out is carried into this part,
    # still within the limit
    venue.fill(cid, "2", "100")
    fills, alerts = _polled(world, venue)
    assert len(fills) == 1 and fills[0].qty == 2 and fills[0].price <= D(100)
    assert alerts == []
    assert world.state.position("A", venue.symbol) == 10
    assert cid not in world.state.open_orders


def test_a_venue_filling_one_percent_past_the_limit_still_books_that_price(
        venue: Venue) -> None:
    world = _world(venue)
    cid = _sent(world, venue, "10").client_order_id
    venue.fill(cid, "3", "99.99")
    venue.fill(cid, "5", "100")
    _polled(world, venue)
    venue.fill(cid, "2", "101")  # 10 @ 100.197: the part at 101
    fills, alerts = _polled(world, venue)
    assert [fill.qty for fill in fills] == [D(2)]
    assert abs(fills[0].price - D(101)) < D("0.001")
    (alert,) = alerts
    assert alert.severity == "critical"
    assert f"was filled at {fills[0].price}, above its limit price 100" in alert.message


def test_an_adapter_following_an_order_after_a_restart_keeps_it_within_its_limit(
        venue: Venue) -> None:
    """A restarted process's adapter, told the order's limit by `track`, books the part the
    venue's rounding prices 100.00008 at the limit."""
    world = _world(venue)
    order = _sent(world, venue, "10")
    cid = order.client_order_id
    venue.fill(cid, "3", "99.99")
    _polled(world, venue)
    reported = venue.adapter.get_order(cid)
    if isinstance(venue.adapter, TradierAdapter):
        venue.adapter.close()
    venue.adapter = venue.restarted()
    venue.adapter.track(cid, reported, limit=order_limit(order.side, order.limit_price))
    venue.fill(cid, "5", "100")
    fills, alerts = _polled(world, venue)
    assert [(fill.qty, fill.price) for fill in fills] == [(D(5), D(100))]
    assert alerts == []
