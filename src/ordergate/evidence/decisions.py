"""Decisions as rows: every journaled Decision joined with the intent it answered, its
DecisionRecord (time, account, strategy, symbol, limits) and its evaluation latency (META).

This is what `ordergate decisions`, `ordergate journal export` and the evidence report read.
One pass over the journal, in sequence order; filters are applied as rows are made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import msgspec

from ordergate.evidence.latency import decode_latencies
from ordergate.evidence.replay import journaled_input
from ordergate.journal import Journal, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import DecisionRecord, LimitsRecord, OutputEvent
from ordergate.model.intent import OrderIntent

_decode_output = msgspec.json.Decoder(OutputEvent).decode
_INTENT_PREFIX = b'{"type":"intent",'
_DECISION_PREFIX = b'{"type":"decision",'
_RECORD_PREFIX = b'{"type":"decision_record",'
_LIMITS_PREFIX = b'{"type":"limits",'


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
    of the decision's batch, so rows are released once their batch's note is read (or at the
    end of the journal)."""
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
        if record.kind is RecordKind.INPUT:
            settle(None)
            if payload.startswith(_INTENT_PREFIX):
                event = journaled_input(record.seq, payload)
                assert isinstance(event, OrderIntent)
                intent = event
                last_ts = event.ts
            elif last_ts is None:
                last_ts = journaled_input(record.seq, payload).ts
        elif record.kind is RecordKind.OUTPUT:
            if payload.startswith(_DECISION_PREFIX):
                settle(None)
                decision = _decode_output(payload)
                assert isinstance(decision, Decision)
                matched = intent if intent is not None and (
                    intent.intent_id == decision.intent_id) else None
                pending = _Pending(seq=record.seq, decision=decision, intent=matched,
                                   ts=matched.ts if matched else (last_ts or datetime.min))
            elif payload.startswith(_RECORD_PREFIX) and pending is not None:
                output = _decode_output(payload)
                assert isinstance(output, DecisionRecord)
                settle(output)
        else:
            settle(None)
            note = decode_latencies(payload)
            if note is not None:
                latency = dict(note.latencies)
                for row in batch:
                    row.latency_ns = latency.get(row.intent_id, row.latency_ns)
                yield from (row for row in batch if keep.keeps(row))
                batch = []
    settle(None)
    yield from (row for row in batch if keep.keeps(row))


class DecisionDetail(msgspec.Struct, kw_only=True):
    """Everything the journal holds about one decision (the first one for the intent id)."""

    seq: int
    intent: OrderIntent | None
    decision: Decision
    record: DecisionRecord | None
    limits: LimitsRecord | None
    outputs: list[OutputEvent]
    latency_ns: int | None


def find_decision(journal: Journal, intent_id: str) -> DecisionDetail | None:
    """The journaled story of one intent: its input, decision, record, cited limits, the other
    outputs of the same step (dispatch, cancels...) and its evaluation latency."""
    limits_by_hash: dict[str, LimitsRecord] = {}
    intent: OrderIntent | None = None
    detail: DecisionDetail | None = None
    step_open = True
    for record in journal.read():
        payload = record.payload
        kind = record.kind
        if kind is RecordKind.OUTPUT and payload.startswith(_LIMITS_PREFIX):
            output = _decode_output(payload)
            assert isinstance(output, LimitsRecord)
            limits_by_hash[output.limits_hash] = output
            continue
        if detail is None:
            if kind is RecordKind.INPUT and payload.startswith(_INTENT_PREFIX):
                event = journaled_input(record.seq, payload)
                assert isinstance(event, OrderIntent)
                intent = event if event.intent_id == intent_id else None
            elif kind is RecordKind.OUTPUT and intent is not None and payload.startswith(
                    _DECISION_PREFIX):
                decision = _decode_output(payload)
                assert isinstance(decision, Decision)
                if decision.intent_id == intent_id:
                    detail = DecisionDetail(seq=record.seq, intent=intent, decision=decision,
                                            record=None, limits=None, outputs=[],
                                            latency_ns=None)
            continue
        if kind is RecordKind.INPUT:
            step_open = False  # later outputs answer other inputs
        elif kind is RecordKind.OUTPUT:
            if step_open:
                output = _decode_output(payload)
                if isinstance(output, DecisionRecord) and detail.record is None:
                    detail.record = output
                else:
                    detail.outputs.append(output)
        else:
            note = decode_latencies(payload)
            if note is not None:
                detail.latency_ns = dict(note.latencies).get(intent_id)
                break
    if detail is not None and detail.record is not None:
        detail.limits = limits_by_hash.get(detail.record.limits_hash)
    return detail
