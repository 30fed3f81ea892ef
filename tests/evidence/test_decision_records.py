"""Decision records: every decision cites its policy and limits and carries the state it was
judged on; the record alone re-derives the decision; latency stays out of the outputs."""

from __future__ import annotations

from pathlib import Path

import msgspec
from tests.evidence.support import invoke, read

from ordergate.evidence.decisions import find_decisions, iter_decisions
from ordergate.evidence.latency import decode_latencies
from ordergate.evidence.reproduce import reproduce
from ordergate.journal import RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import DecisionRecord, InputEvent, LimitsRecord, OutputEvent
from ordergate.model.intent import OrderIntent

_inputs = msgspec.json.Decoder(InputEvent)
_outputs = msgspec.json.Decoder(OutputEvent)


def test_every_decision_is_rederived_from_its_record_alone(demo_day: Path) -> None:
    journal = read(demo_day / "journal.db")
    limits: dict[str, LimitsRecord] = {}
    intent: OrderIntent | None = None
    decision: Decision | None = None
    checked = 0
    try:
        for record in journal.read():
            if record.kind is RecordKind.INPUT:
                event = _inputs.decode(record.payload)
                intent = event if isinstance(event, OrderIntent) else None
                continue
            if record.kind is not RecordKind.OUTPUT:
                continue
            output = _outputs.decode(record.payload)
            if isinstance(output, LimitsRecord):
                assert output.limits_hash not in limits, "limits are journaled once per value"
                limits[output.limits_hash] = output
            elif isinstance(output, Decision):
                assert decision is None, "each decision is followed by its record"
                decision = output
            elif isinstance(output, DecisionRecord):
                assert decision is not None and intent is not None
                assert output.intent_id == decision.intent_id == intent.intent_id
                assert output.policy_hash == decision.policy_hash != ""
                assert reproduce(intent, output, limits[output.limits_hash]) == decision
                decision = None
                checked += 1
    finally:
        journal.close()
    assert decision is None
    assert checked > 500
    assert len(limits) < 20


def test_latency_is_in_meta_records_for_every_intent_and_shown_by_decisions(
        demo_day: Path) -> None:
    journal = read(demo_day / "journal.db")
    try:
        noted = {intent_id for record in journal.read() if record.kind is RecordKind.META
                 for note in [decode_latencies(record.payload)] if note is not None
                 for intent_id, _ in note.latencies}
        rows = list(iter_decisions(journal))
        detail = find_decisions(journal, rows[-1].intent_id)[-1]
    finally:
        journal.close()
    assert {row.intent_id for row in rows} <= noted
    assert all(row.latency_ns is not None and row.latency_ns > 0 for row in rows)
    assert detail.latency_ns == rows[-1].latency_ns
    shown = invoke("decisions", "--journal", str(demo_day / "journal.db"), "--show",
                   rows[-1].intent_id)
    assert shown.code == 0, shown.output
    assert "re-derived from the record alone: identical decision" in shown.output
    assert "µs" in shown.output


def test_decisions_lists_filtered_rows_and_refuses_an_unknown_intent(demo_day: Path) -> None:
    listed = invoke("decisions", "--journal", str(demo_day / "journal.db"), "--reason",
                    "ORD-009", "--decision", "DENY")
    assert listed.code == 0, listed.output
    assert "ORD-009" in listed.output
    missing = invoke("decisions", "--journal", str(demo_day / "journal.db"), "--show", "nope")
    assert missing.code == 1 and "nope" in missing.output
