"""`firm status` on a store that lost its data says each time on its own clock: when the store
was set up again is the wall clock of the gateway that set it up, and when the shard that found
the loss journaled it is that shard's event time, which follows its events (a day of last
month's quotes here) and is never set beside the wall clock as if the two were one."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
import redis
from tests.runtime.harness import cli

from ordergate.model.values import utc
from ordergate.runtime.firm import FirmStore

pytestmark = pytest.mark.redis

EVENT_TIME = utc(2026, 3, 2, 15, 0)  # the shard's events: long before today's wall clock
WIDE = 400  # one line per statement


def test_firm_status_says_which_clock_each_time_of_a_lost_store_is_on(redis_url: str) -> None:
    prefix = os.environ["ORDERGATE_TEST_REDIS_PREFIX"]
    east = FirmStore(redis_url, "east", prefix=prefix)
    try:
        east.exchange(Decimal(100))
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=prefix + "*"):  # this firm's FLUSHALL
            client.delete(key)
        client.close()
        assert east.exchange(Decimal(100), seen_before=True).lost
        # what ShardGateway._store_lost leaves: the finding's time is the shard's event time
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
        "firm store: LOST ITS DATA (restarted empty or flushed) and was set up again at "
        f"{since} (UTC, by the wall clock of the gateway that set it up); found by shard east, "
        f"whose journal records the finding at event time {found_at} (the time of that "
        "shard's events, not a wall clock); the gateways hold new risk until an operator "
        "resumes each"), headline
