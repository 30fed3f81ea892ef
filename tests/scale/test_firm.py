"""Firm-wide limits in Redis, through real gateways: the kill switch reaches every gateway
within a heartbeat, shards see each other's gross exposure, the firm order rate is shared,
and an unreachable Redis fails closed (REDUCE_ONLY, SYS-007 saying which store and why)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from tests.scale.support import (
    append_lines,
    closed_port,
    demo_policy_path,
    event_lines,
    events_of,
    gateway_args,
    rows,
    start,
    stop,
    wait_for,
)

from ordergate.brokers.sim import SimBroker
from ordergate.evidence.replay import verify_journal
from ordergate.journal import open_journal
from ordergate.journal.lease import ShardLease
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import (
    AccountFunding,
    DependencyStatus,
    FirmRateLimited,
    FirmState,
    InputEvent,
    ModeChanged,
)
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.firm import FirmRate, FirmStore
from ordergate.runtime.shard import FirmSettings, ShardConfig, ShardGateway, shard_url

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

START = utc(2026, 3, 2, 15, 0)
HEARTBEAT_TTL = "1.5"  # heartbeats (and firm polls) every 0.5 s
KILL_BOUND_S = 5.0


def _prefix() -> str:
    return os.environ["ORDERGATE_TEST_REDIS_PREFIX"]


def _quote(ts: datetime, price: str = "190.00") -> MarketSnapshot:
    mid = Decimal(price)
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=mid - Decimal("0.05"),
                          ask=mid + Decimal("0.05"), last=mid, volume=Decimal(1000))


def _intent(intent_id: str, account: str, ts: datetime, qty: int, *,
            symbol: str = "AAPL", side: Side = Side.BUY) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account=account, strategy="trend",
                       symbol=symbol, side=side, qty=Decimal(qty))


def _opening(account: str) -> list[InputEvent]:
    return [AccountFunding(ts=START, account=account, cash=Decimal(1_000_000)),
            _quote(START + timedelta(milliseconds=10))]


def _decision(postgres_url: str, shard: str, intent_id: str) -> Decision | None:
    for decision in events_of(rows(postgres_url, shard), Decision):
        if decision.intent_id == intent_id:
            return decision  # type: ignore[no-any-return]
    return None


def _firm_states(postgres_url: str, shard: str) -> list[FirmState]:
    return events_of(rows(postgres_url, shard), FirmState)


def _killed(postgres_url: str, shard: str) -> bool:
    return any(state.kill for state in _firm_states(postgres_url, shard))


def test_firm_kill_set_in_redis_reaches_two_gateways_within_a_heartbeat(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    shards = {"east": "ACC-E", "west": "ACC-W"}
    gateways = {}
    try:
        for shard, account in shards.items():
            source = tmp_path / f"{shard}.jsonl"
            append_lines(source, event_lines([
                *_opening(account),
                _intent(f"{shard}-1", account, START + timedelta(milliseconds=100), 10)]))
            gateways[shard] = start(
                gateway_args(source, postgres_url, shard, "--follow", "--lease-ttl",
                             HEARTBEAT_TTL, "--redis", redis_url, "--redis-prefix", _prefix()),
                tmp_path / f"{shard}.log")
        for shard in shards:
            first = wait_for(partial(_decision, postgres_url, shard, f"{shard}-1"), 30,
                             f"{shard}'s first decision")
            assert first.decision is DecisionKind.ALLOW

        # Each shard publishes its gross; the other one journals it as the firm's.
        store = FirmStore(redis_url, "observer", prefix=_prefix())
        try:
            published = wait_for(lambda: (lambda g: g if len(g) == 2 and all(g.values())
                                          else None)(store.published()), 10,
                                 "both shards publishing their gross exposure")
        finally:
            store.close()
        assert published["east"] == Decimal(1900)  # 10 AAPL marked at the 190.00 mid
        wait_for(lambda: any(state.gross_exposure == published["east"]
                             for state in _firm_states(postgres_url, "west")), 10,
                 "west journaling east's gross exposure")

        engaged = subprocess.run(
            [sys.executable, "-m", "ordergate.cli.main", "firm", "kill", "--operator", "risk",
             "--reason", "drill", "--redis", redis_url, "--redis-prefix", _prefix()],
            capture_output=True, timeout=60)
        assert engaged.returncode == 0, engaged.stderr
        engaged_at = time.monotonic()
        for shard in shards:
            wait_for(partial(_killed, postgres_url, shard),
                     KILL_BOUND_S, f"{shard} journaling the firm kill")
        reached_s = time.monotonic() - engaged_at
        assert reached_s < KILL_BOUND_S

        later = START + timedelta(seconds=2)
        for shard, account in shards.items():
            append_lines(tmp_path / f"{shard}.jsonl", event_lines([
                _quote(later), _intent(f"{shard}-2", account, later + timedelta(
                    milliseconds=100), 5, side=Side.SELL)]))
        for shard in shards:
            decision = wait_for(partial(_decision, postgres_url, shard, f"{shard}-2"), 30,
                                f"{shard}'s intent after the kill")
            # even a risk-reducing sell: a kill switch is a hard gate
            assert decision.decision is DecisionKind.DENY
            assert decision.blocking == "KIL-003"
            kill = next(state for state in _firm_states(postgres_url, shard) if state.kill)
            assert kill.detail == "risk: drill (firm kill #1)"  # numbered by the store
    finally:
        codes = {shard: stop(process) for shard, process in gateways.items()}
    assert codes == {"east": 0, "west": 0}


def test_unreachable_redis_puts_the_gateway_in_reduce_only_saying_which_store_and_why(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "shard.jsonl"
    append_lines(source, event_lines([
        *_opening("ACC-1"), _intent("buy-1", "ACC-1", START + timedelta(milliseconds=100), 10)]))
    port = closed_port()
    done = subprocess.run(
        gateway_args(source, postgres_url, "solo", "--redis",
                     f"redis://127.0.0.1:{port}/0", "--redis-prefix", "og:"),
        capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = rows(postgres_url, "solo")
    status = events_of(records, DependencyStatus)
    assert [(s.dependency, s.healthy, s.code) for s in status] == [("redis", False, "SYS-007")]
    said = status[0].detail
    assert said.startswith(f"the firm limits store at redis://127.0.0.1:{port}/0 cannot be "
                           "reached ("), said
    assert "Connection refused" in said and "CIRCUIT_OPEN" not in said, said
    changes = events_of(records, ModeChanged)
    assert changes and changes[-1].mode is Mode.REDUCE_ONLY
    assert any(reason.code == "SYS-007" and reason.detail == f"redis: {said}"
               for reason in changes[-1].reasons)
    decision = _decision(postgres_url, "solo", "buy-1")
    assert decision is not None and decision.decision is DecisionKind.DENY
    assert not events_of(records, FirmState), "nothing was known of the firm"


def _run_shard(postgres_url: str, redis_url: str, tmp_path: Path, shard: str,
               events: list[InputEvent], rate: FirmRate) -> None:
    source = tmp_path / f"{shard}.jsonl"
    append_lines(source, event_lines(events))
    config = ShardConfig(journal_url=postgres_url, shard=shard, events=source, batch_size=64,
                         firm=FirmSettings(redis_url=redis_url, prefix=_prefix(), rate=rate))
    gateway = ShardGateway(config, load_policy(demo_policy_path()), SimBroker)
    stats = gateway.run()
    assert stats.stopped_by == "end_of_source"


def test_firm_order_rate_is_shared_by_shards_and_replays_without_redis(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    rate = FirmRate(max_orders=4, window=timedelta(minutes=5))
    at = START + timedelta(milliseconds=100)
    east = [*_opening("ACC-E"),
            # no quote for GME: denied by the gate, so its firm slot is given back
            _intent("e-0", "ACC-E", at, 1, symbol="GME"),
            *(_intent(f"e-{n}", "ACC-E", at + timedelta(milliseconds=n), n) for n in (1, 2, 3))]
    west = [*_opening("ACC-W"),
            *(_intent(f"w-{n}", "ACC-W", at + timedelta(milliseconds=n), n) for n in (1, 2, 3))]
    _run_shard(postgres_url, redis_url, tmp_path, "east", east, rate)
    _run_shard(postgres_url, redis_url, tmp_path, "west", west, rate)

    kinds = {}
    for shard in ("east", "west"):
        for decision in events_of(rows(postgres_url, shard), Decision):
            kinds[decision.intent_id] = (decision.decision, decision.blocking)
    assert kinds == {
        "e-0": (DecisionKind.DENY, "SYS-001"),
        "e-1": (DecisionKind.ALLOW, ""), "e-2": (DecisionKind.ALLOW, ""),
        "e-3": (DecisionKind.ALLOW, ""),
        "w-1": (DecisionKind.ALLOW, ""),
        "w-2": (DecisionKind.DENY, "THR-007"), "w-3": (DecisionKind.DENY, "THR-007"),
    }
    limited = events_of(rows(postgres_url, "west"), FirmRateLimited)
    assert [(item.intent_id, item.count, item.max_count) for item in limited] == [
        ("w-2", 4, 4), ("w-3", 4, 4)]

    # The refusals are journaled inputs: replay decides the same without asking Redis.
    url = shard_url(postgres_url, "west")
    lease = ShardLease(url, "west")
    epoch = lease.acquire(timeout_s=5)
    journal = open_journal(url, epoch=epoch, create=False)
    try:
        report = verify_journal(journal)
    finally:
        journal.close()
        lease.release()
    assert report.ok, report.message
    assert report.decisions == 3 and report.decisions_reproduced == 3
