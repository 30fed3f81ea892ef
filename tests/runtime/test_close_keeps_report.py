"""A journal failure inside the session close, after its cancels were made durable and sent
(its reconciliation or its summary cannot be written), stops the runtime with those cancels:
they are in the journal and at the broker, so `ordergate run` shows them before its safety stop
(exit 3), and the restart, which finishes the interrupted close from the journal (its summary,
nothing canceled again), does not show them again. The same for what a start-up reconciliation
journals while canceling orders unknown to the gateway before its own note fails.

The disk's refusal is a real SQLite one: a trigger on the journal's table aborts the insert of
the close's summary record (the last thing the close writes) or of its reconciliation note.
Batch 1 leaves a DAY limit order working; batch 2 rolls the day (00:00 UTC under the demo
policy) and places `day2-buy`; the close that follows cancels `rest-1` and then fails."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.harness import cli, journaled_outputs, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.base import BrokerUnavailable
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy
from ordergate.model.events import Alert, CancelOrder, Dispatch, ModeChanged
from ordergate.model.intent import OrderType, Side
from ordergate.model.modes import Mode
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings
from ordergate.runtime.loop import RuntimeStopped
from ordergate.runtime.reconcile import ReconcileSettings

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


# What the disk refuses (a LIKE pattern on the record's payload): the close's summary, or the
# note of the close's reconciliation (the one at the close's event time: the start-up pass
# must go through)
CLOSE_SUMMARY = '{"type":"og.session_close"%'
CLOSE_RECONCILIATION = '{"type":"og.reconcile"%"2026-03-03T00:00:03Z"%'
ANY_RECONCILIATION = '{"type":"og.reconcile"%'


def _refuse(journal: Path, pattern: str | None) -> None:
    """Make the disk refuse to journal a record whose payload matches `pattern` (None: stop)."""
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        if pattern is not None:
            conn.execute("CREATE TRIGGER refuse_writes BEFORE INSERT ON journal_records "
                         "WHEN CAST(NEW.payload AS TEXT) LIKE ? "
                         "BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END"
                         .replace("?", "'" + pattern.replace("'", "''") + "'"))
        else:
            conn.execute("DROP TRIGGER refuse_writes")
        conn.commit()


def _run_args(tmp_path: Path, events: Path) -> list[str]:
    return ["run", "--policy", str(demo_policy_path()), "--journal",
            str(tmp_path / "journal.db"), "--broker-state", str(tmp_path / "broker.db"),
            "--batch-size", "3", str(events)]


def _shown(stdout: str, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if line["type"] == kind]


@pytest.mark.parametrize("refused", [CLOSE_SUMMARY, CLOSE_RECONCILIATION],
                         ids=["summary", "reconciliation"])
def test_a_close_that_fails_after_its_cancels_still_shows_them(tmp_path: Path,
                                                                refused: str) -> None:
    journal = tmp_path / "journal.db"
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    assert cli("db", "upgrade", "--journal", f"sqlite:///{journal}").returncode == 0
    _refuse(journal, refused)

    stopped = cli(*_run_args(tmp_path, events))
    assert stopped.returncode == 3, stopped.stderr
    assert "journal could not be written" in stopped.stderr
    dispatched = [d.client_order_id for d in journaled_outputs(journal, Dispatch)]
    assert len(dispatched) == 2
    # The close's cancel of the day's resting order is journaled (and was sent): it is shown,
    # after the batch that rolled the day.
    canceled = [c.client_order_id for c in journaled_outputs(journal, CancelOrder)]
    assert canceled == [dispatched[0]]
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "cancel")] == \
        canceled, stopped.stdout
    # ...and so is the broker's answer to it, journaled before the failure
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "canceled")] == \
        canceled, stopped.stdout
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "dispatch")] == \
        dispatched, stopped.stdout
    assert [line["client_order_id"] for line in _shown(stopped.stdout, "fill")] == \
        [dispatched[1]], stopped.stdout

    _refuse(journal, None)
    restarted = cli(*_run_args(tmp_path, events))
    assert restarted.returncode == 0, restarted.stderr
    # The restart finishes the close (its summary) without canceling again nor showing the
    # cancel the stopped run showed.
    assert not _shown(restarted.stdout, "cancel"), restarted.stdout
    assert not _shown(restarted.stdout, "canceled"), restarted.stdout
    assert not _shown(restarted.stdout, "dispatch"), restarted.stdout
    assert [c.client_order_id for c in journaled_outputs(journal, CancelOrder)] == canceled
    replayed = cli("replay", "verify", "--journal", str(journal))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr



class _CancelsUnavailable(SimBroker):
    """A venue whose cancel endpoint is down: the gateway's cancel of an orphan reports the
    submit dependency unhealthy (the engine alerts and moves the mode)."""

    def cancel(self, client_order_id: str) -> None:
        raise BrokerUnavailable("cancel endpoint down (503)")


def test_what_a_start_up_pass_journaled_goes_with_the_stop_when_its_note_fails(
        tmp_path: Path) -> None:
    """A start-up reconciliation told to cancel orders unknown to the gateway tries one (a
    durable note first); the venue's failure is journaled (the engine's alert and mode change
    with it) before the pass's own note, which the disk refuses: the stop carries what the
    journal holds, for the caller to show."""
    broker = _CancelsUnavailable(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.submit(Dispatch(ts=at(1), client_order_id="placed-by-hand", intent_id="by-hand",
                           account=ACCOUNT, strategy="manual", symbol="MSFT", side=Side.BUY,
                           qty=Decimal(5), order_type=OrderType.LIMIT,
                           limit_price=Decimal(300)))
    journal = tmp_path / "journal.db"
    settings = GuardSettings(reconcile=ReconcileSettings(cancel_unknown_on_start=True))
    guard = GuardedRuntime.open(f"sqlite:///{journal}", chaos_policy(), broker, EventClock(),
                                settings)
    try:
        _refuse(journal, ANY_RECONCILIATION)
        with pytest.raises(RuntimeStopped) as stopped:
            guard.start(at(2))
    finally:
        guard.close()
    # the venue's failure: durable before the pass's note failed, and in the stop
    failure = [(output.code, output.severity.value)
               for output in journaled_outputs(journal, Alert) if output.code == "SYS-011"]
    assert failure == [("SYS-011", "critical")]
    kept = stopped.value.journaled
    assert [(event.code, event.severity.value) for event in kept
            if isinstance(event, Alert) and event.code == "SYS-011"] == failure, kept
    moved = [(output.previous, output.mode) for output in journaled_outputs(journal, ModeChanged)]
    assert moved == [(Mode.ACTIVE, Mode.REDUCE_ONLY)]
    assert [(event.previous, event.mode) for event in kept
            if isinstance(event, ModeChanged)] == moved, kept
