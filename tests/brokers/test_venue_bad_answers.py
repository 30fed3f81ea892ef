"""A venue answer the gateway cannot book is a broker failure, never a crash, and loses no
event of another order; executions reported with a terminal status are booked; a filled
quantity that goes down reaches the operator.

Every number read from a venue is checked where the adapter reads it: NaN and Infinity (sent
as strings, or as bare JSON literals a lenient JSON parser lets through), negative quantities
and figures beyond what the engine takes in are BrokerBadResponse naming the venue, the order
and the field. The adapters run against their local fake venues on loopback, followed by the
real OrderWatch; the runtime tests drive the real Runtime over the Alpaca adapter."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes import alpaca as fake_alpaca
from fakes import deribit as fake_deribit
from fakes import tradier as fake_tradier
from fakes.server import ServerThread
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.base import BrokerBadResponse, BrokerOrder, OrderStatus
from ordergate.brokers.ccxt_venue import CcxtVenue
from ordergate.brokers.config import Secret
from ordergate.brokers.labels import OrderWatch
from ordergate.brokers.tradier import TradierAdapter
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy, intent, quote
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, open_journal
from ordergate.model.events import (
    AccountFunding,
    Alert,
    DependencyStatus,
    Dispatch,
    Fill,
    InputEvent,
    ModeChanged,
    OrderCanceled,
    OrderReject,
)
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.modes import Mode
from ordergate.runtime.loop import Runtime

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
ALPACA = fake_alpaca.AlpacaState()
TRADIER = fake_tradier.TradierState()
DERIBIT = fake_deribit.DeribitState()

_LITERAL = re.compile(rb'"<<(NaN|-?Infinity)>>"')


def literal(name: str) -> str:
    """A field value the fake venue sends as the bare JSON literal `name` (NaN, Infinity)."""
    return f"<<{name}>>"


class BareLiterals:
    """ASGI middleware: a string "<<NaN>>" (or Infinity, -Infinity) in an answer goes out as
    the bare literal, which JSON forbids and lenient parsers (Python's json) accept."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _LITERAL.sub(rb"\1", b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers,
                                             (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _with_literals(app: Starlette) -> Starlette:
    app.add_middleware(BareLiterals)
    return app


@dataclass
class Venue:
    name: str
    adapter: Any
    symbol: str
    qty: Decimal
    price: Decimal
    fill: Callable[[str, str, str], None]
    order: Callable[[str], dict[str, Any]]
    price_field: str
    filled_field: str

    def dispatch(self, cid: str, price: Decimal | None = None) -> Dispatch:
        return Dispatch(ts=TS, client_order_id=cid, intent_id=f"i-{cid}", account="acct-1",
                        strategy="s-1", symbol=self.symbol, side=Side.BUY, qty=self.qty,
                        order_type=OrderType.LIMIT, limit_price=price or self.price,
                        tif=TimeInForce.DAY)

    def number(self, value: Decimal) -> Any:
        """`value` as this venue writes a number (Alpaca: a string; the others: JSON numbers)."""
        if self.name == "alpaca":
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    servers = {"alpaca": ServerThread(_with_literals(fake_alpaca.build(ALPACA))),
               "tradier": ServerThread(_with_literals(fake_tradier.build(TRADIER))),
               "deribit": ServerThread(_with_literals(fake_deribit.build(DERIBIT)))}
    started = {name: server.start() for name, server in servers.items()}
    yield started
    for server in servers.values():
        server.stop()


def _alpaca(url: str) -> Venue:
    ALPACA.reset()

    def order(cid: str) -> dict[str, Any]:
        found = ALPACA.by_client_id(cid)
        assert found is not None
        return found

    adapter = AlpacaAdapter(api_key=Secret(fake_alpaca.KEY_ID),
                            secret_key=Secret(fake_alpaca.SECRET), account="acct-1",
                            paper=True, base_url=url, timeout_s=2)
    return Venue("alpaca", adapter, "AAPL", Decimal(10), Decimal("101.25"), ALPACA.fill,
                 order, "filled_avg_price", "filled_qty")


def _tradier(url: str) -> Venue:
    TRADIER.reset()
    adapter = TradierAdapter(token=Secret(fake_tradier.TOKEN),
                             broker_account=fake_tradier.ACCOUNT, account="acct-1",
                             base_url=url, timeout_s=2)
    return Venue("tradier", adapter, "SPY", Decimal(5), Decimal("510.25"), TRADIER.fill,
                 TRADIER.by_tag, "avg_fill_price", "exec_quantity")


def _deribit(url: str) -> Venue:
    DERIBIT.reset()

    def order(cid: str) -> dict[str, Any]:
        (found,) = DERIBIT.by_label(cid)
        return found

    adapter = CcxtVenue(api_key=Secret(fake_deribit.CLIENT_ID),
                        secret=Secret(fake_deribit.CLIENT_SECRET), account="acct-1",
                        base_url=url, timeout_s=2, client_rate_limit=False)
    return Venue("deribit", adapter, "BTC-PERPETUAL", Decimal(100), Decimal("60000.5"),
                 DERIBIT.fill, order, "average_price", "filled_amount")


BUILDERS = {"alpaca": _alpaca, "tradier": _tradier, "deribit": _deribit}


@pytest.fixture(params=sorted(BUILDERS))
def venue(request: pytest.FixtureRequest, urls: dict[str, str]) -> Iterator[Venue]:
    made = BUILDERS[request.param](urls[request.param])
    yield made
    if isinstance(made.adapter, TradierAdapter):
        made.adapter.close()


def kinds(events: list[InputEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


BAD_NUMBERS = {
    "string NaN": "NaN",
    "string Infinity": "Infinity",
    "literal NaN": literal("NaN"),
    "literal -Infinity": literal("-Infinity"),
}


@pytest.mark.parametrize("spelling", sorted(BAD_NUMBERS))
def test_a_non_finite_fill_price_is_a_bad_answer_and_the_other_orders_fill_is_kept(
        venue: Venue, spelling: str) -> None:
    venue.adapter.submit(venue.dispatch("og-good"))
    venue.adapter.submit(venue.dispatch("og-bad"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck", "OrderAck"]
    venue.fill("og-good", str(venue.qty), str(venue.price))
    venue.fill("og-bad", "3", str(venue.price))
    venue.order("og-bad")[venue.price_field] = BAD_NUMBERS[spelling]
    with pytest.raises(BrokerBadResponse) as bad:
        venue.adapter.poll_events(TS)
    message = str(bad.value)
    assert message.startswith(f"{venue.name}: ")
    assert "order og-bad" in message and f"{venue.price_field}: expected a finite" in message
    (kept,) = venue.adapter.poll_events(TS)  # the good order's fill, observed by that poll
    assert isinstance(kept, Fill) and kept.client_order_id == "og-good"
    assert kept.qty == venue.qty and kept.price == venue.price
    with pytest.raises(BrokerBadResponse, match="og-bad"):
        venue.adapter.poll_events(TS)  # still followed, still bad
    venue.order("og-bad")[venue.price_field] = venue.number(venue.price)
    (fill,) = venue.adapter.poll_events(TS)
    assert isinstance(fill, Fill) and fill.client_order_id == "og-bad"
    assert fill.qty == 3 and fill.price == venue.price


# (Alpaca's spelling, the others' spelling): Alpaca writes its figures as strings
BAD_QUANTITIES = {
    "NaN": ("NaN", "NaN"),
    "bare Infinity": (literal("Infinity"), literal("Infinity")),
    "negative": ("-3", -3),
    "beyond any real quantity": ("1E+40", 1e40),
}


@pytest.mark.parametrize("case", sorted(BAD_QUANTITIES))
def test_a_filled_quantity_that_is_not_a_finite_non_negative_figure_is_a_bad_answer(
        venue: Venue, case: str) -> None:
    venue.adapter.submit(venue.dispatch("og-q"))
    assert kinds(venue.adapter.poll_events(TS)) == ["OrderAck"]
    as_alpaca, as_others = BAD_QUANTITIES[case]
    venue.order("og-q")[venue.filled_field] = as_alpaca if venue.name == "alpaca" else as_others
    with pytest.raises(BrokerBadResponse) as bad:
        venue.adapter.poll_events(TS)
    message = str(bad.value)
    assert message.startswith(f"{venue.name}: ") and "order og-q" in message
    assert f"{venue.filled_field}: expected a" in message
    assert "og-q" in venue.adapter._watch.working()  # asked again by the next poll


def test_a_position_figure_the_engine_cannot_take_is_a_bad_answer(venue: Venue) -> None:
    venue.adapter.submit(venue.dispatch("og-p"))
    venue.fill("og-p", str(venue.qty), str(venue.price))
    assert len(venue.adapter.positions()) == 1
    if venue.name == "alpaca":
        ALPACA.avg_price[venue.symbol] = Decimal("NaN")
        field = "avg_entry_price"
    elif venue.name == "tradier":
        TRADIER.cost_basis[venue.symbol] = Decimal("1E+40")
        field = "cost_basis"
    else:
        DERIBIT.avg_price[venue.symbol] = Decimal("1E+40")
        field = "average_price"
    with pytest.raises(BrokerBadResponse) as bad:
        venue.adapter.positions()
    assert str(bad.value).startswith(
        f"{venue.name}: positions: position {venue.symbol}: {field}: expected a")


# ---------------------------------------------------------------- terminal states and busts


def state(status: OrderStatus, filled: str = "0", avg: str | None = None) -> BrokerOrder:
    return BrokerOrder(client_order_id="c-1", broker_order_id="b-1", symbol="X", status=status,
                       qty=Decimal(10), filled_qty=Decimal(filled),
                       avg_fill_price=None if avg is None else Decimal(avg))


def test_executions_reported_with_a_reject_are_booked_before_it() -> None:
    watch = OrderWatch("v")
    watch.track("c-1", "b-1")
    events = watch.observe(state(OrderStatus.REJECTED, "7", "99"), TS)
    assert kinds(events) == ["OrderAck", "Fill", "OrderReject"]
    fill = events[1]
    assert isinstance(fill, Fill) and fill.qty == 7 and fill.price == 99
    assert watch.observe(state(OrderStatus.REJECTED, "7", "99"), TS) == []
    assert watch.working() == []


def test_a_reject_after_a_partial_fill_books_the_executions_it_reports() -> None:
    watch = OrderWatch("v")
    watch.track("c-1", known=state(OrderStatus.PARTIALLY_FILLED, "4", "99"))
    fill, reject = watch.observe(state(OrderStatus.REJECTED, "7", "99"), TS)
    assert isinstance(fill, Fill) and fill.qty == 3 and fill.price == 99
    assert isinstance(reject, OrderReject)


def test_a_reject_of_an_order_that_executed_nothing_is_a_reject_alone() -> None:
    watch = OrderWatch("v")
    watch.track("c-1", "b-1")
    assert kinds(watch.observe(state(OrderStatus.REJECTED), TS)) == ["OrderReject"]


def test_a_filled_quantity_that_goes_down_is_reported_once_as_a_mismatch() -> None:
    watch = OrderWatch("alpaca")
    watch.track("c-1", known=state(OrderStatus.PARTIALLY_FILLED, "6", "99"))
    raised, cleared = watch.observe(state(OrderStatus.PARTIALLY_FILLED, "2", "99"), TS)
    assert isinstance(raised, DependencyStatus) and not raised.healthy
    assert raised.code == "SYS-009" and raised.dependency == "broker_fills:c-1"
    assert "alpaca reports order c-1 filled 2, less than the 6" in raised.detail
    assert isinstance(cleared, DependencyStatus) and cleared.healthy
    assert cleared.dependency == raised.dependency
    assert watch.observe(state(OrderStatus.PARTIALLY_FILLED, "2", "99"), TS) == []
    # it fills on: only what goes beyond the quantity booked is a new fill
    (fill,) = watch.observe(state(OrderStatus.PARTIALLY_FILLED, "8", "99"), TS)
    assert isinstance(fill, Fill) and fill.qty == 2
    *_, canceled = watch.observe(state(OrderStatus.CANCELED, "1", "99"), TS)
    assert isinstance(canceled, OrderCanceled)


def test_a_fill_price_no_fill_can_carry_is_a_bad_answer_that_loses_nothing() -> None:
    # finite, but beyond what a fill holds: an increment of 1E-27 shares
    watch = OrderWatch("v")
    watch.track("c-1", known=state(OrderStatus.PARTIALLY_FILLED, "1", "99"))
    with pytest.raises(BrokerBadResponse, match="order c-1"):
        watch.observe(state(OrderStatus.PARTIALLY_FILLED, "1.000000000000000000000000001",
                            "99"), TS)
    (fill,) = watch.observe(state(OrderStatus.PARTIALLY_FILLED, "2", "99"), TS)
    assert isinstance(fill, Fill) and fill.qty == 1


def test_a_poll_cut_short_by_any_error_keeps_what_it_observed() -> None:
    orders = {"c-1": state(OrderStatus.FILLED, "10", "99")}

    def lookup(cid: str) -> BrokerOrder | None:
        if cid == "c-2":
            raise ValueError("the adapter failed on c-2")
        return orders[cid]

    watch = OrderWatch("v")
    watch.track("c-1", "b-1")
    watch.track("c-2", "b-2")
    with pytest.raises(ValueError, match="c-2"):
        watch.poll(lookup, TS)
    assert kinds(watch.poll(lookup, TS)) == ["OrderAck", "Fill"]


# ---------------------------------------------------------------- through the runtime


def _runtime(tmp_path: Path, url: str) -> tuple[Runtime, AlpacaAdapter]:
    ALPACA.reset()
    adapter = AlpacaAdapter(api_key=Secret(fake_alpaca.KEY_ID),
                            secret_key=Secret(fake_alpaca.SECRET), account=ACCOUNT,
                            paper=True, base_url=url, timeout_s=2)
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), adapter)
    runtime.background_snapshots = False
    runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                     quote("AAPL", 0)])
    return runtime, adapter


def _order(cid: str) -> dict[str, Any]:
    found = ALPACA.by_client_id(cid)
    assert found is not None
    return found


def _replays_clean(tmp_path: Path) -> None:
    reader = open_journal(f"sqlite:///{tmp_path / 'journal.db'}", durability=Durability.NONE,
                          create=False, reader=True)
    try:
        report = verify_journal(reader)
    finally:
        reader.close()
    assert report.ok, report


@pytest.mark.parametrize("bad", ["NaN", "Infinity"])
def test_a_venue_answering_a_non_finite_price_fails_closed_and_every_fill_is_booked(
        tmp_path: Path, urls: dict[str, str], bad: str) -> None:
    runtime, _ = _runtime(tmp_path, urls["alpaca"])
    try:
        for n in (1, 2):
            runtime.process([intent(f"i{n}", Side.BUY, 10, n, limit_price=Decimal(195))])
        first, second = (o["client_order_id"] for o in ALPACA.orders.values())
        ALPACA.fill(first, "10", "190")
        ALPACA.fill(second, "5", "190")
        _order(second)["filled_avg_price"] = bad
        report = runtime.process([quote("AAPL", 3)])  # no exception escapes
        alerts = [e for e in report.emitted if isinstance(e, Alert)]
        assert [a.code for a in alerts] == ["SYS-011"]
        assert f"order {second}: filled_avg_price: expected a finite" in alerts[0].message
        assert any(isinstance(e, ModeChanged) and e.mode is Mode.REDUCE_ONLY
                   for e in report.emitted)
        state = runtime.engine.state
        runtime.process([quote("AAPL", 4)])  # the first order's fill, seen by the failed poll
        assert state.position(ACCOUNT, "AAPL") == 10 and first not in state.open_orders
        _order(second)["filled_avg_price"] = "190"
        runtime.process([quote("AAPL", 5)])
        assert state.position(ACCOUNT, "AAPL") == 15
        assert state.open_orders[second].filled == 5
        assert state.mode is Mode.REDUCE_ONLY  # until an operator resumes
    finally:
        runtime.close()
    _replays_clean(tmp_path)


def test_executions_the_venue_reports_with_a_reject_are_booked(
        tmp_path: Path, urls: dict[str, str]) -> None:
    runtime, _ = _runtime(tmp_path, urls["alpaca"])
    try:
        runtime.process([intent("i1", Side.BUY, 10, 1, limit_price=Decimal(195))])
        (cid,) = [o["client_order_id"] for o in ALPACA.orders.values()]
        ALPACA.fill(cid, "4", "190")
        runtime.process([quote("AAPL", 2)])
        ALPACA.fill(cid, "3", "190")
        _order(cid)["status"] = "rejected"
        runtime.process([quote("AAPL", 3)])
        state = runtime.engine.state
        assert state.position(ACCOUNT, "AAPL") == 7
        assert cid not in state.open_orders and state.working(ACCOUNT, "AAPL") == (0, 0)
    finally:
        runtime.close()
    _replays_clean(tmp_path)


def test_a_trade_bust_at_the_venue_alerts_the_operator_and_fails_closed(
        tmp_path: Path, urls: dict[str, str]) -> None:
    runtime, _ = _runtime(tmp_path, urls["alpaca"])
    try:
        runtime.process([intent("i1", Side.BUY, 10, 1, limit_price=Decimal(195))])
        (cid,) = [o["client_order_id"] for o in ALPACA.orders.values()]
        ALPACA.fill(cid, "6", "190")
        runtime.process([quote("AAPL", 2)])
        _order(cid).update(status="canceled", filled_qty="2")
        report = runtime.process([quote("AAPL", 3)])
        alerts = [e for e in report.emitted if isinstance(e, Alert)]
        assert [a.code for a in alerts][:1] == ["SYS-009"]
        assert f"order {cid} filled 2, less than the 6 the gateway booked" in alerts[0].message
        # chaos policy: on_reconciliation_mismatch HALTED, kept until an operator resumes
        assert runtime.engine.state.mode is Mode.HALTED
        assert cid not in runtime.engine.state.open_orders
    finally:
        runtime.close()
    _replays_clean(tmp_path)
