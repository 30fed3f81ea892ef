"""A gateway restarted on its journal hands every order it holds open to the broker adapter,
from the state the journal has of it, so what the venue does with the order after the
restart (fills) comes back through the adapter's polls and is booked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.alpaca import KEY_ID, SECRET, AlpacaState, build
from fakes.server import ServerThread
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.config import Secret
from ordergate.engine.ids import derive_client_order_id
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import Runtime

STATE = AlpacaState()
ACCOUNT = "DEMO-1"
START = utc(2026, 3, 2, 15, 0)
ORDER = derive_client_order_id(ACCOUNT, "trend", "rest-1")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread(build(STATE))
    url = server.start()
    yield url
    server.stop()


def _adapter(base_url: str) -> AlpacaAdapter:
    return AlpacaAdapter(api_key=Secret(KEY_ID), secret_key=Secret(SECRET), account=ACCOUNT,
                         paper=True, base_url=base_url, timeout_s=2)


def _quote(second: int) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=START + timedelta(seconds=second),
                          bid=Decimal("189.99"), ask=Decimal("190.01"), last=Decimal("190.00"),
                          volume=Decimal(1000))


def _open(journal: Path, base_url: str) -> Runtime:
    return Runtime.open(f"sqlite:///{journal}", load_policy(demo_policy_path()),
                        _adapter(base_url))


def _booked(runtime: Runtime, events: list[InputEvent]) -> tuple[Decimal, list[Decimal]]:
    """Process `events`; the AAPL position and the open orders' filled quantities after."""
    runtime.process(events)
    status = runtime.engine.status()
    held = sum((p.qty for p in status.positions if p.symbol == "AAPL"), Decimal(0))
    return held, [order.filled for order in status.open_orders]


def test_fills_after_a_restart_reach_the_journal(tmp_path: Path, base_url: str) -> None:
    STATE.reset()
    journal = tmp_path / "journal.db"
    runtime = _open(journal, base_url)
    try:
        held, working = _booked(runtime, [
            AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
            _quote(1),
            OrderIntent(intent_id="rest-1", ts=START + timedelta(seconds=2), account=ACCOUNT,
                        strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(5),
                        order_type=OrderType.LIMIT, limit_price=Decimal("189.50")),
            _quote(3),
        ])
        assert (held, working) == (Decimal(0), [Decimal(0)])
        STATE.fill(ORDER, "2", "189.5")
        assert _booked(runtime, [_quote(4)]) == (Decimal(2), [Decimal(2)])
    finally:
        runtime.close()

    # A new process: its adapter has sent nothing. The venue fills the rest after the restart.
    runtime = _open(journal, base_url)
    try:
        assert _booked(runtime, [_quote(5)]) == (Decimal(2), [Decimal(2)])
        STATE.fill(ORDER, "3", "189.4")
        held, working = _booked(runtime, [_quote(6)])
        assert (held, working) == (Decimal(5), [])
        (position,) = [p for p in runtime.engine.status().positions if p.symbol == "AAPL"]
        # 2 @ 189.5 before the restart, 3 @ 189.4 after it: the new fill's own price.
        assert position.avg_price == Decimal("189.44")
    finally:
        runtime.close()
