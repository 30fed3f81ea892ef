"""Firm-wide limits that must hold however shards and operators use them: a reused intent_id
never frees another intent's firm-rate slot, a finished shard's gross still counts against the
firm cap, the firm kill switch's release says who and why, and a malformed --redis URL is
refused before anything is taken or written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.scale.support import (
    append_lines,
    demo_policy_path,
    event_lines,
    events_of,
    gateway_args,
    granted_epoch,
    rows,
)

from ordergate.brokers.sim import SimBroker
from ordergate.cli.errors import EXIT_SAFETY_STOP, EXIT_USER_ERROR
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import AccountFunding, FirmState, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.firm import FirmRate, FirmStore
from ordergate.runtime.shard import FirmSettings, ShardConfig, ShardGateway

START = utc(2026, 3, 2, 15, 0)
AT = START + timedelta(milliseconds=100)


def _prefix() -> str:
    return os.environ["ORDERGATE_TEST_REDIS_PREFIX"]


def _quote(ts: datetime) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=Decimal("189.95"), ask=Decimal("190.05"),
                          last=Decimal("190.00"), volume=Decimal(1000))


def _intent(intent_id: str, account: str, ts: datetime, qty: int, *,
            symbol: str = "AAPL") -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account=account, strategy="trend",
                       symbol=symbol, side=Side.BUY, qty=Decimal(qty))


def _opening(account: str) -> list[InputEvent]:
    return [AccountFunding(ts=START, account=account, cash=Decimal(1_000_000)),
            _quote(START + timedelta(milliseconds=10))]


def _firm_policy(tmp_path: Path) -> Path:
    """The demo policy with a firm gross cap of 100,000 that denies (no shrinking)."""
    text = demo_policy_path().read_text()
    text = text.replace("  max_gross_exposure: 3000000",
                        "  max_gross_exposure: 3000000\n  max_firm_gross_exposure: 100000", 1)
    text = text.replace("  exposure_modify: true", "  exposure_modify: false", 1)
    assert "max_firm_gross_exposure: 100000" in text and "exposure_modify: false" in text
    path = tmp_path / "firm_policy.yaml"
    path.write_text(text)
    return path


def _serve(postgres_url: str, redis_url: str, source: Path, shard: str, *,
           policy: Path | None = None, rate: FirmRate | None = None) -> None:
    config = ShardConfig(journal_url=postgres_url, shard=shard, events=source, batch_size=64,
                         firm=FirmSettings(redis_url=redis_url, prefix=_prefix(), rate=rate))
    gateway = ShardGateway(config, load_policy(policy or demo_policy_path()), SimBroker)
    assert gateway.run().stopped_by == "end_of_source"


def _decisions(postgres_url: str, shard: str) -> list[tuple[str, DecisionKind, str]]:
    return [(item.intent_id, item.decision, item.blocking)
            for item in events_of(rows(postgres_url, shard), Decision)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- firm order rate


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("same_batch", [True, False], ids=["same-batch", "next-batch"])
def test_a_reused_intent_id_never_frees_the_firm_rate_slot_of_the_intent_holding_it(
        postgres_url: str, redis_url: str, tmp_path: Path, same_batch: bool) -> None:
    rate = FirmRate(max_orders=3, window=timedelta(minutes=5))
    source = tmp_path / "east.jsonl"
    first = [*_opening("ACC-E"), _intent("a", "ACC-E", AT, 1)]
    rest = [_intent("a", "ACC-E", AT + timedelta(milliseconds=50), 7),  # same id, other qty
            *(_intent(name, "ACC-E", AT + timedelta(milliseconds=100 * (n + 1)), 2 + n)
              for n, name in enumerate("bcd"))]
    # a blank line ends a batch
    append_lines(source, event_lines(first) + ([] if same_batch else [b"\n"])
                 + event_lines(rest))
    _serve(postgres_url, redis_url, source, "east", rate=rate)

    assert _decisions(postgres_url, "east") == [
        ("a", DecisionKind.ALLOW, ""),
        ("a", DecisionKind.DENY, "DUP-003"),
        ("b", DecisionKind.ALLOW, ""),
        ("c", DecisionKind.ALLOW, ""),
        ("d", DecisionKind.DENY, "THR-007"),
    ]
    store = FirmStore(redis_url, "observer", prefix=_prefix())
    try:
        assert store.order_count(rate) == 3
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_duplicate_s_denial_never_frees_another_account_s_slot_of_the_same_intent_id(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    """Decisions name no account: ACC-E's repeat of 'a' (DUP-003) sits between ACC-E's 'a'
    and ACC-W's own 'a' in one batch; both 'a's were allowed and both keep their slots."""
    rate = FirmRate(max_orders=10, window=timedelta(minutes=5))
    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines([
        *_opening("ACC-E"), AccountFunding(ts=START, account="ACC-W", cash=Decimal(1_000_000)),
        _intent("a", "ACC-E", AT, 1), _intent("a", "ACC-E", AT + timedelta(milliseconds=50), 7),
        _intent("a", "ACC-W", AT + timedelta(milliseconds=100), 2)]))
    _serve(postgres_url, redis_url, source, "east", rate=rate)
    assert _decisions(postgres_url, "east") == [
        ("a", DecisionKind.ALLOW, ""), ("a", DecisionKind.DENY, "DUP-003"),
        ("a", DecisionKind.ALLOW, "")]
    store = FirmStore(redis_url, "observer", prefix=_prefix())
    try:
        assert store.order_count(rate) == 2
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_an_intent_retried_after_a_crash_gives_back_the_slot_it_reserved_when_denied(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    rate = FirmRate(max_orders=3, window=timedelta(minutes=5))
    denied = _intent("gme-1", "ACC-E", AT, 1, symbol="GME")  # restricted: denied by the gate
    store = FirmStore(redis_url, "east", prefix=_prefix())
    try:
        # an owner reserved it, then died before journaling it: the line is read again
        assert store.reserve([denied], rate).reservations[0].granted
        source = tmp_path / "east.jsonl"
        append_lines(source, event_lines([*_opening("ACC-E"), denied]))
        _serve(postgres_url, redis_url, source, "east", rate=rate)
        assert [kind for _, kind, _ in _decisions(postgres_url, "east")] == [DecisionKind.DENY]
        assert store.order_count(rate) == 0
    finally:
        store.close()


# ---------------------------------------------------------------- firm gross exposure


@pytest.mark.postgres
@pytest.mark.redis
def test_a_finished_shard_s_gross_still_counts_against_the_firm_gross_cap(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    policy = _firm_policy(tmp_path)
    for shard, account in (("east", "ACC-E"), ("west", "ACC-W")):
        source = tmp_path / f"{shard}.jsonl"
        append_lines(source, event_lines([*_opening(account),
                                          _intent(f"{shard}-big", account, AT, 400)]))
        _serve(postgres_url, redis_url, source, shard, policy=policy)

    assert _decisions(postgres_url, "east") == [("east-big", DecisionKind.ALLOW, "")]
    assert _decisions(postgres_url, "west") == [("west-big", DecisionKind.DENY, "EXP-005")]
    store = FirmStore(redis_url, "observer", prefix=_prefix())
    try:
        published = store.published()
    finally:
        store.close()
    assert published["east"] == Decimal(76_000)  # 400 AAPL at the 190.00 mid, kept after it ended
    assert published["west"] == 0


# ---------------------------------------------------------------- the firm kill switch


@pytest.mark.postgres
@pytest.mark.redis
def test_releasing_the_firm_kill_switch_journals_who_released_it_and_why(
        postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    redis = ("--redis", redis_url, "--redis-prefix", _prefix())
    source = tmp_path / "east.jsonl"
    engaged = _cli("firm", "kill", "--operator", "risk", "--reason", "drill", *redis)
    assert engaged.returncode == 0, engaged.stderr
    append_lines(source, event_lines([*_opening("ACC-E"), _intent("e-1", "ACC-E", AT, 1)]))
    _serve(postgres_url, redis_url, source, "east")

    released = _cli("firm", "unkill", "--operator", "bob", "--reason", "all clear", *redis)
    assert released.returncode == 0, released.stderr
    later = START + timedelta(seconds=5)
    append_lines(source, event_lines([_quote(later),
                                      _intent("e-2", "ACC-E", later + timedelta(seconds=1), 1)]))
    _serve(postgres_url, redis_url, source, "east")

    states = events_of(rows(postgres_url, "east"), FirmState)
    assert [(state.kill, state.detail) for state in states] == [
        (True, "risk: drill (firm kill #1)"), (False, "bob: all clear")]
    assert [kind for _, kind, _ in _decisions(postgres_url, "east")] == [
        DecisionKind.DENY, DecisionKind.ALLOW]
    status = _cli("firm", "status", *redis)
    assert status.returncode == 0, status.stderr
    assert "firm kill switch: off (last released by bob: all clear)" in status.stdout


@pytest.mark.redis
def test_firm_status_prints_brackets_in_the_operator_and_reason_as_written(
        redis_url: str) -> None:
    redis = ("--redis", redis_url, "--redis-prefix", _prefix())
    engaged = _cli("firm", "kill", "--operator", "[bold]ops", "--reason", "drill [/] [red]x",
                   *redis)
    assert engaged.returncode == 0, engaged.stderr
    status = _cli("firm", "status", *redis)
    assert status.returncode == 0, status.stderr
    assert "firm kill switch: ENGAGED ([bold]ops: drill [/] [red]x (firm kill #1))" in \
        status.stdout
    released = _cli("firm", "unkill", "--operator", "[b]bob", "--reason", "[/]", *redis)
    assert released.returncode == 0, released.stderr
    status = _cli("firm", "status", *redis)
    assert status.returncode == 0, status.stderr
    assert "firm kill switch: off (last released by [b]bob: [/])" in status.stdout


# ---------------------------------------------------------------- a malformed --redis URL

BAD_URLS = ["notaurl", "redis://:s3cretpw@host:notaport/0",
            "redis://127.0.0.1:6379/0?socket_timeout=abc", "redis//x"]


@pytest.mark.postgres
@pytest.mark.parametrize("url", BAD_URLS)
def test_gateway_refuses_a_malformed_redis_url_before_taking_the_lease(
        postgres_url: str, tmp_path: Path, url: str) -> None:
    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines(_opening("ACC-E")))
    done = subprocess.run(gateway_args(source, postgres_url, "east", "--redis", url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    assert "--redis:" in done.stderr
    assert "Traceback" not in done.stderr and "s3cretpw" not in done.stderr
    assert rows(postgres_url, "east") == []
    assert granted_epoch(postgres_url, "east") == 0


@pytest.mark.parametrize("url", BAD_URLS)
def test_firm_kill_with_a_malformed_redis_url_is_a_safety_stop_saying_not_engaged(
        url: str) -> None:
    done = _cli("firm", "kill", "--operator", "risk", "--reason", "drill", "--redis", url)
    assert done.returncode == EXIT_SAFETY_STOP, done.stderr
    assert "SAFETY STOP" in done.stderr and "NOT engaged" in done.stderr
    assert "--redis:" in done.stderr
    assert "Traceback" not in done.stderr and "s3cretpw" not in done.stderr


@pytest.mark.parametrize("command", [("unkill", "--operator", "bob", "--reason", "ok"),
                                     ("status",)])
def test_other_firm_commands_refuse_a_malformed_redis_url_in_one_line(
        command: tuple[str, ...]) -> None:
    done = _cli("firm", *command, "--redis", "redis://:s3cretpw@host:notaport/0")
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    assert "--redis:" in done.stderr
    assert "Traceback" not in done.stderr and "s3cretpw" not in done.stderr
