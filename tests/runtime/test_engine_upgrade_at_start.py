"""A journal replays under the engine behaviour it was written with, and a restart switches to
the current behaviour at a journaled point: start-up journals one `EngineUpgrade` after the
recovery (never a second one), so an intent the old behaviour denied stays denied and never
dispatched, and only intents after the upgrade are decided under the new behaviour. A new
journal runs the current behaviour from its first input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import AccountFunding, Dispatch, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime import loop
from ordergate.runtime.loop import Runtime

POLICY = parse_policy("""apiVersion: ordergate/v1
kind: Policy
metadata: {name: epochs}
defaults:
  max_market_data_age: 1h
  self_match: deny
""")
T0 = utc(2026, 3, 2, 15, 0, 0)
UPGRADE = b'{"type":"engine_upgrade",'


def _intent(intent_id: str, seconds: float, side: Side, qty: str, **fields: object
            ) -> OrderIntent:
    return msgspec.convert({
        "intent_id": intent_id, "ts": (T0 + timedelta(seconds=seconds)).isoformat(),
        "account": "A", "strategy": "s", "symbol": "X", "side": side.value, "qty": qty,
        **fields}, OrderIntent)


def _open(journal: Path, broker_state: Path) -> Runtime:
    broker = SimBroker(SimConfig(state_path=str(broker_state)))
    return Runtime.open(f"sqlite:///{journal}", POLICY, broker, Durability.BATCH)


def _run(journal: Path, broker_state: Path, events: list[InputEvent]) -> list[Decision]:
    """Each event in a batch of its own (its orders sent and filled before the next)."""
    runtime = _open(journal, broker_state)
    decided: list[Decision] = []
    try:
        for event in events:
            report = runtime.process([event])
            decided.extend(item for item in report.emitted if isinstance(item, Decision))
    finally:
        runtime.close()
    return decided


def _inputs(journal: Path) -> list[tuple[int, bytes]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [(record.seq, record.payload) for record in handle.read()
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


def _dispatched(journal: Path) -> list[str]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [msgspec.json.decode(record.payload, type=Dispatch).intent_id
                for record in handle.read()
                if record.kind is RecordKind.OUTPUT
                and record.payload.startswith(b'{"type":"dispatch",')]
    finally:
        handle.close()


OPENING: list[InputEvent] = [
    AccountFunding(ts=T0, account="A", cash=Decimal(1_000_000)),
    MarketSnapshot(ts=T0, symbol="X", bid=Decimal("99.99"), ask=Decimal("100.01"),
                   last=Decimal(100), volume=Decimal(1_000_000)),
    _intent("b0", 1, Side.BUY, "100", order_type=OrderType.MARKET.value),
    _intent("sl", 2, Side.SELL, "100", order_type=OrderType.STOP_LIMIT.value,
            limit_price="94", stop_price="95"),
    _intent("b1", 3, Side.BUY, "10", order_type=OrderType.LIMIT.value, limit_price="100.01"),
]


def test_a_restart_on_a_behaviour_1_journal_upgrades_once_and_only_for_later_intents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal, broker_state = tmp_path / "journal.db", tmp_path / "broker.json"
    # the journal a gateway from before behaviour 2 wrote: its engine ran behaviour 1
    with monkeypatch.context() as patched:
        patched.setattr(loop, "ENGINE_BEHAVIOUR", 1)
        written = _run(journal, broker_state, OPENING)
    assert [(item.intent_id, item.blocking) for item in written] == [
        ("b0", ""), ("sl", ""), ("b1", "ORD-010")]  # the stop-limit rested at 94
    assert not any(payload.startswith(UPGRADE) for _, payload in _inputs(journal))
    _verified(journal)

    later = [
        OPENING[-1],  # b1 again: a retry gets its first answer
        _intent("b2", 10, Side.BUY, "10", order_type=OrderType.LIMIT.value,
                limit_price="100.01"),
    ]
    restarted = _run(journal, broker_state, later)

    assert [(item.intent_id, item.decision, item.blocking) for item in restarted] == [
        ("b1", DecisionKind.DENY, "ORD-010"),  # still denied, never dispatched
        ("b2", DecisionKind.ALLOW, ""),  # behaviour 2: an untriggered stop does not rest
    ]
    assert "b1" not in _dispatched(journal) and "b2" in _dispatched(journal)
    inputs = _inputs(journal)
    upgrades = [seq for seq, payload in inputs if payload.startswith(UPGRADE)]
    assert len(upgrades) == 1
    b2 = next(seq for seq, payload in inputs if b'"intent_id":"b2"' in payload)
    opening = max(seq for seq, payload in inputs if b'"intent_id":"b1"' in payload
                  and seq < upgrades[0])
    assert opening < upgrades[0] < b2
    (upgrade,) = (payload for seq, payload in inputs if seq == upgrades[0])
    assert msgspec.json.decode(upgrade)["behaviour"] == ENGINE_BEHAVIOUR
    _verified(journal)

    runtime = _open(journal, broker_state)  # a second restart: the engine is current
    try:
        assert runtime.engine.state.behaviour == ENGINE_BEHAVIOUR
    finally:
        runtime.close()
    assert [seq for seq, payload in _inputs(journal) if payload.startswith(UPGRADE)] == (
        upgrades)
    _verified(journal)


def test_a_new_journal_runs_the_current_behaviour_from_its_first_input(
        tmp_path: Path) -> None:
    journal, broker_state = tmp_path / "journal.db", tmp_path / "broker.json"
    decided = _run(journal, broker_state, OPENING)

    # behaviour 2: the untriggered stop-limit does not rest, so b1 is allowed
    assert [(item.intent_id, item.blocking) for item in decided] == [
        ("b0", ""), ("sl", ""), ("b1", "")]
    (first, *rest) = [payload for _, payload in _inputs(journal)]
    assert first.startswith(UPGRADE)
    assert msgspec.json.decode(first)["behaviour"] == ENGINE_BEHAVIOUR
    assert not any(payload.startswith(UPGRADE) for payload in rest)
    _verified(journal)

    runtime = _open(journal, broker_state)
    try:
        assert runtime.engine.state.behaviour == ENGINE_BEHAVIOUR
    finally:
        runtime.close()
    assert sum(payload.startswith(UPGRADE) for _, payload in _inputs(journal)) == 1
