"""A part-fill priced from a venue's rounded cumulative averages is kept within its order's
limit as far as that rounding allows, and only there.

A venue reports an order's cumulative filled quantity and its average price rounded (to 4
decimals here); `OrderWatch` prices each part-fill from two such averages, which puts the
price off by up to (cumulative qty x rounding + earlier qty x rounding) / part qty. A marketable
order sweeping a book up to its limit in many small parts therefore derives prices a little
past the limit, and the engine alerts critically on any fill past it (`FILL_PRICE`). Within the
rounding the part is booked at the limit; a venue that really fills past it still alerts."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

from tests.engine.harness import Harness, of_type

from ordergate.brokers.base import BrokerOrder, OrderStatus
from ordergate.brokers.labels import (
    OrderWatch,
    PriceLimit,
    half_unit,
    order_limit,
    within_limit,
)
from ordergate.engine.lifecycle import FILL_PRICE
from ordergate.model.events import Alert, Dispatch, Fill
from ordergate.model.intent import Side
from ordergate.runtime.loop import increment_price

D = Decimal
QTY = D(10_000)
FOUR_DECIMALS = D("0.0001")


def _sweep(side: Side, *, through: Decimal | None = None,
           at_part: int = 0) -> list[tuple[Decimal, Decimal]]:
    """The review's sweep: an order for 10,000 at limit 100 executes in parts of 1 to 50 at the
    limit or up to 2 cents better (seeded: 406 parts), the venue reporting after each part its
    cumulative quantity and average price rounded to 4 decimals. `through`: part `at_part` (30
    lots) executes at that price instead, past the limit."""
    rng = random.Random(1)
    better = (D("-0.02"), D("-0.01"), D(0), D(0)) if side is Side.BUY else (
        D("0.02"), D("0.01"), D(0), D(0))
    filled = notional = D(0)
    reports = []
    while filled < QTY:
        part = min(D(rng.randint(1, 50)), QTY - filled)
        price = D(100) + rng.choice(better)
        if through is not None and len(reports) == at_part:
            part, price = D(30), through
        filled += part
        notional += part * price
        reports.append((filled, (notional / filled).quantize(FOUR_DECIMALS, ROUND_HALF_EVEN)))
    return reports


def _book(side: Side, reports: list[tuple[Decimal, Decimal]], *,
          tell_limit: bool = True) -> tuple[list[Fill], list[Alert]]:
    """The sweep polled after every part by a real `OrderWatch` following the order (told its
    limit, as the adapter is when it submits it), each Fill it derives booked by the engine."""
    world = Harness(cash="10000000")
    if side is Side.SELL:  # a long to sell
        world.fill(world.accepted(Side.BUY, qty=str(QTY)).client_order_id, str(QTY))
    order: Dispatch = world.accepted(side, qty=str(QTY), limit_price="100")
    cid = order.client_order_id
    watch = OrderWatch()
    watch.track(cid, "B-1", limit=order_limit(order.side, order.limit_price)
                if tell_limit else None)
    fills: list[Fill] = []
    alerts: list[Alert] = []
    for filled, avg in reports:
        status = OrderStatus.FILLED if filled == QTY else OrderStatus.PARTIALLY_FILLED
        state = BrokerOrder(client_order_id=cid, broker_order_id="B-1", symbol="X",
                            status=status, qty=QTY, filled_qty=filled, avg_fill_price=avg)
        world.advance(0.01)
        for event in watch.poll(lambda _cid, state=state: state, world.now):
            outputs = world.send(event)
            if isinstance(event, Fill):
                fills.append(event)
                alerts.extend(alert for alert in of_type(outputs, Alert)
                              if alert.code == FILL_PRICE)
    assert world.state.position("A", "X") == (QTY if side is Side.BUY else 0)
    assert cid not in world.state.open_orders
    return fills, alerts


def test_a_sweep_to_the_limit_in_406_parts_raises_no_fill_price_alert() -> None:
    reports = _sweep(Side.BUY)
    assert len(reports) == 406
    fills, alerts = _book(Side.BUY, reports)
    assert alerts == []
    assert len(fills) == 406 and max(fill.price for fill in fills) == D(100)
    # what a part booked at the limit left out is carried into the next: the order's booked
    # notional keeps to the venue's within the rounding of its averages
    booked = sum(fill.qty * fill.price for fill in fills)
    assert abs(booked - QTY * reports[-1][1]) <= 2 * QTY * half_unit(-4)


def test_a_restart_anywhere_in_the_sweep_prices_what_it_missed_within_the_limit() -> None:
    """A restart prices the parts filled while it was stopped from the venue's figures and the
    fills the journal booked (`increment_price`): after any number of parts booked by the
    watch (some at the limit), the one or three parts missed are priced within the limit."""
    reports = _sweep(Side.BUY)
    fills, _ = _book(Side.BUY, reports)
    limit = PriceLimit(side=Side.BUY, price=D(100))
    prices = []
    for seen in range(1, len(reports) - 1):
        booked_qty = reports[seen - 1][0]
        booked = sum(fill.qty * fill.price for fill in fills[:seen])
        for missed in (1, 3):
            filled, avg = reports[min(seen - 1 + missed, len(reports) - 1)]
            prices.append(increment_price(filled, avg, booked_qty, booked, limit=limit))
    assert len(prices) == 808 and max(prices) == D(100)


def test_without_the_limit_the_same_sweep_derives_prices_past_it() -> None:
    # what the watch books when it does not know the limit: the rounding puts dozens of parts
    # past it, each a critical alert
    _, alerts = _book(Side.BUY, _sweep(Side.BUY), tell_limit=False)
    assert len(alerts) > 20 and {alert.severity for alert in alerts} == {"critical"}


def test_a_sell_sweep_down_to_its_limit_raises_none_either() -> None:
    fills, alerts = _book(Side.SELL, _sweep(Side.SELL))
    assert alerts == []
    assert min(fill.price for fill in fills) == D(100)


def test_a_venue_filling_one_percent_past_the_limit_still_alerts_critically() -> None:
    reports = _sweep(Side.BUY, through=D(101), at_part=200)
    fills, alerts = _book(Side.BUY, reports)
    (alert,) = alerts
    assert alert.severity == "critical"
    past = fills[200]
    assert past.qty == 30 and abs(past.price - D(101)) < D("0.01")
    assert f"was filled at {past.price}, above its limit price 100" in alert.message


def test_a_sell_one_percent_below_its_limit_alerts_critically() -> None:
    fills, alerts = _book(Side.SELL, _sweep(Side.SELL, through=D(99), at_part=100))
    (alert,) = alerts
    assert alert.severity == "critical" and "below its limit price 100" in alert.message
    assert abs(fills[100].price - D(99)) < D("0.01")


def test_an_average_written_without_its_trailing_zeros_is_taken_at_the_finest_place() -> None:
    """95 lots at exactly 100 are reported as '100' (a venue writing numbers as floats drops
    the zeros of 100.0000), then 5 more at 101 as 100.05: taken at face value, '100' could be
    anything within 0.5 and would cover a part 9.6 past the limit; at the order's finest place
    (2 decimals here) the part's 101 is 1 past the limit, well beyond the rounding."""
    watch = OrderWatch()
    watch.track("c-1", "b-1", limit=PriceLimit(side=Side.BUY, price=D(100)))
    ts = Harness().now

    def poll(filled: str, avg: str) -> list[Fill]:
        state = BrokerOrder(client_order_id="c-1", broker_order_id="b-1", symbol="X",
                            status=OrderStatus.PARTIALLY_FILLED, qty=D(1000),
                            filled_qty=D(filled), avg_fill_price=D(avg))
        return of_type(watch.poll(lambda _cid: state, ts), Fill)

    assert [fill.price for fill in poll("95", "100")] == [D(100)]
    assert [(fill.qty, fill.price) for fill in poll("100", "100.05")] == [(D(5), D(101))]
    # and within the finest place's rounding a part is kept at the limit: 100 more at 100
    # give 200 @ 100.025, reported as 100.03 by a venue rounding half up, which derives 100.01
    # for the part: 0.01 past the limit, within (200 + 100) x 0.005 / 100 = 0.015
    assert [(fill.qty, fill.price) for fill in poll("200", "100.03")] == [(D(100), D(100))]


def test_within_limit_moves_only_a_price_past_the_limit_by_no_more_than_the_rounding() -> None:
    buy = PriceLimit(side=Side.BUY, price=D(100))
    sell = PriceLimit(side=Side.SELL, price=D(100))
    rounding = D("0.0003")
    assert within_limit(D("100.0003"), rounding, buy) == D(100)  # at the bound: the limit
    assert within_limit(D("100.00031"), rounding, buy) == D("100.00031")  # beyond: as is
    assert within_limit(D("99.9997"), rounding, buy) == D("99.9997")  # within the limit
    assert within_limit(D("99.9997"), rounding, sell) == D(100)
    assert within_limit(D("99.99969"), rounding, sell) == D("99.99969")
    assert within_limit(D("100.0001"), rounding, None) == D("100.0001")  # no limit
    assert order_limit(Side.BUY, None) is None
    assert half_unit(-4) == D("0.00005") and half_unit(0) == D("0.5")


def test_a_first_report_past_the_limit_is_booked_as_the_venue_reports_it() -> None:
    # The first part's average is the venue's own figure, not derived: nothing to absorb. How
    # many decimals it was written with says nothing of its rounding ("100" may be 100.0000),
    # so "100" against a buy limit of 99.8 is a 0.2 breach, booked as reported (the engine
    # alerts), never moved to the limit by a slack read off the printed decimals.
    for limit, average in ((D("99.8"), D("100")), (D("100.00006"), D("100.0001")),
                           (D("186.96"), D("187.0"))):
        watch = OrderWatch()
        watch.track("c-1", "b-1", limit=PriceLimit(side=Side.BUY, price=limit))
        state = BrokerOrder(client_order_id="c-1", broker_order_id="b-1", symbol="X",
                            status=OrderStatus.PARTIALLY_FILLED, qty=D(10), filled_qty=D(3),
                            avg_fill_price=average)
        (fill,) = of_type(watch.poll(lambda _cid, s=state: s, Harness().now), Fill)
        assert fill.price == average
