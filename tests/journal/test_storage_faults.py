"""Storage faults under a SQLite journal, on real files: a journal file deleted while its other
files stay, a damaged snapshot file, snapshot writes that fail, and a database file SQLite
finds malformed. Each is refused or cleaned up in a way that loses no record, and the words
say what to do without advising anything that would."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from tests.runtime.harness import cli
from tests.runtime.scenario import ACCOUNT, demo_policy_path, scenario_events

from ordergate.brokers.sim import SimBroker
from ordergate.journal import JournalError, RecordKind, open_journal, snapfiles
from ordergate.journal.chain import SnapshotFailure
from ordergate.model.intent import OrderIntent, Side
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events, write_events
from ordergate.runtime.health import StartRefused, require_intact_journal
from ordergate.runtime.loop import Runtime, RuntimeStopped
from ordergate.runtime.runfile import run_file

START_ANEW = "start a new one"


def _said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


def _run(journal: Path, events: Path) -> subprocess.CompletedProcess[str]:
    return cli("run", "--policy", str(demo_policy_path()), "--journal", str(journal),
               "--quiet", str(events), columns=1000)


# ---------------------------------------------------------------- a journal file deleted


def test_a_journal_deleted_under_a_running_gateway_is_not_started_anew(tmp_path: Path) -> None:
    """The audit's finding: the file deleted (a cleanup job) while the gateway runs; its
    -wal, which still holds the newest records, and its manifest stay. The restart used to
    create an empty journal there (positions and decided intents forgotten, retried intents
    allowed and sent again) and destroy that -wal."""
    journal = tmp_path / "journal.db"
    broker = SimBroker()
    runtime = Runtime.open(f"sqlite:///{journal}", load_policy(demo_policy_path()), broker)
    try:
        events = scenario_events(20)
        runtime.process(events)
        assert broker.submissions()
        os.unlink(journal)  # under the running gateway
        with pytest.raises(RuntimeStopped) as stopped:
            runtime.process([OrderIntent(
                intent_id="after-deletion", ts=events[-1].ts, account=ACCOUNT,
                strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10))])
        said = " ".join(str(stopped.value).split())
        assert "journal file is gone" in said and "restore it from a backup or replica" in said
        assert START_ANEW not in said
    finally:
        runtime.close()
    wal = Path(f"{journal}-wal")
    assert wal.stat().st_size > 0  # the deleted file's newest records
    kept = wal.read_bytes()

    events_file = tmp_path / "events.jsonl"
    write_events(events_file, [])
    restarted = _run(journal, events_file)
    said = _said(restarted)
    assert restarted.returncode != 0, said
    assert f"{journal}-wal" in said and f"{journal}.manifest.json" in said
    assert "deleted or moved away" in said and "none is created" in said
    assert "Move those files aside" in said and "backup or replica" in said
    assert not journal.exists()  # no new journal
    assert wal.read_bytes() == kept  # nor was the -wal touched

    # Readers say the same instead of "check the path".
    verified = cli("journal", "verify", "--journal", str(journal), columns=1000)
    assert verified.returncode == 1 and "deleted or moved away" in _said(verified)

    # Moved aside, knowingly: a new journal starts here.
    aside = tmp_path / "aside"
    aside.mkdir()
    for leftover in tmp_path.glob("journal.db[.-]*"):
        shutil.move(leftover, aside / leftover.name)
    anew = _run(journal, events_file)
    assert anew.returncode == 0, _said(anew)
    assert journal.exists()
    assert (aside / "journal.db-wal").read_bytes() == kept


@pytest.mark.parametrize("left", ["journal.db-wal", "journal.db-shm", "journal.db.head",
                                  "journal.db.manifest.json", "snapshot"])
def test_any_file_a_journal_leaves_beside_itself_keeps_a_new_one_from_being_created(
        tmp_path: Path, left: str) -> None:
    path = tmp_path / "journal.db"
    written = open_journal(f"sqlite:///{path}")
    for index in range(5):
        written.append(RecordKind.INPUT, b"%d" % index)
    written.write_detached(5, written.last_hash(), b"{}")  # type: ignore[attr-defined]
    written.close()
    for name in ("journal.db", "journal.db-wal", "journal.db-shm", "journal.db.head",
                 "journal.db.manifest.json"):
        (tmp_path / name).unlink(missing_ok=True)
    snapshots = snapfiles.directory_for(str(path))
    if left == "snapshot":
        assert snapfiles.snapshot_files(snapshots)
    else:
        shutil.rmtree(snapshots)
        (tmp_path / left).write_bytes(b"left behind")

    with pytest.raises(JournalError, match="none is created") as refused:
        open_journal(f"sqlite:///{path}")
    named = str(snapshots) if left == "snapshot" else str(tmp_path / left)
    assert named in str(refused.value)
    assert not path.exists()
    # the writer's lock was given back: a second try is refused the same way, not as a writer
    with pytest.raises(JournalError, match="none is created"):
        open_journal(f"sqlite:///{path}")


def test_a_fresh_path_gets_a_new_journal_also_beside_a_lock_and_unfinished_snapshots(
        tmp_path: Path) -> None:
    """What holds no record does not count: the writer's lock file (a start-up that failed
    before creating its journal leaves one) and snapshot writes that never finished."""
    path = tmp_path / "journal.db"
    Path(f"{path}.lock").write_text("123\n")
    snapshots = snapfiles.directory_for(str(path))
    snapshots.mkdir()
    unfinished = snapshots / f"{7:020d}{snapfiles.SUFFIX}.tmp"
    unfinished.write_bytes(b"part of a snapshot")
    journal = open_journal(f"sqlite:///{path}")
    try:
        assert journal.last_seq() == 0
        journal.append(RecordKind.INPUT, b"first")
    finally:
        journal.close()
    assert path.exists()
    assert not unfinished.exists()


# ---------------------------------------------------------------- a damaged snapshot file


def _demo_journal(tmp_path: Path) -> tuple[Path, Path]:
    """A journal of the demo day's first 1500 events with snapshot files every 200."""
    journal = tmp_path / "journal.db"
    events = tmp_path / "events.jsonl"
    write_events(events, demo_events()[:1500])
    runtime = Runtime.open(f"sqlite:///{journal}", load_policy(demo_policy_path()),
                           SimBroker(), snapshot_every=200, source=events)
    try:
        run_file(runtime, events, batch_size=50)
    finally:
        runtime.close()
    return journal, events


def test_a_damaged_snapshot_file_says_to_move_it_aside_not_to_start_a_new_journal(
        tmp_path: Path) -> None:
    journal, events = _demo_journal(tmp_path)
    directory = snapfiles.directory_for(str(journal))
    newest = snapfiles.snapshot_files(directory)[-1]
    size = newest.stat().st_size
    with newest.open("r+b") as handle:  # bytes flipped in its body, not its header
        handle.seek(size // 2)
        original = handle.read(16)
        handle.seek(size // 2)
        handle.write(bytes(byte ^ 0xFF for byte in original))

    opened = open_journal(f"sqlite:///{journal}", create=False, reader=True)
    try:
        report = opened.verify()
    finally:
        opened.close()
    assert isinstance(report, SnapshotFailure)
    assert f"move {newest.name} out of {directory}" in report.message

    started = _run(journal, events)
    said = _said(started)
    assert started.returncode == 3, said
    assert "the snapshot is damaged" in said and f"move {newest.name} out of" in said
    assert "the records are intact" in said
    assert START_ANEW not in said

    aside = tmp_path / "aside"
    aside.mkdir()
    shutil.move(newest, aside / newest.name)  # as told: nothing is lost
    again = _run(journal, events)
    assert again.returncode == 0, _said(again)


def test_a_snapshot_file_cut_short_names_the_file_to_move_aside(tmp_path: Path) -> None:
    journal, _ = _demo_journal(tmp_path)
    newest = snapfiles.snapshot_files(snapfiles.directory_for(str(journal)))[-1]
    os.truncate(newest, 10)  # the header cut short
    opened = open_journal(f"sqlite:///{journal}")
    try:
        with pytest.raises(StartRefused) as refused:
            require_intact_journal(opened)
    finally:
        opened.close()
    said = str(refused.value)
    assert "header is cut short" in said and f"move {newest.name} out of" in said
    assert START_ANEW not in said


def test_a_broken_chain_still_advises_a_replica(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    written = open_journal(f"sqlite:///{path}")
    for index in range(5):
        written.append(RecordKind.INPUT, b"%d" % index)
    written.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE journal_records SET payload = ? WHERE seq = 3", (b"edited",))
    opened = open_journal(f"sqlite:///{path}")
    try:
        with pytest.raises(StartRefused, match="restore it from a replica"):
            require_intact_journal(opened)
    finally:
        opened.close()


# ---------------------------------------------------------------- failed snapshot writes

_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from ordergate.journal import snapfiles
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
try:
    snapfiles.write(Path(sys.argv[1]), 42, "ab" * 32, b"s" * 1_000_000)
except OSError as exc:
    print("failed:", exc.strerror)
else:
    print("written")
"""


def test_a_snapshot_write_that_fails_leaves_no_partial_file(tmp_path: Path) -> None:
    """A file size limit stands in for a full disk: the write fails part way, as it does
    when the snapshot directory fills (each failed snapshot used to leave its part)."""
    assert resource.RLIMIT_FSIZE and signal.SIGXFSZ  # POSIX only, as the journal is
    directory = tmp_path / "journal.db.snapshots"
    directory.mkdir()
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(directory)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.stdout.startswith("failed:"), done.stdout + done.stderr
    assert list(directory.iterdir()) == []


def test_a_snapshot_that_cannot_be_put_in_place_leaves_no_partial_file(tmp_path: Path) -> None:
    directory = tmp_path / "journal.db.snapshots"
    directory.mkdir()
    in_the_way = snapfiles.path_for(directory, 42)
    in_the_way.mkdir()  # a directory where the file goes: the rename fails
    (in_the_way / "something").write_text("x")
    with pytest.raises(OSError):
        snapfiles.write(directory, 42, "ab" * 32, b"state")
    assert sorted(path.name for path in directory.iterdir()) == [in_the_way.name]


def test_a_writer_removes_unfinished_snapshot_files_when_it_opens_and_a_reader_does_not(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    written = open_journal(f"sqlite:///{path}")
    written.append(RecordKind.INPUT, b"one")
    written.close()
    directory = snapfiles.directory_for(str(path))
    directory.mkdir()
    unfinished = [directory / f"{seq:020d}{snapfiles.SUFFIX}.tmp" for seq in (3, 9)]
    for stale in unfinished:
        stale.write_bytes(b"part")
    other = directory / "notes.tmp"  # not a snapshot's: never touched
    other.write_text("mine")

    reader = open_journal(f"sqlite:///{path}", create=False, reader=True)
    reader.close()
    assert all(stale.exists() for stale in unfinished)

    writer = open_journal(f"sqlite:///{path}")
    writer.close()
    assert not any(stale.exists() for stale in unfinished)
    assert other.read_text() == "mine"


# ---------------------------------------------------------------- a malformed database file


def test_a_malformed_journal_file_is_a_safety_stop_for_run_as_for_verify(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    written = open_journal(f"sqlite:///{path}")
    for index in range(3000):
        written.append(RecordKind.INPUT, b"x" * 100 + b"%d" % index)
    written.close()
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    with path.open("r+b") as handle:  # a page of records overwritten: the header is intact
        handle.seek(pages // 2 * page_size)
        handle.write(b"\xff" * page_size)

    verified = cli("journal", "verify", "--journal", str(path), columns=1000)
    assert verified.returncode == 3, _said(verified)

    events = tmp_path / "events.jsonl"
    write_events(events, [])
    started = _run(path, events)
    said = _said(started)
    assert started.returncode == 3, said
    assert "SAFETY STOP" in said and "malformed" in said
    assert "will not start on a journal it cannot prove" in said
