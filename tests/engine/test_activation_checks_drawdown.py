"""Activating a policy judges the drawdown the accounts are already in (engine behaviour 5
on): an enforcing `drawdown_kill` already exceeded halts at the activation, not at the next
mark change. A journal written under behaviour 4 replays with the halt at the mark change."""

from __future__ import annotations

from typing import Any

from engine.harness import Harness, decision_of, encode, of_type, policy_document
from ordergate.engine.core import Engine
from ordergate.model.events import (
    Alert,
    AlertSeverity,
    Command,
    CommandAction,
    ModeChanged,
    PolicyDocument,
)
from ordergate.model.modes import Mode
from ordergate.policy import Policy

DRAWDOWN = {"max_drawdown_pct": "5", "drawdown_kill": True}
LOOSE_DRAWDOWN = {"max_drawdown_pct": "20", "drawdown_kill": True}
HALT_DETAIL = "account A: equity 9000.00 is more than 5% below its high-water mark 10000.00"


def _in_drawdown(defaults: dict[str, Any], **fields: Any) -> Harness:
    """Account A funded with 10,000, long 100 X bought at 100 and now marked at 90: 10% below
    its high-water mark."""
    world = Harness(defaults, cash="10000", **fields)
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100", price="100")
    world.quote("X", "90")
    return world


def _activate(world: Harness, defaults: dict[str, Any], **sections: Any) -> list[Any]:
    policy = Policy.from_document(policy_document(defaults, **sections))
    world.send(PolicyDocument(ts=world.now, policy_hash=policy.hash, document=policy.document))
    return world.send(Command(ts=world.now, action=CommandAction.ACTIVATE_POLICY,
                              policy_hash=policy.hash))


def _replays(world: Harness) -> None:
    engine = Engine()
    assert [encode(engine.handle(event)) for event in world.log] == [
        encode(outputs) for outputs in world.outputs]


def _halted_at_activation(outputs: list[Any]) -> None:
    (change,) = of_type(outputs, ModeChanged)
    assert (change.previous, change.mode) == (Mode.ACTIVE, Mode.HALTED)
    assert [(reason.code, reason.detail) for reason in change.reasons] == [
        ("LOS-003", HALT_DETAIL)]
    assert [(alert.severity, alert.code) for alert in of_type(outputs, Alert)] == [
        (AlertSeverity.INFO, "POLICY_ACTIVATED"), (AlertSeverity.CRITICAL, "LOS-003")]


def test_making_a_monitor_policy_in_drawdown_enforcing_halts_at_the_activation() -> None:
    world = _in_drawdown(DRAWDOWN, monitor=True)
    assert world.state.mode is Mode.ACTIVE  # monitor mode: it only said it would have halted
    outputs = _activate(world, DRAWDOWN)
    _halted_at_activation(outputs)
    assert world.state.mode is Mode.HALTED
    assert decision_of(world.intent(qty="1")).blocking == "MOD-001"
    _replays(world)


def test_a_lower_max_drawdown_pct_activated_while_past_it_halts_at_the_activation() -> None:
    world = _in_drawdown(LOOSE_DRAWDOWN)
    assert world.state.mode is Mode.ACTIVE  # 10% is within 20%
    outputs = _activate(world, DRAWDOWN)
    _halted_at_activation(outputs)
    assert decision_of(world.intent(qty="1")).blocking == "MOD-001"
    _replays(world)


def test_activating_a_monitor_policy_in_drawdown_says_it_would_have_halted() -> None:
    world = _in_drawdown(LOOSE_DRAWDOWN)
    outputs = _activate(world, DRAWDOWN, monitor=True)
    assert of_type(outputs, ModeChanged) == []
    assert world.state.mode is Mode.ACTIVE
    (_, would_halt) = of_type(outputs, Alert)
    assert (would_halt.severity, would_halt.code) == (AlertSeverity.CRITICAL, "LOS-003")
    assert would_halt.message == (
        f"{HALT_DETAIL}; drawdown_kill would have moved the mode to HALTED "
        "(monitor mode: trading goes on)")


def test_an_activation_within_the_limit_changes_nothing() -> None:
    world = _in_drawdown(LOOSE_DRAWDOWN)
    outputs = _activate(world, {"max_drawdown_pct": "15", "drawdown_kill": True})
    assert [type(output) for output in outputs] == [Alert]
    assert world.state.mode is Mode.ACTIVE


def test_a_behaviour_4_journal_replays_its_halt_at_the_next_mark_change() -> None:
    world = _in_drawdown(LOOSE_DRAWDOWN, behaviour=4)
    outputs = _activate(world, DRAWDOWN)
    assert [(type(output), output.code) for output in outputs] == [(Alert, "POLICY_ACTIVATED")]
    assert world.state.mode is Mode.ACTIVE
    (change,) = of_type(world.quote("X", "89.99"), ModeChanged)
    assert change.mode is Mode.HALTED and change.reasons[0].code == "LOS-003"
    _replays(world)
