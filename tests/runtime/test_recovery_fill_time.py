"""Two orders in one instrument that filled while no process watched them are booked by the
restart in the order the venue filled them, when the venue says when each one's latest fill
was (`BrokerOrder.filled_at`): a buy sent after a resting sell but filled before it sets the
average price the sell's realized PnL is measured from, as in a run that never stopped. Where
the venue gives no such time for one of them, they are booked in the order they were
dispatched, as before. Booked at the recovery time either way; every journal replays."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec
from tests.runtime.test_recovery_fill_price import Venue

from ordergate.brokers.base import BrokerOrder, OrderStatus
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy, intent, quote
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import AccountFunding, Fill, OrderAck
from ordergate.model.intent import Side
from ordergate.runtime.loop import Runtime, _in_venue_fill_order, _LostAnswers

D = Decimal
LIMIT = D(195)


def _execute(venue: Venue, cid: str, qty: str, price: str, when: datetime | None) -> None:
    """The venue fills all of order `cid` at `price`, its fill time `when` (None: not said)."""
    venue.execute(cid, qty, price)
    venue.orders[cid] = msgspec.structs.replace(venue.orders[cid], filled_at=when)


def _open(journal: Path, venue: Venue) -> Runtime:
    runtime = Runtime.open(f"sqlite:///{journal}", chaos_policy(), venue)
    runtime.background_snapshots = False
    return runtime


def _figures(runtime: Runtime) -> tuple[Decimal, ...]:
    state = runtime.engine.state
    book = state.books[(ACCOUNT, "AAPL")]
    account = state.accounts[ACCOUNT]
    return state.position(ACCOUNT, "AAPL"), book.avg_price, account.realized_pnl, account.cash


def _run(journal: Path, *, restart: bool, buy_time: datetime | None = at(10),
         sell_time: datetime | None = at(11)) -> tuple[Decimal, ...]:
    """Long 100 @ 190; a sell of 50 rests, then a buy of 50 is sent. The venue fills the buy
    (50 @ 191) and then the sell (50 @ 193): seen live by a poll after each, or (`restart`)
    both while the process is stopped, learnt at start-up."""
    venue = Venue()
    runtime = _open(journal, venue)
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=D(1_000_000)),
                     quote("AAPL", 0)])
    runtime.process([intent("long", Side.BUY, 100, 1, limit_price=LIMIT)])
    _execute(venue, venue.submitted[-1], "100", "190", at(1))
    runtime.process([quote("AAPL", 1.5)])
    assert runtime.engine.state.position(ACCOUNT, "AAPL") == D(100)
    runtime.process([intent("sell", Side.SELL, 50, 2, limit_price=D(193))])
    runtime.process([intent("buy", Side.BUY, 50, 3, limit_price=LIMIT)])
    sell, buy = venue.submitted[-2:]
    runtime.process([quote("AAPL", 4)])  # both acked, neither filled
    assert set(runtime.engine.state.open_orders) == {sell, buy}
    if restart:
        runtime.close()
        _execute(venue, buy, "50", "191", buy_time)
        _execute(venue, sell, "50", "193", sell_time)
        runtime = _open(journal, Venue(venue.orders))  # a new process follows nothing yet
    else:
        _execute(venue, buy, "50", "191", buy_time)
        runtime.process([quote("AAPL", 5)])
        _execute(venue, sell, "50", "193", sell_time)
    runtime.process([quote("AAPL", 6)])
    try:
        assert not runtime.engine.state.open_orders
        figures = _figures(runtime)
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


def _booked_fills(journal: Path) -> list[tuple[Decimal, Decimal, datetime]]:
    """(quantity, price, ts) of every fill the journal holds, in journal order."""
    reader = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        fills = [msgspec.json.decode(record.payload, type=Fill) for record in reader.read()
                 if record.kind is RecordKind.INPUT
                 and record.payload.startswith(b'{"type":"fill",')]
    finally:
        reader.close()
    return [(fill.qty, fill.price, fill.ts) for fill in fills]


def test_fills_made_while_stopped_are_booked_in_the_order_the_venue_made_them(
        tmp_path: Path) -> None:
    live = _run(tmp_path / "live.db", restart=False)
    restarted = _run(tmp_path / "restart.db", restart=True)
    assert restarted == live
    qty, avg_price, realized, cash = restarted
    # 100 @ 190, bought 50 @ 191 (150 @ 190.333...), then sold 50 @ 193: realized 133.33...,
    # not the 150 that booking the earlier-dispatched sell first gives (then 100 @ 190.5)
    assert qty == D(100)
    assert avg_price == D(28550) / D(150)
    assert realized == (D(193) - D(28550) / D(150)) * 50
    assert cash == D(1_000_000) - D(19_000) - D(9_550) + D(9_650)
    # the buy's fill first, both at the recovery time: no event goes back in time
    fills = _booked_fills(tmp_path / "restart.db")
    assert [(qty, price) for qty, price, _ in fills] == [
        (D(100), D(190)), (D(50), D(191)), (D(50), D(193))]
    assert fills[1][2] == fills[2][2] >= at(4)


def test_without_a_venue_fill_time_for_each_they_are_booked_in_dispatch_order(
        tmp_path: Path) -> None:
    restarted = _run(tmp_path / "restart.db", restart=True, buy_time=None)
    fills = _booked_fills(tmp_path / "restart.db")
    assert [(qty, price) for qty, price, _ in fills] == [
        (D(100), D(190)), (D(50), D(193)), (D(50), D(191))]
    # sold 50 of 100 @ 190 at 193 (+150), then bought 50 @ 191: 100 @ 190.5
    qty, avg_price, realized, _ = restarted
    assert (qty, avg_price, realized) == (D(100), D("190.5"), D(150))


def _answers(*orders: tuple[str, str, datetime | None, bool]) -> list[_LostAnswers]:
    """Recovered answers in dispatch order: (client order id, symbol, fill time, filled)."""
    made = []
    for cid, symbol, when, filled in orders:
        known = BrokerOrder(client_order_id=cid, broker_order_id=f"V-{cid}", symbol=symbol,
                            status=OrderStatus.FILLED, qty=D(1), filled_qty=D(1),
                            avg_fill_price=D(1), filled_at=when)
        made.append(_LostAnswers(known=known, events=[OrderAck(ts=at(0), client_order_id=cid)],
                                 filled=filled))
    return made


def _ids(answers: list[_LostAnswers]) -> list[str]:
    return [answer.known.client_order_id for answer in _in_venue_fill_order(answers)]


def test_only_the_filled_orders_of_one_instrument_change_places() -> None:
    later = at(20)
    answers = _answers(("a1", "AAPL", later, True), ("m1", "MSFT", at(30), True),
                       ("a2", "AAPL", at(15), True), ("ack", "AAPL", None, False),
                       ("m2", "MSFT", at(10), True), ("a3", "AAPL", later, True))
    # AAPL's three take their venue order in AAPL's places (a1 and a3 tie: dispatch order);
    # MSFT's two take theirs in MSFT's; an order with nothing filled stays where it was
    assert _ids(answers) == ["a2", "m2", "a1", "ack", "m1", "a3"]


def test_an_instrument_with_an_order_of_unknown_fill_time_keeps_its_dispatch_order() -> None:
    answers = _answers(("a1", "AAPL", at(20), True), ("m1", "MSFT", at(30), True),
                       ("a2", "AAPL", None, True), ("m2", "MSFT", at(10), True))
    assert _ids(answers) == ["a1", "m2", "a2", "m1"]
