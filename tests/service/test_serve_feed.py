"""`ordergate serve --feed` processes the feed through the guard, like every later batch: a
feed that rolls the trading day closes the session (yesterday's DAY orders are canceled), and a
burst of bad snapshots opens the feed's circuit. Each test runs the real command on a port
that is already taken, so it stops (exit 1) right after the feed, before serving."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from tests.evidence.support import invoke, read
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path

from ordergate.engine.ids import derive_client_order_id
from ordergate.journal import RecordKind
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.runtime.demo_data import write_events
from ordergate.service.auth import hash_token

NEXT_DAY = START.replace(hour=0) + timedelta(days=1)  # the demo policy rolls at 00:00 UTC


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _quote(ts: datetime, bid: str = "189.95", ask: str = "190.05") -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=Decimal(bid),
                          ask=Decimal(ask), last=Decimal("190.00"), volume=Decimal(1000))


def _serve_feed(tmp_path: Path, events: list[InputEvent], port: int,
                broker: tuple[str, ...] = ()) -> list[bytes]:
    """`ordergate serve --feed` on the journal (applied on one that holds events too, as
    --reapply-feed asks); returns the journal's input payloads."""
    feed = tmp_path / "feed.jsonl"
    write_events(feed, events)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                      f"    hash: {hash_token('viewer-secret')}\n")
    journal = tmp_path / "journal.db"
    served = invoke("serve", "--policy", str(demo_policy_path()), "--journal", str(journal),
                    "--tokens", str(tokens), "--port", str(port), "--feed", str(feed),
                    "--reapply-feed", *broker)
    assert served.code == 1 and "cannot listen" in served.output, served.output
    handle = read(journal)
    try:
        return [record.payload for record in handle.read() if record.kind is RecordKind.INPUT]
    finally:
        handle.close()


def test_a_feed_that_rolls_the_day_cancels_the_previous_days_orders(
        tmp_path: Path, taken_port: int) -> None:
    yesterday = tmp_path / "yesterday.jsonl"
    write_events(yesterday, [
        AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
        _quote(START + timedelta(seconds=1)),
        OrderIntent(intent_id="day-order", ts=START + timedelta(seconds=2), account=ACCOUNT,
                    strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10),
                    order_type=OrderType.LIMIT, limit_price=Decimal("187.00")),
    ])
    # The simulator keeps its book between the two commands, as a broker does.
    sim = tmp_path / "sim.yaml"
    sim.write_text(f"sim:\n  fill_model: next_market\n  state_path: {tmp_path / 'sim.db'}\n")
    ran = invoke("run", "--policy", str(demo_policy_path()), "--journal",
                 str(tmp_path / "journal.db"), "--broker", str(sim), "--quiet",
                 str(yesterday))
    assert ran.code == 0, ran.output

    inputs = _serve_feed(tmp_path, [_quote(NEXT_DAY + timedelta(seconds=5))], taken_port,
                         ("--broker", str(sim)))

    cancels = [msgspec.json.decode(payload) for payload in inputs
               if payload.startswith(b'{"type":"cancel_request"')]
    assert [(c["client_order_id"], c["requested_by"]) for c in cancels] == [
        (derive_client_order_id(ACCOUNT, "trend", "day-order"), "session_close")]


def test_a_burst_of_bad_snapshots_in_the_feed_opens_its_circuit(
        tmp_path: Path, taken_port: int) -> None:
    crossed = [_quote(START + timedelta(seconds=second), bid="190.10", ask="190.00")
               for second in range(1, 6)]  # bid above ask: not a sane quote

    inputs = _serve_feed(tmp_path, crossed, taken_port)

    circuits = [msgspec.json.decode(payload) for payload in inputs
                if b'"dependency":"circuit:feed:market"' in payload]
    assert [c["healthy"] for c in circuits] == [False]
