"""The embedded journal runs SQLite in WAL mode: a journal it creates is a WAL file (as
SQLite itself reports it, to another connection), and a journal file someone switched back
to a rollback journal is switched to WAL again when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ordergate.journal import Durability, RecordKind, open_journal


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
