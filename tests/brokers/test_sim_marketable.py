"""The immediate fill model trades only what the market would trade: a limit order fills on
receipt only when the last quote makes it marketable, rests otherwise, and the volume
participation cap gives partial fills on receipt too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ordergate.brokers.base import BrokerPosition, OrderStatus
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import Dispatch, Fill, OrderAck, OrderCanceled
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

T0 = utc(2024, 3, 1, 15, 0)
END = utc(2030, 1, 1)


def limit(n: int, price: str, *, side: Side = Side.BUY, qty: str = "10",
          tif: TimeInForce = TimeInForce.DAY, at: datetime = T0,
          symbol: str = "AAPL") -> Dispatch:
    return Dispatch(ts=at, client_order_id=f"acct1-s-{n:04d}", intent_id=f"i-{n}",
                    account="acct1", strategy="s", symbol=symbol, side=side, qty=Decimal(qty),
                    order_type=OrderType.LIMIT, limit_price=Decimal(price), tif=tif)


def market(n: int, *, side: Side = Side.BUY, qty: str = "10", at: datetime = T0) -> Dispatch:
    return Dispatch(ts=at, client_order_id=f"acct1-s-{n:04d}", intent_id=f"i-{n}",
                    account="acct1", strategy="s", symbol="AAPL", side=side, qty=Decimal(qty),
                    order_type=OrderType.MARKET)


def quote(bid: str, ask: str, *, at: datetime = T0, symbol: str = "AAPL",
          volume: str | None = None) -> MarketSnapshot:
    return MarketSnapshot(symbol=symbol, ts=at, bid=Decimal(bid), ask=Decimal(ask),
                          volume=Decimal(volume) if volume else None)


def fills(events: Sequence[object]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def status(broker: SimBroker, client_order_id: str) -> OrderStatus:
    found = broker.get_order(client_order_id)
    assert found is not None
    return found.status


def test_buy_limit_below_the_ask_rests_instead_of_filling_at_its_limit() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01"))
    assert broker.submit(limit(1, "90")).accepted
    events = broker.poll_events(END)
    assert [type(e) for e in events] == [OrderAck]
    assert status(broker, "acct1-s-0001") is OrderStatus.NEW
    assert broker.positions() == []  # no fake position bought at 90 in a 100 market


def test_sell_limit_above_the_bid_rests() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01"))
    broker.submit(limit(1, "100", side=Side.SELL))
    assert fills(broker.poll_events(END)) == []
    assert status(broker, "acct1-s-0001") is OrderStatus.NEW


def test_marketable_limits_fill_on_receipt_at_their_limit_price() -> None:
    broker = SimBroker(SimConfig(fee_bps=Decimal(10)))
    broker.on_market(quote("99.99", "100.01"))
    broker.submit(limit(1, "100.01"))  # at the ask
    broker.submit(limit(2, "101"))  # through the ask: still at its own limit
    broker.submit(limit(3, "99.99", side=Side.SELL))  # at the bid
    got = fills(broker.poll_events(T0))
    assert [(f.client_order_id, f.qty, f.price, f.ts) for f in got] == [
        ("acct1-s-0001", Decimal(10), Decimal("100.01"), T0),
        ("acct1-s-0002", Decimal(10), Decimal("101"), T0),
        ("acct1-s-0003", Decimal(10), Decimal("99.99"), T0),
    ]
    assert got[1].fee == Decimal("1.01")


def test_resting_limit_fills_at_its_limit_when_a_later_quote_reaches_it() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01"))
    broker.submit(limit(1, "90"))
    broker.on_market(quote("94.99", "95.01", at=T0 + timedelta(seconds=1)))
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("89.95", "90", at=T0 + timedelta(seconds=2)))
    [fill] = fills(broker.poll_events(END))
    assert (fill.qty, fill.price, fill.ts) == (Decimal(10), Decimal(90),
                                              T0 + timedelta(seconds=2))
    assert broker.positions() == [BrokerPosition(account="acct1", symbol="AAPL",
                                                 qty=Decimal(10), avg_price=Decimal(90))]


def test_without_any_quote_for_the_symbol_a_limit_fills_at_its_limit() -> None:
    broker = SimBroker()
    broker.on_market(quote("10", "10.02", symbol="MSFT"))  # another symbol says nothing
    broker.submit(limit(1, "90"))
    [fill] = fills(broker.poll_events(END))
    assert (fill.qty, fill.price) == (Decimal(10), Decimal(90))


def test_ioc_limit_that_cannot_trade_is_canceled_and_fok_too() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01"))
    broker.submit(limit(1, "90", tif=TimeInForce.IOC))
    broker.submit(limit(2, "90", tif=TimeInForce.FOK))
    events = broker.poll_events(END)
    canceled = [e for e in events if isinstance(e, OrderCanceled)]
    assert [(e.client_order_id, e.reason) for e in canceled] == [
        ("acct1-s-0001", "immediate or cancel: remainder canceled"),
        ("acct1-s-0002", "fill or kill: not fully fillable"),
    ]
    assert fills(events) == []
    broker.on_market(quote("80", "80.02", at=T0 + timedelta(seconds=1)))
    assert fills(broker.poll_events(END)) == []


def test_participation_cap_gives_partial_fills_on_receipt_shared_between_orders() -> None:
    broker = SimBroker(SimConfig(max_participation_pct=Decimal(10)))
    broker.on_market(quote("99.99", "100.01", volume="1000"))  # 100 may trade on it
    broker.submit(limit(1, "100.01", qty="150"))
    broker.submit(market(2, qty="30", at=T0 + timedelta(milliseconds=1)))
    assert [(f.client_order_id, f.qty) for f in fills(broker.poll_events(END))] == [
        ("acct1-s-0001", Decimal(100))]
    assert status(broker, "acct1-s-0001") is OrderStatus.PARTIALLY_FILLED
    assert status(broker, "acct1-s-0002") is OrderStatus.NEW
    # The next quote's share goes to the oldest order first.
    broker.on_market(quote("99.99", "100.01", volume="600", at=T0 + timedelta(seconds=1)))
    assert [(f.client_order_id, f.qty) for f in fills(broker.poll_events(END))] == [
        ("acct1-s-0001", Decimal(50)), ("acct1-s-0002", Decimal(10))]
    # What the resting orders took from that quote is not available to a new order either.
    broker.submit(market(3, qty="5", at=T0 + timedelta(seconds=2)))
    assert fills(broker.poll_events(END)) == []


def test_participation_cap_without_a_quote_trades_nothing_until_one_comes() -> None:
    broker = SimBroker(SimConfig(max_participation_pct=Decimal(50)))
    broker.submit(limit(1, "90", qty="30"))
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("89.99", "90", volume="40", at=T0 + timedelta(seconds=1)))
    [fill] = fills(broker.poll_events(END))
    assert (fill.qty, fill.price) == (Decimal(20), Decimal(90))


def test_fok_on_receipt_is_canceled_when_the_cap_cannot_fill_it_all() -> None:
    broker = SimBroker(SimConfig(max_participation_pct=Decimal(10)))
    broker.on_market(quote("99.99", "100.01", volume="50"))
    broker.submit(limit(1, "100.01", tif=TimeInForce.FOK))
    events = broker.poll_events(END)
    assert fills(events) == []
    assert [e.reason for e in events if isinstance(e, OrderCanceled)] == [
        "fill or kill: not fully fillable"]


def test_volume_taken_on_receipt_survives_a_restart(tmp_path: Path) -> None:
    def config() -> SimConfig:
        return SimConfig(max_participation_pct=Decimal(10), state_path=str(tmp_path / "b.db"))

    broker = SimBroker(config())
    broker.on_market(quote("99.99", "100.01", volume="100"))
    broker.submit(market(1, qty="8"))
    broker.close()
    restarted = SimBroker(config())
    restarted.submit(market(2, qty="8", at=T0 + timedelta(milliseconds=1)))
    assert [(f.client_order_id, f.qty) for f in fills(restarted.poll_events(END))] == [
        ("acct1-s-0001", Decimal(8)), ("acct1-s-0002", Decimal(2))]
    restarted.close()


def _session(broker: SimBroker) -> list[object]:
    out: list[object] = []
    for n in range(1, 40):
        at = T0 + timedelta(seconds=n)
        mid = Decimal(100) + Decimal(n % 7) - 3
        broker.on_market(quote(str(mid - Decimal("0.01")), str(mid + Decimal("0.01")), at=at,
                               volume=str(50 + n % 5 * 10)))
        side = Side.BUY if n % 2 else Side.SELL
        broker.submit(limit(n, str(Decimal(100) + Decimal(n % 5) - 2), side=side,
                            qty=str(3 + n % 11), at=at))
        out.extend(broker.poll_events(at))
    out.extend(broker.poll_events(END))
    out.append(broker.positions())
    return out


def test_same_inputs_give_the_same_fills() -> None:
    config = SimConfig(max_participation_pct=Decimal(20), slippage_bps=Decimal(2),
                       fee_bps=Decimal(1))
    first = _session(SimBroker(config))
    assert first == _session(SimBroker(config))
    placed = {f"acct1-s-{n:04d}": T0 + timedelta(seconds=n) for n in range(1, 40)}
    on_receipt = [f for f in fills(first) if f.ts == placed[f.client_order_id]]
    later = [f for f in fills(first) if f.ts > placed[f.client_order_id]]
    assert on_receipt and later  # the session trades both on receipt and from resting orders
