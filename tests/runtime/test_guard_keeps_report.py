"""A journal failure in one of the guard's later writes (the session close after a day roll,
feed checks, housekeeping) stops the runtime with everything the guarded call had made
durable: the main batch's decisions, the orders it sent and the broker's answers are in the
journal and at the broker, so `ordergate run` shows them before its safety stop (exit 3), and
the restart, which continues from the journal, does not show them again.

The disk's refusal is a real SQLite one: a trigger on the journal's table aborts the insert of
the session close's cancel request. Batch 1 leaves a DAY limit order working; batch 2 rolls
the day (00:00 UTC under the demo policy) and places `day2-buy`, which is journaled, sent and
filled before the close that follows the batch fails."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, journaled_outputs, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.model.decision import Decision
from ordergate.model.events import Dispatch

QUOTE = {"type": "market", "symbol": "AAPL", "bid": "99.95", "ask": "100.05", "last": "100.00"}
EVENTS = [
    {"type": "account", "ts": "2026-03-02T23:59:50Z", "account": "ACC-1", "cash": "100000"},
    {**QUOTE, "ts": "2026-03-02T23:59:51Z"},
    {"type": "intent", "intent_id": "rest-1", "ts": "2026-03-02T23:59:52Z", "account": "ACC-1",
     "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": "10", "order_type": "limit",
     "limit_price": "99.00"},
    {**QUOTE, "ts": "2026-03-03T00:00:01Z"},
    {"type": "intent", "intent_id": "day2-buy", "ts": "2026-03-03T00:00:02Z",
     "account": "ACC-1", "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": "5"},
    {**QUOTE, "ts": "2026-03-03T00:00:03Z"},
]


def _refuse_cancel_requests(journal: Path, refuse: bool = True) -> None:
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        if refuse:
            conn.execute("CREATE TRIGGER refuse_cancel_requests BEFORE INSERT ON "
                         "journal_records WHEN CAST(NEW.payload AS TEXT) LIKE "
                         "'{\"type\":\"cancel_request\"%' "
                         "BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END")
        else:
            conn.execute("DROP TRIGGER refuse_cancel_requests")
        conn.commit()


def _run_args(tmp_path: Path, events: Path) -> list[str]:
    return ["run", "--policy", str(demo_policy_path()), "--journal",
            str(tmp_path / "journal.db"), "--broker-state", str(tmp_path / "broker.db"),
            "--batch-size", "3", str(events)]


def _shown(stdout: str, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if line["type"] == kind]


def test_a_close_that_fails_after_a_batch_still_shows_the_batch(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    assert cli("db", "upgrade", "--journal", f"sqlite:///{journal}").returncode == 0
    _refuse_cancel_requests(journal)

    stopped = cli(*_run_args(tmp_path, events))
    assert stopped.returncode == 3, stopped.stderr
    assert "journal could not be written" in stopped.stderr
    decided = [(d.intent_id, d.decision.value) for d in journaled_outputs(journal, Decision)]
    assert decided == [("rest-1", "ALLOW"), ("day2-buy", "ALLOW")]
    journaled = [d.client_order_id for d in journaled_outputs(journal, Dispatch)]
    assert len(journaled) == 2
    # The whole second batch was durable and sent before the close failed: it is shown.
    assert [(line["intent_id"], line["decision"]) for line in _shown(stopped.stdout,
                                                                     "decision")] == decided
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "dispatch")] == \
        journaled, stopped.stdout
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "fill")] == \
        [journaled[1]], stopped.stdout
    # The refused cancel was never journaled nor sent: it is not shown.
    assert not _shown(stopped.stdout, "cancel"), stopped.stdout

    _refuse_cancel_requests(journal, refuse=False)
    restarted = cli(*_run_args(tmp_path, events))
    assert restarted.returncode == 0, restarted.stderr
    assert not _shown(restarted.stdout, "decision"), restarted.stdout
    assert not _shown(restarted.stdout, "dispatch"), restarted.stdout
    # The restart runs the close that failed: the day's resting order is canceled.
    assert [line["client_order_id"] for line in _shown(restarted.stdout, "cancel")] == \
        [journaled[0]], restarted.stdout
