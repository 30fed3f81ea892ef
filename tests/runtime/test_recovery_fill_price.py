"""A restart books what an order filled while no process watched it at what that part cost,
not at the venue's cumulative average: the price is derived from the venue's cumulative
figures and what the journal booked for the order, rounded as a live poll derives it
(`OrderWatch`). Cash, position, average price and realized PnL come out as in a run that never
stopped, and every journal written here replays byte for byte. A derived price past the order's
limit by no more than the venue's rounding of its averages is booked at the limit, live and on
a restart alike (no FILL_PRICE alert); one further past is booked as derived, and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ordergate.brokers.base import (
    BrokerCapabilities,
    BrokerOrder,
    BrokerPosition,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.labels import OrderWatch, PriceLimit, order_limit
from ordergate.chaos.harness import ACCOUNT, T0, at, chaos_policy, intent, quote
from ordergate.engine.lifecycle import FILL_PRICE
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import AccountFunding, Alert, Dispatch, Fill, InputEvent
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.runtime.loop import Runtime, decode_output, increment_price

D = Decimal


class Venue:
    """A venue test double: its orders by client order id, reported with cumulative filled
    quantity and average price as real venues do, followed by the real `OrderWatch`. A new
    instance over the same `orders` is the venue as a restarted process sees it."""

    def __init__(self, orders: dict[str, BrokerOrder] | None = None) -> None:
        self.orders: dict[str, BrokerOrder] = {} if orders is None else orders
        self.watch = OrderWatch()
        self.submitted: list[str] = []

    @property
    def name(self) -> str:
        return "venue"

    @property
    def capabilities(self) -> BrokerCapabilities:
        return BrokerCapabilities(order_types=frozenset(OrderType),
                                  time_in_force=frozenset(TimeInForce))

    def submit(self, order: Dispatch) -> SubmitResult:
        cid = order.client_order_id
        with self.watch.submitting(cid, order_limit(order.side, order.limit_price)):
            self.submitted.append(cid)
            self.orders[cid] = BrokerOrder(client_order_id=cid, broker_order_id=f"V-{cid}",
                                           symbol=order.symbol, status=OrderStatus.NEW,
                                           qty=order.qty)
        return SubmitResult(accepted=True, broker_order_id=f"V-{cid}")

    def execute(self, cid: str, filled_qty: str, avg_price: str) -> None:
        order = self.orders[cid]
        filled = Decimal(filled_qty)
        status = OrderStatus.FILLED if filled == order.qty else OrderStatus.PARTIALLY_FILLED
        self.orders[cid] = msgspec.structs.replace(order, status=status, filled_qty=filled,
                                                   avg_fill_price=Decimal(avg_price))

    def cancel(self, client_order_id: str) -> None:
        order = self.orders[client_order_id]
        self.orders[client_order_id] = msgspec.structs.replace(order,
                                                               status=OrderStatus.CANCELED)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self.orders.get(client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return [order for order in self.orders.values()
                if order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]

    def positions(self) -> list[BrokerPosition]:
        return []

    def poll_events(self, until: datetime) -> list[InputEvent]:
        return self.watch.poll(self.get_order, until)

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        self.watch.track(client_order_id, known=reported, limit=limit)

    def server_time(self) -> datetime:
        return T0


@dataclass(frozen=True)
class Case:
    side: Side
    limit: str
    first: tuple[str, str]  # seen live: filled quantity, venue average
    then: tuple[str, str]  # while stopped: cumulative filled quantity, venue average
    cash: str
    qty: str
    avg_price: str
    realized: str


CASES = {
    # 4 @ 188, then 6 more @ 191 while stopped: the venue says 10 @ 189.8
    "opening buy": Case(Side.BUY, "195", ("4", "188"), ("10", "189.8"),
                        cash="998102", qty="10", avg_price="189.8", realized="0"),
    # a long of 10 @ 180 closed: 4 @ 186, then 6 more @ 192 while stopped (10 @ 189.6)
    "closing sell": Case(Side.SELL, "185", ("4", "186"), ("10", "189.6"),
                         cash="1000096", qty="0", avg_price="0", realized="96"),
    # 3 @ 188, then 4 more @ 191 while stopped: the venue rounds 7 @ 189.714285... to 189.71,
    # which prices the increment at 190.9925, as a live poll prices it
    "rounded average": Case(Side.BUY, "195", ("3", "188"), ("7", "189.71"),
                            cash="998672.03", qty="7", avg_price="189.71", realized="0"),
    # 1 @ 189.99, then 2 more @ 190 (the limit): the venue reports 3 @ 189.9967, which prices
    # the increment at 190.00005, past the limit by less than the rounding: booked at 190
    "rounded past the limit": Case(Side.BUY, "190", ("1", "189.99"), ("3", "189.9967"),
                                   cash="999430.01", qty="3",
                                   avg_price=str(D("569.99") / 3), realized="0"),
    # a long of 10 @ 180 partly closed: 1 @ 190.01, then 2 more @ 190 (the limit) while
    # stopped, reported as 3 @ 190.0033: the increment derives to 189.99995, booked at 190
    "sell rounded past the limit": Case(Side.SELL, "190", ("1", "190.01"), ("3", "190.0033"),
                                        cash="998770.01", qty="7", avg_price="180",
                                        realized="30.01"),
}


def _open(journal: Path, venue: Venue) -> Runtime:
    runtime = Runtime.open(f"sqlite:///{journal}", chaos_policy(), venue)
    runtime.background_snapshots = False
    return runtime


def _run(tmp_path: Path, case: Case, *, restart: bool, snapshot: bool = False,
         padding: int = 0) -> tuple[Decimal, ...]:
    """The case through the real runtime: the second part of the fill seen by a live poll, or
    (`restart`) executed while the process is stopped and learnt at start-up. `snapshot`
    stores one after the first part is journaled, so start-up replays from past it;
    `padding` quotes come between the two parts."""
    journal = tmp_path / ("restart.db" if restart else "live.db")
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    if case.side is Side.SELL:  # a long to close
        runtime.process([intent("open", Side.BUY, 10, 1, limit_price=Decimal("195"))])
        venue.execute(venue.submitted[-1], "10", "180")
        runtime.process([quote("AAPL", 2)])
    runtime.process([intent("i1", case.side, 10, 3, limit_price=Decimal(case.limit))])
    cid = venue.submitted[-1]
    venue.execute(cid, *case.first)
    runtime.process([quote("AAPL", 4)])
    assert runtime.engine.state.open_orders[cid].filled == Decimal(case.first[0])
    if padding:
        runtime.process([quote("AAPL", 4 + (n + 1) / (padding + 1)) for n in range(padding)])
    if snapshot:
        runtime.snapshot()
    if restart:
        runtime.close()
        venue.execute(cid, *case.then)
        venue = Venue(venue.orders)  # a new process: its adapter follows nothing yet
        runtime = _open(journal, venue)
        if snapshot:
            first_fill = min(record.seq for record in runtime.journal.read()
                             if record.kind is RecordKind.INPUT
                             and record.payload.startswith(b'{"type":"fill",')
                             and cid.encode() in record.payload)
            assert runtime.snapshot_seq > first_fill  # the start-up replay begins past it
    else:
        venue.execute(cid, *case.then)
    runtime.process([quote("AAPL", 5)])
    try:
        state = runtime.engine.state
        order = state.open_orders.get(cid) or state.done.get(cid)
        assert order is not None and order.filled == Decimal(case.then[0])
        book = state.books.get((ACCOUNT, "AAPL"))  # gone once flat with nothing working
        account = state.accounts[ACCOUNT]
        figures = (account.cash, state.position(ACCOUNT, "AAPL"),
                   Decimal(0) if book is None else book.avg_price, account.realized_pnl)
    finally:
        runtime.close()
    reader = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        report = verify_journal(reader)
    finally:
        reader.close()
    assert report.ok, report
    return figures


@pytest.mark.parametrize("name", sorted(CASES))
def test_fills_made_while_stopped_are_booked_at_what_they_cost(tmp_path: Path,
                                                              name: str) -> None:
    case = CASES[name]
    uninterrupted = _run(tmp_path, case, restart=False)
    restarted = _run(tmp_path, case, restart=True)
    assert restarted == uninterrupted
    cash, qty, avg_price, realized = restarted
    assert cash == Decimal(case.cash)
    assert qty == Decimal(case.qty)
    assert avg_price == Decimal(case.avg_price)
    assert realized == Decimal(case.realized)


def test_a_fill_journaled_before_the_snapshot_prices_the_rest(tmp_path: Path) -> None:
    """The journaled part lies before the snapshot start-up restores, and more than one read
    window back: it is found all the same."""
    case = CASES["opening buy"]
    restarted = _run(tmp_path, case, restart=True, snapshot=True, padding=1100)
    assert restarted == _run(tmp_path, case, restart=False, padding=1100)
    assert restarted[0] == Decimal(case.cash)


def test_the_recovered_fill_is_journaled_at_the_increment_price(tmp_path: Path) -> None:
    _run(tmp_path, CASES["opening buy"], restart=True)
    reader = open_journal(f"sqlite:///{tmp_path / 'restart.db'}",
                          durability=Durability.NONE, create=False, reader=True)
    try:
        fills = [msgspec.json.decode(record.payload, type=Fill)
                 for record in reader.read() if record.kind is RecordKind.INPUT
                 and record.payload.startswith(b'{"type":"fill",')]
    finally:
        reader.close()
    assert [(fill.qty, fill.price) for fill in fills] == [
        (Decimal(4), Decimal(188)), (Decimal(6), Decimal(191))]
    assert "recovered" in fills[-1].fill_id


def test_increment_price_falls_back_to_the_venue_average() -> None:
    # nothing booked, or what was booked not known: the average is the price
    assert increment_price(Decimal(10), Decimal("96"), Decimal(0), Decimal(0)) == Decimal(96)
    assert increment_price(Decimal(10), Decimal("96"), Decimal(4), None) == Decimal(96)
    # rounded figures that imply no positive price for the increment
    assert increment_price(Decimal(10), Decimal("10"), Decimal(4), Decimal(400)) == Decimal(10)
    assert increment_price(Decimal(10), Decimal("96"), Decimal(4), Decimal(360)) == Decimal(100)


def test_a_restart_right_after_a_snapshot_asks_about_working_orders(tmp_path: Path) -> None:
    """No input follows the snapshot start-up restores: the broker is still asked about the
    working orders (a fill made while stopped is booked), and the adapter follows them on."""
    journal = tmp_path / "j.db"
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    runtime.process([intent("a", Side.BUY, 10, 1, limit_price=Decimal("195")),
                     intent("b", Side.BUY, 10, 1, limit_price=Decimal("195"))])
    first, second = venue.submitted
    runtime.snapshot()
    snapped = runtime.snapshot_seq
    runtime.close()
    venue.execute(first, "10", "188")  # while stopped
    venue = Venue(venue.orders)
    runtime = _open(journal, venue)
    try:
        assert runtime.snapshot_seq == snapped
        recovered = [record for record in runtime.journal.read(snapped + 1)
                     if record.kind is RecordKind.INPUT]
        assert [record.payload[:15] for record in recovered] == [b'{"type":"fill",']
        state = runtime.engine.state
        assert first not in state.open_orders
        assert state.position(ACCOUNT, "AAPL") == Decimal(10)
        assert venue.watch.working() == [second]
        venue.execute(second, "10", "189")
        runtime.process([quote("AAPL", 2)])
        assert state.position(ACCOUNT, "AAPL") == Decimal(20)
        assert state.accounts[ACCOUNT].cash == Decimal(1_000_000 - 1880 - 1890)
    finally:
        runtime.close()


def test_increment_price_beyond_any_real_price_falls_back_to_the_venue_average() -> None:
    # 500 @ 190 booked; the venue reports 500.000000001 at an average of 190000: the tiny
    # increment would cost 94905000000190000, beyond any price an event can carry
    assert increment_price(Decimal("500.000000001"), Decimal(190000), Decimal(500),
                           Decimal(95000)) == Decimal(190000)


def test_a_restart_books_an_increment_the_averages_price_beyond_any_real_price(
        tmp_path: Path) -> None:
    """The venue's figures for an order that filled a hair more while the gateway was down
    imply an increment price no event can carry: start-up books it at the venue's average, as
    a live poll does, instead of failing on every restart."""
    journal = tmp_path / "j.db"
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    runtime.process([intent("i1", Side.BUY, 1000, 1, limit_price=Decimal("195"))])
    cid = venue.submitted[-1]
    venue.execute(cid, "500", "190")
    runtime.process([quote("AAPL", 2)])
    assert runtime.engine.state.open_orders[cid].filled == Decimal(500)
    runtime.close()
    venue.execute(cid, "500.000000001", "190000")  # while stopped
    runtime = _open(journal, Venue(venue.orders))
    try:
        order = runtime.engine.state.open_orders[cid]
        assert order.filled == Decimal("500.000000001")
        fills = [msgspec.json.decode(record.payload, type=Fill)
                 for record in runtime.journal.read() if record.kind is RecordKind.INPUT
                 and record.payload.startswith(b'{"type":"fill",')]
        assert [(fill.qty, fill.price) for fill in fills] == [
            (Decimal(500), Decimal(190)), (Decimal("0.000000001"), Decimal(190000))]
    finally:
        runtime.close()


def _journaled(journal: Path) -> tuple[list[tuple[Decimal, Decimal]], list[Alert]]:
    """The fills (quantity, price) and the FILL_PRICE alerts a journal holds."""
    reader = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        records = list(reader.read())
    finally:
        reader.close()
    fills = [msgspec.json.decode(record.payload, type=Fill) for record in records
             if record.kind is RecordKind.INPUT
             and record.payload.startswith(b'{"type":"fill",')]
    alerts = [output for record in records if record.kind is RecordKind.OUTPUT
              and b'"FILL_PRICE"' in record.payload
              and isinstance(output := decode_output(record.payload), Alert)
              and output.code == FILL_PRICE]
    return [(fill.qty, fill.price) for fill in fills], alerts


@pytest.mark.parametrize("restart", [False, True], ids=["live", "restart"])
def test_a_part_derived_a_rounding_past_the_limit_is_booked_at_the_limit(
        tmp_path: Path, restart: bool) -> None:
    # the review's journal: a buy limit 190 executes 1 @ 189.99, then 2 @ 190; the venue's
    # 189.9967 for the three derives 190.00005 for the two, which a poll or a restart booked
    # with a critical FILL_PRICE alert
    _run(tmp_path, CASES["rounded past the limit"], restart=restart)
    fills, alerts = _journaled(tmp_path / ("restart.db" if restart else "live.db"))
    assert fills == [(D(1), D("189.99")), (D(2), D(190))]
    assert alerts == []


def test_a_restart_still_alerts_on_a_part_the_venue_filled_past_the_limit(
        tmp_path: Path) -> None:
    """1 @ 189.99 seen live; while stopped 2 more at 191.90, past the limit 190: the venue's
    3 @ 191.2633 derives 191.89995, which lies past the limit far beyond the rounding (0.0001)
    and is booked as derived, with the critical alert."""
    journal = tmp_path / "j.db"
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    runtime.process([intent("i1", Side.BUY, 3, 1, limit_price=Decimal("190"))])
    cid = venue.submitted[-1]
    venue.execute(cid, "1", "189.99")
    runtime.process([quote("AAPL", 2)])
    runtime.close()
    venue.execute(cid, "3", "191.2633")  # while stopped
    runtime = _open(journal, Venue(venue.orders))
    runtime.close()
    fills, alerts = _journaled(journal)
    assert fills == [(D(1), D("189.99")), (D(2), D("191.89995"))]
    (alert,) = alerts
    assert alert.severity == "critical"
    assert "was filled at 191.89995, above its limit price 190" in alert.message


def test_increment_price_keeps_a_rounding_past_the_limit_at_the_limit() -> None:
    buy = PriceLimit(side=Side.BUY, price=D(190))
    # 3 @ 189.9967 over 1 booked at 189.99: 190.00005, within (3 + 1) x 0.00005 / 2
    assert increment_price(D(3), D("189.9967"), D(1), D("189.99")) == D("190.00005")
    assert increment_price(D(3), D("189.9967"), D(1), D("189.99"), limit=buy) == D(190)
    # the same figures to 2 decimals would be 0.005 off at most, per unit of each: 190.00005
    # is far within; 190.02 (3 @ 190.01 over 189.99) is 0.02 past, beyond (3 + 1) x 0.005 / 2
    assert increment_price(D(3), D("190.01"), D(1), D("189.99"), limit=buy) == D("190.02")
    # nothing booked: the broker's own average, as reported, however few decimals it shows
    # ("100" may stand for 100.0000: a slack read off them would hide a real breach)
    finer = PriceLimit(side=Side.BUY, price=D("190.00006"))
    assert increment_price(D(3), D("190.0001"), D(0), D(0), limit=finer) == D("190.0001")
    assert increment_price(D(3), D("190.0001"), D(0), D(0), limit=buy) == D("190.0001")
    whole = PriceLimit(side=Side.BUY, price=D("99.8"))
    assert increment_price(D(10), D("100"), D(0), D(0), limit=whole) == D("100")
    assert increment_price(D(10), D("50"), D(0), D(0),
                           limit=PriceLimit(side=Side.SELL, price=D("50.45"))) == D("50")
    # a sell is kept from below
    sell = PriceLimit(side=Side.SELL, price=D(190))
    assert increment_price(D(3), D("190.0033"), D(1), D("190.01"), limit=sell) == D(190)


def test_an_order_followed_on_after_a_restart_is_kept_within_its_limit(tmp_path: Path) -> None:
    """The restarted process's adapter follows the working order on, told its limit: 1 @
    189.99 was booked before the restart; after it the venue executes 2 more @ 190 (the limit)
    and reports 3 @ 189.9967, which a live poll derives as 190.00005 for the two: booked at
    190, with no FILL_PRICE alert."""
    journal = tmp_path / "j.db"
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    runtime.process([intent("i1", Side.BUY, 3, 1, limit_price=Decimal("190"))])
    cid = venue.submitted[-1]
    venue.execute(cid, "1", "189.99")
    runtime.process([quote("AAPL", 2)])
    runtime.close()
    venue = Venue(venue.orders)
    runtime = _open(journal, venue)
    try:
        assert venue.watch.working() == [cid]
        venue.execute(cid, "3", "189.9967")  # seen by the restarted process's poll
        runtime.process([quote("AAPL", 3)])
        assert cid not in runtime.engine.state.open_orders
    finally:
        runtime.close()
    fills, alerts = _journaled(journal)
    assert fills == [(D(1), D("189.99")), (D(2), D(190))]
    assert alerts == []
