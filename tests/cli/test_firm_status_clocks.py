"""`firm status` on a store that lost its data says each time on its own clock: when the store
was set up again is the wall clock of the gateway that set it up, and when the shard that found
the loss journaled it is that shard's event time, which follows its events (a day of last
month's quotes here) and is never set beside the wall clock as if the two were one. It says
which loss the gateway found: a store restarted empty or flushed, or one that came back holding
older data; the gateway leaves both, and the time with its clock, as fields of its note."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from tests.evidence.support import invoke
from tests.runtime.harness import cli
from tests.scale.support import demo_policy_path, event_lines

from ordergate.brokers.sim import SimBroker
from ordergate.model.events import AccountFunding
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.firm import FirmStore
from ordergate.runtime.shard import (
    EVENT_CLOCK,
    LOSS_EMPTIED,
    LOSS_WENT_BACK,
    FirmSettings,
    LossNote,
    ShardConfig,
    ShardGateway,
    read_loss_note,
)

pytestmark = pytest.mark.redis

EVENT_TIME = utc(2026, 3, 2, 15, 0)  # the shard's events: long before today's wall clock
WIDE = 400  # one line per statement


def test_firm_status_reads_an_earlier_versions_loss_note_on_its_clocks(redis_url: str) -> None:
    """A note an earlier gateway left says who found the loss and when in words, not which kind
    of loss it was: neither does `firm status` then."""
    prefix = os.environ["ORDERGATE_TEST_REDIS_PREFIX"]
    east = FirmStore(redis_url, "east", prefix=prefix)
    try:
        east.exchange(Decimal(100))
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=prefix + "*"):  # this firm's FLUSHALL
            client.delete(key)
        client.close()
        assert east.exchange(Decimal(100), seen_before=True).lost
        # what ShardGateway._store_lost left before it wrote a LossNote: the finding's time is
        # the shard's event time
        found_at = EVENT_TIME.isoformat().replace("+00:00", "Z")
        east.record_loss(f"found by shard east at {found_at}", ["east"])
        since = east.store_info()[0]["since"]
    finally:
        east.close()

    status = cli("firm", "status", "--redis", redis_url, "--redis-prefix", prefix,
                 columns=WIDE)

    assert status.returncode == 0, status.stderr
    headline = status.stdout.splitlines()[1]
    assert headline == (
        "firm store: LOST ITS DATA and was set up again at "
        f"{since} (UTC, by the wall clock of the gateway that set it up); found by shard east, "
        f"whose journal records the finding at event time {found_at} (the time of that "
        "shard's events, not a wall clock); the gateways hold new risk until an operator "
        "resumes each"), headline


def _gateway(source: Path, postgres_url: str, redis_url: str, prefix: str) -> ShardGateway:
    config = ShardConfig(journal_url=postgres_url, shard="east", events=source,
                         firm=FirmSettings(redis_url=redis_url, prefix=prefix))
    return ShardGateway(config, load_policy(demo_policy_path()), SimBroker)


def _forget(redis_url: str, prefix: str, how: str) -> None:
    """Make the firm store lose its data: `flushed` (every key of this firm gone, as FLUSHALL
    or a restart without persistence leaves it) or `older` (restored from a snapshot taken
    before the kill switch was engaged: same identity, the kill gone)."""
    client = redis.Redis.from_url(redis_url)
    try:
        if how == "flushed":
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
        else:
            assert client.delete(prefix + "firm:kill") == 1
    finally:
        client.close()


@pytest.mark.postgres
@pytest.mark.parametrize(("how", "loss", "words"), [
    pytest.param("flushed", LOSS_EMPTIED,
                 "LOST ITS DATA (restarted empty or flushed) and was set up again",
                 id="flushed"),
    pytest.param("older", LOSS_WENT_BACK,
                 "LOST ITS DATA (it came back holding older data: restored from an older "
                 "snapshot, or a replica that lagged behind) and was set up again",
                 id="older"),
])
def test_firm_status_says_which_loss_the_gateway_found_and_when_from_its_note(
        postgres_url: str, redis_url: str, tmp_path: Path, how: str, loss: str,
        words: str) -> None:
    prefix = os.environ["ORDERGATE_TEST_REDIS_PREFIX"]
    admin = FirmStore(redis_url, "", prefix=prefix)
    try:
        admin.set_kill(True, "risk: drill")
    finally:
        admin.close()
    source = tmp_path / "east.jsonl"
    quoted = EVENT_TIME + timedelta(milliseconds=100)
    source.write_bytes(b"".join(event_lines([
        AccountFunding(ts=EVENT_TIME, account="ACC-E", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="AAPL", ts=quoted, bid=Decimal("189.95"), ask=Decimal("190.05"),
                       last=Decimal("190.00"), volume=Decimal(1000))])))
    # the gateway journals the kill it saw; then the store loses its data while it is down
    assert _gateway(source, postgres_url, redis_url, prefix).run().stopped_by == "end_of_source"
    _forget(redis_url, prefix, how)
    # started again, it finds the loss at its first exchange, at its last event's time
    assert _gateway(source, postgres_url, redis_url, prefix).run().stopped_by == "end_of_source"

    reader = FirmStore(redis_url, "", prefix=prefix)
    try:
        info = reader.store_info()[0]
    finally:
        reader.close()
    note = read_loss_note(info["lost"])
    assert note == LossNote(loss=loss, found_by="east", at=quoted, clock=EVENT_CLOCK), \
        info["lost"]

    status = invoke("firm", "status", "--redis", redis_url, "--redis-prefix", prefix)

    assert status.code == 0, status.output
    headline = next(line for line in status.output.splitlines()
                    if line.startswith("firm store:"))
    assert headline == (
        f"firm store: {words} at {info['since']} (UTC, by the wall clock of the gateway that "
        "set it up); found by shard east, whose journal records the finding at event time "
        "2026-03-02T15:00:00.100000Z (the time of that shard's events, not a wall clock); the "
        "gateways hold new risk until an operator resumes each"), headline
