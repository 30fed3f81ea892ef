"""A standby waits for its shard's lease through PostgreSQL connection errors that may heal
(a dropped session, a server that refuses connections for a while), saying each in the log,
and gives up only on one that cannot heal (a missing database), saying so. A process that has
never reached the database (a journal URL with a wrong host or port) is no standby: `gateway`
and `serve` exit at once saying why, as they did before standbys waited through errors."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import structlog
from tests.scale.support import (
    append_lines,
    closed_port,
    demo_policy_path,
    event_lines,
    events_of,
    gateway_args,
    rows,
    wait_for,
)

from ordergate.cli.errors import EXIT_USER_ERROR
from ordergate.journal.lease import LeaseUnavailable, ShardLease
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import AccountFunding
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.runtime.shard import shard_url, wait_for_lease
from ordergate.service.auth import hash_token, new_token

START = utc(2026, 3, 2, 15, 0)


def _events(path: Path) -> None:
    append_lines(path, event_lines([
        AccountFunding(ts=START, account="ACC-1", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="AAPL", ts=START + timedelta(milliseconds=10),
                       bid=Decimal("189.95"), ask=Decimal("190.05"), last=Decimal("190.00"),
                       volume=Decimal(1000)),
        OrderIntent(intent_id="buy-1", ts=START + timedelta(milliseconds=100), account="ACC-1",
                    strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10)),
    ]))


def _terminate(postgres_url: str, application: str) -> int:
    """End every session of `application` (as pg_terminate_backend does to a standby when
    the database restarts or an administrator ends sessions); how many were ended."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = %s", (application,)).fetchone()
    return 0 if row is None else int(row[0])


@pytest.mark.postgres
def test_a_standby_keeps_waiting_through_dropped_connections_and_then_serves(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "east.jsonl"
    _events(source)
    owner = ShardLease(shard_url(postgres_url, "east"), "east")
    assert owner.acquire(timeout_s=10) == 1
    application = f"og-standby-{uuid.uuid4().hex[:8]}"  # names the standby's sessions
    log = tmp_path / "standby.log"
    with log.open("wb") as stderr:
        # -v: the log says when the database has answered that another process owns the shard
        standby = subprocess.Popen(gateway_args(source, postgres_url, "east", "-v"),
                                   stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "PGAPPNAME": application})
    try:
        wait_for(lambda: "shard.standby" in log.read_text(), 60, "the gateway waiting as standby")
        for attempt in range(3):
            wait_for(lambda: _terminate(postgres_url, application) > 0, 30,
                     f"ending the standby's session (time {attempt + 1})")
        wait_for(lambda: "shard.lease_wait_retry" in log.read_text(), 30,
                 "the standby saying it keeps waiting")
        assert standby.poll() is None, log.read_text()  # still waiting
    finally:
        owner.release()
    code = standby.wait(timeout=60)
    said = log.read_text()
    assert code == 0, said
    assert "lease acquisition failed" in said  # the driver's words, in the retry's log line
    decisions = events_of(rows(postgres_url, "east"), Decision)
    assert [(item.intent_id, item.decision) for item in decisions] == [
        ("buy-1", DecisionKind.ALLOW)]


def test_a_database_never_reached_is_no_standby_the_wait_ends_at_once() -> None:
    """Connection refused before the database ever answered: raised at the first attempt, not
    retried (the wait would end only with `stopping`, which this one says after a while)."""
    lease = ShardLease(f"postgresql://postgres@127.0.0.1:{closed_port()}/test?stream=east")
    asked: list[None] = []

    def stopping() -> bool:
        asked.append(None)
        return len(asked) > 40  # a few seconds of retries, were there any

    with structlog.testing.capture_logs() as logs, pytest.raises(LeaseUnavailable) as caught:
        wait_for_lease(lease, stopping=stopping)
    assert "cannot connect for the shard lease" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert not [entry for entry in logs if entry["event"] == "shard.lease_wait_retry"], logs


def _without_owner(*args: str) -> subprocess.CompletedProcess[str]:
    """`ordergate <args>`; the timeout only keeps a hung process from hanging the suite."""
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})


def test_gateway_with_a_journal_url_that_points_nowhere_exits_at_once(tmp_path: Path) -> None:
    source = tmp_path / "east.jsonl"
    _events(source)
    nowhere = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    done = _without_owner(*gateway_args(source, nowhere, "east")[3:])
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    said = " ".join(done.stderr.split())
    assert "cannot connect for the shard lease" in said and "Connection refused" in said, said
    assert "shard.lease_wait_retry" not in said and "Traceback" not in said, said


def test_serve_with_a_journal_url_that_points_nowhere_exits_at_once(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'tokens:\n  - name: screen\n    role: viewer\n    hash: '
                      f'"{hash_token(new_token())}"\n')
    nowhere = f"postgresql://postgres@127.0.0.1:{closed_port()}/test?stream=east"
    done = _without_owner("serve", "--policy", str(demo_policy_path()), "--journal", nowhere,
                          "--tokens", str(tokens), "--port", "0")
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    said = " ".join(done.stderr.split())
    assert "cannot connect for the shard lease" in said and "Connection refused" in said, said
    assert "shard.lease_wait_retry" not in said and "Traceback" not in said, said


@pytest.mark.postgres
def test_a_standby_gives_up_at_once_on_a_database_that_does_not_exist(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "east.jsonl"
    _events(source)
    missing = postgres_url.replace("/test?", f"/og_missing_{uuid.uuid4().hex[:8]}?", 1)
    assert missing != postgres_url
    done = subprocess.run(gateway_args(source, missing, "east"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    said = " ".join(done.stderr.split())
    assert "does not exist" in said and "asking again will not cure this" in said, said
    assert "Traceback" not in done.stderr
