"""Helpers for the client tests: a real gateway service on 127.0.0.1: SQLite journal, the simulated
broker, the real Runtime, engine thread and HTTP app under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import AccountFunding
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.service.auth import Principal, Role, TokenStore
from ordergate.service.server import Gateway, ServerThread

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
TRADER = "client-trader-token-0123456789"
OPERATOR = "client-operator-token-0123456789"
VIEWER = "client-viewer-token-0123456789"
SLOW = "client-slow-token-0123456789"

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: client-test
defaults:
  max_market_data_age: 1d
  max_order_qty: 1000
  rate_account: {max: 10000, window: 1s}
"""


@dataclass
class Served:
    url: str
    broker: SimBroker
    gateway: Gateway
    server: ServerThread

    def sent(self) -> list[str]:
        """Client order ids the broker received, read once the engine thread has finished
        the batch in hand: callers are answered before their orders go to the broker."""
        asyncio.run(self.gateway.bridge.call(lambda: None))
        return self.broker.submissions()


def intent(intent_id: str, *, qty: str = "10", side: str = "buy", account: str = "ACC-1",
           seconds: int = 1) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": T0 + timedelta(seconds=seconds), "account": account,
            "strategy": "momo", "symbol": "AAPL", "side": side, "qty": qty}


def serve(tmp_path: Path) -> Iterator[Served]:
    """Start the service; stop it when the generator is closed."""
    broker = SimBroker(SimConfig())
    journal_url = f"sqlite:///{tmp_path / 'journal.db'}"
    runtime = Runtime.open(journal_url, parse_policy(POLICY), broker)
    runtime.process([
        AccountFunding(ts=T0, account="ACC-1", cash=Decimal("1000000")),
        MarketSnapshot(symbol="AAPL", ts=T0, bid=Decimal("99.99"), ask=Decimal("100.01"),
                       last=Decimal("100.00")),
    ])
    tokens = TokenStore.from_tokens({
        TRADER: Principal(name="desk-a", role=Role.TRADER, accounts=frozenset({"ACC-1"})),
        OPERATOR: Principal(name="ops-alice", role=Role.OPERATOR),
        VIEWER: Principal(name="screen", role=Role.VIEWER),
        SLOW: Principal(name="slow", role=Role.VIEWER, requests_per_second=0.5, burst=1),
    })
    gateway = Gateway(runtime, tokens, journal_url=journal_url, tick_interval_s=None,
                      wall_clock=lambda: T0 + timedelta(seconds=1))
    server = ServerThread(gateway).start()
    try:
        yield Served(url=server.url, broker=broker, gateway=gateway, server=server)
    finally:
        server.stop()
