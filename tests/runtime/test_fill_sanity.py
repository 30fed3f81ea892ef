"""A journal written before engine behaviour 3 replays as it was written: the fills it holds
past their limit, far from the market, or under a fill id seen before were answered without an
alert (and a known fill id dropped), and `replay verify` finds 0 mismatches, before and after a
restart journals the upgrade. From the upgrade on, the same fills are alerted.

Real Runtime, SimBroker and SQLite journal; the old gateway is this one with its engine
behaviour held at 2, as `test_engine_upgrade_at_start` holds it at 1."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.engine.lifecycle import FILL_PRICE
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import (
    AccountFunding,
    Alert,
    Dispatch,
    EngineUpgrade,
    Fill,
    InputEvent,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime import loop
from ordergate.runtime.loop import Runtime, decode_input

POLICY = parse_policy("""apiVersion: ordergate/v1
kind: Policy
metadata: {name: fills}
defaults:
  max_market_data_age: 1h
""")
T0 = utc(2026, 3, 2, 15, 0, 0)


def _at(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _open(journal: Path) -> Runtime:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))  # no quote: orders rest
    return Runtime.open(f"sqlite:///{journal}", POLICY, broker, Durability.BATCH)


def _buy(intent_id: str, seconds: float, limit: str) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=T0 + _at(seconds), account="A", strategy="s",
                       symbol="X", side=Side.BUY, qty=Decimal(10),
                       order_type=OrderType.LIMIT, limit_price=Decimal(limit))


def _session(runtime: Runtime, start: float, ids: tuple[str, str]) -> list[Alert]:
    """Two resting buys, then fills the broker reports: one past its limit, one far from the
    market, and each fill id again for other figures. The alerts the engine gave."""
    alerts: list[Alert] = []
    orders: list[str] = []
    for n, limit in enumerate(("100", "99")):
        report = runtime.process([_buy(f"{ids[0]}-{n}", start + n, limit)])
        orders += [item.client_order_id for item in report.emitted
                   if isinstance(item, Dispatch)]
    first, second = orders
    fills = [
        Fill(ts=T0 + _at(start + 3), client_order_id=first, fill_id=ids[0],
             qty=Decimal(4), price=Decimal(150)),
        Fill(ts=T0 + _at(start + 4), client_order_id=first, fill_id=ids[1],
             qty=Decimal(3), price=Decimal(1_000_000)),
        Fill(ts=T0 + _at(start + 5), client_order_id=second, fill_id=ids[0],
             qty=Decimal(5), price=Decimal(99)),
        Fill(ts=T0 + _at(start + 6), client_order_id=first, fill_id=ids[1],
             qty=Decimal(1), price=Decimal(100)),
    ]
    for fill in fills:
        report = runtime.process([fill])
        alerts += [item for item in report.emitted if isinstance(item, Alert)]
    return alerts


def _inputs(journal: Path) -> list[InputEvent]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [decode_input(record.payload) for record in handle.read()
                if record.kind is RecordKind.INPUT]
    finally:
        handle.close()


def _verified(journal: Path) -> None:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report.message
    assert report.mismatches == 0
    assert report.outputs_matched == report.outputs > 0


OPENING: list[InputEvent] = [
    AccountFunding(ts=T0, account="A", cash=Decimal(1_000_000)),
    MarketSnapshot(ts=T0, symbol="X", bid=Decimal("109.99"), ask=Decimal("110.01"),
                   last=Decimal(110), volume=Decimal(1_000_000)),
]


def test_a_behaviour_2_journal_replays_clean_before_and_after_the_upgrade(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "journal.db"
    with monkeypatch.context() as patched:
        patched.setattr(loop, "ENGINE_BEHAVIOUR", 2)
        runtime = _open(journal)
        try:
            runtime.process(OPENING)
            assert runtime.engine.state.behaviour == 2
            old = _session(runtime, 1, ("T1", "T2"))
            position = runtime.engine.state.position("A", "X")
        finally:
            runtime.close()
    assert old == []  # behaviour 2: nothing said, and the reused ids were dropped
    assert position == 7
    _verified(journal)

    runtime = _open(journal)  # today's gateway: it journals the upgrade, then goes on
    try:
        assert runtime.engine.state.behaviour == ENGINE_BEHAVIOUR
        assert runtime.engine.state.position("A", "X") == position
        new = _session(runtime, 20, ("U1", "U2"))
    finally:
        runtime.close()
    assert [alert.code for alert in new] == [FILL_PRICE, FILL_PRICE, FILL_PRICE, "SYS-009",
                                             "SYS-009"]
    upgrades = [event.behaviour for event in _inputs(journal)
                if isinstance(event, EngineUpgrade)]
    assert upgrades == [2, ENGINE_BEHAVIOUR]
    _verified(journal)
    assert msgspec.json.encode(new[0]).startswith(b'{"type":"alert"')
