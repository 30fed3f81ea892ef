"""A retried intent gets its original decision even after the bounded decision index has let
it go: the engine remembers what it decided, so the retry is answered `replayed`, nothing new
is journaled for it and no second order reaches the broker. Against a real gateway (SQLite
journal, simulator broker, uvicorn on 127.0.0.1) whose index holds only a few decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ordergate.engine.ids import derive_client_order_id
from ordergate.journal import RecordKind, open_journal
from ordergate.model.decision import Decision
from ordergate.model.intent import OrderIntent, Side
from ordergate.runtime.loop import decode_input, decode_output
from ordergate.service.bridge import DecisionIndex
from service.support import TRADER, Served, auth, intent, start

CAPACITY = 10


def start_small(tmp_path: Path) -> Served:
    """A gateway whose decision index holds CAPACITY decisions (rebuilt from the journal,
    as the gateway rebuilds its own at start), swapped in before the first intent."""
    served = start(tmp_path)
    index = DecisionIndex(capacity=CAPACITY)
    index.load_journal(served.gateway.runtime.journal.read(1))
    served.gateway.bridge.index = index
    return served


def post(served: Served, body: object) -> dict[str, Any]:
    response = httpx.post(f"{served.url}/v1/intents", json=body, headers=auth(TRADER),
                          timeout=10.0)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def journaled(journal_url: str) -> tuple[Counter[str], Counter[str]]:
    """How many times each intent id was journaled as an input, and as a decision."""
    inputs: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    journal = open_journal(journal_url)
    try:
        for record in journal.read(1):
            if record.kind is RecordKind.INPUT and record.payload.startswith(b'{"type":"intent"'):
                event = decode_input(record.payload)
                assert isinstance(event, OrderIntent)
                inputs[event.intent_id] += 1
            elif record.kind is RecordKind.OUTPUT and record.payload.startswith(
                    b'{"type":"decision",'):
                output = decode_output(record.payload)
                assert isinstance(output, Decision)
                decisions[output.intent_id] += 1
    finally:
        journal.close()
    return inputs, decisions


def order_id(intent_id: str) -> str:
    return derive_client_order_id("ACC-1", "momo", intent_id)


def decide_past_capacity(served: Served) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ALLOW and a DENY, then enough other intents that the index lets both go."""
    allowed = post(served, intent("old-allow", qty="7"))
    denied = post(served, intent("old-deny", qty="5000"))  # over max_order_qty
    assert allowed["decision"]["decision"] == "ALLOW" and allowed["replayed"] is False
    assert denied["decision"]["blocking"] == "ORD-006" and denied["replayed"] is False
    for n in range(3 * CAPACITY):
        assert post(served, intent(f"filler-{n}", qty="1"))["replayed"] is False
    index = served.gateway.bridge.index
    assert "old-allow" not in index and "old-deny" not in index
    return allowed, denied


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Served]:
    served = start_small(tmp_path)
    yield served
    served.stop()


def test_retry_after_eviction_returns_the_original_decision_and_journals_nothing(
        small: Served) -> None:
    allowed, denied = decide_past_capacity(small)
    again_allowed = post(small, intent("old-allow", qty="7"))
    again_denied = post(small, intent("old-deny", qty="5000"))

    # The engine's memory of decided intents does not say which run decided: the serving
    # run's id answers, saying so.
    assert again_allowed == {**allowed, "replayed": True, "decision_run_known": False}
    assert again_denied == {**denied, "replayed": True, "decision_run_known": False}
    sent = small.sent()
    assert sent.count(order_id("old-allow")) == 1
    assert order_id("old-deny") not in sent
    assert small.gateway.bridge.stats.replayed == 2
    small.stop()
    inputs, decisions = journaled(small.journal_url)
    for intent_id in ("old-allow", "old-deny"):
        assert inputs[intent_id] == 1 and decisions[intent_id] == 1


def test_evicted_copies_in_one_batch_are_all_replays_beside_a_fresh_intent(
        small: Served) -> None:
    allowed, _ = decide_past_capacity(small)
    batch = post(small, {"intents": [intent("old-allow", qty="7"), intent("new-1", qty="2"),
                                     intent("old-allow", qty="7")]})

    results = batch["results"]
    assert [result["replayed"] for result in results] == [True, False, True]
    assert results[0]["decision"] == results[2]["decision"] == allowed["decision"]
    assert results[1]["decision"]["decision"] == "ALLOW"
    sent = small.sent()
    assert sent.count(order_id("old-allow")) == 1 and sent.count(order_id("new-1")) == 1
    small.stop()
    inputs, decisions = journaled(small.journal_url)
    assert inputs["old-allow"] == 1 and decisions["old-allow"] == 1
    assert inputs["new-1"] == 1 and decisions["new-1"] == 1


def test_retry_after_restart_past_the_index_returns_the_original_decision(
        tmp_path: Path) -> None:
    first = start_small(tmp_path)
    try:
        allowed, denied = decide_past_capacity(first)
    finally:
        first.stop()
    second = start_small(tmp_path)  # the index is rebuilt from the journal: only the newest
    try:
        assert "old-allow" not in second.gateway.bridge.index
        # Answered from the engine's memory, which does not say which run decided: under
        # the new process's run id, saying that it is not the deciding run's.
        run_id = second.gateway.ctx.run_id
        assert post(second, intent("old-allow", qty="7")) == {
            **allowed, "replayed": True, "run_id": run_id, "decision_run_known": False}
        assert post(second, intent("old-deny", qty="5000")) == {
            **denied, "replayed": True, "run_id": run_id, "decision_run_known": False}
        assert second.sent() == []  # the new process sent nothing
    finally:
        second.stop()
    inputs, decisions = journaled(second.journal_url)
    assert inputs["old-allow"] == 1 and decisions["old-allow"] == 1
    assert inputs["old-deny"] == 1 and decisions["old-deny"] == 1


def test_decision_bytes_are_those_journaled(small: Served) -> None:
    """The replayed answer's decision is the journaled one, byte for byte."""
    decide_past_capacity(small)
    again = post(small, intent("old-deny", qty="5000"))
    small.stop()
    journal = open_journal(small.journal_url)
    try:
        payloads = [record.payload for record in journal.read(1)
                    if record.kind is RecordKind.OUTPUT
                    and record.payload.startswith(b'{"type":"decision","intent_id":"old-deny"')]
    finally:
        journal.close()
    assert len(payloads) == 1
    assert msgspec.json.decode(payloads[0]) == {"type": "decision", **again["decision"]}


def post_conflict(served: Served, body: object) -> str:
    """Post an intent that must be refused 409 intent_id_conflict; its detail."""
    response = httpx.post(f"{served.url}/v1/intents", json=body, headers=auth(TRADER),
                          timeout=10.0)
    assert response.status_code == 409, response.text
    answer = response.json()
    assert answer["error"] == "intent_id_conflict"
    detail: str = answer["detail"]
    return detail


def test_a_different_intent_under_an_evicted_id_is_a_conflict_and_sends_nothing(
        small: Served) -> None:
    allowed, _ = decide_past_capacity(small)
    sent_before = small.sent()

    bigger = post_conflict(small, intent("old-allow", qty="900"))
    sold = post_conflict(small, intent("old-allow", qty="7", side=Side.SELL))
    in_a_batch = post_conflict(small, {"intents": [intent("new-2", qty="1"),
                                                   intent("old-allow", qty="8")]})

    # answered as while the decision was indexed: the fields that differ are named
    assert bigger.startswith("$.intent_id: 'old-allow' already names a different intent "
                             "(it differs in qty)")
    assert "(it differs in side)" in sold
    assert in_a_batch.startswith("$.intents[1].intent_id: 'old-allow' already names")
    assert small.sent() == sent_before  # no order, not even the batch's other intent
    # the exact retry, restamped, still gets the original decision
    again = post(small, intent("old-allow", qty="7", seconds=2.0))
    assert again == {**allowed, "replayed": True, "decision_run_known": False}
    small.stop()
    inputs, decisions = journaled(small.journal_url)
    assert inputs["old-allow"] == 1 and decisions["old-allow"] == 1
    assert inputs["new-2"] == 0


def test_a_different_intent_under_an_id_decided_before_a_restart_is_a_conflict(
        tmp_path: Path) -> None:
    first = start_small(tmp_path)
    try:
        decide_past_capacity(first)
    finally:
        first.stop()
    second = start_small(tmp_path)
    try:
        assert "old-allow" not in second.gateway.bridge.index
        assert "(it differs in qty)" in post_conflict(second, intent("old-allow", qty="900"))
        assert "(it differs in side, qty)" in post_conflict(
            second, intent("old-deny", qty="50", side=Side.SELL))
        assert second.sent() == []
    finally:
        second.stop()
    inputs, decisions = journaled(second.journal_url)
    assert inputs["old-allow"] == 1 and decisions["old-allow"] == 1
    assert inputs["old-deny"] == 1 and decisions["old-deny"] == 1
