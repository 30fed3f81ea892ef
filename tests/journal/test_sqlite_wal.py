"""The embedded journal runs SQLite in WAL mode: a journal it creates is a WAL file (as
SQLite itself reports it, to another connection), and a journal file someone switched back
to a rollback journal is switched to WAL again when it is opened."""

from __future__ import annotations

import sqlite3
import threading
import types
from pathlib import Path

import pytest

from ordergate.journal import Durability, Journal, RecordKind, open_journal
from ordergate.journal import sqlite as sqlite_backend
from ordergate.journal.sqlite import SqliteJournal


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        conn.close()


def _header_versions(path: Path) -> tuple[int, int]:
    """The file format write and read versions (bytes 18 and 19 of an SQLite database
    header): 2 means WAL, 1 a rollback journal."""
    header = path.read_bytes()[:100]
    assert header.startswith(b"SQLite format 3\x00")
    return header[18], header[19]


def _write_one(path: Path, *, create: bool = True) -> None:
    journal = open_journal(f"sqlite:///{path}", durability=Durability.BATCH, create=create)
    try:
        journal.append(RecordKind.META, b'{"type":"test.note"}')
        journal.flush()
        # While the journal is open, committed records sit in the write-ahead log.
        assert path.with_name(path.name + "-wal").exists()
    finally:
        journal.close()


def test_a_journal_it_creates_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    _write_one(path)
    assert _journal_mode(path) == "wal"
    assert _header_versions(path) == (2, 2)


def test_a_journal_switched_to_a_rollback_journal_is_back_in_wal_mode_once_opened(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    _write_one(path)
    conn = sqlite3.connect(path)
    try:
        assert str(conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]).lower() == "delete"
    finally:
        conn.close()
    assert _journal_mode(path) == "delete" and _header_versions(path) == (1, 1)

    _write_one(path, create=False)
    assert _journal_mode(path) == "wal"
    assert _header_versions(path) == (2, 2)
    reader = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False)
    try:
        assert [record.seq for record in reader.read()] == [1, 2]
        assert reader.verify().ok
    finally:
        reader.close()


def _wal_frames(path: Path) -> int:
    """Frames in the WAL, as another connection's checkpoint reports them."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def _append_batch(journal: Journal) -> None:
    journal.append_many([(RecordKind.OUTPUT, b"x" * 1000)] * 100)
    journal.flush()


def test_a_full_wal_is_copied_by_a_checkpoint_that_commits_do_not_wait_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the WAL holds about its size, the commit that filled it starts a checkpoint in a
    thread and returns; commits go on while it runs (here it is held until released). The
    first commit after it ended copies what was committed meanwhile, so the WAL is copied in
    full and starts over, and the chain is intact."""
    monkeypatch.setattr(sqlite_backend, "_CHECKPOINT_BYTES", 256 * 1024)
    started, release = threading.Event(), threading.Event()
    checkpoint = SqliteJournal._checkpoint

    def held(self: SqliteJournal) -> None:
        started.set()
        release.wait(60)
        checkpoint(self)

    monkeypatch.setattr(SqliteJournal, "_checkpoint", held)
    path = tmp_path / "journal.db"
    journal = open_journal(f"sqlite:///{path}", durability=Durability.BATCH)
    assert isinstance(journal, SqliteJournal)
    try:
        for _ in range(3):  # 300 records of 1 kB: past the size
            _append_batch(journal)
        assert started.is_set()
        running = journal._checkpointer
        assert running is not None
        for _ in range(5):
            _append_batch(journal)
        assert running.is_alive()  # those commits did not wait for it
        release.set()
        running.join()
        _append_batch(journal)  # copies the rest: the whole WAL is in the database now
        _append_batch(journal)  # so this commit starts the WAL over
        assert _wal_frames(path) < 100  # one batch's pages, not ten batches'
        assert journal.verify().ok
        assert journal.last_seq() == 1000
    finally:
        release.set()
        journal.close()


def test_the_wal_stays_near_its_size_over_a_long_run(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_backend, "_CHECKPOINT_BYTES", 256 * 1024)
    path = tmp_path / "journal.db"
    wal = path.with_name(path.name + "-wal")
    journal = open_journal(f"sqlite:///{path}", durability=Durability.BATCH)
    assert isinstance(journal, SqliteJournal)
    try:
        largest = 0
        for _ in range(60):  # 6 MB of records, 24 times the size
            _append_batch(journal)
            largest = max(largest, wal.stat().st_size)
            running = journal._checkpointer
            if running is not None:
                # how far the WAL grows while a checkpoint runs depends on the machine's
                # load; what is checked here is that it starts over once one has ended
                running.join()
        assert largest < 4 * 256 * 1024
        assert journal.verify().ok
    finally:
        journal.close()


class _NoThread(threading.Thread):
    """A thread that cannot be started, as when the process has reached its thread limit."""

    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_commits_go_on_when_no_checkpoint_thread_can_be_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_backend, "_CHECKPOINT_BYTES", 256 * 1024)
    monkeypatch.setattr(sqlite_backend, "threading",
                        types.SimpleNamespace(Thread=_NoThread))
    path = tmp_path / "journal.db"
    journal = open_journal(f"sqlite:///{path}", durability=Durability.BATCH)
    try:
        for _ in range(10):  # 1 MB of records: a checkpoint is due several times over
            _append_batch(journal)
        assert journal.last_seq() == 1000
        assert journal.verify().ok
    finally:
        journal.close()
    reader = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        assert reader.last_seq() == 1000 and reader.verify().ok
    finally:
        reader.close()


def test_a_reader_keeps_full_fsyncs_whatever_durability_it_asks_for(tmp_path: Path) -> None:
    """The last connection to close copies the WAL into the database file; a reader may be
    it, and without fsyncs a power cut could lose what the writer had made durable."""
    path = tmp_path / "journal.db"
    _write_one(path)
    reader = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False,
                          reader=True)
    assert isinstance(reader, SqliteJournal)
    try:
        assert reader._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        reader.close()
