"""Operator commands and policy documents."""

from __future__ import annotations

from engine.harness import T0, D, Harness, decision_of, of_type, policy_document
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import (
    Alert,
    CancelOrder,
    Command,
    CommandAction,
    Dispatch,
    KillScope,
    ModeChanged,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.modes import Mode
from ordergate.policy import Policy


def test_kill_scopes_deny_only_what_they_cover() -> None:
    world = Harness(symbols=("X", "Y"))
    world.command(CommandAction.KILL, scope=KillScope.SYMBOL, key="X", operator="ops1")
    assert decision_of(world.intent(symbol="X")).blocking == "KIL-002"
    assert decision_of(world.intent(symbol="Y")).decision is DecisionKind.ALLOW
    assert world.state.operator_kill("B", "s9", "X")
    assert not world.state.operator_kill("B", "s9", "Y")


def test_kill_without_a_key_for_a_narrow_scope_is_refused() -> None:
    world = Harness()
    outputs = world.command(CommandAction.KILL, scope=KillScope.ACCOUNT, operator="ops1")
    assert [alert.code for alert in of_type(outputs, Alert)] == ["COMMAND_REFUSED"]
    assert world.state.kills == {}


def test_unkill_needs_operator_and_reason() -> None:
    world = Harness()
    world.command(CommandAction.KILL, scope=KillScope.FIRM)
    refused = world.command(CommandAction.UNKILL, scope=KillScope.FIRM, operator="ops1")
    assert [alert.code for alert in of_type(refused, Alert)] == ["COMMAND_REFUSED"]
    assert decision_of(world.intent()).blocking == "KIL-002"
    world.command(CommandAction.UNKILL, scope=KillScope.FIRM, operator="ops1", reason="ok")
    assert decision_of(world.intent()).decision is DecisionKind.ALLOW


def test_kill_with_cancel_all_cancels_every_open_order_in_scope_in_client_order_id_order() -> None:
    world = Harness(symbols=("X", "Y"))
    in_scope = [world.accepted(qty="1", limit_price=str(90 + n), strategy=f"s{n}")
                for n in range(4)]
    world.accepted(qty="1", symbol="Y")
    outputs = world.command(CommandAction.KILL, scope=KillScope.SYMBOL, key="X",
                            cancel_all=True, operator="ops1")
    cancelled = [cancel.client_order_id for cancel in of_type(outputs, CancelOrder)]
    assert cancelled == sorted(dispatch.client_order_id for dispatch in in_scope)


def test_cancel_all_on_kill_setting_cancels_without_the_flag() -> None:
    world = Harness(engine={"cancel_all_on_kill": True})
    dispatch = world.accepted(qty="1")
    outputs = world.command(CommandAction.KILL, scope=KillScope.STRATEGY, key="s1")
    assert [c.client_order_id for c in of_type(outputs, CancelOrder)] == [
        dispatch.client_order_id]


def test_halt_and_reduce_only_commands_tighten_and_name_the_operator() -> None:
    world = Harness()
    (change,) = of_type(world.command(CommandAction.REDUCE_ONLY, operator="ops1",
                                      reason="news"), ModeChanged)
    assert (change.mode, change.actor, change.reasons[0].code) == (
        Mode.REDUCE_ONLY, "ops1", "MOD-002")
    assert decision_of(world.intent()).blocking == "MOD-002"
    world.command(CommandAction.HALT, operator="ops2", reason="worse")
    assert world.state.mode is Mode.HALTED
    # an operator reduce-only does not loosen a halt
    assert of_type(world.command(CommandAction.REDUCE_ONLY, operator="ops1"), ModeChanged) == []
    assert world.state.mode is Mode.HALTED


def test_flatten_closes_every_position_in_scope_even_when_halted() -> None:
    world = Harness(accounts=("A", "B"), symbols=("X", "Y"))
    long_x = world.accepted(qty="10")
    world.fill(long_x.client_order_id, "10")
    short_y = world.accepted(Side.SELL, qty="4", symbol="Y")
    world.fill(short_y.client_order_id, "4")
    other = world.accepted(qty="3", account="B")
    world.fill(other.client_order_id, "3")
    resting = world.accepted(qty="1", limit_price="50")
    world.command(CommandAction.HALT, operator="ops1", reason="incident")
    outputs = world.command(CommandAction.FLATTEN, scope=KillScope.ACCOUNT, key="A",
                            operator="ops1", reason="flatten A")
    assert [c.client_order_id for c in of_type(outputs, CancelOrder)] == [
        resting.client_order_id]
    dispatches = of_type(outputs, Dispatch)
    assert [(d.symbol, d.side, d.qty, d.order_type, d.reduce_only) for d in dispatches] == [
        ("X", Side.SELL, D(10), OrderType.MARKET, True),
        ("Y", Side.BUY, D(4), OrderType.MARKET, True),
    ]
    assert world.state.mode is Mode.HALTED
    assert len({d.client_order_id for d in dispatches}) == 2


def test_flatten_without_operator_is_refused() -> None:
    world = Harness()
    outputs = world.command(CommandAction.FLATTEN)
    assert of_type(outputs, Dispatch) == []
    assert [alert.code for alert in of_type(outputs, Alert)] == ["COMMAND_REFUSED"]


def test_policy_document_with_a_wrong_hash_is_not_stored_or_activated() -> None:
    world = Harness()
    other = Policy.from_document(policy_document({"max_order_qty": "1"}))
    outputs = world.send(PolicyDocument(ts=T0, policy_hash="sha256:" + "0" * 64,
                                        document=other.document))
    assert [alert.code for alert in of_type(outputs, Alert)] == ["POLICY_REJECTED"]
    refused = world.command(CommandAction.ACTIVATE_POLICY, policy_hash=other.hash)
    assert [alert.code for alert in of_type(refused, Alert)] == ["POLICY_UNKNOWN"]
    assert world.engine.active is not None and world.engine.active.hash == world.policy.hash


def test_a_policy_is_not_activated_before_its_effective_from() -> None:
    world = Harness()
    later = Policy.from_document(policy_document(
        {"max_order_qty": "5"},
        metadata={"name": "later", "effective_from": "2026-01-05T15:00:00Z"}))
    world.send(PolicyDocument(ts=world.now, policy_hash=later.hash, document=later.document))
    early = world.command(CommandAction.ACTIVATE_POLICY, policy_hash=later.hash)
    (alert,) = of_type(early, Alert)
    assert alert.code == "POLICY_NOT_EFFECTIVE"
    assert "takes effect at 2026-01-05T15:00:00Z" in alert.message
    assert f"keeping test {world.policy.hash}" in alert.message
    assert world.engine.active is not None and world.engine.active.hash == world.policy.hash
    assert decision_of(world.intent(qty="10")).decision is DecisionKind.ALLOW

    world.advance(3600)  # 15:00 exactly: in force from then on
    world.quote()
    on_time = world.command(CommandAction.ACTIVATE_POLICY, policy_hash=later.hash)
    assert [a.code for a in of_type(on_time, Alert)] == ["POLICY_ACTIVATED"]
    assert decision_of(world.intent(qty="10")).blocking == "ORD-006"


def test_with_no_policy_in_force_yet_every_intent_is_denied() -> None:
    engine = Engine()
    future = Policy.from_document(policy_document(
        metadata={"name": "future", "effective_from": "2026-02-01T00:00:00Z"}))
    engine.handle(PolicyDocument(ts=T0, policy_hash=future.hash, document=future.document))
    refused = engine.handle(Command(ts=T0, action=CommandAction.ACTIVATE_POLICY,
                                    policy_hash=future.hash))
    assert [a.code for a in of_type(refused, Alert)] == ["POLICY_NOT_EFFECTIVE"]
    assert engine.active is None
    decision = decision_of(engine.handle(OrderIntent(
        intent_id="i1", ts=T0, account="A", strategy="s1", symbol="X", side=Side.BUY,
        qty=D(1))))
    assert decision.decision is DecisionKind.DENY and decision.blocking == "SYS-005"


def test_activating_a_stored_policy_switches_the_limits() -> None:
    world = Harness()
    strict = Policy.from_document(policy_document({"max_order_qty": "5"}))
    world.send(PolicyDocument(ts=T0, policy_hash=strict.hash, document=strict.document))
    assert decision_of(world.intent(qty="10")).decision is DecisionKind.ALLOW
    world.command(CommandAction.ACTIVATE_POLICY, policy_hash=strict.hash)
    decision = decision_of(world.intent(qty="10"))
    assert decision.blocking == "ORD-006" and decision.policy_hash == strict.hash
