"""A followed events file is fed live: a line stamped far ahead of the wall clock is refused
before it is journaled (it would move event time there for good: the day rolled, the loss
limit wiped, every later intent denied), and the shard stops on it as on any bad line, with
every line before it journaled and the same line next when it starts again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from tests.scale.support import append_lines, demo_policy_path, event_lines, events_of, rows

from ordergate.brokers.sim import SimBroker
from ordergate.journal import open_journal
from ordergate.model.decision import Decision
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import load_policy
from ordergate.runtime.shard import ShardConfig, ShardGateway, next_source_line, shard_url

pytestmark = [pytest.mark.postgres]

SHARD = "follow-clock"


def _intent(intent_id: str, ts: datetime) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account="ACC-1", strategy="trend",
                       symbol="AAPL", side=Side.BUY, qty=Decimal(1))


def _serve(config: ShardConfig) -> ShardGateway:
    gateway = ShardGateway(config, load_policy(demo_policy_path()), SimBroker)
    worker = threading.Thread(target=gateway.run)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # it followed on past the line: stop it, and fail below
        gateway.stop()
        worker.join(60)
    return gateway


def test_a_followed_line_stamped_days_ahead_stops_the_shard_before_it_is_journaled(
        postgres_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=10)  # a backlog behind the clock is accepted
    events: list[InputEvent] = [
        AccountFunding(ts=start, account="ACC-1", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="AAPL", ts=start, bid=Decimal("189.95"), ask=Decimal("190.05"),
                       last=Decimal("190.00"), volume=Decimal(1000)),
        _intent("on-time", start + timedelta(seconds=1)),
        _intent("days-ahead", now + timedelta(days=3)),
        _intent("after-it", start + timedelta(seconds=2)),
    ]
    source = tmp_path / "live.jsonl"
    append_lines(source, event_lines(events))
    config = ShardConfig(journal_url=postgres_url, shard=SHARD, events=source, follow=True,
                         batch_size=64)

    gateway = _serve(config)

    stats = gateway.stats
    assert stats.stopped_by == "bad_line"
    assert stats.bad_line is not None and stats.bad_line.line == 4
    assert "field ts:" in stats.bad_line.problem
    assert "3 days ahead of the gateway's clock" in stats.bad_line.problem
    records = rows(postgres_url, SHARD)
    assert [decision.intent_id for decision in events_of(records, Decision)] == ["on-time"]
    assert not [intent for intent in events_of(records, OrderIntent)
                if intent.intent_id != "on-time"]
    # event time never reached the mis-stamped line's
    assert all(event.ts <= now for event in events_of(records, msgspec.Struct)
               if hasattr(event, "ts"))
    journal = open_journal(shard_url(postgres_url, SHARD), reader=True, create=False)
    try:
        assert next_source_line(journal, source.name) == 4  # the refused line is next
    finally:
        journal.close()


def test_an_intent_ahead_by_more_than_the_policys_skew_is_refused_as_over_http(
        postgres_url: str, tmp_path: Path) -> None:
    # the demo policy's max_intent_skew is 2 s: an intent 4 s ahead would move the engine's
    # clock to its own ts before it is judged, so CLK-001 could never catch it
    now = datetime.now(UTC)
    start = now - timedelta(minutes=1)
    source = tmp_path / "live.jsonl"
    append_lines(source, event_lines([
        AccountFunding(ts=start, account="ACC-1", cash=Decimal(1_000_000)),
        _intent("four-seconds-ahead", now + timedelta(seconds=4)),
    ]))
    config = ShardConfig(journal_url=postgres_url, shard=SHARD, events=source, follow=True)

    stats = _serve(config).stats

    assert stats.stopped_by == "bad_line"
    assert stats.bad_line is not None and stats.bad_line.line == 2
    assert "(the policy's max_intent_skew)" in stats.bad_line.problem
    assert not events_of(rows(postgres_url, SHARD), OrderIntent)
