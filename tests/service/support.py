"""A real gateway for the service tests: SQLite journal, the simulator broker, the real
Runtime and engine, served by uvicorn on 127.0.0.1 on an ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from typer.testing import CliRunner

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.cli.main import app
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import Side
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import Policy, parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.service.alerts import AlertSink
from ordergate.service.auth import Principal, Role, TokenStore
from ordergate.service.bridge import ServiceUnavailable
from ordergate.service.server import Gateway, ServerThread

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

TRADER = "trader-token-0123456789"
TRADER_B = "trader-b-token-0123456789"
OPERATOR = "operator-token-0123456789"
OPERATOR_2 = "operator-2-token-0123456789"
VIEWER = "viewer-token-0123456789"
SLOW = "slow-token-0123456789"
FEEDER = "feeder-token-0123456789"

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: service-test
engine:
  resume_requires_two_operators: true
defaults:
  max_market_data_age: 1d
  max_order_qty: 1000
  max_gross_exposure: 1000000
  max_net_exposure: 500000
  rate_account: {max: 10000, window: 1s}
  rate_global: {max: 20000, window: 1s}
"""

OTHER_POLICY = POLICY.replace("service-test", "service-test-2").replace(
    "max_order_qty: 1000", "max_order_qty: 50")


def tokens() -> TokenStore:
    return TokenStore.from_tokens({
        TRADER: Principal(name="desk-a", role=Role.TRADER, accounts=frozenset({"ACC-1"})),
        TRADER_B: Principal(name="desk-b", role=Role.TRADER, accounts=frozenset({"ACC-2"})),
        OPERATOR: Principal(name="ops-alice", role=Role.OPERATOR),
        OPERATOR_2: Principal(name="ops-bob", role=Role.OPERATOR),
        VIEWER: Principal(name="screen", role=Role.VIEWER),
        SLOW: Principal(name="slow", role=Role.VIEWER, requests_per_second=0.5, burst=2),
        FEEDER: Principal(name="feed-1", role=Role.FEEDER),
    })


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def status_of(served: Served) -> dict[str, Any]:
    """GET /v1/status as the viewer sees it (answered 200)."""
    response = httpx.get(f"{served.url}/v1/status", headers=auth(VIEWER), timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decided(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """POST one intent as the trader (answered 200): its decision."""
    response = httpx.post(f"{served.url}/v1/intents", json=body, headers=auth(TRADER),
                          timeout=10.0)
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decision"]
    return decision


def feed(ts: datetime = T0) -> list[InputEvent]:
    return [
        AccountFunding(ts=ts, account="ACC-1", cash=Decimal("1000000")),
        AccountFunding(ts=ts, account="ACC-2", cash=Decimal("1000000")),
        MarketSnapshot(symbol="AAPL", ts=ts, bid=Decimal("99.99"), ask=Decimal("100.01"),
                       last=Decimal("100.00")),
        MarketSnapshot(symbol="MSFT", ts=ts, bid=Decimal("199.98"), ask=Decimal("200.02"),
                       last=Decimal("200.00")),
    ]


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def quote(symbol: str, mid: str, seconds: float = 1.0) -> dict[str, Any]:
    """A market snapshot as a feed posts it to /v1/market."""
    price = Decimal(mid)
    return {"type": "market", "symbol": symbol, "ts": stamp(seconds),
            "bid": str(price - Decimal("0.01")), "ask": str(price + Decimal("0.01")),
            "last": mid}


def intent(intent_id: str, *, account: str = "ACC-1", symbol: str = "AAPL", qty: str = "10",
           side: Side = Side.BUY, seconds: float = 1.0) -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id,
            "ts": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
            "account": account, "strategy": "momo", "symbol": symbol, "side": side.value,
            "qty": qty}


@dataclass
class Served:
    url: str
    broker: SimBroker
    gateway: Gateway
    server: ServerThread
    journal_url: str
    stopped: bool = False

    def sent(self) -> list[str]:
        """Client order ids the broker received, read once the engine thread has finished
        the batch in hand: callers are answered before their orders go to the broker."""
        with contextlib.suppress(ServiceUnavailable):
            asyncio.run(self.gateway.bridge.call(lambda: None))
        return self.broker.submissions()

    def stop(self) -> None:
        """Stop serving and close the journal (idempotent, so a test may stop early)."""
        if not self.stopped:
            self.stopped = True
            self.server.stop()


def start(tmp_path: Path, *, policy: Policy | None = None,
          alert_sinks: list[AlertSink] | None = None, max_body_bytes: int = 1_048_576,
          fund: bool = True, broker: SimBroker | None = None, journal_url: str | None = None,
          wall_clock: Callable[[], datetime] | None = None,
          token_store: TokenStore | None = None) -> Served:
    """`broker`: the simulator by default; one with a `state_path` keeps a book of its own,
    so the gateway reconciles with it (before the first batch served). `journal_url`: a
    journal of its own (a PostgreSQL one), funded as a new one; else `journal.db` in
    `tmp_path`, funded when it is new. `wall_clock`: the server's clock (T0 + 1 s by
    default); `token_store`: the tokens (`tokens()` by default)."""
    if journal_url is None:
        journal_path = tmp_path / "journal.db"
        journal_url = f"sqlite:///{journal_path}"
        fresh = not journal_path.exists()
    else:
        fresh = True
    broker = broker if broker is not None else SimBroker(SimConfig())
    runtime = Runtime.open(journal_url, policy or parse_policy(POLICY), broker)
    if fund and fresh:
        runtime.process(feed())
    gateway = Gateway(runtime, token_store or tokens(), journal_url=journal_url,
                      tick_interval_s=None,
                      alert_sinks=alert_sinks or [],
                      wall_clock=wall_clock or (lambda: T0 + timedelta(seconds=1)),
                      max_body_bytes=max_body_bytes, reject_alert_threshold=3)
    server = ServerThread(gateway).start()
    return Served(url=server.url, broker=broker, gateway=gateway, server=server,
                  journal_url=journal_url)


def status_cli_words(served: Served) -> str:
    """`ordergate status --url` output as words (panels and tables wrap; compare words)."""
    result = CliRunner().invoke(app, ["status", "--url", served.url, "--token", VIEWER],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()  # the command bound structlog to the runner's closed stderr
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").replace("┃", " ").split())


def serve_args(tmp_path: Path, journal: str, log_level: str = "warning") -> list[str]:
    """`ordergate serve` as a command line on `journal`, on an ephemeral port: POLICY, a
    trader token for ACC-1 (TRADER) and a viewer token (VIEWER), and a feed that funds ACC-1
    and quotes AAPL now."""
    from ordergate.runtime.demo_data import write_events
    from ordergate.service.auth import hash_token

    now = datetime.now(UTC)
    feed = tmp_path / "feed.jsonl"
    write_events(feed, [
        AccountFunding(ts=now, account="ACC-1", cash=Decimal("1000000")),
        MarketSnapshot(symbol="AAPL", ts=now, bid=Decimal("99.99"), ask=Decimal("100.01"),
                       last=Decimal("100.00")),
    ])
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n"
                      f"  - name: desk-a\n    role: trader\n    accounts: [ACC-1]\n"
                      f"    hash: {hash_token(TRADER)}\n"
                      f"  - name: screen\n    role: viewer\n    hash: {hash_token(VIEWER)}\n")
    return [sys.executable, "-m", "ordergate.cli.main", "serve", "--policy", str(policy),
            "--journal", journal, "--tokens", str(tokens), "--port", "0", "--feed", str(feed),
            "--log-level", log_level]
