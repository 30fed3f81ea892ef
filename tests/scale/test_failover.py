"""Shard failover with real processes: the owner is SIGKILLed mid-stream, the standby takes the
lease, replays the shard's journal and finishes the stream; nothing is sent twice, nothing
accepted is lost, and the dead owner's epoch can never write again."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.runtime.scenario import scenario_events
from tests.scale.support import (
    append_lines,
    event_lines,
    events_of,
    gateway_args,
    granted_epoch,
    rows,
    start,
    stop,
    wait_for,
)

from ordergate.brokers.sim import SimBroker, SimConfig, SubmitOutcome
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, JournalError, RecordKind, open_journal
from ordergate.journal.lease import ShardLease
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderIntent
from ordergate.runtime.shard import shard_url

pytestmark = [pytest.mark.postgres]

SHARD = "acct-demo"
LEASE_TTL = "3"
TAKEOVER_BOUND_S = 5.0  # the lease is freed when the owner's session ends, then polled


def _decisions(postgres_url: str) -> dict[str, list[Decision]]:
    found: dict[str, list[Decision]] = {}
    for decision in events_of(rows(postgres_url, SHARD), Decision):
        found.setdefault(decision.intent_id, []).append(decision)
    return found


def test_standby_takes_over_a_killed_owner_without_duplicates_or_lost_intents(
        postgres_url: str, tmp_path: Path) -> None:
    events = scenario_events(90)
    intents = [event for event in events if isinstance(event, OrderIntent)]
    lines = event_lines(events)
    source = tmp_path / "shard.jsonl"
    head = len(lines) * 2 // 5
    append_lines(source, lines[:head])
    broker_state = tmp_path / "broker.db"
    args = gateway_args(source, postgres_url, SHARD, "--follow", "--batch-size", "4",
                        "--lease-ttl", LEASE_TTL, "--broker-state", str(broker_state))

    owner = start([*args, "--run-id", "owner"], tmp_path / "owner.log")
    standby = None
    try:
        wait_for(lambda: len(_decisions(postgres_url)) >= 5, 30, "the owner's first decisions")
        standby = start([*args, "--run-id", "standby", "--verbose"], tmp_path / "standby.log")
        wait_for(lambda: b"shard.standby" in (tmp_path / "standby.log").read_bytes(), 60,
                 "the standby polling for the lease")
        assert granted_epoch(postgres_url, SHARD) == 1 and standby.poll() is None

        # Stream the rest of the file while the owner works; kill it in the middle.
        def writer() -> None:
            for start_at in range(head, len(lines), 6):
                append_lines(source, lines[start_at:start_at + 6])
                time.sleep(0.01)

        feeding = threading.Thread(target=writer)
        feeding.start()
        before = len(_decisions(postgres_url))
        wait_for(lambda: len(_decisions(postgres_url)) >= before + 10, 30,
                 "the owner deciding streamed intents")
        owner.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        owner.wait(timeout=10)
        decided_by_owner = len(_decisions(postgres_url))
        wait_for(lambda: granted_epoch(postgres_url, SHARD) == 2, TAKEOVER_BOUND_S,
                 "the standby to take the lease")
        takeover_s = time.monotonic() - killed_at
        feeding.join()
        wait_for(lambda: len(_decisions(postgres_url)) == len(intents), 60,
                 "every intent decided")
        assert stop(standby) == 0
    finally:
        if owner.poll() is None:
            owner.kill()
        if standby is not None and standby.poll() is None:
            standby.kill()

    assert takeover_s < TAKEOVER_BOUND_S
    assert 0 < decided_by_owner < len(intents), "the owner must die mid-stream"
    records = rows(postgres_url, SHARD)
    # Epochs only grow along the chain: the fenced owner wrote nothing after the takeover.
    epochs = [row.epoch for row in records]
    assert epochs == sorted(epochs) and set(epochs) == {1, 2}
    assert {row.run_id for row in records if row.epoch == 1} == {"owner"}
    assert {row.run_id for row in records if row.epoch == 2} == {"standby"}

    # Every intent decided, and decided once (or re-answered identically, never re-dispatched).
    decisions = _decisions(postgres_url)
    assert set(decisions) == {intent.intent_id for intent in intents}
    for intent_id, answers in decisions.items():
        assert all(answer == answers[0] for answer in answers), intent_id
    allowed = {intent_id for intent_id, answers in decisions.items()
               if answers[0].decision is not DecisionKind.DENY}
    dispatches = events_of(records, Dispatch)
    dispatched_ids = Counter(dispatch.client_order_id for dispatch in dispatches)
    assert all(count == 1 for count in dispatched_ids.values())
    assert {dispatch.intent_id for dispatch in dispatches} == allowed

    # The persistent broker saw every accepted order exactly once.
    broker = SimBroker(SimConfig(state_path=str(broker_state)))
    try:
        submissions = broker.submission_log()
    finally:
        broker.close()
    sent = Counter(attempt.client_order_id for attempt in submissions)
    assert all(count == 1 for count in sent.values()), "a client order id was sent twice"
    assert not [a for a in submissions if a.outcome is SubmitOutcome.DUPLICATE]
    assert set(sent) == set(dispatched_ids)

    # The old epoch is fenced, and the chain across both owners replays byte for byte.
    url = shard_url(postgres_url, SHARD)
    with pytest.raises(JournalError, match="fenced"):
        stale = open_journal(url, epoch=1, durability=Durability.ALWAYS)
        stale.append(RecordKind.INPUT, b"a write from the dead owner")
    lease = ShardLease(url, SHARD)
    epoch = lease.acquire(timeout_s=5)
    assert epoch == 3
    journal = open_journal(url, epoch=epoch, create=False)
    try:
        report = verify_journal(journal)
        assert report.ok, report.message
        assert report.decisions == len(events_of(records, Decision))
    finally:
        journal.close()
        lease.release()


def test_a_second_gateway_waits_as_standby_while_the_owner_lives(
        postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "shard.jsonl"
    append_lines(source, event_lines(scenario_events(3)))
    args = gateway_args(source, postgres_url, SHARD, "--follow", "--lease-ttl", LEASE_TTL)
    owner = start(args, tmp_path / "owner.log")
    try:
        wait_for(lambda: granted_epoch(postgres_url, SHARD) == 1, 30, "the owner's lease")
        second = subprocess.run([*args, "--wait", "1"], capture_output=True, timeout=60)
        assert second.returncode == 1
        assert b"another process holds its lease" in second.stderr
        assert granted_epoch(postgres_url, SHARD) == 1, "a standby never takes an epoch"
    finally:
        assert stop(owner) == 0
