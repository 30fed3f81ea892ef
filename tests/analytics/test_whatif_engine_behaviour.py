"""A what-if runs the journal's engine behaviour, switching where the journal's own upgrades
stand: under the journal's own policy a journal written before an engine upgrade gives back
every decision (the stop-limit self-match the old behaviour denied stays denied), and a
journal upgraded on restart switches at the same input."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from tests.evidence.support import read

from ordergate.analytics.whatif import journal_outcomes, what_if
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.journal import Durability
from ordergate.model.events import AccountFunding
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: epochs}
defaults:
  max_market_data_age: 1h
  self_match: deny
"""
T0 = utc(2026, 3, 2, 15)


def _intent(intent_id: str, seconds: int, side: Side, qty: int, order_type: OrderType,
            **prices: str) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=T0.replace(second=seconds), account="A",
                       strategy="s", symbol="X", side=side, qty=Decimal(qty),
                       order_type=order_type,
                       **{name: Decimal(value) for name, value in prices.items()})


def _day(journal: Path, *, upgrade: bool) -> None:
    runtime = Runtime.open(f"sqlite:///{journal}", parse_policy(POLICY), SimBroker(SimConfig()),
                           Durability.NONE, upgrade_engine=upgrade)
    try:
        runtime.process([
            AccountFunding(ts=T0, account="A", cash=Decimal(1_000_000)),
            MarketSnapshot(symbol="X", ts=T0, bid=Decimal("99.99"), ask=Decimal("100.01"),
                           last=Decimal(100), volume=Decimal(1_000_000)),
            _intent("b0", 1, Side.BUY, 100, OrderType.MARKET),
        ], source="day", line=1)
        runtime.process([_intent("sl", 2, Side.SELL, 100, OrderType.STOP_LIMIT,
                                 limit_price="94", stop_price="95")], source="day", line=4)
        runtime.process([_intent("b1", 3, Side.BUY, 10, OrderType.LIMIT,
                                 limit_price="100.01")], source="day", line=5)
    finally:
        runtime.close()


@pytest.mark.parametrize(("upgrade", "b1"), [(False, "DENY ORD-010"), (True, "ALLOW")])
def test_a_what_if_under_the_journal_s_policy_gives_back_its_decisions(
        tmp_path: Path, upgrade: bool, b1: str) -> None:
    journal = tmp_path / "day.db"
    _day(journal, upgrade=upgrade)  # without: as a version before the upgrade wrote it
    opened = read(journal)
    try:
        outcomes = {key.intent_id: outcome.label
                    for key, outcome in journal_outcomes(opened).items()}
        report = what_if(opened, parse_policy(POLICY), workdir=tmp_path)
    finally:
        opened.close()
    assert outcomes["b1"] == b1
    assert report.decisions == 3
    assert [(item.intent_id, item.before.label, item.after.label)
            for item in report.changed] == []
