"""Versioned journal schemas: an ordered list of SQL steps per backend.

`upgrade(url)` applies the missing steps in one transaction (`ordergate db upgrade`). A
journal opened with an older or newer schema is refused with a message saying what to do;
opening never migrates an existing schema behind the operator's back (a brand-new, empty
database is initialised on open when `create=True`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ordergate.journal.base import JournalError
from ordergate.journal.urls import Backend, parse_journal_url


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records, snapshots, schema version", (
        """CREATE TABLE IF NOT EXISTS journal_schema_version (
               singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
               version INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS journal_records (
               seq INTEGER PRIMARY KEY,
               kind TEXT NOT NULL,
               run_id TEXT NOT NULL,
               recorded_at_ns INTEGER NOT NULL,
               payload BLOB NOT NULL,
               prev_hash TEXT NOT NULL,
               hash TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS journal_snapshots (
               seq INTEGER PRIMARY KEY,
               chain_hash TEXT NOT NULL,
               state BLOB NOT NULL)""",
    )),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records, snapshots and stream epochs keyed by stream", (
        """CREATE TABLE IF NOT EXISTS journal_schema_version (
               singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
               version INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS journal_records (
               stream TEXT NOT NULL,
               seq BIGINT NOT NULL,
               kind TEXT NOT NULL,
               run_id TEXT NOT NULL,
               recorded_at_ns BIGINT NOT NULL,
               payload BYTEA NOT NULL,
               prev_hash TEXT NOT NULL,
               hash TEXT NOT NULL,
               epoch BIGINT NOT NULL DEFAULT 0,
               PRIMARY KEY (stream, seq))""",
        """CREATE TABLE IF NOT EXISTS journal_snapshots (
               stream TEXT NOT NULL,
               seq BIGINT NOT NULL,
               chain_hash TEXT NOT NULL,
               state BYTEA NOT NULL,
               PRIMARY KEY (stream, seq))""",
        """CREATE TABLE IF NOT EXISTS journal_stream_epochs (
               stream TEXT PRIMARY KEY,
               epoch BIGINT NOT NULL)""",
    )),
)

SQLITE_SCHEMA_VERSION = SQLITE_MIGRATIONS[-1].version
POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS[-1].version

# Serialises concurrent upgrades of one PostgreSQL database.
_UPGRADE_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('ordergate.journal.migrations'))"


def require_current(found: int | None, latest: int, where: str) -> None:
    """Refuse a schema that is not exactly the one this code writes."""
    if found == latest:
        return
    if found is None:
        raise JournalError(f"{where}: no journal schema found; run "
                           f"`ordergate db upgrade --journal URL` to create it")
    if found < latest:
        raise JournalError(f"{where}: journal schema version {found} is older than version "
                           f"{latest} used by this ordergate; run "
                           "`ordergate db upgrade --journal URL`")
    raise JournalError(f"{where}: journal schema version {found} is newer than version {latest} "
                       "used by this ordergate; upgrade ordergate (then run "
                       "`ordergate db upgrade --journal URL` if asked)")


# ---------------------------------------------------------------- SQLite


def sqlite_schema_version(conn: sqlite3.Connection) -> int | None:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                          "AND name = 'journal_schema_version'").fetchone()
    if exists is None:
        return None
    row = conn.execute("SELECT version FROM journal_schema_version").fetchone()
    return 0 if row is None else int(row[0])


def apply_sqlite(conn: sqlite3.Connection, where: str) -> tuple[int, int]:
    """Apply missing SQLite steps in one transaction; returns (before, after). The connection
    must be in autocommit mode (isolation_level=None). A file that holds tables but no journal
    schema belongs to something else and is refused unchanged."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = sqlite_schema_version(conn)
        if found is None and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise JournalError(f"{where}: this SQLite file is not an ordergate journal; "
                               "check the path")
        before = found or 0
        if before > SQLITE_SCHEMA_VERSION:
            require_current(before, SQLITE_SCHEMA_VERSION, where)
        for migration in SQLITE_MIGRATIONS:
            if migration.version > before:
                for statement in migration.statements:
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO journal_schema_version (singleton, version) VALUES (1, ?) "
            "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            (SQLITE_SCHEMA_VERSION,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before, SQLITE_SCHEMA_VERSION


# ---------------------------------------------------------------- PostgreSQL


def postgres_schema_version(conn: Any) -> int | None:
    """`conn` is a psycopg connection (typed loosely so this module imports without psycopg)."""
    exists = conn.execute("SELECT to_regclass('journal_schema_version')").fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute("SELECT version FROM journal_schema_version").fetchone()
    return 0 if row is None else int(row[0])


def apply_postgres(conn: Any, where: str) -> tuple[int, int]:
    """Apply missing PostgreSQL steps in one transaction; returns (before, after)."""
    with conn.transaction():
        conn.execute(_UPGRADE_LOCK_SQL)
        before = postgres_schema_version(conn) or 0
        if before > POSTGRES_SCHEMA_VERSION:
            require_current(before, POSTGRES_SCHEMA_VERSION, where)
        for migration in POSTGRES_MIGRATIONS:
            if migration.version > before:
                for statement in migration.statements:
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO journal_schema_version (singleton, version) VALUES (TRUE, %s) "
            "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            (POSTGRES_SCHEMA_VERSION,),
        )
    return before, POSTGRES_SCHEMA_VERSION


# ---------------------------------------------------------------- entry point


def upgrade(url: str) -> tuple[int, int]:
    """Bring the journal schema at `url` to the version this ordergate writes, creating it if
    absent. Returns (version before, version after)."""
    parsed = parse_journal_url(url)
    if parsed.backend is Backend.SQLITE:
        try:
            conn = sqlite3.connect(parsed.target, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"{parsed.target}: cannot open the journal: {exc}") from exc
        try:
            return apply_sqlite(conn, parsed.target)
        except sqlite3.Error as exc:
            raise JournalError(f"{parsed.target}: schema upgrade failed: {exc}") from exc
        finally:
            conn.close()
    import psycopg

    from ordergate.journal.postgres import driver_words  # imports this module

    try:
        with psycopg.connect(parsed.target, autocommit=True) as pg_conn:
            return apply_postgres(pg_conn, parsed.redacted)
    except psycopg.Error as exc:
        raise JournalError(f"{parsed.redacted}: schema upgrade failed: "
                           f"{driver_words(exc, parsed)}") from exc
