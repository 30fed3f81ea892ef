"""A decision is reported with the run that made it (architecture invariant 10: the run_id its
journal records carry), also by the next process on the same journal: an idempotent retry of
POST /v1/intents, GET /v1/decisions/{intent_id} and GET /v1/decisions answer the first run's
id after a restart, while a new decision carries the new run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ordergate.journal import RecordKind, open_journal
from service.support import TRADER, VIEWER, auth, intent, start


def _journaled_run_ids(journal_url: str, intent_id: str) -> set[str]:
    """The run_id of every record that names `intent_id` (its intent and decision)."""
    journal = open_journal(journal_url, create=False, reader=True)
    try:
        return {record.run_id for record in journal.read(1)
                if record.kind in (RecordKind.INPUT, RecordKind.OUTPUT)
                and f'"intent_id":"{intent_id}"'.encode() in record.payload}
    finally:
        journal.close()


def _get(url: str) -> dict[str, Any]:
    response = httpx.get(url, headers=auth(VIEWER), timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_after_a_restart_decisions_carry_the_run_that_made_them(tmp_path: Path) -> None:
    first = start(tmp_path)
    try:
        decided = httpx.post(f"{first.url}/v1/intents", json=intent("i-first"),
                             headers=auth(TRADER), timeout=10.0).json()
        first_run = first.gateway.ctx.run_id
    finally:
        first.stop()
    assert decided["run_id"] == first_run and decided["decision_run_known"] is True
    assert _journaled_run_ids(first.journal_url, "i-first") == {first_run}

    second = start(tmp_path)
    try:
        second_run = second.gateway.ctx.run_id
        assert second_run != first_run
        retried = httpx.post(f"{second.url}/v1/intents", json=intent("i-first"),
                             headers=auth(TRADER), timeout=10.0).json()
        assert retried == {**decided, "replayed": True}  # the first run's id, as journaled
        batch = httpx.post(f"{second.url}/v1/intents", headers=auth(TRADER), timeout=10.0,
                           json={"intents": [intent("i-first"), intent("i-second")]}).json()
        assert batch["run_id"] == second_run  # the run serving the request
        assert [r["run_id"] for r in batch["results"]] == [first_run, second_run]
        assert _get(f"{second.url}/v1/decisions/i-first")["run_id"] == first_run
        listed = {item["intent_id"]: item["run_id"]
                  for item in _get(f"{second.url}/v1/decisions")["items"]}
        assert listed == {"i-first": first_run, "i-second": second_run}
    finally:
        second.stop()
