"""`ordergate gateway` proves its shard's journal before it acts on it, as `serve` and `run` do:
a record edited, given an unknown kind or made unreadable in the PostgreSQL table stops it with
a safety stop (exit 3) naming the record, in `serve`'s words, before anything is decided, sent
or journaled; and a standby that takes the lease over checks the journal when it does."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import psycopg
import pytest
from tests.evidence.support import Cli, invoke
from tests.scale.support import append_lines, demo_policy_path, event_lines, wait_for

from ordergate.brokers.sim import SimBroker
from ordergate.journal import redact_url
from ordergate.model.events import AccountFunding
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.health import StartRefused
from ordergate.runtime.shard import ShardConfig, ShardGateway, ShardStats, shard_url

pytestmark = pytest.mark.postgres

START = utc(2026, 3, 2, 15, 0)
SHARD = "east"
CANNOT_PROVE = ("the gateway will not start on a journal it cannot prove (restore it from a "
                "replica or start a new one)")


def _opening(source: Path) -> None:
    append_lines(source, event_lines([
        AccountFunding(ts=START, account="ACC-E", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="AAPL", ts=START + timedelta(milliseconds=10),
                       bid=Decimal("189.95"), ask=Decimal("190.05"), last=Decimal("190.00"),
                       volume=Decimal(1000))]))


def _buy(intent_id: str) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=START + timedelta(seconds=1), account="ACC-E",
                       strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10))


def _serve_once(config: ShardConfig) -> ShardStats:
    return ShardGateway(config, load_policy(demo_policy_path()), SimBroker).run()


def _funding_seq(postgres_url: str) -> int | None:
    """The seq of the account's funding record, once it is journaled."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        made = conn.execute("SELECT to_regclass('journal_records') IS NOT NULL").fetchone()
        if made is None or not made[0]:
            return None
        row = conn.execute(
            "SELECT seq FROM journal_records WHERE stream = %s AND kind = 'in' "
            "AND convert_from(payload, 'UTF8') LIKE '%%\"type\":\"account\"%%'",
            (SHARD,)).fetchone()
    return None if row is None else int(row[0])


def _tamper(postgres_url: str, how: str) -> int:
    """Change the account's funding record in the table, as someone with the database's
    credentials could; its seq."""
    seq = _funding_seq(postgres_url)
    assert seq is not None
    change = {
        "edited": "UPDATE journal_records SET payload = convert_to(replace(convert_from("
                  "payload, 'UTF8'), '1000000', '2000000'), 'UTF8')",
        "unknown kind": "UPDATE journal_records SET kind = 'bogus'",
        "unreadable": "UPDATE journal_records SET payload = convert_to('{not json', 'UTF8')",
    }[how]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(change + " WHERE stream = %s AND seq = %s", (SHARD, seq))
    return seq


def _records(postgres_url: str) -> int:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM journal_records WHERE stream = %s",
                           (SHARD,)).fetchone()
    assert row is not None
    return int(row[0])


def _gateway_command(source: Path, postgres_url: str) -> Cli:
    """`ordergate gateway` in this process, its SIGTERM and SIGINT handlers (which stop the
    gateway it served) put back as they were afterwards."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return invoke("gateway", str(source), "--policy", str(demo_policy_path()), "--journal",
                      postgres_url, "--shard", SHARD, "--quiet")
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("how", ["edited", "unknown kind", "unreadable"])
def test_gateway_refuses_a_tampered_journal_as_serve_does(
        postgres_url: str, tmp_path: Path, how: str) -> None:
    source = tmp_path / "east.jsonl"
    _opening(source)
    assert _serve_once(ShardConfig(journal_url=postgres_url, shard=SHARD,
                                   events=source)).stopped_by == "end_of_source"
    seq = _tamper(postgres_url, how)
    append_lines(source, event_lines([_buy("e-1")]))  # would be decided on the edited cash
    before = _records(postgres_url)

    result = _gateway_command(source, postgres_url)

    assert result.code == 3, result.output
    said = result.output.strip().splitlines()[-1]
    where = redact_url(shard_url(postgres_url, SHARD))
    assert said.startswith(f"{where}: journal verification failed at seq {seq}: record {seq}: "),\
        said
    assert said.endswith(CANNOT_PROVE), said
    if how == "edited":
        assert "stored hash does not match its contents (a field was edited)" in said, said
    assert "version that wrote it" not in result.output
    assert "2,000,000" not in result.output  # no summary of the state the edit made
    assert _records(postgres_url) == before  # nothing decided, sent or journaled


def test_a_standby_taking_over_refuses_a_journal_tampered_while_it_waited(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "east.jsonl"
    _opening(source)
    # a long lease: the owner keeps it on a busy machine until it is stopped
    config = ShardConfig(journal_url=postgres_url, shard=SHARD, events=source, follow=True,
                         idle_poll_s=0.01, lease_ttl_s=60.0)
    owner = ShardGateway(config, load_policy(demo_policy_path()), SimBroker)
    standby = ShardGateway(config, load_policy(demo_policy_path()), SimBroker)
    owner_stats: list[ShardStats] = []
    refused: list[StartRefused] = []

    def take_over() -> None:
        try:
            standby.run()
        except StartRefused as exc:
            refused.append(exc)

    owner_thread = threading.Thread(target=lambda: owner_stats.append(owner.run()),
                                    daemon=True)
    standby_thread = threading.Thread(target=take_over, daemon=True)
    owner_thread.start()
    try:
        wait_for(partial(_funding_seq, postgres_url), 30, "the owner journaling the funding")
        standby_thread.start()
        seq = _tamper(postgres_url, "edited")
        owner.stop()
        owner_thread.join(timeout=30)
        assert owner_stats and owner_stats[0].stopped_by == "stopped"  # it held the lease
        before = _records(postgres_url)
        append_lines(source, event_lines([_buy("e-1")]))
        standby_thread.join(timeout=30)
    finally:  # whatever failed, neither keeps serving
        owner.stop()
        standby.stop()
        owner_thread.join(timeout=30)
        if standby_thread.is_alive():
            standby_thread.join(timeout=30)

    assert standby.stats.epoch == owner.stats.epoch + 1  # it took the lease over
    assert len(refused) == 1, "the standby served a journal it cannot prove"
    assert f"journal verification failed at seq {seq}" in str(refused[0])
    assert standby.runtime is None
    assert _records(postgres_url) == before
