"""A shadow (dry-run) policy is judged for every intent and never enforced: the real decisions,
dispatches and state are exactly those of an engine without it; each ShadowDecision is what
the engine would answer if that policy were the active one."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness import D, Harness, decision_of, encode, of_type, policy_document
from engine.test_properties import DEFAULTS, SYMBOLS, _apply, all_ops
from ordergate.engine.core import POLICY_SHADOW, POLICY_UNKNOWN, Engine
from ordergate.engine.windows import micros
from ordergate.gate.evaluate import evaluate
from ordergate.model.decision import DecisionKind
from ordergate.model.events import (
    Alert,
    CommandAction,
    Dispatch,
    OutputEvent,
    PolicyDocument,
    ShadowDecision,
)
from ordergate.model.intent import OrderIntent, Side
from ordergate.policy import Policy

# Tighter than DEFAULTS everywhere that matters, with a longer rate window.
STRICT = {
    **DEFAULTS,
    "max_order_qty": "15",
    "max_position_qty": "25",
    "max_gross_exposure": "4000",
    "rate_account": {"max": 3, "window": "2m"},
}


def _strict_policy(defaults: dict[str, Any]) -> Policy:
    document = policy_document(defaults)
    document["metadata"] = {"name": "strict"}
    return Policy.from_document(document)


def _install_shadow(world: Harness, policy: Policy) -> list[OutputEvent]:
    world.send(PolicyDocument(ts=world.now, policy_hash=policy.hash, document=policy.document))
    return world.command(CommandAction.SHADOW_POLICY, policy_hash=policy.hash,
                         operator="ops1", reason="dry run")


def _state_image(engine: Engine, retention: dict[str, int]) -> bytes:
    """Everything an intent can change. Rate-window history is cut to `retention` (the plain
    engine's) and sorted: a shadow keeps more history so its own throttles count right (so a
    series may outlive an expiry it would otherwise have had), and more history never changes
    a count the enforced policy asks for."""
    state = engine.state
    horizon = micros(state.clock)
    series = sorted(
        (entry.kind, entry.key,
         [at for at in entry.times if at > horizon - retention.get(entry.kind, 0)])
        for entry in state.windows.image().series
    )
    return msgspec.json.encode([
        list(state.books.values()), list(state.open_orders.values()),
        list(state.done.current.values()), list(state.done.previous.values()),
        list(state.accounts.values()), [entry for entry in series if entry[2]],
        state.duplicates.image().entries, list(state.decided.current.items()),
        list(state.decided.previous.items()), state.counters,
        state.guard.image(), state.mode,
    ])


def _retention(engine: Engine) -> dict[str, int]:
    return {item.kind: item.span for item in engine.state.windows.image().retention}


def _without_shadow(outputs: list[OutputEvent]) -> list[OutputEvent]:
    return [output for output in outputs if not isinstance(output, ShadowDecision)]


@settings(max_examples=30, deadline=None)
@given(st.lists(all_ops, min_size=5, max_size=40))
def test_a_shadow_never_changes_the_real_decisions_or_the_state(ops: list[Any]) -> None:
    strict = _strict_policy(STRICT)
    plain = Harness(DEFAULTS, cash="20000", symbols=SYMBOLS)
    shadowed = Harness(DEFAULTS, cash="20000", symbols=SYMBOLS)
    _install_shadow(shadowed, strict)
    intents = 0
    for op in ops:
        before = shadowed.engine.snapshot()
        expected = _apply(plain, op)
        outputs = _apply(shadowed, op)
        assert encode(_without_shadow(outputs)) == encode(expected), op
        retention = _retention(plain.engine)
        assert _state_image(shadowed.engine, retention) == _state_image(plain.engine,
                                                                         retention), op
        shadows = of_type(outputs, ShadowDecision)
        if op[0] != "intent":
            assert not shadows
            continue
        intent = shadowed.log[-1]
        assert isinstance(intent, OrderIntent)
        intents += 1
        # exactly one, right after the real decision, for this intent, under the shadow
        (shadow,) = shadows
        real = decision_of(outputs)
        assert outputs.index(shadow) == outputs.index(real) + 1
        assert shadow.intent_id == intent.intent_id and shadow.policy_hash == strict.hash
        # the engine's own answer had the shadow policy been the active one, from the same state
        probe = Engine.restore(before)
        probe.active = strict
        direct = decision_of(probe.handle(intent))
        assert (shadow.decision, shadow.blocking, shadow.violations, shadow.modified_qty,
                shadow.would_block) == (direct.decision, direct.blocking, direct.violations,
                                        direct.modified_qty, direct.would_block)
    assert intents == sum(1 for op in ops if op[0] == "intent")


def test_the_shadow_decision_is_the_gates_answer_under_the_shadow_policy() -> None:
    world = Harness({"max_order_qty": "100"})
    strict = _strict_policy({"max_order_qty": "15", "max_position_qty": "25"})
    _install_shadow(world, strict)
    for qty in ("10", "20", "30"):
        intent = OrderIntent(intent_id=f"q{qty}", ts=world.now, account="A", strategy="s1",
                             symbol="X", side=Side.BUY, qty=D(qty))
        direct = evaluate(intent, world.state, strict)
        outputs = world.send(intent)
        assert decision_of(outputs).decision is DecisionKind.ALLOW
        (shadow,) = of_type(outputs, ShadowDecision)
        assert shadow.decision is direct.decision
        assert shadow.blocking == direct.blocking
        assert shadow.violations == direct.violations
    # 10 fits, 20 and 30 break the order cap (15); the enforced policy let all three through
    assert [s.decision for o in world.outputs[-3:] for s in of_type(o, ShadowDecision)] == [
        DecisionKind.ALLOW, DecisionKind.DENY, DecisionKind.DENY]
    assert len(world.state.open_orders) == 3


def test_a_shadow_deny_does_not_stop_what_the_enforced_policy_allows() -> None:
    world = Harness({"max_order_qty": "100"})
    strict = _strict_policy({"max_order_qty": "15"})
    _install_shadow(world, strict)
    outputs = world.intent(qty="50")
    (shadow,) = of_type(outputs, ShadowDecision)
    assert shadow.decision is DecisionKind.DENY and shadow.blocking == "ORD-006"
    assert decision_of(outputs).decision is DecisionKind.ALLOW
    assert decision_of(outputs).policy_hash == world.policy.hash
    assert len(of_type(outputs, Dispatch)) == 1


def test_a_retried_intent_gets_its_decision_again_without_a_second_shadow() -> None:
    world = Harness()
    _install_shadow(world, _strict_policy({"max_order_qty": "15"}))
    first = world.intent(qty="50")
    retry = world.send(world.log[-1])
    assert len(of_type(first, ShadowDecision)) == 1
    assert of_type(retry, ShadowDecision) == [] and decision_of(retry) == decision_of(first)


def test_snapshot_and_restore_keep_the_shadow_and_its_outputs() -> None:
    world = Harness()
    strict = _strict_policy({"max_order_qty": "15"})
    _install_shadow(world, strict)
    restored = Engine.restore(world.engine.snapshot())
    assert restored.shadow is not None and restored.shadow.hash == strict.hash
    assert restored.status().shadow_policy_hash == strict.hash
    assert restored.snapshot() == world.engine.snapshot()
    world.seq += 1
    intent = OrderIntent(intent_id="after-restore", ts=world.now, account="A", strategy="s1",
                         symbol="X", side=Side.BUY, qty=D("50"))
    assert encode(restored.handle(intent)) == encode(world.send(intent))


def test_activating_the_shadow_policy_clears_the_shadow_and_enforces_it() -> None:
    world = Harness()
    strict = _strict_policy({"max_order_qty": "15"})
    _install_shadow(world, strict)
    assert world.engine.status().shadow_policy_hash == strict.hash
    assert world.engine.status().policy_hash == world.policy.hash
    world.command(CommandAction.ACTIVATE_POLICY, policy_hash=strict.hash, operator="ops1",
                  reason="go live")
    status = world.engine.status()
    assert status.policy_hash == strict.hash and status.shadow_policy_hash == ""
    outputs = world.intent(qty="50")
    assert of_type(outputs, ShadowDecision) == []
    assert decision_of(outputs).blocking == "ORD-006"


def test_activating_another_policy_keeps_the_shadow() -> None:
    world = Harness()
    strict = _strict_policy({"max_order_qty": "15"})
    _install_shadow(world, strict)
    other = Policy.from_document(policy_document({"max_order_qty": "500"}))
    world.send(PolicyDocument(ts=world.now, policy_hash=other.hash, document=other.document))
    world.command(CommandAction.ACTIVATE_POLICY, policy_hash=other.hash)
    assert world.engine.status().shadow_policy_hash == strict.hash


def test_an_empty_hash_clears_the_shadow_and_an_unknown_one_changes_nothing() -> None:
    world = Harness()
    strict = _strict_policy({"max_order_qty": "15"})
    installed = _install_shadow(world, strict)
    assert [alert.code for alert in of_type(installed, Alert)] == [POLICY_SHADOW]
    unknown = world.command(CommandAction.SHADOW_POLICY, policy_hash="f" * 64, operator="ops1")
    assert [alert.code for alert in of_type(unknown, Alert)] == [POLICY_UNKNOWN]
    assert world.engine.status().shadow_policy_hash == strict.hash
    cleared = world.command(CommandAction.SHADOW_POLICY, policy_hash="", operator="ops1")
    assert [alert.code for alert in of_type(cleared, Alert)] == [POLICY_SHADOW]
    assert world.engine.shadow is None and world.engine.status().shadow_policy_hash == ""
    assert of_type(world.intent(qty="50"), ShadowDecision) == []
