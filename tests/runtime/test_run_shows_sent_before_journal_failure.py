"""`ordergate run` whose journal fails right after a batch's orders went out (the batch durable,
the broker's answers refused by the disk) stops with a safety stop (exit 3) and still shows
that batch's decisions and orders on stdout: they are in the journal and at the broker, and
the restart, which continues from the journal, does not show them again. So every dispatch
the journal holds is shown once, across the two runs. The same when the failure comes in the
restart that finishes a batch a crash cut short.

The disk's refusal is a real SQLite one: a trigger on the journal's table aborts the insert of
a broker's ack, the first record written after the orders are sent."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, dispatched_ids, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.runtime import faults

TS = "2026-03-02T15:00:0{}Z"
EVENTS = [
    {"type": "account", "ts": TS.format(0), "account": "ACC-1", "cash": "100000"},
    {"type": "market", "symbol": "AAPL", "ts": TS.format(1), "bid": "99.95", "ask": "100.05",
     "last": "100.00"},
    *({"type": "intent", "intent_id": f"buy-{n}", "ts": TS.format(1 + n), "account": "ACC-1",
       "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": str(5 * n)}
      for n in (1, 2)),
]


def _refuse_acks(journal: Path, refuse: bool = True) -> None:
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        if refuse:
            conn.execute("CREATE TRIGGER refuse_acks BEFORE INSERT ON journal_records "
                         "WHEN CAST(NEW.payload AS TEXT) LIKE '{\"type\":\"ack\"%' "
                         "BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END")
        else:
            conn.execute("DROP TRIGGER refuse_acks")
        conn.commit()


def _run_args(tmp_path: Path, events: Path, *extra: str) -> list[str]:
    return ["run", "--policy", str(demo_policy_path()), "--journal",
            str(tmp_path / "journal.db"), "--broker-state", str(tmp_path / "broker.db"),
            *extra, str(events)]


def _shown(stdout: str, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if line["type"] == kind]


def test_a_run_stopped_by_a_journal_failure_shows_the_orders_it_sent(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    assert cli("db", "upgrade", "--journal", f"sqlite:///{journal}").returncode == 0
    _refuse_acks(journal)

    stopped = cli(*_run_args(tmp_path, events))
    assert stopped.returncode == 3, stopped.stderr
    assert "journal could not be written" in stopped.stderr
    journaled = dispatched_ids(journal)
    assert len(journaled) == 2, stopped.stderr  # both orders durable, and sent
    shown = [line["client_order_id"] for line in _shown(stopped.stdout, "dispatch")]
    assert shown == journaled, stopped.stdout
    assert [(line["intent_id"], line["decision"]) for line in _shown(stopped.stdout,
                                                                     "decision")] == [
        ("buy-1", "ALLOW"), ("buy-2", "ALLOW")], stopped.stdout
    # Nothing the journal does not hold: the refused acks are not shown as acknowledged.
    assert not _shown(stopped.stdout, "ack") and not _shown(stopped.stdout, "fill")

    _refuse_acks(journal, refuse=False)
    restarted = cli(*_run_args(tmp_path, events))
    assert restarted.returncode == 0, restarted.stderr
    assert not _shown(restarted.stdout, "dispatch"), restarted.stdout
    assert dispatched_ids(journal) == journaled


def test_a_restart_that_finishes_a_cut_batch_and_then_stops_shows_its_orders(
        tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    # Killed half way through the one batch: the account and the quote are journaled (every
    # record commits on its own), the intents are not.
    killed = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main",
         *_run_args(tmp_path, events, "--durability", "always", "--batch-size", "4")],
        env={**os.environ, faults.ENV_VAR: "mid_batch:1"}, capture_output=True, text=True,
        check=False)
    assert killed.returncode == -9, killed.stderr
    assert dispatched_ids(journal) == []
    _refuse_acks(journal)

    stopped = cli(*_run_args(tmp_path, events, "--durability", "always", "--batch-size", "4"))
    assert stopped.returncode == 3, stopped.stderr
    journaled = dispatched_ids(journal)
    assert len(journaled) == 2, stopped.stderr
    shown = [line["client_order_id"] for line in _shown(stopped.stdout, "dispatch")]
    assert shown == journaled, stopped.stdout
    assert [line["intent_id"] for line in _shown(stopped.stdout, "decision")] == [
        "buy-1", "buy-2"], stopped.stdout
