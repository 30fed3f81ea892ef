"""An intent id sent twice is decided twice: `decisions --show` shows both decisions, and each
row keeps its own evaluation latency."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.evidence.decisions import find_decisions, iter_decisions
from ordergate.evidence.latency import decode_latencies
from ordergate.journal import RecordKind

_INTENT = {"type": "intent", "intent_id": "dup-1", "account": "DEMO-1", "strategy": "trend",
           "symbol": "MSFT", "side": "buy", "order_type": "market", "tif": "day"}


def _dup_journal(demo_day: Path, out: Path, *extra: str) -> Path:
    """A run over the demo's first events and one intent id sent twice (ALLOW, then DENY
    DUP-003 because the second differs in qty)."""
    lines = (demo_day / "events.jsonl").read_text().splitlines()[:40]
    lines.append(json.dumps({**_INTENT, "ts": "2026-03-02T14:30:30.101Z", "qty": "50"}))
    lines.append(json.dumps({**_INTENT, "ts": "2026-03-02T14:30:31.101Z", "qty": "60"}))
    events = out / "dup.jsonl"
    events.write_text("\n".join(lines) + "\n")
    journal = out / "dup.db"
    ran = invoke("run", "--quiet", "--policy", str(demo_day / "policy.yaml"), "--journal",
                 str(journal), *extra, str(events))
    assert ran.code == 0, ran.output
    return journal


@pytest.fixture(scope="module")
def dup_journal(demo_day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _dup_journal(demo_day, tmp_path_factory.mktemp("dup"))


def _noted(journal_path: Path) -> list[tuple[str, int]]:
    journal = read(journal_path)
    try:
        return [pair for record in journal.read() if record.kind is RecordKind.META
                for note in [decode_latencies(record.payload)] if note is not None
                for pair in note.latencies]
    finally:
        journal.close()


def test_show_gives_every_decision_of_an_intent_id_sent_twice(dup_journal: Path) -> None:
    shown = invoke("decisions", "--journal", str(dup_journal), "--show", "dup-1")
    assert shown.code == 0, shown.output
    assert "dup-1 was decided 2 times" in shown.output
    assert "intent dup-1: ALLOW" in shown.output
    assert "intent dup-1: DENY DUP-003" in shown.output
    assert "differs in qty" in shown.output
    assert "this journal predates decision records" not in shown.output


def test_find_decisions_returns_both_in_journal_order(dup_journal: Path) -> None:
    journal = read(dup_journal)
    try:
        found = find_decisions(journal, "dup-1")
    finally:
        journal.close()
    assert [detail.decision.decision.value for detail in found] == ["ALLOW", "DENY"]
    assert found[0].seq < found[1].seq
    assert found[0].record is not None and found[0].limits is not None
    assert [detail.latency_ns for detail in found] == [ns for _, ns in _noted(dup_journal)]


def test_each_decision_of_a_reused_intent_id_keeps_its_own_latency(dup_journal: Path) -> None:
    journal = read(dup_journal)
    try:
        rows = list(iter_decisions(journal))
    finally:
        journal.close()
    noted = _noted(dup_journal)
    assert [pair[0] for pair in noted] == ["dup-1", "dup-1"]
    assert [(row.intent_id, row.decision) for row in rows] == [("dup-1", "ALLOW"),
                                                                ("dup-1", "DENY")]
    assert [row.latency_ns for row in rows] == [ns for _, ns in noted]


def test_a_batch_without_its_latency_note_does_not_take_the_next_batchs(
        demo_day: Path, tmp_path: Path) -> None:
    # One event per batch: each intent has its own note. Removing the first one is what a
    # crash between the decision and the note leaves.
    journal_path = _dup_journal(demo_day, tmp_path, "--batch-size", "1")
    second = _noted(journal_path)[1][1]
    with sqlite3.connect(journal_path) as db:
        seq = db.execute("select min(seq) from journal_records where kind = 'meta' and "
                         "cast(payload as text) like '{\"type\":\"evidence.latency\"%'").fetchone()
        db.execute("delete from journal_records where seq = ?", seq)
    journal = read(journal_path)
    try:
        rows = list(iter_decisions(journal))
        found = find_decisions(journal, "dup-1")
    finally:
        journal.close()
    assert [row.latency_ns for row in rows] == [None, second]
    assert [detail.latency_ns for detail in found] == [None, second]
