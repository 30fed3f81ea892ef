"""`submit_many` answers each intent with its own decision, and `AsyncGateway.close` is
idempotent like `Gateway.close`.

A batch that repeated an intent_id (the first allowed and sent, the second a DUP-003 conflict)
returned the conflict for both, so the caller thought an order that was filled had been
denied. An `AsyncGateway` closed early (a shutdown handler) failed when the `async with` block
closed it again, with "cannot schedule new futures after shutdown"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate import AsyncGateway, DecisionKind, Gateway, GatewayClosed

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: embed-batch
defaults:
  max_market_data_age: 1m
  max_order_qty: 100
"""


def intent(intent_id: str, qty: str) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": T0 + timedelta(seconds=1), "account": "ACC-1",
            "strategy": "demo", "symbol": "AAPL", "side": "buy", "qty": qty}


@pytest.fixture()
def gateway(tmp_path: Path) -> Gateway:
    opened = Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event")
    opened.fund("ACC-1", "100000", ts=T0)
    opened.on_market({"symbol": "AAPL", "ts": T0, "bid": "99.99", "ask": "100.01",
                      "last": "100"})
    return opened


def test_repeated_intent_id_in_a_batch_returns_each_intents_own_decision(
        gateway: Gateway) -> None:
    first, second = gateway.submit_many([intent("d1", "1"), intent("d1", "2")])
    assert first.decision is DecisionKind.ALLOW
    assert (second.decision, second.blocking) == (DecisionKind.DENY, "DUP-003")
    assert [(p.symbol, p.qty) for p in gateway.status().positions] == [("AAPL", Decimal(1))]
    gateway.close()


def test_batch_decisions_follow_input_order(gateway: Gateway) -> None:
    decisions = gateway.submit_many([intent("a", "1"), intent("b", "500"), intent("a", "1")])
    assert [(d.intent_id, d.decision) for d in decisions] == [
        ("a", DecisionKind.ALLOW), ("b", DecisionKind.DENY), ("a", DecisionKind.ALLOW)]
    assert gateway.status().positions[0].qty == Decimal(1)  # the retry sent nothing
    gateway.close()


def test_async_gateway_close_is_idempotent_and_later_calls_say_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncGateway.open(POLICY, journal=tmp_path / "a.db",
                                           clock="event") as gateway:
            await gateway.close()  # a shutdown handler closes it early
            await gateway.close()
            with pytest.raises(GatewayClosed):
                await gateway.tick(T0)
            with pytest.raises(GatewayClosed):
                await gateway.status()
        # leaving the block closed it a third time, quietly

    asyncio.run(scenario())
