"""Decisions the bounded decision index has let go, read back from the journal.

`GET /v1/decisions/{intent_id}` answers from the index (`bridge.DecisionIndex`); once the
index has dropped its oldest records, a miss may still be an intent the gateway decided. The
journal says, read through a handle of its own (`open_journal(url, durability=NONE,
create=False, reader=True)`, as `ordergate decisions` and `ordergate replay verify` read): never the
runtime's journal object, whose `read()` would flush the engine thread's half-built batch from
another thread and, on PostgreSQL, hold the writer's connection for a whole scan. The handle
is opened at the first lookup that needs it (from the full journal URL, kept in memory only,
never logged or shown) and closed when the gateway closes.

The work is amortized O(journal), however many lookups come:

* nothing is read while the index has never dropped a record: a miss is then an intent that
  was never decided (the index was rebuilt from the whole journal at start-up);
* the index holds the newest decisions, in journal order. Once it has dropped more, one scan
  (on a worker thread; other lookups wait for it) reads the journal from where the previous
  scan stopped up to the first decision the index still holds, and remembers, for each
  decision it passes, the intent_id and the journal seq of its intent (ids and ints, not
  records). No record is scanned twice, but the few of the step a scan stopped at;
* a miss is then answered from that memory: an intent_id it does not hold was never decided
  (404, nothing read); one it holds is read back by seq (a few records).

The memory is bounded (`MAX_REMEMBERED`, 5 million ids by default: ~130 bytes each for a
20-character id, ~0.7 GB when full). Past it the oldest ids are forgotten, a tenth at a time,
and a miss is answered 404 saying that the decision may be older than the gateway keeps in
memory, and that `ordergate decisions --journal JOURNAL --show INTENT_ID` reads it from the journal.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import msgspec

from ordergate.evidence.replay import DECISION_PREFIX, INTENT_PREFIX, journaled_input
from ordergate.journal import Durability, Journal, JournalError, RecordKind, open_journal
from ordergate.journal.base import JournalRecord
from ordergate.model.decision import Decision
from ordergate.model.events import OutputEvent, ShadowDecision
from ordergate.model.intent import OrderIntent
from ordergate.service.bridge import DecisionIndex, DecisionRecord

MAX_REMEMBERED = 5_000_000
_READ_BACK_CHUNK = 16  # records per read while reading one intent's step back by seq


class _Named(msgspec.Struct):
    """The one field a scan needs of an intent or a decision record."""

    intent_id: str


_decode_named = msgspec.json.Decoder(_Named).decode
_decode_output = msgspec.json.Decoder(OutputEvent).decode


class Lookup(msgspec.Struct, frozen=True):
    """What the journal says of an intent the index does not hold: its record, or None with
    `forgotten` true when ids older than the gateway keeps in memory have been let go (the
    intent may be one of them)."""

    record: DecisionRecord | None
    forgotten: bool = False


class JournalDecisions:
    """The decision records of intents no longer in the index, from the journal."""

    def __init__(self, journal_url: str, *, max_remembered: int = MAX_REMEMBERED) -> None:
        self._journal_url = journal_url  # may hold a password: for opening only, never shown
        self._max_remembered = max_remembered
        self._reader: Journal | None = None
        self._reader_lock = threading.Lock()
        self._closed = False
        self._scanning = asyncio.Lock()
        # intent_id -> seq of its journaled intent, for the decisions scanned so far, in
        # journal order; the oldest are forgotten past `max_remembered`.
        self._seqs: dict[str, int] = {}
        self._forgotten = False
        self._next_seq = 1  # where the next scan starts
        self._scanned_at = 1  # the index's first_position when the last scan began
        self.scans = 0  # journal scans made (for tests and logs)
        self.scanned_records = 0  # journal records those scans read

    @property
    def remembered(self) -> int:
        return len(self._seqs)

    async def get(self, intent_id: str, index: DecisionIndex) -> Lookup:
        """What the journal says of `intent_id`, called after `index` missed it."""
        if index.first_position == 1:
            return Lookup(None)  # the index holds every decision made
        async with self._scanning:
            first_position = index.first_position
            if first_position != self._scanned_at:
                # The index has let more decisions go since the last scan: read up to them.
                await asyncio.to_thread(self._scan, index)
                self._scanned_at = first_position
            seq = self._seqs.get(intent_id)
            if seq is None:
                return Lookup(None, forgotten=self._forgotten)
            return Lookup(await asyncio.to_thread(self._read_back, intent_id, seq))

    def close(self) -> None:
        """Close the reader (at gateway shutdown); a scan under way stops at its next record
        and its lookup fails."""
        self._closed = True
        with self._reader_lock:
            if self._reader is not None:
                reader, self._reader = self._reader, None
                reader.close()

    # -- on a worker thread, one at a time (under `_scanning`)

    def _records(self, start_seq: int, end_seq: int | None = None) -> Iterator[JournalRecord]:
        with self._reader_lock:
            if self._closed:
                raise JournalError("the gateway is shutting down")
            if self._reader is None:
                self._reader = open_journal(self._journal_url, durability=Durability.NONE,
                                            create=False, reader=True)
            reader = self._reader
        for record in reader.read(start_seq, end_seq):
            if self._closed:
                raise JournalError("the gateway is shutting down")
            yield record

    def _scan(self, index: DecisionIndex) -> None:
        """Remember the decisions from `_next_seq` up to the first one the index holds."""
        self.scans += 1
        seqs = self._seqs
        input_kind, output_kind = RecordKind.INPUT, RecordKind.OUTPUT
        # The intent whose step is being read: its outputs (the decision first) follow it.
        pending_id: str | None = None
        pending_seq = 0
        pending_payload = b""
        next_seq = self._next_seq
        try:
            for record in self._records(self._next_seq):
                self.scanned_records += 1
                next_seq = record.seq + 1
                kind, payload = record.kind, record.payload
                if kind is input_kind:
                    if payload.startswith(INTENT_PREFIX):
                        pending_id = _decode_named(payload).intent_id
                        pending_seq, pending_payload = record.seq, payload
                    else:
                        pending_id = None
                    continue
                if (kind is not output_kind or pending_id is None
                        or not payload.startswith(DECISION_PREFIX)
                        or _decode_named(payload).intent_id != pending_id):
                    continue
                if pending_id in index and self._held(index, pending_id, pending_seq,
                                                      pending_payload):
                    # The first decision the index still holds (every later one is held
                    # too): the next scan starts at its intent.
                    return
                seqs.pop(pending_id, None)  # an id decided again: the newest record answers
                seqs[pending_id] = pending_seq
                pending_id = None
                if len(seqs) > self._max_remembered:
                    self._forget()
                    seqs = self._seqs
        finally:
            # An intent whose decision was not reached is read again by the next scan.
            self._next_seq = pending_seq if pending_id is not None else next_seq

    @staticmethod
    def _held(index: DecisionIndex, intent_id: str, seq: int, payload: bytes) -> bool:
        """Whether the index holds this very intent (not another that reused its id)."""
        held = index.get(intent_id)
        return held is not None and held.intent == journaled_input(seq, payload)

    def _forget(self) -> None:
        """Let the oldest tenth go: trimming stays amortized O(1) per id remembered."""
        drop = len(self._seqs) - self._max_remembered + self._max_remembered // 10
        self._seqs = dict(itertools.islice(self._seqs.items(), drop, None))
        self._forgotten = True

    def _read_back(self, intent_id: str, seq: int) -> DecisionRecord:
        """The record of the intent journaled at `seq` (its step: the intent, then its
        decision and, in a policy dry run, its shadow decision)."""
        intent: OrderIntent | None = None
        decision: Decision | None = None
        shadow: ShadowDecision | None = None
        run_id = ""
        start = seq
        while True:
            read = 0
            for record in self._records(start, start + _READ_BACK_CHUNK - 1):
                read += 1
                if record.seq == seq:
                    event = journaled_input(seq, record.payload)
                    if not isinstance(event, OrderIntent) or event.intent_id != intent_id:
                        raise JournalError(f"record {seq}: expected the intent '{intent_id}'")
                    intent = event
                    continue
                if record.kind is RecordKind.INPUT:
                    break  # the next step: the intent's own outputs are all read
                if record.kind is not RecordKind.OUTPUT:
                    continue
                output = _decode_output(record.payload)
                if isinstance(output, Decision) and output.intent_id == intent_id:
                    decision, run_id = output, record.run_id
                elif isinstance(output, ShadowDecision) and output.intent_id == intent_id:
                    shadow = output
            else:
                if read == _READ_BACK_CHUNK:
                    start += _READ_BACK_CHUNK
                    continue
            break
        if intent is None or decision is None:
            raise JournalError(f"record {seq}: the decision of intent '{intent_id}' is missing")
        return DecisionRecord(intent=intent, decision=decision, shadow=shadow, run_id=run_id)
