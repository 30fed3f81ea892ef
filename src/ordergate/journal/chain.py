"""The backend-neutral half of a journal: sequence numbers, the hash chain, the BATCH buffer,
snapshots checked against the chain, streaming reads and verification. A backend supplies
only storage (`_write`, `_page`, ...). One writer per journal: appends are O(1) because the
last seq and hash are kept in memory and never re-read.
"""

from __future__ import annotations

import contextlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from time import perf_counter_ns, time_ns
from types import TracebackType

import structlog

from ordergate.journal.attestation import collect, encode_attestation, state_digest
from ordergate.journal.base import (
    GENESIS_HASH,
    Durability,
    Journal,
    JournalError,
    JournalRecord,
    RawRow,
    RecordKind,
    Snapshot,
    VerifyReport,
    chain_hasher,
    record_damage,
    verify_rows,
)
from ordergate.journal.headfile import file_heads, head_path, write_head

log = structlog.get_logger("ordergate.journal")

DEFAULT_BATCH_LIMIT = 4096
"""BATCH and NONE flush on their own once this many records are buffered. Well above what
one runtime batch appends (about two records per event of a 256-line batch), so a batch is
one commit: a commit costs an fsync, whatever its size."""

KEEP_SNAPSHOTS = 3
"""Snapshots a journal keeps: saving one deletes all but the newest this many. A restart needs
only the newest that agrees with the chain (the older ones are fallbacks), and keeping every
snapshot of a long day would grow the journal with the square of its length."""


class JournalDamaged(JournalError):
    """The journal's storage is there but damaged: what was written cannot be read back (an
    SQLite page that is malformed, a stored field that is no longer text). Like a broken
    chain, the gateway cannot prove its state from it: a safety stop, not a path to fix."""


class SnapshotDamaged(JournalError):
    """A stored snapshot cannot be read or its contents are not what its header says (a file
    cut short, bytes flipped): only that snapshot is lost, not a record."""


class SnapshotFailure(VerifyReport, frozen=True, kw_only=True):
    """A failed verification that concerns only the snapshot at `first_bad_seq` (damaged, cut
    short, or altered after it was stored): every record is intact. Its message says how to
    set the snapshot aside; start-up then replays from an older snapshot or from record 1,
    and nothing is lost."""


_KIND_VALUES: dict[str, str] = {kind.value: kind.value for kind in RecordKind}
_KINDS: dict[str, RecordKind] = {kind.value: kind for kind in RecordKind}

_PAGE = 500


class ChainJournal(ABC):
    """Implements the `Journal` protocol on top of a few storage primitives.

    A write failure poisons the journal: the failing call and every later append or flush
    raise JournalError, because the in-memory chain may no longer match storage. Recovery
    is a restart that replays what is durable. A write interrupted by KeyboardInterrupt or
    SystemExit is not a failure: whether it committed is read back (at once, or by the next
    flush or the close), and its records are written again only if it did not
    (`_settle_interrupted`).
    """

    def __init__(self, *, url: str, durability: Durability, run_id: str, last_seq: int,
                 last_hash: str, batch_limit: int = DEFAULT_BATCH_LIMIT) -> None:
        self._url = url
        self._durability = durability
        self._run_id = run_id
        self._last_seq = last_seq
        self._last_hash = last_hash
        self._opened_at_seq = last_seq
        self._batch_limit = max(1, batch_limit)
        self._always = durability is Durability.ALWAYS
        self._buffer: list[RawRow] = []
        # The seq of the last record of a write to storage under way, 0 when none is: still
        # set when the next flush comes, that write was interrupted (`_settle_interrupted`).
        self._writing = 0
        self._hash_record = chain_hasher(run_id)
        self._lock = threading.RLock()
        self._failure: str | None = None
        self._closed = False
        self._log = log.bind(journal=url, run_id=run_id)
        # Told the seconds of every write of buffered records to storage (the commit, with
        # its fsync): a flush, and the writes `append` makes itself under `always` durability
        # or when the buffer is full. Called under the journal's lock, after the write held.
        self.on_write: Callable[[float], None] | None = None

    # ------------------------------------------------------------ storage primitives

    @abstractmethod
    def _write(self, rows: Sequence[RawRow]) -> None:
        """Store `rows` atomically and durably (per durability); raise JournalError if not."""

    @abstractmethod
    def _page(self, start_seq: int, end_seq: int | None, limit: int) -> list[RawRow]:
        """Up to `limit` stored rows with start_seq <= seq (<= end_seq), in seq order."""

    @abstractmethod
    def _hash_at(self, seq: int) -> str | None: ...

    @abstractmethod
    def _put_snapshot(self, seq: int, chain_hash: str, state: bytes) -> None: ...

    @abstractmethod
    def _snapshot_index(self) -> list[tuple[int, str, str | None]]:
        """(seq, snapshot chain_hash, stored record hash at seq or None), newest first."""

    @abstractmethod
    def _snapshot_state(self, seq: int) -> tuple[bytes, str]:
        """The stored state at `seq` and its digest (`attestation.state_digest`), hashed as
        it is read (or checked against a digest stored with it)."""

    def _snapshot_location(self, seq: int) -> str:
        """Where the snapshot at `seq` is stored, for people (a file's path, say)."""
        return f"{self._url}: snapshot at seq {seq}"

    def _set_aside(self, seq: int) -> str:
        """What an operator does with a damaged snapshot at `seq`, in words: without it, start-up
        replays from the snapshot before it (or from the journal's first record), and nothing
        is lost, since the records it was taken from are all in the journal."""
        return "restore it or move it aside"

    def _unreadable_snapshots(self) -> list[tuple[int, str]]:
        """(seq, why) of each stored snapshot `_snapshot_index` leaves out because not even
        the record it was taken at can be read from it (a snapshot file whose header was cut
        short, say). Never used; `verify` reports one the journal attests."""
        return []

    def _roll_back_write(self) -> None:
        """Roll back a write transaction left open by a write that failed or was interrupted
        (KeyboardInterrupt, SystemExit); nothing if none is open. (PostgreSQL's transaction
        block rolls back itself, an interrupted start of it included.)"""
        return None

    @abstractmethod
    def _close_storage(self) -> None: ...

    # ------------------------------------------------------------ the Journal protocol

    @property
    def url(self) -> str:
        return self._url

    @property
    def durability(self) -> Durability:
        return self._durability

    @property
    def run_id(self) -> str:
        return self._run_id

    def append(self, kind: RecordKind, payload: bytes) -> int:
        with self._lock:
            seq = self._buffer_one(kind, payload)
            if self._always or len(self._buffer) >= self._batch_limit:
                self._flush_locked()
            return seq

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]:
        """`append` for each item, as one call: `_buffer_one` unrolled (several records per
        intent come this way, so the per-record calls were a visible part of a run)."""
        with self._lock:
            if self._failure is not None or self._closed:
                self._usable()
            seq = first = self._last_seq
            prev_hash = self._last_hash
            run_id = self._run_id
            hash_record = self._hash_record
            buffer = self._buffer
            seqs: list[int] = []
            try:
                for kind, payload in items:
                    kind_value = _KIND_VALUES.get(kind) or RecordKind(kind).value
                    data = payload if type(payload) is bytes else bytes(payload)
                    seq += 1
                    recorded_at_ns = time_ns()
                    digest = hash_record(prev_hash, seq, kind_value, recorded_at_ns, data)
                    buffer.append((seq, kind_value, run_id, recorded_at_ns, data, prev_hash,
                                   digest))
                    seqs.append(seq)
                    prev_hash = digest
            finally:  # what was buffered before a bad item stays appended, as one by one
                self._last_seq = seqs[-1] if seqs else first
                self._last_hash = prev_hash
            if self._always or len(buffer) >= self._batch_limit:
                self._flush_locked()
            return seqs

    def flush(self) -> None:
        with self._lock:
            self._usable()
            self._flush_locked()

    def last_seq(self) -> int:
        return self._last_seq

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        self.flush()
        return self._records(start_seq, end_seq)

    def save_snapshot(self, seq: int, state: bytes) -> None:
        """Store the snapshot, then journal its attestation (`journal.attestation`) and flush:
        a snapshot is used only once the chain attests its digest."""
        with self._lock:
            self._usable()
            self._flush_locked()
            if not 1 <= seq <= self._last_seq:
                raise JournalError(f"{self._url}: snapshot seq {seq} is not a record "
                                   f"(records are 1..{self._last_seq})")
            chain_hash = self._hash_at(seq)
            if chain_hash is None:
                raise JournalError(f"{self._url}: snapshot seq {seq}: record not found")
            state = bytes(state)
            try:
                self._put_snapshot(seq, chain_hash, state)
            except JournalError as exc:
                self._failure = str(exc)
                raise
            self._attest_locked(seq, state_digest(state))

    def _attest_locked(self, seq: int, digest: str) -> None:
        """Journal (and flush) the attestation of the snapshot stored at `seq`."""
        self._buffer_one(RecordKind.META, encode_attestation(seq, digest))
        self._flush_locked()

    def last_hash(self) -> str:
        """The hash of record `last_seq()` (what a snapshot taken now is checked against)."""
        return self._last_hash

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot at a record of the chain (with that record's hash) whose
        digest a later record attests (`journal.attestation`; the first such record, the one
        written when it was stored, if several attest it). Others are skipped with a
        warning naming them: one nothing attests (stored but not attested before a crash, or
        by an older version), and, loudly, one whose digest differs from its attestation:
        it was altered after it was stored."""
        with self._lock:
            attestations = _AttestationScan(self._raw)
            for seq, chain_hash, stored in self._snapshot_index():
                if chain_hash == stored:
                    attested = attestations.of(seq)
                    if not attested:
                        self._log.warning(
                            "journal.snapshot_unattested", seq=seq,
                            snapshot=self._snapshot_location(seq),
                            reason="no journal record attests its digest (stored but not "
                                   "attested before a crash, or by an older version); "
                                   "not used")
                        continue
                    try:
                        state, digest = self._snapshot_state(seq)
                    except JournalError as exc:
                        if self._failure is not None:
                            raise
                        self._log.warning("journal.snapshot_ignored", seq=seq, reason=str(exc))
                        continue
                    if digest != _first_attested(attested):
                        self._log.error(
                            "journal.snapshot_tampered", seq=seq,
                            snapshot=self._snapshot_location(seq), digest=digest,
                            attested=_attested_text(attested),
                            reason="its contents differ from the digest the journal attests: "
                                   "it was altered after it was stored; not used (run "
                                   "`ordergate journal verify`)")
                        continue
                    return Snapshot(seq=seq, chain_hash=chain_hash, state=state)
                if stored is None and seq > self._last_seq:
                    raise JournalError(f"{self._url}: {_truncated(self._last_seq, seq)}")
                self._log.warning("journal.snapshot_ignored", seq=seq,
                                  reason="record missing" if stored is None
                                  else "chain_hash differs from the record's hash")
            return None

    def verify(self) -> VerifyReport:
        """The chain from record 1, then the snapshots as anchors (`_check_anchors`), then
        each snapshot's contents against its attestation (`_check_attested`)."""
        self.flush()
        with self._lock:
            anchors = self._snapshot_index()
            unreadable = self._unreadable_snapshots()
        attestations: dict[int, dict[str, int]] = {}
        report = verify_rows(_collect_sound(self._raw(1, None), attestations),
                             expected_last_seq=self._last_seq)
        if report.ok:
            report = _check_anchors(report, anchors)
        if not report.ok:
            return report
        return self._check_attested(report, anchors, unreadable, attestations)

    def _check_attested(self, report: VerifyReport, anchors: list[tuple[int, str, str | None]],
                        unreadable: list[tuple[int, str]],
                        attestations: dict[int, dict[str, int]]) -> VerifyReport:
        """An intact, anchored chain checked against what its snapshots hold: a snapshot
        whose digest differs from its attestation was altered after it was stored, one the
        journal attests two different digests for was vouched for again, and one attested but
        unreadable was damaged (failures); one nothing attests is never used (a note)."""
        notes = list(report.notes)
        anchored = {seq for seq, _, _ in anchors}
        cannot_read = {seq: why for seq, why in unreadable if seq not in anchored}
        for seq in sorted(anchored | cannot_read.keys()):
            attested = attestations.get(seq)
            if not attested and seq in cannot_read:
                notes.append(f"the snapshot at seq {seq} cannot be read ({cannot_read[seq]}) "
                             "and no journal record attests it, so it is never used")
                continue
            if not attested:
                notes.append(f"the snapshot at seq {seq} ({self._snapshot_location(seq)}) is "
                             "not attested by any journal record, so it is never used "
                             "(stored but not attested before a crash, or by an older "
                             "version)")
                continue
            if seq in cannot_read:
                return SnapshotFailure(
                    ok=False, records=report.records, first_bad_seq=seq,
                    message=f"the snapshot at seq {seq} cannot be read or is damaged: "
                            f"{cannot_read[seq]} ({_attested_text(attested)}); "
                            f"{self._set_aside(seq)}")
            with self._lock:
                try:
                    _, digest = self._snapshot_state(seq)
                except SnapshotDamaged as exc:
                    return SnapshotFailure(
                        ok=False, records=report.records, first_bad_seq=seq,
                        message=f"the snapshot at seq {seq} cannot be read or is damaged: "
                                f"{exc}; {self._set_aside(seq)}")
                except JournalDamaged:
                    raise  # the journal itself, not only the snapshot
                except JournalError as exc:
                    return VerifyReport(
                        ok=False, records=report.records, first_bad_seq=seq,
                        message=f"the snapshot at seq {seq} cannot be read or is damaged: "
                                f"{exc}")
            if digest not in attested:
                return SnapshotFailure(
                    ok=False, records=report.records, first_bad_seq=seq,
                    message=f"the snapshot at seq {seq} ({self._snapshot_location(seq)}) "
                            f"holds {digest} but {_attested_text(attested)}: it was altered "
                            "after it was stored (it is not used at start-up); "
                            f"{self._set_aside(seq)}")
            if len(attested) > 1:
                return VerifyReport(
                    ok=False, records=report.records, first_bad_seq=seq,
                    message=f"the snapshot at seq {seq} ({self._snapshot_location(seq)}) is "
                            f"attested with different digests ({_attested_text(attested)}): a "
                            "snapshot is attested once, when it is stored, so a later record "
                            "vouches for contents it was not stored with (start-up trusts "
                            "only the first)")
        return VerifyReport(ok=report.ok, records=report.records,
                            first_bad_seq=report.first_bad_seq, message=report.message,
                            notes=tuple(notes))

    def close(self) -> None:
        """Flush and close. A journal that appended records and closes healthy logs its head
        (`journal.closed`, seq and hash of the newest record) for an operator's log pipeline
        to keep outside the journal (see `check_heads`)."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._failure is None:
                    self._flush_locked()
                    if self._last_seq != self._opened_at_seq:
                        self._write_head_file()
            finally:
                self._closed = True
                self._close_storage()
            if self._failure is None and self._last_seq != self._opened_at_seq:
                self._log.info("journal.closed", seq=self._last_seq,
                               hash=HASH_PREFIX + self._last_hash)

    def _write_head_file(self) -> None:
        """`<journal>.head` for a file journal (`journal.headfile`); not written is logged,
        not fatal: the chain is intact, only the check of its end is lost."""
        path = head_path(self._url)
        if path is None:
            return
        first = self._hash_at(1)
        if first is None:
            return
        try:
            write_head(path, first, self._last_seq, self._last_hash)
        except OSError as exc:
            self._log.warning("journal.head_file_not_written", path=str(path),
                              error=exc.strerror or str(exc))

    def __enter__(self) -> ChainJournal:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _usable(self) -> None:
        if self._closed:
            raise JournalError(f"{self._url}: the journal is closed")
        if self._failure is not None:
            raise JournalError(f"{self._url}: an earlier write failed, so no further record "
                               f"is accepted until restart: {self._failure}")

    def _buffer_one(self, kind: RecordKind, payload: bytes) -> int:
        if self._failure is not None or self._closed:
            self._usable()
        # The stored kind is the plain string (a driver may adapt an enum member by name).
        kind_value = _KIND_VALUES.get(kind) or RecordKind(kind).value
        data = payload if type(payload) is bytes else bytes(payload)
        seq = self._last_seq + 1
        recorded_at_ns = time_ns()
        prev_hash = self._last_hash
        digest = self._hash_record(prev_hash, seq, kind_value, recorded_at_ns, data)
        self._buffer.append((seq, kind_value, self._run_id, recorded_at_ns, data, prev_hash,
                             digest))
        self._last_seq = seq
        self._last_hash = digest
        return seq

    def _flush_locked(self) -> None:
        if not self._buffer and not self._writing:
            return
        started = perf_counter_ns()
        try:
            if self._writing:
                self._settle_interrupted()
                if not self._buffer:
                    return
            self._writing = self._buffer[-1][0]
            self._write(self._buffer)
        except JournalError as exc:
            self._failure = str(exc)
            self._log.error("journal.write_failed", error=str(exc),
                            first_seq=self._buffer[0][0] if self._buffer else None,
                            records=len(self._buffer))
            raise
        except BaseException:
            # Interrupted (KeyboardInterrupt, SystemExit): storage is made to agree with the
            # buffer now if it can be, else by the next flush or the close.
            with contextlib.suppress(JournalError):
                self._settle_interrupted()
            raise
        self._buffer = []
        self._writing = 0
        if self.on_write is not None:
            self.on_write((perf_counter_ns() - started) / 1e9)

    def _settle_interrupted(self) -> None:
        """After a write of the buffer to storage was interrupted (KeyboardInterrupt or
        SystemExit, landing anywhere from its first statement to the buffer being emptied):
        roll back what it left open, then read back whether it committed. Committed, its
        records leave the buffer; not, they stay in it, to be written by the next flush or
        the close. Either way they are stored once: written again, they failed as a
        duplicate (a false safety stop), and a transaction left open failed the next write.
        (A write is atomic, so its last record tells.) Raises JournalError if storage cannot
        be read."""
        through = self._writing
        self._roll_back_write()
        if self._buffer and self._buffer[0][0] <= through:
            last = through - self._buffer[0][0]  # the write's last record, in the buffer
            if self._hash_at(through) == self._buffer[last][6]:
                del self._buffer[:last + 1]
        self._writing = 0

    def _raw(self, start_seq: int, end_seq: int | None) -> Iterator[RawRow]:
        next_seq = start_seq
        while True:
            with self._lock:
                page = self._page(next_seq, end_seq, _PAGE)
            if not page:
                return
            last_page = len(page) < _PAGE
            next_seq = page[-1][0] + 1
            yield from page
            del page  # hold one page at a time, not two
            if last_page:
                return

    def _records(self, start_seq: int, end_seq: int | None) -> Iterator[JournalRecord]:
        for row in self._raw(start_seq, end_seq):
            seq, kind, run_id, recorded_at_ns, payload, prev_hash, digest = row
            damage = record_damage(row)
            if damage is not None:
                raise JournalError(f"{self._url}: record {seq} is damaged: {damage}; run "
                                   "`ordergate journal verify`")
            record_kind = _KINDS.get(kind)
            if record_kind is None:
                raise JournalError(f"{self._url}: record {seq}: unknown kind {kind!r}; "
                                   "run `ordergate journal verify`")
            yield JournalRecord(seq=seq, kind=record_kind, run_id=run_id,
                                recorded_at_ns=recorded_at_ns, payload=bytes(payload),
                                prev_hash=prev_hash, hash=digest)


class _AttestationScan:
    """Snapshot attestations found by reading records, as `latest_snapshot` asks for them
    (newest snapshot first): the records after the newest snapshot up to its attestation
    (usually within a few records), then for an older one the records between it and what
    was read, then the rest. No record is read twice."""

    def __init__(self, rows: Callable[[int, int | None], Iterator[RawRow]]) -> None:
        self._rows = rows
        self._found: dict[int, dict[str, int]] = {}
        self._low = 0  # records low..high have been read (none while low == 0)
        self._high = 0
        self._to_the_end = False

    def of(self, seq: int) -> dict[str, int]:
        """digest -> seq of the record attesting it, for the snapshot at `seq`."""
        if self._low == 0:
            self._low, self._high = seq + 1, seq
            self._scan(seq + 1, None, until=seq)
        elif seq + 1 < self._low:
            self._scan(seq + 1, self._low - 1)
            self._low = seq + 1
        if seq not in self._found and not self._to_the_end:
            self._scan(self._high + 1, None)
        return self._found.get(seq, {})

    def _scan(self, start: int, end: int | None, until: int | None = None) -> None:
        last = start - 1
        for row in _collect_sound(self._rows(start, end), self._found):
            last = row[0]
            if until is not None and until in self._found:
                break
        else:
            self._to_the_end = self._to_the_end or end is None
        self._high = max(self._high, last)


def _collect_sound(rows: Iterable[RawRow], into: dict[int, dict[str, int]]) -> Iterator[RawRow]:
    """`attestation.collect` over `rows`, but a META record with a field of the wrong type
    (`record_damage`) is passed on without being read: it attests nothing, and verification
    reports it. Only META records can attest, so the others go by unchecked here."""
    for row in rows:
        if row[1] == _META and record_damage(row) is None:
            yield from collect((row,), into)
        else:
            yield row


_META = RecordKind.META.value


def _first_attested(attested: dict[str, int]) -> str:
    """The digest of the first record attesting a snapshot: the one written when it was
    stored. A later record attesting another digest vouches for contents it was not stored
    with (`verify` reports it)."""
    return min(attested.items(), key=lambda item: item[1])[0]


def _attested_text(attested: dict[str, int]) -> str:
    return " and ".join(f"record {record} attests {digest}"
                        for digest, record in sorted(attested.items(), key=lambda x: x[1]))


def genesis() -> tuple[int, str]:
    """(last seq, last hash) of an empty journal."""
    return 0, GENESIS_HASH


def _check_anchors(report: VerifyReport,
                   anchors: list[tuple[int, str, str | None]]) -> VerifyReport:
    """An intact chain checked against its snapshots: each recorded the hash of the record it
    was taken at, written when that record was durable. A chain proves only that no record in
    it was edited, dropped or reordered; deleting records from the end, or rewriting the tail
    and recomputing its hashes, leaves a chain that verifies. A snapshot beyond the chain's
    end, or at a record whose hash is not the one it recorded, is evidence of exactly that.
    The lowest such snapshot is reported (`anchors` come newest first)."""
    end = report.records
    for seq, chain_hash, stored in sorted(anchors):
        if seq > end:
            return VerifyReport(ok=False, records=end, first_bad_seq=end + 1,
                                message=_truncated(end, seq))
        if stored != chain_hash:
            return VerifyReport(
                ok=False, records=end, first_bad_seq=seq,
                message=f"record {seq} is not the record the snapshot at seq {seq} was taken "
                        "at (its hash differs from the one the snapshot recorded): the journal "
                        f"was rewritten at or before record {seq}, or the snapshot was damaged")
    return report


HASH_PREFIX = "sha256:"
"""How a record hash is shown to people and written in a head (`sha256:` + 64 hex digits), as
policy hashes are."""

_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def head_of(journal: Journal) -> tuple[int, str] | None:
    """(seq, hash) of the newest record: what a `ChainJournal` keeps in memory, so also after
    it was closed (what a run ends with); None if a write failed, since the newest record
    may then not be durable. Any other journal must be open: its last record is read."""
    if isinstance(journal, ChainJournal):
        if journal._failure is not None:
            return None
        return journal.last_seq(), journal.last_hash()
    last = journal.last_seq()
    for record in journal.read(last, last):
        return record.seq, record.hash
    return (0, GENESIS_HASH) if last == 0 else None


def format_head(seq: int, chain_hash: str) -> str:
    """`SEQ:sha256:HEX`, what `parse_head` reads back."""
    return f"{seq}:{HASH_PREFIX}{chain_hash}"


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:HASH` (HASH as 64 lowercase hex digits, with or without `sha256:`) -> (seq, hex).
    Raises ValueError saying what is wrong with it."""
    seq_text, colon, chain_hash = text.strip().partition(":")
    if not colon:
        raise ValueError(f"{text!r}: expected SEQ:HASH (as `ordergate journal head` prints "
                         "it), found no ':'")
    if not seq_text.isdigit() or not seq_text.isascii():
        raise ValueError(f"{text!r}: SEQ must be a record number (0 or more), "
                         f"got {seq_text!r}")
    chain_hash = chain_hash.removeprefix(HASH_PREFIX)
    if not _HEX_HASH.fullmatch(chain_hash):
        raise ValueError(f"{text!r}: HASH must be a journal record hash, sha256: and 64 "
                         f"lowercase hex digits, got {chain_hash!r}")
    return int(seq_text), chain_hash


def check_heads(journal: Journal, report: VerifyReport, heads: Iterable[tuple[int, str]],
                source: str = "the head kept outside the journal") -> VerifyReport:
    """An intact, anchored chain (`report`, from `journal.verify()`) checked against heads kept
    outside the journal: (seq, hash) of what was its newest record, written where the
    journal's owner cannot silently change it. The chain and its snapshots cannot show records
    removed from the end after the last snapshot, nor a tail rewritten with recomputed hashes
    after it; a head can: the chain must still hold record seq, with that hash. The lowest
    head that disagrees is reported; `source` says in the message where the heads came from."""
    if not report.ok:
        return report
    end = report.records
    for seq, expected in sorted(heads):
        if seq > end:
            return VerifyReport(
                ok=False, records=end, first_bad_seq=end + 1,
                message=f"the chain ends at record {end} but {source} "
                        f"is record {seq}, so records {end + 1} to {seq} at least were written "
                        "and are gone (removed from the end, or an older copy of the journal "
                        "restored); restore the journal that holds them")
        stored = GENESIS_HASH if seq == 0 else next(
            (record.hash for record in journal.read(seq, seq)), None)
        if stored != expected:
            return VerifyReport(
                ok=False, records=end, first_bad_seq=seq,
                message=f"record {seq} has hash {HASH_PREFIX}{stored} but {source} "
                        f"says {HASH_PREFIX}{expected}: the journal was "
                        f"rewritten at or before record {seq}")
    return report


def check_kept_heads(journal: Journal, report: VerifyReport,
                     heads: Iterable[tuple[int, str]] = ()) -> tuple[VerifyReport, str]:
    """`report` (the chain, from `journal.verify()`) checked against the head in the journal's
    head file (`journal.headfile`), then against `heads` kept elsewhere: what every check of
    a journal runs. Returns the report and a note for the operator when a head file was found
    but not used (else "")."""
    kept, note = file_heads(journal)
    if kept:
        report = check_heads(journal, report, kept, f"the head file {head_path(journal.url)}")
    return check_heads(journal, report, heads), note


def _truncated(end: int, seq: int) -> str:
    return (f"the chain ends at record {end} but a snapshot was taken at record {seq}, "
            f"so records {end + 1} to {seq} at least were written and are gone (removed from "
            "the end, or an older copy of the journal restored); restore the journal that "
            "holds them, or move that snapshot aside to accept the loss")
