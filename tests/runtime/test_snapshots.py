"""Snapshots keep restart fast without making a long run quadratic: their interval grows with
the state they capture, and a restart from one equals the uninterrupted engine."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

from ordergate.brokers.sim import SimBroker
from ordergate.engine.core import Engine
from ordergate.journal import open_journal, snapfiles
from ordergate.journal.chain import KEEP_SNAPSHOTS
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
    runtime.background_snapshots = False  # in line, so each interval follows its snapshot
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


def _open_on_demo_day(tmp_path: Path) -> tuple[Runtime, Path, Path]:
    """A runtime snapshotting every 200 events (in the background, the default), the demo
    day's first 6,000 events and the journal's path."""
    events = tmp_path / "events.jsonl"
    write_events(events, demo_events()[:6000])
    path = tmp_path / "journal.db"
    runtime = Runtime.open(f"sqlite:///{path}", load_policy(DEMO_POLICY), SimBroker(),
                           snapshot_every=200, source=events)
    return runtime, events, path


def test_background_snapshots_are_written_beside_the_journal_and_restart_from_them(
        tmp_path: Path) -> None:
    runtime, events, path = _open_on_demo_day(tmp_path)
    journal = f"sqlite:///{path}"
    assert runtime.background_snapshots
    run_file(runtime, events, batch_size=50)
    status = runtime.engine.status()
    # The state alive at a snapshot is frozen out of the collector's full passes...
    assert gc.get_freeze_count() > 0
    runtime.close()  # waits for a snapshot still being written
    assert gc.get_freeze_count() == 0  # ...and handed back when the runtime closes

    directory = snapfiles.directory_for(str(path))
    files = sorted(directory.glob("*" + snapfiles.SUFFIX))
    assert 1 <= len(files) <= KEEP_SNAPSHOTS, files
    assert not list(directory.glob("*.tmp"))
    with sqlite3.connect(path) as conn:  # none in line: every one came from a child
        assert conn.execute("SELECT count(*) FROM journal_snapshots").fetchone()[0] == 0
    reopened = open_journal(journal, create=False)
    try:
        snapshot = reopened.latest_snapshot()
        assert snapshot is not None
        assert f"{snapshot.seq:020d}" == files[-1].name.removesuffix(snapfiles.SUFFIX)
        assert snapshot.chain_hash == next(iter(reopened.read(snapshot.seq, snapshot.seq))).hash
        # the child wrote exactly what the engine at that record encodes
        assert Engine.restore(snapshot.state).snapshot() == snapshot.state
    finally:
        reopened.close()
    assert rebuild(journal).status() == status


def test_a_damaged_snapshot_file_is_skipped_for_an_older_one(tmp_path: Path) -> None:
    runtime, events, path = _open_on_demo_day(tmp_path)
    journal = f"sqlite:///{path}"
    run_file(runtime, events, batch_size=50)
    status = runtime.engine.status()
    runtime.close()
    files = sorted(snapfiles.directory_for(str(path)).glob("*" + snapfiles.SUFFIX))
    assert len(files) >= 2, files
    newest = files[-1]
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the state
    newest.write_bytes(bytes(data))
    reopened = open_journal(journal, create=False)
    try:
        snapshot = reopened.latest_snapshot()
        assert snapshot is not None
        assert f"{snapshot.seq:020d}" == files[-2].name.removesuffix(snapfiles.SUFFIX)
    finally:
        reopened.close()
    assert rebuild(journal).status() == status
