"""GET /v1/decisions/{intent_id} answers the full record of every intent the gateway decided,
also once the bounded decision index has let it go (in this process, or at a restart that
rebuilt the index from the newest records only): the record is read back from the journal
through a reader of its own, only on a miss; each scan reads only what the index let go since
the previous one, and ids never decided are answered without reading again. Against a real
gateway (SQLite journal, or PostgreSQL; simulator broker, uvicorn on 127.0.0.1) whose index
holds only a few decisions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.service.bridge import DecisionIndex
from ordergate.service.journal_lookup import JournalDecisions
from service.support import (
    OPERATOR,
    OTHER_POLICY,
    TRADER,
    TRADER_B,
    VIEWER,
    Served,
    auth,
    intent,
    start,
)
from service.test_idempotency_eviction import CAPACITY, decide_past_capacity, post, start_small


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Served]:
    served = start_small(tmp_path)
    yield served
    served.stop()


def view(served: Served, intent_id: str, token: str = VIEWER) -> httpx.Response:
    return httpx.get(f"{served.url}/v1/decisions/{intent_id}", headers=auth(token), timeout=10.0)


def stored_last_seq(served: Served) -> int:
    """The newest record committed to the journal file (what another reader sees)."""
    reader = open_journal(served.journal_url, durability=Durability.NONE, create=False,
                          reader=True)
    try:
        return reader.last_seq()
    finally:
        reader.close()


def last_seq(served: Served) -> int:
    return served.gateway.runtime.journal.last_seq()


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


def test_the_journal_is_read_only_on_a_miss_and_each_record_once(small: Served) -> None:
    lookups = small.gateway.journal_decisions
    post(small, intent("early", qty="3"))
    assert view(small, "never-sent").status_code == 404
    assert lookups.scans == 0  # the index still holds every decision: nothing to read
    decide_past_capacity(small)
    record_of(small, "filler-29")  # still in the index
    assert lookups.scans == 0
    first = record_of(small, "early")
    assert record_of(small, "early") == first
    assert view(small, "never-sent").status_code == 404
    assert lookups.scans == 1  # one scan up to the index's oldest decision answers them all
    for n in range(2 * CAPACITY):  # the index lets more go: only those are read
        post(small, intent(f"later-{n}", qty="1", seconds=2))
    assert view(small, "never-sent").status_code == 404
    assert record_of(small, "early") == first
    assert record_of(small, "later-0") == record_of(small, "later-0")
    assert lookups.scans == 2
    # No record was read twice but the step of the decision each scan stopped at, and the
    # decisions the index still holds were never read.
    assert lookups.scanned_records < last_seq(small) - CAPACITY


def test_misses_of_ids_never_decided_cost_one_scan_of_what_the_index_let_go(
        small: Served) -> None:
    decide_past_capacity(small)
    lookups = small.gateway.journal_decisions
    for n in range(50):
        assert view(small, f"typo-{n:03d}").status_code == 404
    assert lookups.scans == 1
    scanned = lookups.scanned_records
    assert 0 < scanned < last_seq(small) - CAPACITY  # up to the index's oldest, not beyond
    for n in range(50):  # nothing more let go: nothing more read
        assert view(small, f"random-{n:03d}").status_code == 404
    assert (lookups.scans, lookups.scanned_records) == (1, scanned)
    assert lookups.remembered == 2 + 3 * CAPACITY - CAPACITY  # ids and seqs only, not records


def test_a_lookup_reads_the_journal_through_a_handle_of_its_own(small: Served) -> None:
    """A lookup must not commit what the engine thread has journaled but not yet flushed
    (the runtime's journal flushes in `read()`), nor use the writer's connection."""
    decide_past_capacity(small)
    runtime = small.gateway.runtime
    journal = runtime.journal

    def buffer_one() -> int:  # on the engine thread, as the runtime appends mid-batch
        return journal.append(RecordKind.META, b'{"type":"test.pending"}')

    pending = asyncio.run(small.gateway.bridge.call(buffer_one))
    assert stored_last_seq(small) == pending - 1
    assert record_of(small, "old-allow")["intent"]["qty"] == "7"
    assert small.gateway.journal_decisions.scans == 1
    assert stored_last_seq(small) == pending - 1  # still the engine thread's to commit
    asyncio.run(small.gateway.bridge.call(journal.flush))
    assert stored_last_seq(small) == pending


def test_the_decisions_remembered_are_bounded(small: Served) -> None:
    lookups = JournalDecisions(small.journal_url, max_remembered=10)
    small.gateway.ctx.journal_decisions = lookups
    try:
        decide_past_capacity(small)
        for n in range(2 * CAPACITY):
            post(small, intent(f"later-{n}", qty="1", seconds=2))
        assert lookups.remembered <= 10
        recent = record_of(small, "later-9")  # let go by the index, still remembered
        assert recent["intent"]["intent_id"] == "later-9"
        response = view(small, "old-allow")  # let go, and too old to be remembered
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert "older than" in detail and "keeps in memory" in detail
        assert "ordergate decisions --journal JOURNAL --show old-allow" in detail
        assert view(small, "old-allow", TRADER).json()["detail"] == (
            "no decision for intent_id 'old-allow'")
    finally:
        lookups.close()


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
        assert again == before  # with the run that decided it, as its journal records say
        assert again["run_id"] == first.gateway.ctx.run_id != second.gateway.ctx.run_id
        assert record_of(second, "old-allow")["decision"] == allowed["decision"]
        assert again["decision"] == denied["decision"]
    finally:
        second.stop()


def test_an_evicted_dry_run_decision_keeps_its_shadow(small: Served) -> None:
    response = httpx.post(f"{small.url}/v1/policy",
                          json={"document": OTHER_POLICY, "reason": "try it", "dry_run": True},
                          headers=auth(OPERATOR), timeout=10.0)
    assert response.status_code == 200, response.text
    post(small, intent("dry-1", qty="60"))  # allowed; the dry-run policy caps at 50
    full = record_of(small, "dry-1")
    assert full["shadow"]["blocking"] == "ORD-006" and full["shadow_differs"] is True
    for n in range(3 * CAPACITY):
        post(small, intent(f"filler-{n}", qty="1"))
    assert "dry-1" not in small.gateway.bridge.index
    assert record_of(small, "dry-1") == full


def sessions(postgres_url: str, application: str) -> int:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           (application,)).fetchone()
    return 0 if row is None else int(row[0])


def test_on_postgresql_a_lookup_reads_on_a_connection_of_its_own(postgres_url: str) -> None:
    application = f"og-lookup-{uuid.uuid4().hex[:8]}"
    served = start(Path(), journal_url=f"{postgres_url}&application_name={application}")
    try:
        index = DecisionIndex(capacity=CAPACITY)
        index.load_journal(served.gateway.runtime.journal.read(1))
        served.gateway.bridge.index = index
        decide_past_capacity(served)
        assert sessions(postgres_url, application) == 1  # the writer's
        assert record_of(served, "old-deny")["intent"]["qty"] == "5000"
        assert view(served, "never-sent").status_code == 404
        assert sessions(postgres_url, application) == 2  # the writer's and the reader's
    finally:
        served.stop()
