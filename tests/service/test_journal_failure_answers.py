"""Nothing that is not durable is ever answered as decided. When the journal cannot be written,
the request whose batch failed is answered 503 "not durable, nothing was done"; a retry of the
same intent (the client retries a 503 by itself) gets the answer the stopped gateway gives
every new intent (503), never a decision the engine made in memory for the failed batch: it
was never journaled, no order was sent, and after a restart the intent is unknown.

The alert sinks hear of the failure (SYS-006) at once, in an alert that says it is not
journaled (the journal is what failed); the engine's mode change that goes with it too."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from ordergate.journal.urls import parse_journal_url
from ordergate.service.alerts import AlertNotice
from ordergate.service.bridge import JOURNAL_STOPPED_WORDS
from service.support import FEEDER, TRADER, Served, auth, intent, quote, start


class Recorded:
    """An alert sink that keeps what it is sent."""

    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    def send(self, notice: AlertNotice) -> None:
        self.notices.append(notice)

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class OwnRole:
    """A login role that is not a superuser (so a REVOKE applies to it), owning a stream."""

    name: str
    url: str
    superuser_url: str

    def as_superuser(self, sql: str) -> None:
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            conn.execute(sql.format(role=f'"{self.name}"'))


@pytest.fixture
def own_role(postgres_url: str) -> Iterator[OwnRole]:
    superuser_url = parse_journal_url(postgres_url).target
    name = f"og_ans_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'GRANT USAGE, CREATE ON SCHEMA "{schema[0]}" TO "{name}"')
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://{name}@", 1)
    assert url != postgres_url
    role = OwnRole(name, f"{url}&stream=desk-{uuid.uuid4().hex[:6]}", superuser_url)
    try:
        yield role
    finally:
        role.as_superuser("DROP OWNED BY {role}")
        role.as_superuser("DROP ROLE {role}")


def _refuse_writes(journal_url: str, event_type: str = "") -> None:
    """The SQLite journal refuses every later record (of `event_type`, when given), as a full
    or read-only disk would."""
    when = f"WHEN CAST(NEW.payload AS TEXT) LIKE '{{\"type\":\"{event_type}\"%' " \
        if event_type else ""
    with contextlib.closing(sqlite3.connect(journal_url.removeprefix("sqlite:///"))) as conn:
        conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON journal_records {when}"
                     "BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END")
        conn.commit()


def _refused_as_not_durable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["error"] == "unavailable", body
    # in plain words: not the server's journal location, record numbers or class names
    assert body["detail"] == f"not durable, nothing was done: {JOURNAL_STOPPED_WORDS}", body
    assert "journal could not be written" in body["detail"], body
    assert "replayed" not in body and "decision" not in body, body


@dataclass
class Breakable:
    """A gateway serving on a journal that `breakage` makes refuse every later write, with the
    alerts it raises."""

    served: Served
    breakage: Callable[[], None]
    alerts: Recorded


@pytest.fixture(params=["postgres", "sqlite"])
def breakable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Breakable]:
    alerts = Recorded()
    if request.param == "postgres":
        role: OwnRole = request.getfixturevalue("own_role")
        served = start(tmp_path, journal_url=role.url, alert_sinks=[alerts])
        breakage: Callable[[], None] = lambda: role.as_superuser(  # noqa: E731
            "REVOKE INSERT ON journal_records FROM {role}")
    else:
        served = start(tmp_path, alert_sinks=[alerts])
        breakage = lambda: _refuse_writes(served.journal_url)  # noqa: E731
    try:
        yield Breakable(served, breakage, alerts)
    finally:
        served.stop()


def _decided_then_broken(client: httpx.Client, gateway: Breakable) -> list[str]:
    """One intent decided and sent, then the journal broken: the orders sent."""
    ok = client.post("/v1/intents", json=intent("before"), headers=auth(TRADER))
    assert ok.status_code == 200 and ok.json()["decision"]["decision"] == "ALLOW", ok.text
    sent = gateway.served.sent()
    assert len(sent) == 1
    gateway.breakage()
    return sent


def test_a_retry_after_a_failed_write_is_refused_never_answered_from_memory(
        breakable: Breakable) -> None:
    served = breakable.served
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        sent = _decided_then_broken(client, breakable)
        failed = client.post("/v1/intents", json=intent("during", seconds=2),
                             headers=auth(TRADER))
        _refused_as_not_durable(failed)
        # The retries, as ordergate.Client sends them after a 503: the same intent, again.
        for _ in range(2):
            retried = client.post("/v1/intents", json=intent("during", seconds=2),
                                  headers=auth(TRADER))
            _refused_as_not_durable(retried)
        # In a batch beside the intent decided (durably) before the failure: refused whole;
        # the one decided before is still answered on its own, from what is durable.
        batch = client.post("/v1/intents", json={"intents": [intent("before"),
                                                             intent("during", seconds=2)]},
                            headers=auth(TRADER))
        _refused_as_not_durable(batch)
        before = client.post("/v1/intents", json=intent("before"), headers=auth(TRADER))
        assert before.status_code == 200 and before.json()["replayed"] is True, before.text
        assert client.get("/v1/decisions/during", headers=auth(TRADER)).status_code == 404
    assert served.sent() == sent


def test_a_failed_write_raises_an_alert_that_says_it_is_not_journaled(
        breakable: Breakable) -> None:
    with httpx.Client(base_url=breakable.served.url, timeout=10.0) as client:
        _decided_then_broken(client, breakable)
        failed = client.post("/v1/intents", json=intent("during", seconds=2),
                             headers=auth(TRADER))
        _refused_as_not_durable(failed)
        again = client.post("/v1/intents", json=intent("later", seconds=3),
                            headers=auth(TRADER))
        assert again.status_code == 503, again.text
    notices = breakable.alerts.notices
    failures = [notice for notice in notices if notice.kind == "journal_failed"]
    assert len(failures) == 1, notices  # once, not again for every request refused after
    failure = failures[0]
    assert failure.severity == "critical" and failure.code == "SYS-006", failure
    assert "journal could not be written" in failure.message, failure
    assert "refused (503)" in failure.message, failure
    assert "not journaled" in failure.message, failure
    assert failure.mode == "STOPPED", failure  # not the REDUCE_ONLY the engine tightened to
    changes = [notice for notice in notices if notice.kind == "mode_change"
               and notice.code == "SYS-006"]
    assert [(change.mode, change.severity) for change in changes] == [
        ("STOPPED", "critical")], notices
    assert "gateway STOPPED (the engine's mode ACTIVE -> REDUCE_ONLY" in changes[0].message, \
        changes
    assert "not journaled" in changes[0].message, changes


def test_what_the_failed_batch_made_durable_before_the_failure_is_alerted_too(
        tmp_path: Path) -> None:
    alerts = Recorded()
    # A new journal: the first batch served activates the policy (durable, in a write of its
    # own), then its quote is refused.
    served = start(tmp_path, alert_sinks=[alerts], fund=False)
    try:
        _refuse_writes(served.journal_url, "market")
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            refused = client.post("/v1/market", json=quote("AAPL", "100.00"),
                                  headers=auth(FEEDER))
        assert refused.status_code == 503, refused.text
    finally:
        served.stop()
    kinds = [(notice.kind, notice.code) for notice in alerts.notices]
    assert ("journal_failed", "SYS-006") in kinds, kinds
    assert ("engine", "POLICY_ACTIVATED") in kinds, kinds
