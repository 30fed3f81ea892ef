"""The simulator takes market snapshots as the engine does: one older than the newest it holds
for the symbol is ignored (the engine drops it too), so nothing fills at a price the gateway
never marked at. One with the same time is taken, as the engine takes it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.brokers.test_sim import END, T0, fills, order, quote
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.gateway import Gateway
from ordergate.model.intent import OrderType


def test_an_older_snapshot_does_not_set_the_fill_price() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01", at=T0 + timedelta(hours=5)))
    broker.on_market(quote("49.99", "50.01", at=T0))  # late: older than the one held
    broker.submit(order(1, at=T0 + timedelta(hours=5, seconds=1)))
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal("100.00")


def test_an_older_snapshot_fills_no_resting_order() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01", at=T0))
    broker.submit(order(1, order_type=OrderType.LIMIT, limit="60", at=T0))
    broker.on_market(quote("99.99", "100.01", at=T0 + timedelta(minutes=5)))
    # Later than the order, older than the quote held: the engine never saw the market at 50.
    broker.on_market(quote("49.99", "50.01", at=T0 + timedelta(minutes=2)))
    assert fills(broker.poll_events(END)) == []
    assert broker.open_orders()[0].filled_qty == 0


def test_an_older_snapshot_is_not_the_next_market_of_an_order() -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.on_market(quote("99.99", "100.01", at=T0 + timedelta(minutes=5)))
    broker.submit(order(1, at=T0 + timedelta(minutes=1)))
    broker.on_market(quote("49.99", "50.01", at=T0 + timedelta(minutes=2)))
    assert fills(broker.poll_events(END)) == []
    broker.on_market(quote("100.99", "101.01", at=T0 + timedelta(minutes=6)))
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal("101.00")


def test_a_snapshot_with_the_same_time_replaces_the_one_held() -> None:
    broker = SimBroker()
    broker.on_market(quote("99.99", "100.01", at=T0))
    broker.on_market(quote("49.99", "50.01", at=T0))
    broker.submit(order(1, at=T0))
    [fill] = fills(broker.poll_events(END))
    assert fill.price == Decimal("50.00")


def test_an_ignored_snapshot_stays_ignored_after_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "sim.db")
    broker = SimBroker(SimConfig(state_path=state))
    broker.on_market(quote("99.99", "100.01", at=T0 + timedelta(hours=1)))
    broker.on_market(quote("49.99", "50.01", at=T0))
    broker.close()
    again = SimBroker(SimConfig(state_path=state))
    try:
        again.submit(order(1, at=T0 + timedelta(hours=1)))
        [fill] = fills(again.poll_events(END))
    finally:
        again.close()
    assert fill.price == Decimal("100.00")


def test_gateway_fills_agree_with_its_marks_after_a_late_snapshot(tmp_path: Path) -> None:
    """The audit's case end to end: the engine drops a late quote at 50, so the buy that
    follows fills at the market the gateway marks at (100), not at 50."""
    with Gateway.open(demo_policy_path(), journal=str(tmp_path / "gw.db"),
                      clock="event") as gateway:
        gateway.fund("DEMO-1", "1000000", ts="2026-03-02T14:30:00Z")
        gateway.on_market({"symbol": "AAPL", "ts": "2026-03-02T15:00:00Z", "bid": "99.99",
                           "ask": "100.01", "last": "100", "volume": "100000"})
        gateway.on_market({"symbol": "AAPL", "ts": "2026-03-02T14:30:00Z", "bid": "49.99",
                           "ask": "50.01", "last": "50", "volume": "100000"})
        decision = gateway.submit({
            "intent_id": "b1", "ts": "2026-03-02T15:00:01Z", "account": "DEMO-1",
            "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": "10"})
        assert decision.decision.value == "ALLOW"
        [position] = [p for p in gateway.status().positions if p.qty]
    assert position.avg_price == Decimal("100.00")
