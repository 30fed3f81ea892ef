"""Shard ownership: a PostgreSQL session advisory lock per stream, plus an epoch.

One process owns a stream's journal at a time. `acquire()` takes the stream's advisory lock
on a dedicated connection and increments the stream's epoch; the owner opens the journal
with that epoch (`open_journal(url, epoch=...)`), which fences every older writer. When the
owner dies its connection closes, PostgreSQL releases the lock, and a waiting process takes
it with a higher epoch. The session is closed by the server if the owner stops heartbeating
for `ttl_s` (idle_session_timeout), so a hung owner loses the lease too.

Advisory locks are database-wide; the key hashes the schema name with the stream so that
the same stream name in two schemas are two leases.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import structlog

from ordergate.journal.base import JournalError
from ordergate.journal.migrations import (
    POSTGRES_SCHEMA_VERSION,
    apply_postgres,
    postgres_schema_version,
    require_current,
)
from ordergate.journal.postgres import driver_words
from ordergate.journal.urls import parse_journal_url

log = structlog.get_logger("ordergate.journal.lease")

_KEY_SQL = "SELECT hashtextextended(current_schema() || '/' || %s, 0)"


class ShardLease:
    """`ShardLease(url, stream)`; `stream` defaults to the URL's `?stream=` (or "default")."""

    def __init__(self, url: str, stream: str | None = None, *, ttl_s: float = 30.0,
                 poll_s: float = 0.2) -> None:
        location = parse_journal_url(url)
        if location.backend.value != "postgres":
            raise JournalError(f"{location.redacted}: shard leases need a PostgreSQL journal")
        self._location = location  # may hold a password: for connecting only, never shown
        self._target = location.target
        self._where = location.redacted
        self._stream = stream if stream is not None else location.stream
        self._ttl_ms = max(1000, int(ttl_s * 1000))
        self._poll_s = poll_s
        self._conn: psycopg.Connection[Any] | None = None
        self._key: int | None = None
        self._epoch: int | None = None
        self._log = log.bind(journal=self._where, stream=self._stream)

    def _said(self, exc: psycopg.Error) -> str:
        return driver_words(exc, self._location)

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def held(self) -> bool:
        return self._epoch is not None

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def acquire(self, timeout_s: float) -> int | None:
        """Take the lease, retrying until `timeout_s` passes. Returns the new epoch, or None
        if another process still holds the lease."""
        if self._epoch is not None:
            return self._epoch
        deadline = time.monotonic() + timeout_s
        conn = self._connect()
        try:
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
                if row is not None and row[0]:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    conn.close()
                    self._conn = None
                    return None
                time.sleep(min(self._poll_s, remaining))
            grant = conn.execute(
                "INSERT INTO journal_stream_epochs (stream, epoch) VALUES (%s, 1) "
                "ON CONFLICT (stream) DO UPDATE SET epoch = journal_stream_epochs.epoch + 1 "
                "RETURNING epoch", (self._stream,)).fetchone()
        except psycopg.Error as exc:
            self._drop()
            raise JournalError(f"{self._where}: stream '{self._stream}': lease acquisition "
                               f"failed: {self._said(exc)}") from exc
        if grant is None:
            self._drop()
            raise JournalError(f"{self._where}: stream '{self._stream}': no epoch granted")
        self._epoch = int(grant[0])
        self._log.info("journal.lease_acquired", epoch=self._epoch)
        return self._epoch

    def heartbeat(self) -> None:
        """Prove the lease is still held (and reset the server's idle timer). Raises
        JournalError, and `held` becomes false, if it was lost."""
        if self._conn is None or self._epoch is None or self._key is None:
            raise JournalError(f"{self._where}: stream '{self._stream}': lease not held")
        key = self._key & 0xFFFF_FFFF_FFFF_FFFF
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = %s::bigint::oid "
                "AND objid = %s::bigint::oid AND objsubid = 1",
                (key >> 32, key & 0xFFFF_FFFF)).fetchone()
        except psycopg.Error as exc:
            self._drop()
            raise JournalError(f"{self._where}: stream '{self._stream}': lease lost "
                               f"(connection failed: {self._said(exc)})") from exc
        if row is None or row[0] != 1:
            self._drop()
            raise JournalError(f"{self._where}: stream '{self._stream}': lease lost "
                               "(advisory lock no longer held)")

    def release(self) -> None:
        """Give the lease up (idempotent). The epoch stays granted: a later owner gets a
        higher one."""
        if self._conn is not None and self._key is not None and self._epoch is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            except psycopg.Error as exc:
                # Closing the session below releases the lock anyway.
                self._log.warning("journal.lease_unlock_failed", error=self._said(exc))
            self._log.info("journal.lease_released", epoch=self._epoch)
        self._drop()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None:
            return self._conn
        try:
            conn = psycopg.connect(self._target, autocommit=True, keepalives=1,
                                   keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: cannot connect for the shard lease: "
                               f"{self._said(exc)}") from exc
        try:
            conn.execute(f"SET idle_session_timeout = {self._ttl_ms}")
            version = postgres_schema_version(conn)
            if version is None:
                apply_postgres(conn, self._where)
                version = postgres_schema_version(conn)
            require_current(version, POSTGRES_SCHEMA_VERSION, self._where)
            row = conn.execute(_KEY_SQL, (self._stream,)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(f"{self._where}: cannot prepare the shard lease: "
                               f"{self._said(exc)}") from exc
        except JournalError:
            conn.close()
            raise
        if row is None:
            conn.close()
            raise JournalError(f"{self._where}: cannot compute the lease key")
        self._key = int(row[0])
        self._conn = conn
        return conn

    def _drop(self) -> None:
        self._epoch = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ShardLease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
