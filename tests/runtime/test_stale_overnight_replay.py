"""A journal written before engine behaviour 4 replays as it was written: its gateway held an
AAPL position (XNYS market hours) after Friday's close, and a clock tick in the night raised
SYS-002 and REDUCE_ONLY, denying a BTC buy. `replay verify` finds 0 mismatches, before and
after a restart journals the upgrade; from the upgrade on, a night with the market closed
raises nothing and BTC trades.

Real Runtime, SimBroker and SQLite journal; the old gateway is this one with its engine
behaviour held at 3, as `test_fill_sanity` holds it at 2."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import (
    AccountFunding,
    Alert,
    ClockTick,
    Command,
    CommandAction,
    EngineUpgrade,
    InputEvent,
    ModeChanged,
    OutputEvent,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime import loop
from ordergate.runtime.loop import Runtime, decode_input

POLICY = parse_policy("""apiVersion: ordergate/v1
kind: Policy
metadata: {name: overnight}
engine: {on_stale_data: REDUCE_ONLY}
market_hours: {calendar: XNYS, symbols: [AAPL], years: [2026, 2026]}
defaults:
  max_market_data_age: 10m
""")
# XNYS in October 2026 (EDT): 13:30 to 20:00 UTC
FRIDAY = utc(2026, 10, 30, 19, 0, 0)
NEXT_FRIDAY = utc(2026, 11, 6, 20, 0, 0)  # EST from 1 November: the close is 21:00 UTC


def _open(journal: Path) -> Runtime:
    return Runtime.open(f"sqlite:///{journal}", POLICY, SimBroker(SimConfig()),
                        Durability.BATCH)


def _quote(symbol: str, at: datetime, price: str) -> MarketSnapshot:
    mid = Decimal(price)
    return MarketSnapshot(ts=at, symbol=symbol, bid=mid - Decimal("0.5"),
                          ask=mid + Decimal("0.5"), last=mid, volume=Decimal(1_000_000))


def _buy(intent_id: str, symbol: str, at: datetime, qty: str) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=at, account="A", strategy="s", symbol=symbol,
                       side=Side.BUY, qty=Decimal(qty), order_type=OrderType.MARKET)


def _week_end(friday: datetime, tag: str) -> list[InputEvent]:
    """A position bought before the close, the last AAPL quote just before it, a tick after
    midnight UTC, then a BTC buy on Saturday with BTC fresh."""
    saturday = friday.replace(hour=0, minute=8) + timedelta(days=1)
    close = friday.replace(minute=59, second=50)
    return [
        _quote("AAPL", friday, "200"), _quote("BTC-USD", friday, "90000"),
        _buy(f"{tag}-aapl", "AAPL", friday + timedelta(seconds=1), "10"),
        _buy(f"{tag}-btc", "BTC-USD", friday + timedelta(seconds=2), "0.1"),
        _quote("AAPL", close, "201"),
        _quote("BTC-USD", saturday - timedelta(seconds=30), "90000"),
        ClockTick(ts=saturday),
        _buy(f"{tag}-btc2", "BTC-USD", saturday + timedelta(seconds=1), "0.1"),
    ]


def _process(runtime: Runtime, events: list[InputEvent]) -> list[OutputEvent]:
    emitted: list[OutputEvent] = []
    for event in events:  # one batch each: every order sent and filled before the next
        emitted += [item for item in runtime.process([event]).emitted
                    if isinstance(item, (Decision, Alert, ModeChanged))]
    return emitted


def _verified(journal: Path) -> None:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report.message
    assert report.mismatches == 0
    assert report.outputs_matched == report.outputs > 0


def _upgrades(journal: Path) -> list[int]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        inputs = [decode_input(record.payload) for record in handle.read()
                  if record.kind is RecordKind.INPUT]
    finally:
        handle.close()
    return [event.behaviour for event in inputs if isinstance(event, EngineUpgrade)]


def _mode(runtime: Runtime) -> Mode:
    return runtime.engine.state.mode


def _answer(emitted: list[OutputEvent], intent_id: str) -> Decision:
    (decision,) = [item for item in emitted
                   if isinstance(item, Decision) and item.intent_id == intent_id]
    return decision


def test_a_behaviour_3_journal_with_an_overnight_stale_halt_replays_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "journal.db"
    with monkeypatch.context() as patched:
        patched.setattr(loop, "ENGINE_BEHAVIOUR", 3)
        runtime = _open(journal)
        try:
            runtime.process([AccountFunding(ts=FRIDAY, account="A", cash=Decimal(1_000_000))])
            assert runtime.engine.state.behaviour == 3
            old = _process(runtime, _week_end(FRIDAY, "w1"))
        finally:
            runtime.close()
    # behaviour 3: the closed market's quote counted as stale, the whole gateway tightened
    assert [alert.code for alert in old if isinstance(alert, Alert)
            and alert.code == "SYS-002"] == ["SYS-002"]
    assert [change.mode for change in old if isinstance(change, ModeChanged)] == [
        Mode.REDUCE_ONLY]
    denied = _answer(old, "w1-btc2")
    assert (denied.decision, denied.blocking) == (DecisionKind.DENY, "MOD-002")
    _verified(journal)

    runtime = _open(journal)  # today's gateway: it journals the upgrade, then goes on
    try:
        assert runtime.engine.state.behaviour == ENGINE_BEHAVIOUR
        assert _mode(runtime) is Mode.REDUCE_ONLY  # the old answer stands
        monday = utc(2026, 11, 2, 14, 35, 0)
        runtime.process([_quote("AAPL", monday, "200"), _quote("BTC-USD", monday, "90000")])
        runtime.process([Command(ts=monday, action=CommandAction.RESUME, operator="ops",
                                 reason="data is fine")])
        assert _mode(runtime) is Mode.ACTIVE
        new = _process(runtime, _week_end(NEXT_FRIDAY, "w2"))
        assert _mode(runtime) is Mode.ACTIVE
    finally:
        runtime.close()
    assert [item for item in new if isinstance(item, (Alert, ModeChanged))
            and (not isinstance(item, Alert) or item.code == "SYS-002")] == []
    assert _answer(new, "w2-btc2").decision is DecisionKind.ALLOW
    assert _upgrades(journal) == [3, ENGINE_BEHAVIOUR]
    _verified(journal)
