"""Shard ownership: a PostgreSQL session advisory lock per stream, plus an epoch.

One process owns a stream's journal at a time. `acquire()` takes the stream's advisory lock
on a dedicated connection and increments the stream's epoch; the owner opens the journal
with that epoch (`open_journal(url, epoch=...)`), which fences every older writer. When the
owner dies its connection closes, PostgreSQL releases the lock, and a waiting process takes
it with a higher epoch. The session is closed by the server if the owner stops heartbeating
for `ttl_s` (idle_session_timeout), so a hung owner loses the lease too.

Advisory locks are database-wide; the key hashes the schema name with the stream so that
the same stream name in two schemas are two leases.

Errors: one that asking again may cure (the connection dropped or was refused, the server is
starting, shutting down, out of connections, or a statement was cancelled) raises
`LeaseUnavailable`, so a standby can keep waiting (`runtime.shard.wait_for_lease`); one that
cannot heal by waiting (authentication, a missing database or role, missing privileges, a
misread URL, a journal schema of another version) raises a plain `JournalError` saying so.
"""

from __future__ import annotations

import math
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
# A lease's time to live (seconds): the server's idle_session_timeout, at least a second
# (shorter is taken as a second) and at most a day (the setting is a 32-bit number of
# milliseconds; an owner silent for longer than a day is no owner).
MIN_LEASE_TTL_S = 1.0
MAX_LEASE_TTL_S = 86_400.0


class LeaseUnavailable(JournalError):
    """The lease could not be asked for now, for a reason asking again may cure: the
    database dropped or refused the connection, is starting or shutting down, has no
    connection to spare, or cancelled the statement."""


# SQLSTATEs asking again may cure: connection exceptions (08), insufficient resources (53),
# the server shutting down or starting (57P01-57P03), the session ended for idling (57P05), a
# cancelled statement (57014), lock and serialization conflicts (55P03, 40).
_HEALING_CLASSES = ("08", "53", "40")
_HEALING_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "57014", "55P03"})
# A connection refused before any statement carries no SQLSTATE, only the server's or libpq's
# words: these say that waiting will not change the answer.
_LASTING_WORDS = ("authentication failed", "no pg_hba.conf entry", "pg_hba.conf rejects",
                  "does not exist", "is not permitted to log in", "permission denied",
                  "no password supplied", "server does not support ssl", "certificate",
                  "invalid value for parameter", "unrecognized configuration parameter")
_WONT_HEAL = ("asking again will not cure this: check the journal URL's user, password and "
              "database, and what that user may do")


def heals(exc: psycopg.Error, said: str) -> bool:
    """Whether asking again may cure `exc` (`said`: the words shown for it, which hide a
    misread password: then the URL is wrong and waiting cures nothing)."""
    state = exc.sqlstate
    if state:
        return state[:2] in _HEALING_CLASSES or state in _HEALING_STATES
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False  # the driver could not read the connection string
    text = str(exc).strip()
    if said != text:
        return False
    lowered = text.lower()
    return not any(words in lowered for words in _LASTING_WORDS)


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
        if not (math.isfinite(ttl_s) and 0 < ttl_s <= MAX_LEASE_TTL_S):
            raise ValueError(f"lease ttl_s: expected a number of seconds above 0 and at most "
                             f"{MAX_LEASE_TTL_S:.0f} (one day), got {ttl_s!r}")
        self._ttl_ms = max(int(MIN_LEASE_TTL_S * 1000), int(ttl_s * 1000))
        self._poll_s = poll_s
        self._conn: psycopg.Connection[Any] | None = None
        self._key: int | None = None
        self._epoch: int | None = None
        self._log = log.bind(journal=self._where, stream=self._stream)

    def _said(self, exc: psycopg.Error) -> str:
        return driver_words(exc, self._location)

    def _error(self, doing: str, exc: psycopg.Error) -> JournalError:
        """`LeaseUnavailable` when asking again may cure `exc`, else a `JournalError` that
        says it will not."""
        said = self._said(exc)
        where = f"{self._where}: stream '{self._stream}': {doing}: {said}"
        if heals(exc, said):
            return LeaseUnavailable(where)
        return JournalError(f"{where} ({_WONT_HEAL})")

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
            raise self._error("lease acquisition failed", exc) from exc
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
            raise self._error("cannot connect for the shard lease", exc) from exc
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
            raise self._error("cannot prepare the shard lease", exc) from exc
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
