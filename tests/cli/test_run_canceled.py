"""`ordergate run` prints the broker's confirmation that an order was canceled as a
`{"type":"canceled",...}` line, after the cancel that asked for it: a limit buy rests below
the market at the simulator, a `cancel_request` for it follows, and stdout shows the order,
the cancel sent and the broker's answer, in that order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.engine.ids import derive_client_order_id

ACCOUNT = "ACC-1"
RESTING = derive_client_order_id(ACCOUNT, "trend", "rest-1")


def _at(second: int) -> str:
    return f"2026-03-02T15:00:{second:02d}Z"


EVENTS: list[dict[str, Any]] = [
    {"type": "account", "ts": _at(0), "account": ACCOUNT, "cash": "100000"},
    {"type": "market", "symbol": "AAPL", "ts": _at(1), "bid": "99.95", "ask": "100.05",
     "last": "100.00"},
    {"type": "intent", "intent_id": "rest-1", "ts": _at(2), "account": ACCOUNT,
     "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": "5", "order_type": "limit",
     "limit_price": "99.00"},
    {"type": "cancel_request", "ts": _at(3), "client_order_id": RESTING, "account": ACCOUNT,
     "requested_by": "desk-a"},
]


def test_the_brokers_cancel_confirmation_is_printed(tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    result = cli("run", "--policy", str(demo_policy_path()),
                 "--journal", str(tmp_path / "journal.db"), "--batch-size", "1", str(events),
                 columns=200)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]

    assert [line["type"] for line in printed if line["type"] != "alert"] == [
        "decision", "dispatch", "cancel", "canceled"]
    canceled = printed[-1]
    assert set(canceled) == {"type", "client_order_id", "reason", "ts"}
    assert canceled["client_order_id"] == RESTING and canceled["reason"]
    cancel = next(line for line in printed if line["type"] == "cancel")
    assert (cancel["client_order_id"], cancel["reason"]) == (RESTING, "desk-a")
