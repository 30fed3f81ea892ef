"""Test helpers for the journal: `StoreAccess`, direct SQL on the stored tables behind the
journal's back (how tampering and schema drift are simulated), and `Backend`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ordergate.journal import record_hash
from ordergate.journal.urls import parse_journal_url

FIELDS = ("seq", "kind", "run_id", "recorded_at_ns", "payload", "prev_hash", "hash")


class StoreAccess:
    """Reads and edits stored journal rows with plain SQL (no ordergate code involved)."""

    def __init__(self, url: str) -> None:
        location = parse_journal_url(url)
        self.is_postgres = location.backend.value == "postgres"
        self.stream = location.stream
        if self.is_postgres:
            import psycopg

            self._conn: Any = psycopg.connect(location.target, autocommit=True)
            self._mark = "%s"
            self._where = "stream = %s AND "
            self._scope: tuple[Any, ...] = (self.stream,)
        else:
            self._conn = sqlite3.connect(location.target, isolation_level=None)
            self._mark = "?"
            self._where = ""
            self._scope = ()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._mark)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(self._sql(sql), params)
        return list(cursor.fetchall()) if cursor.description else []

    def get(self, seq: int, field: str) -> Any:
        rows = self.execute(f"SELECT {field} FROM journal_records WHERE {self._where}seq = ?",
                            (*self._scope, seq))
        value = rows[0][0]
        return bytes(value) if field == "payload" else value

    def set(self, seq: int, field: str, value: Any) -> None:
        self.execute(f"UPDATE journal_records SET {field} = ? WHERE {self._where}seq = ?",
                     (value, *self._scope, seq))

    def row(self, seq: int) -> dict[str, Any]:
        return {field: self.get(seq, field) for field in FIELDS}

    def delete(self, seq: int) -> None:
        self.execute(f"DELETE FROM journal_records WHERE {self._where}seq = ?",
                     (*self._scope, seq))

    def swap(self, first: int, second: int) -> None:
        """Exchange the stored contents of two records: the log is physically reordered."""
        a, b = self.row(first), self.row(second)
        for field in FIELDS[1:]:
            self.set(first, field, b[field])
            self.set(second, field, a[field])

    def forge_tail(self, first: int, last: int) -> None:
        """Rewrite the payloads of records `first`..`last` and recompute their hashes, as
        someone who knows the hash layout would: the chain on its own still verifies."""
        prev = self.get(first - 1, "hash")
        for seq in range(first, last + 1):
            row = self.row(seq)
            forged = b'{"type":"clock","n":"forged"}'
            new_hash = record_hash(prev, seq, row["kind"], row["run_id"],
                                   row["recorded_at_ns"], forged)
            self.set(seq, "payload", forged)
            self.set(seq, "prev_hash", prev)
            self.set(seq, "hash", new_hash)
            prev = new_hash

    def set_schema_version(self, version: int) -> None:
        self.execute("UPDATE journal_schema_version SET version = ?", (version,))

    def snapshot_seqs(self) -> list[int]:
        where = "WHERE stream = ? " if self.is_postgres else ""
        rows = self.execute(f"SELECT seq FROM journal_snapshots {where}ORDER BY seq",
                            self._scope)
        return [int(row[0]) for row in rows]

    def set_snapshot_hash(self, seq: int, chain_hash: str) -> None:
        self.execute(f"UPDATE journal_snapshots SET chain_hash = ? WHERE {self._where}seq = ?",
                     (chain_hash, *self._scope, seq))

    def close(self) -> None:
        self._conn.close()


@dataclass
class Backend:
    name: str
    url: str

    def store(self) -> StoreAccess:
        return StoreAccess(self.url)
