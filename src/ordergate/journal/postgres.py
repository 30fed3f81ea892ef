"""The production journal: PostgreSQL (psycopg 3), many streams (shards) per database.

Same contract and hash chain as SQLite. A BATCH flush is one COPY and one commit. Every
write carries the writer's epoch and, in the same transaction, takes the stream's epoch row
FOR SHARE: if a lease has since granted a higher epoch, the write is refused ("fenced"), so
a writer that lost its lease can never add to the chain. Granting an epoch updates that row,
which waits for in-flight writes and is seen by every later one.

Periodic snapshots are stored by a forked child over a connection of its own
(`write_detached`), so encoding and inserting a large state does not stall the order path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ordergate.journal.attestation import state_digest
from ordergate.journal.base import Durability, JournalError, RawRow, url_passwords
from ordergate.journal.chain import DEFAULT_BATCH_LIMIT, KEEP_SNAPSHOTS, ChainJournal, genesis
from ordergate.journal.migrations import (
    POSTGRES_SCHEMA_VERSION,
    apply_postgres,
    postgres_schema_version,
    require_current,
)
from ordergate.journal.urls import JournalUrl

_COLUMNS = "seq, kind, run_id, recorded_at_ns, payload, prev_hash, hash"
_SELECT = f"SELECT {_COLUMNS} FROM journal_records WHERE stream = %s"
DETACHED_CONNECT_TIMEOUT_S = 10
DETACHED_STATEMENT_TIMEOUT_MS = 60_000
"""Bounds on a snapshot child's connection and statements: the runtime waits for the child
when it closes, and a snapshot that cannot be stored in time is a failed one (the previous
snapshot stays in use), not a hung shutdown. A `connect_timeout` in the journal URL is the
operator's choice and is kept (`detached_conninfo`)."""


def driver_words(exc: psycopg.Error, location: JournalUrl) -> str:
    """What the driver said about `exc`, unless it repeats a password of the journal URL or
    a piece of one: libpq quotes the part of a URL it cannot read (`invalid percent-encoded
    token: "pa%zz"`), and a password holding '@', '/', '?', '#', ':' or a space is cut there,
    its tail taken for the host, the database or the query. Then our own words say what to
    fix, and nothing of the password. Only those pieces count: a password that merely
    shares letters with a role or host name ("Strategy1" and role "ordergate") leaves the
    driver's message, which says what is wrong, as it is."""
    said = str(exc).strip()
    if any(piece in said for piece in _password_pieces(location)):
        return ("the driver's message quotes part of the password, so it is not "
                "shown: write the URL as postgresql://user:password@host:port/dbname, "
                "with '@', ':', '/', '?', '#', '%' and spaces in the password "
                "percent-encoded (%40 %3A %2F %3F %23 %25 %20)")
    return said


def _password_pieces(location: JournalUrl) -> set[str]:
    """Each password of the URL as written, decoded and re-encoded, and the parts of each a
    misread URL could show: what stands before or after each character that ends a URL part."""
    pieces: set[str] = set()
    for password in url_passwords(location.original) + url_passwords(location.target):
        for written in (password, unquote(password), unquote_plus(password)):
            for form in (written, quote(written, safe="")):
                pieces.add(form)
                for at, char in enumerate(form):
                    if char in _URL_PART_ENDS:
                        pieces.update((form[:at], form[at + 1:]))
    return {piece for piece in pieces if len(piece) >= _SHORTEST_PIECE}


# where libpq ends the userinfo, the host, the database or a parameter
_URL_PART_ENDS = frozenset("@/?#:% &=")
# a shorter piece ("ab") says nothing of the password, and is in many host and role names
_SHORTEST_PIECE = 3


def detached_conninfo(target: str) -> str:
    """The connection string a snapshot child connects with: the journal's own, with
    `DETACHED_CONNECT_TIMEOUT_S` as its connect timeout unless the URL sets one."""
    if "connect_timeout" in conninfo_to_dict(target):
        return target
    return make_conninfo(target, connect_timeout=DETACHED_CONNECT_TIMEOUT_S)


class PostgresJournal(ChainJournal):
    def __init__(self, location: JournalUrl, *, durability: Durability, run_id: str,
                 create: bool, epoch: int | None, reader: bool = False,
                 batch_limit: int = DEFAULT_BATCH_LIMIT) -> None:
        self._where = location.redacted
        self._stream = location.stream
        self._epoch = 0 if epoch is None else epoch
        self._reader = reader  # opened to read: not refused at open for a lease held elsewhere
        self._location = location  # may hold a password: for connecting only, never shown
        self._synchronous_commit = "off" if durability is Durability.NONE else "on"
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(location.target,
                                                                  autocommit=True)
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: cannot connect to the journal database: "
                               f"{driver_words(exc, location)}") from exc
        try:
            last_seq, last_hash = self._prepare(create)
        except psycopg.Error as exc:
            self._conn.close()
            raise JournalError(f"{self._where}: cannot open the journal: "
                               f"{driver_words(exc, location)}") from exc
        except JournalError:
            self._conn.close()
            raise
        super().__init__(url=location.redacted, durability=durability, run_id=run_id,
                         last_seq=last_seq, last_hash=last_hash, batch_limit=batch_limit)
        self._log = self._log.bind(stream=self._stream, epoch=self._epoch)

    def _said(self, exc: psycopg.Error) -> str:
        return driver_words(exc, self._location)

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def epoch(self) -> int:
        return self._epoch

    def _prepare(self, create: bool) -> tuple[int, str]:
        conn = self._conn
        conn.execute(f"SET synchronous_commit TO {self._synchronous_commit}")
        version = postgres_schema_version(conn)
        if version is None and create:
            apply_postgres(conn, self._where)
            version = postgres_schema_version(conn)
        require_current(version, POSTGRES_SCHEMA_VERSION, self._where)
        granted = self._granted_epoch(lock=False)
        if granted is not None and granted > self._epoch and not self._reader:
            raise self._fenced(granted)
        row = conn.execute(_SELECT + " ORDER BY seq DESC LIMIT 1", (self._stream,)).fetchone()
        if row is None:
            if not create and granted is None:
                # Nothing was ever written here and no writer ever leased it: a mistyped
                # stream, schema or database, which must not verify as an empty, intact
                # journal (a missing SQLite file is refused the same way).
                raise JournalError(f"{self._where}: stream '{self._stream}' holds no journal "
                                   "(no records, never leased); check the stream name, the "
                                   "schema and the database")
            return genesis()
        return int(row[0]), str(row[6])

    def _granted_epoch(self, *, lock: bool) -> int | None:
        sql = "SELECT epoch FROM journal_stream_epochs WHERE stream = %s"
        row = self._conn.execute(sql + (" FOR SHARE" if lock else ""), (self._stream,)).fetchone()
        return None if row is None else int(row[0])

    def _fenced(self, granted: int) -> JournalError:
        return JournalError(f"{self._where}: stream '{self._stream}': fenced: epoch {granted} "
                            f"has been granted to another writer; this writer holds epoch "
                            f"{self._epoch} and may not append")

    def _check_epoch(self) -> None:
        """Inside a write transaction: hold the epoch row so no grant can slip in before
        the commit, and refuse if a newer writer exists."""
        granted = self._granted_epoch(lock=True)
        if granted is not None and granted > self._epoch:
            raise self._fenced(granted)

    def check_writable(self) -> None:
        """One read on the writer's own session: the server is not a standby in recovery,
        the session is not read-only, the role may insert journal records, and no newer
        writer holds the stream's lease (a higher epoch fences this one)."""
        with self._lock:
            self._usable()
            try:
                row = self._conn.execute(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
                    "has_table_privilege('journal_records', 'INSERT'), "
                    "(SELECT epoch FROM journal_stream_epochs WHERE stream = %s)",
                    (self._stream,)).fetchone()
            except psycopg.Error as exc:
                raise JournalError(f"{self._where}: the journal database cannot be reached: "
                                   f"{self._said(exc)}") from exc
        if row is None:
            raise JournalError(f"{self._where}: the writability check returned nothing")
        in_recovery, read_only, may_insert, granted = row
        if in_recovery:
            raise JournalError(f"{self._where}: the server is a standby in recovery and "
                               "accepts no writes")
        if read_only == "on":
            raise JournalError(f"{self._where}: the journal session is read-only "
                               "(default_transaction_read_only)")
        if not may_insert:
            raise JournalError(f"{self._where}: this role may not insert into journal_records")
        if granted is not None and int(granted) > self._epoch:
            raise self._fenced(int(granted))

    def _write(self, rows: Sequence[RawRow]) -> None:
        conn = self._conn
        try:
            with conn.transaction():
                self._check_epoch()
                if len(rows) == 1:
                    conn.execute(
                        f"INSERT INTO journal_records (stream, epoch, {_COLUMNS}) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (self._stream, self._epoch, *rows[0]))
                else:
                    with conn.cursor() as cursor, cursor.copy(
                            f"COPY journal_records (stream, epoch, {_COLUMNS}) FROM STDIN"
                    ) as copy:
                        for row in rows:
                            copy.write_row((self._stream, self._epoch, *row))
        except psycopg.errors.UniqueViolation as exc:
            raise JournalError(
                f"{self._where}: stream '{self._stream}': records {rows[0][0]}..{rows[-1][0]} "
                "already exist: another writer is appending to this stream") from exc
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: stream '{self._stream}': journal write of "
                               f"records {rows[0][0]}..{rows[-1][0]} failed: "
                               f"{self._said(exc)}") from exc

    def _page(self, start_seq: int, end_seq: int | None, limit: int) -> list[RawRow]:
        try:
            if end_seq is None:
                cursor = self._conn.execute(_SELECT + " AND seq >= %s ORDER BY seq LIMIT %s",
                                            (self._stream, start_seq, limit))
            else:
                cursor = self._conn.execute(
                    _SELECT + " AND seq >= %s AND seq <= %s ORDER BY seq LIMIT %s",
                    (self._stream, start_seq, end_seq, limit))
            return cursor.fetchall()
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: journal read failed: {self._said(exc)}") from exc

    def _hash_at(self, seq: int) -> str | None:
        row = self._query_one("SELECT hash FROM journal_records WHERE stream = %s AND seq = %s",
                              (self._stream, seq))
        return None if row is None else str(row[0])

    def _put_snapshot(self, seq: int, chain_hash: str, state: bytes) -> None:
        try:
            with self._conn.transaction():
                self._check_epoch()
                _store_snapshot(self._conn, self._stream, seq, chain_hash, state)
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: snapshot write at seq {seq} failed: "
                               f"{self._said(exc)}") from exc

    def write_detached(self, seq: int, chain_hash: str, state: bytes) -> str:
        """Store the snapshot over a new connection: after a fork the journal's connection
        belongs to the parent (libpq shares its socket between both processes, and even
        closing it here would end the parent's session), so the child never touches it.

        The epoch is not checked: the record at `seq` was durable under this writer's lease
        before the fork, and a snapshot is used only while its `chain_hash` matches the record
        at `seq`, so it is valid whoever stores it, even after the lease has moved on."""
        try:
            with psycopg.connect(detached_conninfo(self._location.target),
                                 autocommit=True) as conn:
                conn.execute(f"SET synchronous_commit TO {self._synchronous_commit}")
                conn.execute(f"SET statement_timeout TO {DETACHED_STATEMENT_TIMEOUT_MS}")
                with conn.transaction():
                    _store_snapshot(conn, self._stream, seq, chain_hash, state)
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: snapshot write at seq {seq} from a child "
                               f"process failed: {self._said(exc)}") from exc
        return state_digest(state)

    def adopt_detached(self, seq: int, digest: str) -> int | None:
        """The row is already in the table `latest_snapshot` reads (retention ran in the
        child's transaction); this confirms it is there, journals its attestation and says
        how large it is."""
        with self._lock:
            self._usable()
            row = self._query_one(
                "SELECT octet_length(state) FROM journal_snapshots WHERE stream = %s AND seq = %s",
                (self._stream, seq))
            if row is None:
                return None
            self._attest_locked(seq, digest)
        return int(row[0])

    def _snapshot_index(self) -> list[tuple[int, str, str | None]]:
        try:
            rows = self._conn.execute(
                "SELECT s.seq, s.chain_hash, r.hash FROM journal_snapshots s "
                "LEFT JOIN journal_records r ON r.stream = s.stream AND r.seq = s.seq "
                "WHERE s.stream = %s ORDER BY s.seq DESC", (self._stream,)).fetchall()
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: snapshot read failed: {self._said(exc)}") from exc
        return [(int(seq), str(chain), None if stored is None else str(stored))
                for seq, chain, stored in rows]

    def _set_aside(self, seq: int) -> str:
        # a row, not a file: no command removes one, so the statement is given
        stream = self._stream.replace("'", "''")
        return (f"restore it, or delete its row: DELETE FROM journal_snapshots WHERE stream = "
                f"'{stream}' AND seq = {seq} (in the journal's database and schema)")

    def _snapshot_state(self, seq: int) -> tuple[bytes, str]:
        row = self._query_one(
            "SELECT state FROM journal_snapshots WHERE stream = %s AND seq = %s",
            (self._stream, seq))
        if row is None:
            raise JournalError(f"{self._where}: snapshot {seq} vanished while being read")
        state = bytes(row[0])
        return state, state_digest(state)

    def _query_one(self, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        except psycopg.Error as exc:
            raise JournalError(f"{self._where}: journal read failed: {self._said(exc)}") from exc
        return row

    def _close_storage(self) -> None:
        self._conn.close()


def _store_snapshot(conn: psycopg.Connection[Any], stream: str, seq: int, chain_hash: str,
                    state: bytes) -> None:
    """Inside the caller's transaction: insert the snapshot and keep only the newest
    `KEEP_SNAPSHOTS` of the stream, whether the writer or a snapshot child stores it."""
    conn.execute(
        "INSERT INTO journal_snapshots (stream, seq, chain_hash, state) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (stream, seq) DO UPDATE SET "
        "chain_hash = excluded.chain_hash, state = excluded.state",
        (stream, seq, chain_hash, state))
    conn.execute(
        "DELETE FROM journal_snapshots WHERE stream = %s AND seq NOT IN "
        "(SELECT seq FROM journal_snapshots WHERE stream = %s "
        "ORDER BY seq DESC LIMIT %s)", (stream, stream, KEEP_SNAPSHOTS))
