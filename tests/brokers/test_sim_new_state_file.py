"""A simulator restarted on a broker state file that this start made (a `--broker-state`
path that did not exist, or another path than before) has never held the journal's working
orders, as one without a state file has not: start-up ends them as canceled with a reason
naming the new file, instead of leaving them working for reconciliation to report as zombies
(SYS-009, REDUCE_ONLY). A state file found holding a book still keeps its orders."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.gateway import Gateway
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import OrderCanceled
from ordergate.model.modes import Mode
from ordergate.runtime.loop import decode_input, rebuild

ACCOUNT = "DEMO-1"


def _at(minute: int, second: int = 0) -> str:
    return f"2026-03-02T14:{minute:02d}:{second:02d}Z"


def _market(minute: int, price: str) -> dict[str, Any]:
    cents = Decimal("0.01")
    return {"symbol": "AAPL", "ts": _at(minute), "bid": str(Decimal(price) - cents),
            "ask": str(Decimal(price) + cents), "last": price, "volume": "100000"}


def _canceled(journal: Path) -> list[tuple[str, str]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        inputs = [decode_input(r.payload) for r in handle.read() if r.kind is RecordKind.INPUT]
    finally:
        handle.close()
    return [(e.client_order_id, e.reason) for e in inputs if isinstance(e, OrderCanceled)]


def _rest_a_limit_buy(journal: Path, state: Path) -> str:
    """One process on `state`: a limit buy at 180 with the market at 190 rests there."""
    broker = SimBroker(SimConfig(state_path=str(state)))
    try:
        with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                          broker=broker) as gateway:
            gateway.fund(ACCOUNT, "1000000", ts=_at(30))
            gateway.on_market(_market(30, "190"))
            decision = gateway.submit({"intent_id": "lim1", "ts": _at(30, 1),
                                       "account": ACCOUNT, "strategy": "trend",
                                       "symbol": "AAPL", "side": "buy", "qty": "10",
                                       "order_type": "limit", "limit_price": "180"})
            assert decision.decision.value == "ALLOW"
            [order] = gateway.status().open_orders
            return order.client_order_id
    finally:
        broker.close()


def test_a_state_file_made_now_keeps_no_orders_and_says_which_file(tmp_path: Path) -> None:
    path = tmp_path / "new.sim"
    made = SimBroker(SimConfig(state_path=str(path)))
    made.close()
    assert not made.keeps_orders_across_restarts
    assert made.forgotten_orders_reason is not None
    assert str(path) in made.forgotten_orders_reason
    found = SimBroker(SimConfig(state_path=str(path)))
    found.close()
    assert found.keeps_orders_across_restarts
    assert found.forgotten_orders_reason is None
    assert SimBroker(SimConfig()).forgotten_orders_reason is None


def test_restart_on_a_new_state_file_cancels_the_working_orders_naming_it(
        tmp_path: Path) -> None:
    journal, new = tmp_path / "gw.db", tmp_path / "new.sim"
    client_order_id = _rest_a_limit_buy(journal, tmp_path / "first.sim")
    broker = SimBroker(SimConfig(state_path=str(new)))
    try:
        with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                          broker=broker) as gateway:
            assert gateway.status().open_orders == ()
            gateway.on_market(_market(40, "170"))  # crosses the old limit: nothing fills
            status = gateway.status()
    finally:
        broker.close()
    assert status.mode is Mode.ACTIVE, status.reasons  # no SYS-009 zombie
    assert status.open_orders == ()
    assert not [p for p in status.positions if p.qty]
    [(canceled_id, reason)] = _canceled(journal)
    assert canceled_id == client_order_id
    assert f"new broker state file ({new}" in reason
    assert "never held this order" in reason
    assert rebuild(f"sqlite:///{journal}").status().open_orders == ()


def test_restart_on_the_same_state_file_keeps_the_working_orders(tmp_path: Path) -> None:
    journal, state = tmp_path / "gw.db", tmp_path / "sim.db"
    client_order_id = _rest_a_limit_buy(journal, state)
    broker = SimBroker(SimConfig(state_path=str(state)))
    try:
        with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                          broker=broker) as gateway:
            working = [o.client_order_id for o in gateway.status().open_orders]
            mode = gateway.mode
    finally:
        broker.close()
    assert working == [client_order_id]
    assert mode is Mode.ACTIVE
    assert _canceled(journal) == []
