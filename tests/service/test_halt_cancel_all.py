"""POST /v1/mode/halt on a real server with working orders at the broker (limit buys resting
below the market, at a simulator that fills only against later market data): with
`cancel_all` every working order is cancelled at the broker and none is left working; without
it the halt stops new risk and leaves the resting orders alone (the test policy does not set
`cancel_all_on_kill`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.brokers.base import OrderStatus
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.engine.ids import derive_client_order_id
from service.support import (
    OPERATOR,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    start,
)

RESTING = ("rest-aapl", "rest-msft")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The service tests' gateway, with a broker that fills only at the next market data."""
    running = start(tmp_path, broker=SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET)))
    try:
        yield running
    finally:
        running.stop()


def _resting_limit(intent_id: str, symbol: str, price: str,
                   seconds: float) -> dict[str, Any]:
    body = intent(intent_id, symbol=symbol, qty="5", seconds=seconds)
    return {**body, "order_type": "limit", "limit_price": price}


def _place_resting_orders(served: Served, client: httpx.Client) -> list[str]:
    """Two limit buys well below the market, acknowledged by the broker and left working."""
    # At the gateway's wall-clock second, where the operator's halt lands too: the broker's
    # cancel confirmations are then due at the halt's time, not at a later clock tick.
    for intent_id, symbol, price in [("rest-aapl", "AAPL", "90.00"),
                                     ("rest-msft", "MSFT", "180.00")]:
        answer = client.post("/v1/intents", json=_resting_limit(intent_id, symbol, price, 1),
                             headers=auth(TRADER))
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"]["decision"] == "ALLOW"
    orders = sorted(derive_client_order_id("ACC-1", "momo", name) for name in RESTING)
    assert sorted(served.sent()) == orders
    assert sorted(o.client_order_id for o in served.broker.open_orders()) == orders
    assert _engine_working(served) == orders
    # Working buys count at the marks: 5 AAPL at 100 and 5 MSFT at 200.
    assert _gross_exposure(client) == 1500
    return orders


def _engine_working(served: Served) -> list[str]:
    """The gateway's own book of working orders, read on the engine thread."""
    state = served.gateway.runtime.engine.state
    working: list[str] = asyncio.run(served.gateway.bridge.call(
        lambda: sorted(state.open_orders)))
    return working


def _halt(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/mode/halt", json=body, headers=auth(OPERATOR))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["mode"] == "HALTED"
    return result


def _gross_exposure(client: httpx.Client) -> Decimal:
    [account] = [row for row in client.get("/v1/status", headers=auth(VIEWER)).json()["exposure"]
                 if row["account"] == "ACC-1"]
    return Decimal(account["gross"])


def test_halt_with_cancel_all_cancels_every_working_order_at_the_broker(
        served: Served, client: httpx.Client) -> None:
    orders = _place_resting_orders(served, client)

    result = _halt(client, {"reason": "runaway strategy: INC-1", "cancel_all": True})

    cancels = sorted(output["client_order_id"] for output in result["outputs"]
                     if output["type"] == "cancel")
    assert cancels == orders
    served.sent()  # the engine thread has sent the cancels and journaled the answers
    assert served.broker.open_orders() == []
    for order in orders:
        at_broker = served.broker.get_order(order)
        assert at_broker is not None and at_broker.status is OrderStatus.CANCELED
    assert _engine_working(served) == []
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["mode"] == "HALTED"
    assert _gross_exposure(client) == 0  # nothing working reserves exposure any more


def test_halt_without_cancel_all_leaves_working_orders_working(
        served: Served, client: httpx.Client) -> None:
    orders = _place_resting_orders(served, client)

    result = _halt(client, {"reason": "broker maintenance"})

    assert [output for output in result["outputs"] if output["type"] == "cancel"] == []
    served.sent()
    assert sorted(o.client_order_id for o in served.broker.open_orders()) == orders
    assert _engine_working(served) == orders
    # New risk is stopped all the same.
    denied = client.post("/v1/intents", json=intent("after-halt", seconds=5),
                         headers=auth(TRADER))
    assert denied.json()["decision"]["blocking"] == "MOD-001"
