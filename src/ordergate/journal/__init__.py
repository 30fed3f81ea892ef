"""The journal: append-only, durable, hash-chained log (the write-ahead log).

`open_journal(url)` is the only way to get one; nothing outside this package imports a
backend module.
"""

from __future__ import annotations

import uuid

from ordergate.journal.attestation import DIGEST_PREFIX
from ordergate.journal.base import (
    GENESIS_HASH,
    DetachedSnapshots,
    Durability,
    Journal,
    JournalError,
    JournalRecord,
    RecordKind,
    Snapshot,
    VerifyReport,
    record_hash,
    redact_url,
    verify_rows,
)
from ordergate.journal.chain import (
    HASH_PREFIX,
    check_heads,
    check_kept_heads,
    format_head,
    head_of,
    parse_head,
)
from ordergate.journal.checker import ChainCheckProcess, Verdict, verify_at
from ordergate.journal.migrations import upgrade as upgrade_schema
from ordergate.journal.urls import Backend, parse_journal_url

__all__ = [
    "DIGEST_PREFIX",
    "GENESIS_HASH",
    "HASH_PREFIX",
    "ChainCheckProcess",
    "DetachedSnapshots",
    "Durability",
    "Journal",
    "JournalError",
    "JournalRecord",
    "RecordKind",
    "Snapshot",
    "Verdict",
    "VerifyReport",
    "check_heads",
    "check_kept_heads",
    "format_head",
    "head_of",
    "open_journal",
    "parse_head",
    "record_hash",
    "redact_url",
    "upgrade_schema",
    "verify_at",
    "verify_rows",
    "writer_lock_path",
]


def open_journal(url: str, *, durability: Durability = Durability.BATCH,
                 run_id: str | None = None, create: bool = True,
                 epoch: int | None = None, reader: bool = False) -> Journal:
    """Open (or, with `create`, initialise) the journal at `url`.

    `sqlite:///path.db` or a bare `*.db` path: the embedded journal. `postgresql://...`
    (`?stream=NAME` selects the shard, default "default"): the production journal. `epoch`
    is the writer's lease epoch (PostgreSQL only; see `journal.lease.ShardLease`): writes
    are refused once a higher epoch has been granted. Without one, the writer counts as
    epoch 0 and is refused as soon as any lease was granted on the stream. `run_id` names
    this process in every record (default: a fresh random id).

    `reader`: opened to read an existing journal (verification, evidence, status), not to
    write it. On PostgreSQL the lease check that refuses a fenced writer when it opens is then
    skipped, so a stream whose lease another process holds can still be read and verified;
    a write through such a handle is still fenced when it is tried. On SQLite a reader keeps
    full fsyncs whatever `durability` says (it may be the connection that checkpoints the
    WAL at its close).
    """
    location = parse_journal_url(url)
    if reader and create:
        raise JournalError(f"{location.redacted}: a reader opens an existing journal "
                           "(create=False)")
    durability = Durability(durability)
    run = run_id if run_id is not None else uuid.uuid4().hex
    if not run or len(run.encode()) > 256:
        raise JournalError(f"run_id: expected 1 to 256 bytes, got {len(run.encode())}")
    if location.backend is Backend.SQLITE:
        if epoch is not None:
            raise JournalError(f"{location.redacted}: epoch fencing needs a PostgreSQL journal "
                               "(a SQLite journal has exactly one writer)")
        from ordergate.journal.sqlite import SqliteJournal

        return SqliteJournal(location.target, url=location.redacted, durability=durability,
                             run_id=run, create=create, reader=reader)
    try:
        from ordergate.journal.postgres import PostgresJournal
    except ImportError as exc:
        raise JournalError(f"{location.redacted}: the PostgreSQL journal needs psycopg "
                           "(pip install 'ordergate[postgres]')") from exc
    return PostgresJournal(location, durability=durability, run_id=run, create=create,
                           epoch=epoch, reader=reader)


def writer_lock_path(path: str) -> str:
    """The file beside the SQLite journal at `path` whose lock its one writer holds."""
    from ordergate.journal.sqlite import lock_path

    return lock_path(path)
