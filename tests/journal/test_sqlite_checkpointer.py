"""The SQLite journal copies its WAL back into the database file on a background thread: the
records reach the main file without the writer checkpointing, nothing is lost or reordered,
and a journal that never wrote much starts no thread at all."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.journal import sqlite as sqlite_journal
from ordergate.journal.sqlite import SqliteJournal


def _open(path: Path, durability: Durability = Durability.BATCH) -> SqliteJournal:
    journal = open_journal(f"sqlite:///{path}", durability=durability, create=True)
    assert isinstance(journal, SqliteJournal)
    return journal


def _rows_in_main_file(path: Path, scratch: Path) -> int:
    """Records readable from the database file alone (its WAL left behind)."""
    copy = scratch / "main-only.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM journal_records").fetchone()[0])


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_the_wal_reaches_the_database_file_in_the_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_journal, "BACKGROUND_CHECKPOINT_BYTES", 64 * 1024)
    path = tmp_path / "journal.db"
    journal = _open(path)
    payload = b"x" * 1000
    for batch in range(20):
        journal.append_many([(RecordKind.INPUT, payload + str(batch).encode())] * 50)
        journal.flush()
    _wait_for(lambda: journal.checkpoints >= 1, "a background checkpoint")
    # Read while the journal is open (closing the last connection checkpoints everything).
    # The writer's own threshold (128 MiB) was never reached: the rows in the main file were
    # copied there by the background checkpointer.
    assert _rows_in_main_file(path, tmp_path) >= 64
    journal.close()
    reopened = _open(path)
    try:
        report = reopened.verify()
        assert report.ok and report.records == 1000, report.message
        assert [record.payload[-2:] for record in reopened.read(951)] == [b"19"] * 50
    finally:
        reopened.close()


def test_a_small_journal_starts_no_checkpoint_thread(tmp_path: Path) -> None:
    before = {thread.name for thread in threading.enumerate()}
    journal = _open(tmp_path / "journal.db")
    journal.append(RecordKind.INPUT, b"{}")
    journal.flush()
    assert journal.checkpoints == 0
    assert "journal-checkpoint" not in {t.name for t in threading.enumerate()} - before
    journal.close()
