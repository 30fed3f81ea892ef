"""What `ordergate gateway` prints about the firm store: the mode change and alert an
unreachable Redis causes reach stdout and the summary, as `ordergate run` reports what its
own health checks inject."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.runtime.harness import cli
from tests.scale.support import append_lines, closed_port, demo_policy_path, event_lines

from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

pytestmark = pytest.mark.postgres

START = utc(2026, 3, 2, 15, 0)


def _events() -> list[InputEvent]:
    return [
        AccountFunding(ts=START, account="ACC-1", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="AAPL", ts=START + timedelta(milliseconds=10),
                       bid=Decimal("189.95"), ask=Decimal("190.05"), last=Decimal("190.00"),
                       volume=Decimal(1000)),
        OrderIntent(intent_id="buy-1", ts=START + timedelta(milliseconds=100), account="ACC-1",
                    strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10)),
    ]


def test_gateway_prints_the_mode_change_an_unreachable_redis_causes(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "shard.jsonl"
    append_lines(source, event_lines(_events()))
    port = closed_port()
    result = cli("gateway", str(source), "--policy", str(demo_policy_path()),
                 "--journal", postgres_url, "--shard", "solo",
                 "--redis", f"redis://127.0.0.1:{port}/0", "--redis-prefix", "og:",
                 "--firm-max-orders", "100", columns=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(line["type"], line.get("code") or line.get("intent_id") or line.get("mode"))
             for line in lines]
    # in journal order: the breaker's alert and mode change come before the denied intent
    assert kinds[-3:] == [("alert", "SYS-007"), ("mode", "REDUCE_ONLY"),
                          ("decision", "buy-1")], kinds
    mode = lines[-2]
    assert mode["previous"] == "ACTIVE"
    # in words: which store, and what went wrong with it
    [(code, detail)] = [(reason["code"], reason["detail"]) for reason in mode["reasons"]]
    assert code == "SYS-007"
    assert detail.startswith(f"redis: the firm limits store at redis://127.0.0.1:{port}/0 "
                             "cannot be reached (") and "Connection refused" in detail, detail
    assert lines[-1]["decision"] == "DENY" and lines[-1]["mode"] == "REDUCE_ONLY"
    assert "mode ACTIVE -> REDUCE_ONLY at 2026-03-02T15:00:00+00:00 (system): " \
           f"SYS-007 redis: the firm limits store at redis://127.0.0.1:{port}/0 cannot be " \
           "reached" in " ".join(result.stderr.split()), result.stderr
