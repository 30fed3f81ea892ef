"""Snapshots keep restart fast without making a long run quadratic: their interval grows with
the state they capture, and a restart from one equals the uninterrupted engine."""

from __future__ import annotations

from pathlib import Path

from ordergate.brokers.sim import SimBroker
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events, write_events
from ordergate.runtime.loop import SNAPSHOT_BYTES_PER_EVENT, Runtime, rebuild
from ordergate.runtime.runfile import run_file

DEMO_POLICY = (Path(__file__).resolve().parents[2] / "src" / "ordergate" / "data"
               / "demo_policy.yaml")


def test_snapshot_interval_grows_with_the_state_and_restart_matches(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, demo_events()[:6000])
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    runtime = Runtime.open(journal, load_policy(DEMO_POLICY), SimBroker(), snapshot_every=50,
                           source=events)
    intervals = []
    run_file(runtime, events, batch_size=50,
             on_report=lambda _report: intervals.append(runtime.snapshot_interval))
    status = runtime.engine.status()
    snapshot = runtime.journal.latest_snapshot()
    runtime.close()

    assert snapshot is not None
    # the interval follows the last snapshot's size once that passes the configured floor
    assert intervals[0] == 50
    assert intervals[-1] == max(50, len(snapshot.state) // SNAPSHOT_BYTES_PER_EVENT)
    assert intervals[-1] > 50
    assert intervals == sorted(intervals)  # the state only grew in this run
    # a rebuild from the newest snapshot plus the tail equals the engine that ran
    assert rebuild(journal).status() == status
