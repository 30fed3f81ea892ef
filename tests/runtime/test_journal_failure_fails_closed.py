"""Invariant 5, fail closed: when the journal cannot be written, nothing more reaches the
broker, the engine is told (SYS-006, so its mode tightens) and every later batch is refused
with an error that says why."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path, scenario_events

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import MarketSnapshot
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.modes import Mode
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import Runtime, RuntimeStopped


def test_journal_write_failure_stops_dispatch_and_refuses_further_events(
        tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    broker = SimBroker(SimConfig())
    runtime = Runtime.open(f"sqlite:///{journal_path}", load_policy(demo_policy_path()),
                           broker)
    events = scenario_events(20)
    runtime.process(events)
    submitted_before = len(broker.submissions())
    assert submitted_before > 0

    os.unlink(journal_path)  # the journal file vanishes under the running gateway
    last = events[-1].ts
    late = [
        MarketSnapshot(symbol="AAPL", ts=last, bid=Decimal("190.00"), ask=Decimal("190.10"),
                       last=Decimal("190.05")),
        OrderIntent(intent_id="after-failure", ts=last, account=ACCOUNT, strategy="trend",
                    symbol="AAPL", side=Side.BUY, qty=Decimal(10)),
    ]
    with pytest.raises(RuntimeStopped, match="journal could not be written"):
        runtime.process(late)
    assert len(broker.submissions()) == submitted_before
    assert runtime.stopped
    assert runtime.engine.status().mode is not Mode.ACTIVE
    assert any(reason.code == "SYS-006" for reason in runtime.engine.status().reasons)

    with pytest.raises(RuntimeStopped, match="no new orders are sent"):
        runtime.process([OrderIntent(
            intent_id="refused", ts=START.replace(hour=16), account=ACCOUNT,
            strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10))])
    assert len(broker.submissions()) == submitted_before
    runtime.close()
