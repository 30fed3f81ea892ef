"""GET /v1/health on a real server: ready only while the journal would accept a write now, the
broker is reachable and market data is present and fresh; otherwise 503 with the failing
check named. The journal check is a probe that adds nothing to the hash chain; why it failed
is logged, not shown to a caller without a token (it names the journal's file or database)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from structlog.testing import capture_logs

from ordergate.journal import open_journal
from ordergate.journal.lease import ShardLease
from ordergate.policy.loader import parse_policy
from ordergate.service.status import JOURNAL_REFUSES_WORDS
from service.support import (
    FEEDER,
    POLICY,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    quote,
    start,
)


def _health(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/v1/health")
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _last_seq(client: httpx.Client) -> int:
    seq: int = client.get("/v1/status", headers=auth(VIEWER)).json()["journal"]["last_seq"]
    return seq


def _journal_path(served: Served) -> Path:
    return Path(served.journal_url.removeprefix("sqlite:///"))


def _not_ready(client: httpx.Client, check: str) -> str:
    """The detail of the one failing `check`, after asserting readiness says so."""
    status, body = _health(client)
    assert status == 503, body
    assert body["live"] is True and body["ready"] is False
    failing = sorted(name for name, result in body["checks"].items() if not result["ok"])
    assert failing == [check], body
    detail: str = body["checks"][check]["detail"]
    assert detail
    return detail


def _journal_not_ready(client: httpx.Client, hidden: str) -> str:
    """Why the journal check failed, as the server logged it, after asserting that readiness
    says so in words that do not show `hidden` (where the journal is)."""
    with capture_logs() as logs:
        assert _not_ready(client, "journal") == JOURNAL_REFUSES_WORDS
        status, body = _health(client)  # asked again: logged again only if it changed
        assert status == 503 and hidden not in str(body), body
    logged = [entry["error"] for entry in logs if entry["event"] == "journal_not_writable"]
    assert logged and all(hidden in error for error in logged), logs
    assert all(before != after for before, after in pairwise(logged)), logged
    return " ".join(logged)


def test_health_probe_of_the_journal_adds_no_record(served: Served,
                                                    client: httpx.Client) -> None:
    before = _last_seq(client)
    for _ in range(5):
        status, body = _health(client)
        assert status == 200 and body["ready"] is True, body
    assert _last_seq(client) == before
    # The chain the probe ran against is intact and ends where it did.
    served.stop()
    journal_path = _journal_path(served)
    with contextlib.closing(open_journal(f"sqlite:///{journal_path}", create=False)) as journal:
        report = journal.verify()
        assert report.ok and journal.last_seq() == before


def test_journal_file_that_cannot_be_written_is_not_ready_before_any_write_fails(
        served: Served, client: httpx.Client) -> None:
    # The immutable flag stops even root (the tests' user) from writing the file.
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    path = _journal_path(served)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem does not support the immutable flag")
    try:
        assert "not writable" in _journal_not_ready(client, str(path))
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    status, body = _health(client)
    assert status == 200 and body["ready"] is True, body


def test_journal_file_moved_away_is_not_ready_and_the_log_names_it(
        served: Served, client: httpx.Client) -> None:
    path = _journal_path(served)
    before = _last_seq(client)
    os.rename(path, path.with_suffix(".moved"))  # a clean-up job takes the file away
    try:
        assert "gone" in _journal_not_ready(client, str(path))
        assert _last_seq(client) == before  # only probed: nothing was written or refused
    finally:
        os.rename(path.with_suffix(".moved"), path)


def test_unreachable_broker_is_not_ready_naming_the_broker(served: Served,
                                                           client: httpx.Client) -> None:
    served.broker.faults.fail_next_submits = 100  # every submit times out
    answer = client.post("/v1/intents", json=intent("broker-down"), headers=auth(TRADER))
    assert answer.status_code == 200 and answer.json()["decision"]["decision"] == "ALLOW"
    served.sent()  # the engine thread has tried the broker
    detail = _not_ready(client, "broker")
    assert "broker_submit" in detail
    # the submit and its resends failing opened the broker's breaker: named too
    assert "circuit:broker_submit" in detail


def test_missing_market_data_is_not_ready_naming_the_data(tmp_path: Path) -> None:
    served = start(tmp_path, fund=False)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            assert _not_ready(client, "data") == "no market data received yet"
    finally:
        served.stop()


def test_stale_market_data_is_not_ready_naming_the_symbol(tmp_path: Path) -> None:
    policy = parse_policy(POLICY.replace("max_market_data_age: 1d", "max_market_data_age: 3s"))
    served = start(tmp_path, policy=policy)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            status, body = _health(client)
            assert status == 200 and body["ready"] is True, body
            # AAPL is quoted 5 s later (within 5 s of the server's clock); MSFT's quote from
            # T0 is now older than 3 s.
            fresh = client.post("/v1/market", json=quote("AAPL", "100.00", seconds=5),
                                headers=auth(FEEDER))
            assert fresh.status_code == 200, fresh.text
            detail = _not_ready(client, "data")
            assert "stale market data" in detail and "MSFT" in detail
            assert "AAPL" not in detail
    finally:
        served.stop()


# ------------------------------------------------------------------ PostgreSQL journal


@pytest.fixture
def pg_served(postgres_url: str) -> Iterator[tuple[Served, str]]:
    """A gateway on a PostgreSQL journal whose session is named, so a test can find it."""
    application = f"og-health-{uuid.uuid4().hex[:8]}"
    served = start(Path(), journal_url=f"{postgres_url}&application_name={application}")
    try:
        yield served, application
    finally:
        served.stop()


def _database(served: Served, client: httpx.Client) -> str:
    """Where the journal is, as /v1/status shows it to a token holder (password masked)."""
    url: str = client.get("/v1/status", headers=auth(VIEWER)).json()["journal"]["url"]
    assert url.startswith("postgresql://") and url.split("@")[-1] in served.journal_url
    return url


def test_postgres_journal_fenced_by_a_newer_lease_is_not_ready(
        pg_served: tuple[Served, str], postgres_url: str) -> None:
    served, _ = pg_served
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        status, body = _health(client)
        assert status == 200 and body["ready"] is True, body
        before = _last_seq(client)
        # Another process takes the stream's lease: this writer may no longer append.
        with ShardLease(postgres_url) as lease:
            assert lease.acquire(timeout_s=5) == 1
            detail = _journal_not_ready(client, _database(served, client))
        assert "fenced" in detail and "stream 'default'" in detail
        assert _last_seq(client) == before


def test_postgres_journal_session_lost_is_not_ready(pg_served: tuple[Served, str],
                                                    postgres_url: str) -> None:
    served, application = pg_served
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        status, body = _health(client)
        assert status == 200 and body["ready"] is True, body
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s", (application,)).fetchone()
        assert ended == (1,)
        detail = _journal_not_ready(client, _database(served, client))
        assert "cannot be reached" in detail
