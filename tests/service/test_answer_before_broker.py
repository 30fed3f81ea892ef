"""POST /v1/intents answers as soon as the decisions are durable: the caller does not wait for
the broker round trip or for the broker's answers to be journaled. Here the broker's submit is
held until the test lets it go: the decision arrives while the order is still on its way, it
is already in the journal, and releasing the broker sends the order exactly once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import httpx
import pytest

from ordergate.brokers.base import SubmitResult
from ordergate.model.events import Dispatch
from service.support import TRADER, Served, auth, intent, start


@pytest.fixture
def held(tmp_path: object) -> Iterator[tuple[Served, threading.Event, threading.Event]]:
    served = start(tmp_path)  # type: ignore[arg-type]
    entered, release = threading.Event(), threading.Event()
    submit = served.broker.submit

    def held_submit(order: Dispatch) -> SubmitResult:
        entered.set()
        release.wait(30)
        return submit(order)

    served.broker.submit = held_submit  # type: ignore[method-assign]
    try:
        yield served, entered, release
    finally:
        release.set()
        served.stop()


def _journaled_kinds(served: Served) -> list[str]:
    path = served.journal_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return [bytes(payload).decode() for (payload,) in conn.execute(
            "SELECT payload FROM journal_records WHERE kind = 'out'")]


def test_the_decision_is_answered_while_the_order_is_still_with_the_broker(
        held: tuple[Served, threading.Event, threading.Event]) -> None:
    served, entered, release = held
    with httpx.Client(base_url=served.url, timeout=20.0) as client:
        response = client.post("/v1/intents", json=intent("early-1"), headers=auth(TRADER))
    assert response.status_code == 200, response.text
    assert response.json()["decision"]["decision"] == "ALLOW"
    # The broker has the order in hand (or is about to) and has not answered: nothing sent.
    assert entered.wait(20)
    assert served.broker.submissions() == []
    # What the caller was told is durable: another connection reads it from the journal.
    outputs = _journaled_kinds(served)
    assert any('"type":"decision"' in out and '"early-1"' in out for out in outputs)
    assert any('"type":"dispatch"' in out and '"early-1"' in out for out in outputs)

    release.set()
    with httpx.Client(base_url=served.url, timeout=20.0) as client:
        retry = client.post("/v1/intents", json=intent("early-1"), headers=auth(TRADER))
    assert retry.status_code == 200 and retry.json()["decision"]["decision"] == "ALLOW"
    sent = served.sent()
    assert len(sent) == 1, sent
