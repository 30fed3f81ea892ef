"""The journal contract: an append-only, durable, hash-chained log of every input event
and every output. It is the write-ahead log (invariant 2): nothing outside the process
happens because of an event (no broker call, no acknowledgement to a client) before the
records that caused it are durable.

Backends live beside this module (`sqlite.py`, `postgres.py`); only `open_journal(url)`
chooses one. Nothing outside `journal/` imports a backend module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Protocol

import msgspec


class RecordKind(enum.StrEnum):
    INPUT = "in"  # an input event (intent, market, fill, command...)
    OUTPUT = "out"  # an engine output (decision, dispatch, cancel, mode change, alert)
    META = "meta"  # run manifest, dispatch outcome notes: not fed to the engine on replay


class Durability(enum.StrEnum):
    ALWAYS = "always"  # every append is durable (fsync / commit) before append returns
    BATCH = "batch"  # appends are buffered; flush() makes all of them durable at once
    NONE = "none"  # the OS decides; for tests and throwaway runs only


class JournalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One record. `payload` is the event's canonical JSON bytes. `hash` covers the previous
    record's hash and every other field, so an edit, drop or reorder breaks the chain.
    `run_id` and `recorded_at_ns` (wall clock) are excluded from determinism comparisons by
    design: they say when and by which process, not what."""

    seq: int
    kind: RecordKind
    run_id: str
    recorded_at_ns: int
    payload: bytes
    prev_hash: str
    hash: str


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Engine state after applying every record up to and including `seq`. `chain_hash` is
    the hash of record `seq`, so a snapshot is checked against the chain before use."""

    seq: int
    chain_hash: str
    state: bytes


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    message: str = ""


class JournalError(Exception):
    """The journal cannot be read or written. Writers must fail closed on it."""


class Journal(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def durability(self) -> Durability: ...

    @property
    def run_id(self) -> str: ...

    def append(self, kind: RecordKind, payload: bytes) -> int:
        """Add a record and return its sequence number (1, 2, ...)."""
        ...

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]: ...

    def flush(self) -> None:
        """Every record appended so far is durable when this returns (under ALWAYS and
        BATCH). Raises JournalError when it cannot be made durable."""
        ...

    def last_seq(self) -> int: ...

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        """Records in sequence order, start and end inclusive."""
        ...

    def save_snapshot(self, seq: int, state: bytes) -> None: ...

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot whose chain_hash matches the chain; None if there is none."""
        ...

    def verify(self) -> VerifyReport: ...

    def close(self) -> None: ...
