"""GET /v1/decisions/{intent_id} answers the full record of every intent the gateway decided,
also once the bounded decision index has let it go (in this process, or at a restart that
rebuilt the index from the newest records only): the record is read back from the journal,
only on a miss, one scan at a time, and remembered. Against a real gateway (SQLite journal,
simulator broker, uvicorn on 127.0.0.1) whose index holds only a few decisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.support import OPERATOR, OTHER_POLICY, TRADER, TRADER_B, VIEWER, Served, auth, intent
from service.test_idempotency_eviction import CAPACITY, decide_past_capacity, post, start_small


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Served]:
    served = start_small(tmp_path)
    yield served
    served.stop()


def view(served: Served, intent_id: str, token: str = VIEWER) -> httpx.Response:
    return httpx.get(f"{served.url}/v1/decisions/{intent_id}", headers=auth(token), timeout=10.0)


def record_of(served: Served, intent_id: str, token: str = VIEWER) -> dict[str, Any]:
    response = view(served, intent_id, token)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def test_an_evicted_decision_is_still_served_in_full(small: Served) -> None:
    post(small, intent("old-allow", qty="7"))
    full = record_of(small, "old-allow")  # from the index, while it still holds it
    denied = post(small, intent("old-deny", qty="5000"))
    for n in range(3 * CAPACITY):
        post(small, intent(f"filler-{n}", qty="1"))
    index = small.gateway.bridge.index
    assert "old-allow" not in index and "old-deny" not in index

    assert record_of(small, "old-allow") == full
    assert record_of(small, "old-allow", TRADER) == full  # a trader sees its own account's
    answer = record_of(small, "old-deny")
    assert answer["decision"] == denied["decision"]
    assert answer["intent"]["qty"] == "5000" and answer["intent"]["account"] == "ACC-1"
    assert answer["shadow"] is None and answer["shadow_differs"] is False


def test_another_desk_cannot_read_an_evicted_decision(small: Served) -> None:
    decide_past_capacity(small)
    response = view(small, "old-allow", TRADER_B)
    assert response.status_code == 404
    assert response.json()["detail"] == "no decision for intent_id 'old-allow'"


def test_an_intent_never_decided_is_still_not_found(small: Served) -> None:
    decide_past_capacity(small)
    assert view(small, "never-sent").status_code == 404


def test_the_journal_is_read_only_on_a_miss_and_once_per_intent(small: Served) -> None:
    lookups = small.gateway.ctx.journal_decisions
    post(small, intent("early", qty="3"))
    assert view(small, "never-sent").status_code == 404
    assert lookups.scans == 0  # the index still holds every decision: nothing to read
    decide_past_capacity(small)
    record_of(small, "filler-29")  # still in the index
    assert lookups.scans == 0
    first = record_of(small, "early")
    assert record_of(small, "early") == first
    assert view(small, "never-sent").status_code == 404
    assert view(small, "never-sent").status_code == 404
    assert lookups.scans == 2
    for n in range(2 * CAPACITY):  # the index lets more go: the unknown id is looked up again
        post(small, intent(f"later-{n}", qty="1", seconds=2))
    assert view(small, "never-sent").status_code == 404
    assert record_of(small, "early") == first
    assert lookups.scans == 3


def test_after_a_restart_an_evicted_decision_is_read_from_the_journal(tmp_path: Path) -> None:
    first = start_small(tmp_path)
    try:
        allowed, denied = decide_past_capacity(first)
        before = record_of(first, "old-deny")
    finally:
        first.stop()
    second = start_small(tmp_path)
    try:
        assert "old-deny" not in second.gateway.bridge.index
        again = record_of(second, "old-deny")
        assert again == {**before, "run_id": second.gateway.ctx.run_id}
        assert record_of(second, "old-allow")["decision"] == allowed["decision"]
        assert again["decision"] == denied["decision"]
    finally:
        second.stop()


def test_an_evicted_dry_run_decision_keeps_its_shadow(small: Served) -> None:
    response = httpx.post(f"{small.url}/v1/policy",
                          json={"document": OTHER_POLICY, "dry_run": True},
                          headers=auth(OPERATOR), timeout=10.0)
    assert response.status_code == 200, response.text
    post(small, intent("dry-1", qty="60"))  # allowed; the dry-run policy caps at 50
    full = record_of(small, "dry-1")
    assert full["shadow"]["blocking"] == "ORD-006" and full["shadow_differs"] is True
    for n in range(3 * CAPACITY):
        post(small, intent(f"filler-{n}", qty="1"))
    assert "dry-1" not in small.gateway.bridge.index
    assert record_of(small, "dry-1") == full
