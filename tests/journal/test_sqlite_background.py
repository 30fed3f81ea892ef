"""`flush_soon` on the SQLite journal: the COMMIT (its fsync) runs on a committer thread;
the next flush, read or snapshot waits for it, and a commit that fails there poisons the
journal like a failed flush."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from ordergate.journal import Durability, JournalError, RecordKind, open_journal
from ordergate.journal.sqlite import SqliteJournal


def _open(path: Path, durability: Durability = Durability.BATCH) -> SqliteJournal:
    journal = open_journal(f"sqlite:///{path}", durability=durability, create=True)
    assert isinstance(journal, SqliteJournal)
    return journal


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def _committed_elsewhere(path: Path) -> int:
    """Records another connection sees: only what has been committed."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM journal_records").fetchone()[0])


def test_flush_soon_commits_in_the_background_and_flush_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = _open(path)
    try:
        journal.append_many([(RecordKind.INPUT, b"first")] * 10)
        journal.flush_soon()
        _wait_for(lambda: _committed_elsewhere(path) == 10, "the background commit")
        journal.append_many([(RecordKind.INPUT, b"second")] * 5)
        journal.flush_soon()
        journal.flush()  # nothing new buffered: waits for the pending commit all the same
        assert _committed_elsewhere(path) == 15
        journal.append(RecordKind.INPUT, b"third")
        journal.flush_soon()
        # A read on the writer's own connection waits for the commit, then sees everything.
        assert [record.payload for record in journal.read(15)] == [b"second", b"third"]
        report = journal.verify()
        assert report.ok and report.records == 16, report.message
    finally:
        journal.close()


class _FailingCommits:
    """A committer whose COMMIT fails as a full or failing disk makes it fail."""

    def submit(self, fn: object, *args: object) -> Future[object]:
        future: Future[object] = Future()
        future.set_exception(sqlite3.OperationalError("disk I/O error"))
        return future

    def shutdown(self) -> None:
        return None


def test_a_failed_background_commit_stops_the_journal_at_the_next_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.db"
    journal = _open(path)
    journal.append(RecordKind.INPUT, b"durable")
    journal.flush()
    monkeypatch.setattr(journal, "_committer", lambda: _FailingCommits())
    journal.append(RecordKind.INPUT, b"lost")
    journal.flush_soon()
    with pytest.raises(JournalError, match=r"commit of records 2\.\.2 failed: disk I/O error"):
        journal.flush()
    with pytest.raises(JournalError, match="no further record"):
        journal.append(RecordKind.INPUT, b"after")
    journal.close()
    assert _committed_elsewhere(path) == 1
    reopened = _open(path)
    try:
        assert reopened.last_seq() == 1 and reopened.verify().ok
    finally:
        reopened.close()
