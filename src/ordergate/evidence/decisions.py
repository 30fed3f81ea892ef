"""Decisions as rows: every journaled Decision joined with the intent it answered, its
DecisionRecord (time, account, strategy, symbol, limits) and its evaluation latency (META).

This is what `ordergate decisions`, `ordergate journal export` and the evidence report read.
One pass over the journal, in sequence order; filters are applied as rows are made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import msgspec

from ordergate.evidence.latency import DecisionLatency, decode_latencies
from ordergate.evidence.replay import journaled_input
from ordergate.journal import Journal, JournalError, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import DecisionRecord, LimitsRecord, OutputEvent
from ordergate.model.intent import OrderIntent
from ordergate.model.values import journaled_digits

_decode_output = msgspec.json.Decoder(OutputEvent).decode
_INTENT_PREFIX = b'{"type":"intent",'
_DECISION_PREFIX = b'{"type":"decision",'
_RECORD_PREFIX = b'{"type":"decision_record",'
_LIMITS_PREFIX = b'{"type":"limits",'
# The META mark that opens every batch the runtime journals (`runtime.sources`): decisions
# still waiting for a latency note when the next batch opens belong to a batch a crash cut
# short before its note, so they have no latency (and must not take the next batch's).
_BATCH_MARKS = (b'{"type":"og.source"', b'{"type":"og.feedback"')
_KINDS = {OrderIntent: "an intent", Decision: "a decision", DecisionRecord: "a decision record",
          LimitsRecord: "a limits record"}
_Event = TypeVar("_Event", OrderIntent, Decision, DecisionRecord, LimitsRecord)


def unreadable_record(seq: int, kind: str, problem: str) -> JournalError:
    """What stops a reader of decisions at a record it cannot read (edited, or written by
    another version): which record, what is wrong with it and what to do, in the words
    `evidence.replay.unreadable_input` uses for inputs."""
    return JournalError(
        f"record {seq} ({kind}) cannot be read by this version of ordergate: {problem}; "
        "run `ordergate journal verify` to see whether the journal was altered, or read it "
        "with the version that wrote it")


def journaled_output(seq: int, payload: bytes) -> OutputEvent:
    """The OUTPUT record `seq` as an event, or the JournalError `unreadable_record` says."""
    try:
        event: OutputEvent = _decode_output(payload)
    except msgspec.DecodeError as exc:
        # As for inputs: figures longer than the digits rule allows stay readable.
        try:
            with journaled_digits():
                event = _decode_output(payload)
        except msgspec.DecodeError:
            problem = str(exc).replace(" - at `$`", "")
            if not isinstance(exc, msgspec.ValidationError):
                problem = f"not an output event ({problem})"
            raise unreadable_record(seq, "an output", problem) from None
    return event


def journaled_as(seq: int, event: object, expected: type[_Event]) -> _Event:
    """`event`, read from record `seq`, when it is what its payload's start announced; a
    record of another type is the same unreadable-record error, never an AssertionError."""
    if not isinstance(event, expected):
        kind = "an input" if expected is OrderIntent else "an output"
        raise unreadable_record(seq, kind, f"expected {_KINDS[expected]}, got "
                                           f"{type(event).__name__}")
    return event


def _latency_note(seq: int, payload: bytes) -> DecisionLatency | None:
    try:
        return decode_latencies(payload)
    except msgspec.DecodeError as exc:
        raise unreadable_record(seq, "a latency note", str(exc)) from None


def _latencies(intent_ids: Sequence[str], note: DecisionLatency) -> list[int | None]:
    """The latency of each decision of a batch, given in decision order: the note lists one
    (intent_id, ns) pair per intent handled, in handling order, so an intent id sent twice in
    one batch has two pairs, matched to its decisions in order."""
    spent: dict[str, deque[int]] = {}
    for intent_id, nanoseconds in note.latencies:
        spent.setdefault(intent_id, deque()).append(nanoseconds)
    found: list[int | None] = []
    for intent_id in intent_ids:
        queue = spent.get(intent_id)
        found.append(queue.popleft() if queue else None)
    return found


class DecisionRow(msgspec.Struct, kw_only=True):
    """One decision, flat, for tables and exports. Money and quantities stay exact
    (strings in CSV/Parquet)."""

    seq: int
    ts: datetime
    intent_id: str
    account: str
    strategy: str
    symbol: str
    side: str
    qty: Decimal
    order_type: str
    decision: str
    blocking: str
    violations: str
    modified_qty: Decimal | None
    mode: str
    risk_reducing: bool
    monitor: bool
    would_block: str
    policy_hash: str
    limits_hash: str
    latency_ns: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Which rows to keep; an empty field keeps everything. `reason` matches the blocking
    code or any violated one; `decision` is ALLOW, DENY or MODIFY."""

    since: datetime | None = None
    until: datetime | None = None
    account: str = ""
    symbol: str = ""
    strategy: str = ""
    decision: str = ""
    reason: str = ""

    def keeps(self, row: DecisionRow) -> bool:
        if self.since is not None and row.ts < self.since:
            return False
        if self.until is not None and row.ts > self.until:
            return False
        if self.account and row.account != self.account:
            return False
        if self.symbol and row.symbol != self.symbol:
            return False
        if self.strategy and row.strategy != self.strategy:
            return False
        if self.decision and row.decision != self.decision.upper():
            return False
        return not self.reason or self.reason == row.blocking or (
            self.reason in row.violations.split(","))


@dataclass(slots=True)
class _Pending:
    seq: int
    decision: Decision
    intent: OrderIntent | None
    ts: datetime


def _row(pending: _Pending, record: DecisionRecord | None) -> DecisionRow:
    decision = pending.decision
    intent = pending.intent
    return DecisionRow(
        seq=pending.seq,
        ts=record.ts if record is not None else pending.ts,
        intent_id=decision.intent_id,
        account=record.account if record is not None else (intent.account if intent else ""),
        strategy=record.strategy if record is not None else (intent.strategy if intent else ""),
        symbol=record.symbol if record is not None else (intent.symbol if intent else ""),
        side=intent.side.value if intent else "",
        qty=intent.qty if intent else Decimal(0),
        order_type=intent.order_type.value if intent else "",
        decision=decision.decision.value,
        blocking=decision.blocking,
        violations=",".join(violation.code for violation in decision.violations),
        modified_qty=decision.modified_qty,
        mode=decision.mode.value,
        risk_reducing=decision.risk_reducing,
        monitor=decision.monitor,
        would_block=decision.would_block,
        policy_hash=decision.policy_hash,
        limits_hash=record.limits_hash if record is not None else "",
    )


def iter_decisions(journal: Journal, where: DecisionFilter | None = None) -> Iterator[DecisionRow]:
    """Decision rows in journal order. Latency comes from the META note written at the end
    of the decision's batch, so rows are released once their batch's note is read (or the
    next batch opens, or the journal ends). A record that cannot be read raises JournalError
    naming its seq."""
    keep = where or DecisionFilter()
    intent: OrderIntent | None = None
    last_ts: datetime | None = None
    pending: _Pending | None = None
    batch: list[DecisionRow] = []

    def settle(record: DecisionRecord | None) -> None:
        nonlocal pending
        if pending is not None:
            batch.append(_row(pending, record))
            pending = None

    for record in journal.read():
        payload = record.payload
        seq = record.seq
        if record.kind is RecordKind.INPUT:
            settle(None)
            if payload.startswith(_INTENT_PREFIX):
                intent = journaled_as(seq, journaled_input(seq, payload), OrderIntent)
                last_ts = intent.ts
            elif last_ts is None:
                last_ts = journaled_input(seq, payload).ts
        elif record.kind is RecordKind.OUTPUT:
            if payload.startswith(_DECISION_PREFIX):
                settle(None)
                decision = journaled_as(seq, journaled_output(seq, payload), Decision)
                matched = intent if intent is not None and (
                    intent.intent_id == decision.intent_id) else None
                pending = _Pending(seq=seq, decision=decision, intent=matched,
                                   ts=matched.ts if matched else (last_ts or datetime.min))
            elif payload.startswith(_RECORD_PREFIX) and pending is not None:
                settle(journaled_as(seq, journaled_output(seq, payload), DecisionRecord))
        else:
            settle(None)
            if payload.startswith(_BATCH_MARKS):
                yield from (row for row in batch if keep.keeps(row))
                batch = []
                continue
            note = _latency_note(seq, payload)
            if note is not None:
                spent = _latencies([row.intent_id for row in batch], note)
                for row, latency in zip(batch, spent, strict=True):
                    row.latency_ns = latency
                yield from (row for row in batch if keep.keeps(row))
                batch = []
    settle(None)
    yield from (row for row in batch if keep.keeps(row))


class DecisionDetail(msgspec.Struct, kw_only=True):
    """Everything the journal holds about one decision."""

    seq: int
    intent: OrderIntent | None
    decision: Decision
    record: DecisionRecord | None
    limits: LimitsRecord | None
    outputs: list[OutputEvent]
    latency_ns: int | None


def find_decisions(journal: Journal, intent_id: str) -> list[DecisionDetail]:
    """Every decision the journal holds for `intent_id`, in journal order (an intent id sent
    twice is decided twice: the second is usually a DUP-* denial), each with its input, its
    record, the limits it cited, the other outputs of the same step (dispatch, cancels...)
    and its evaluation latency. A record that cannot be read raises JournalError naming its
    seq."""
    limits_by_hash: dict[str, LimitsRecord] = {}
    intent: OrderIntent | None = None
    found: list[DecisionDetail] = []
    step: DecisionDetail | None = None  # the decision whose step's outputs are being read
    unnoted: list[DecisionDetail] = []  # decided in this batch; its latency note is to come
    for record in journal.read():
        payload = record.payload
        kind = record.kind
        seq = record.seq
        if kind is RecordKind.OUTPUT and payload.startswith(_LIMITS_PREFIX):
            limits = journaled_as(seq, journaled_output(seq, payload), LimitsRecord)
            limits_by_hash[limits.limits_hash] = limits
        elif kind is RecordKind.INPUT:
            step = None  # later outputs answer this input
            intent = None
            if payload.startswith(_INTENT_PREFIX):
                event = journaled_as(seq, journaled_input(seq, payload), OrderIntent)
                intent = event if event.intent_id == intent_id else None
        elif kind is RecordKind.OUTPUT:
            if step is not None:
                output = journaled_output(seq, payload)
                if isinstance(output, DecisionRecord) and step.record is None:
                    step.record = output
                else:
                    step.outputs.append(output)
            elif intent is not None and payload.startswith(_DECISION_PREFIX):
                decision = journaled_as(seq, journaled_output(seq, payload), Decision)
                if decision.intent_id == intent_id:
                    step = DecisionDetail(seq=seq, intent=intent, decision=decision,
                                          record=None, limits=None, outputs=[],
                                          latency_ns=None)
                    found.append(step)
                    unnoted.append(step)
        elif unnoted:
            if payload.startswith(_BATCH_MARKS):
                unnoted = []  # their batch ended without a note
                continue
            note = _latency_note(seq, payload)
            if note is not None:
                spent = _latencies([intent_id] * len(unnoted), note)
                for detail, latency in zip(unnoted, spent, strict=True):
                    detail.latency_ns = latency
                unnoted = []
    for detail in found:
        if detail.record is not None:
            detail.limits = limits_by_hash.get(detail.record.limits_hash)
    return found
