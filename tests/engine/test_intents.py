"""Intents: decisions, deterministic dispatch, reservations, retries, self-match."""

from __future__ import annotations

import hashlib

from engine.harness import D, Harness, decision_of, of_type
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import CancelOrder, Dispatch
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.values import utc


def test_without_an_active_policy_every_intent_is_denied_with_config_missing() -> None:
    engine = Engine()
    outputs = engine.handle(OrderIntent(
        intent_id="i1", ts=utc(2026, 1, 5), account="A", strategy="s", symbol="X",
        side=Side.BUY, qty=D(1),
    ))
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "SYS-005"
    assert of_type(outputs, Dispatch) == []


def test_allowed_intent_emits_decision_then_dispatch_with_deterministic_client_order_id() -> None:
    world = Harness()
    outputs = world.intent(qty="10")
    assert [type(output).__name__ for output in outputs] == [
        "Decision", "LimitsRecord", "DecisionRecord", "Dispatch"]
    dispatch = outputs[3]
    assert isinstance(dispatch, Dispatch)
    digest = hashlib.sha256(b"A|s1|i1").hexdigest()[:28]
    assert dispatch.client_order_id == "og-" + digest
    assert len(dispatch.client_order_id) <= 32
    assert (dispatch.account, dispatch.symbol, dispatch.qty) == ("A", "X", D(10))


def test_intent_client_order_id_is_used_when_given() -> None:
    world = Harness()
    dispatch = world.accepted(client_order_id="mine-1")
    assert dispatch.client_order_id == "mine-1"
    again = decision_of(world.intent(client_order_id="mine-1"))
    assert again.blocking == "DUP-001"


def test_retried_intent_id_returns_the_same_decision_without_a_second_dispatch() -> None:
    world = Harness()
    first = world.intent(qty="10")
    retry = world.send(world.log[-1])
    assert retry == [first[0]]
    assert len(world.state.open_orders) == 1


def test_denied_intent_has_no_side_effects() -> None:
    world = Harness({"max_position_qty": "50"})
    world.accepted(qty="40")
    before = world.book_image()
    decision = decision_of(world.intent(qty="20"))
    assert decision.blocking == "EXP-001"
    assert world.book_image() == before


def test_reservation_lets_exactly_one_of_two_intents_under_a_cap_pass() -> None:
    world = Harness({"max_position_qty": "100"})
    first = decision_of(world.intent(qty="60"))
    second = decision_of(world.intent(qty="60"))
    assert first.decision is DecisionKind.ALLOW
    assert second.decision is DecisionKind.DENY and second.blocking == "EXP-001"
    assert world.state.working("A", "X") == (D(60), D(0))


def test_gross_exposure_reservation_counts_across_symbols() -> None:
    world = Harness({"max_gross_exposure": "1500"}, symbols=("X", "Y"))
    assert decision_of(world.intent(qty="10", symbol="X")).decision is DecisionKind.ALLOW
    assert world.state.exposure("A").gross == D("1000")
    denied = decision_of(world.intent(qty="10", symbol="Y"))
    assert denied.blocking == "EXP-003"


def test_modified_intent_dispatches_the_modified_quantity() -> None:
    world = Harness({"max_position_qty": "100", "exposure_modify": True})
    world.accepted(qty="70")
    outputs = world.intent(qty="50")
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.MODIFY
    (dispatch,) = of_type(outputs, Dispatch)
    assert dispatch.qty == decision.modified_qty == D(30)
    assert world.state.working("A", "X") == (D(100), D(0))


def test_rate_window_counts_accepted_intents_only() -> None:
    world = Harness({"rate_strategy": {"max": 2, "window": "10s"},
                     "max_position_qty": "25"})
    world.accepted(qty="10")
    assert decision_of(world.intent(qty="30")).blocking == "EXP-001"  # denied: not counted
    world.accepted(qty="10")
    assert decision_of(world.intent(qty="1")).blocking == "THR-003"
    world.advance(10)
    assert decision_of(world.intent(qty="1")).decision is DecisionKind.ALLOW


def test_duplicate_window_denies_the_same_order_until_it_expires() -> None:
    world = Harness({"duplicate_window": "5s"})
    world.accepted(qty="10", limit_price="99")
    assert decision_of(world.intent(qty="10", limit_price="99")).blocking == "DUP-002"
    world.advance(5)
    assert decision_of(world.intent(qty="10", limit_price="99")).decision is DecisionKind.ALLOW


def test_self_match_cancel_resting_cancels_crossing_orders_and_allows() -> None:
    world = Harness({"self_match": "cancel_resting"})
    low = world.accepted(Side.SELL, qty="5", limit_price="101")
    high = world.accepted(Side.SELL, qty="5", limit_price="103")
    outputs = world.intent(Side.BUY, qty="5", limit_price="102")
    assert decision_of(outputs).decision is DecisionKind.ALLOW
    cancels = of_type(outputs, CancelOrder)
    assert [cancel.client_order_id for cancel in cancels] == [low.client_order_id]
    assert [type(output).__name__ for output in outputs] == [
        "Decision", "DecisionRecord", "CancelOrder", "Dispatch"]
    # the crossing order is not cancelled twice; a market buy crosses the rest
    market = world.intent(Side.BUY, qty="1")
    assert [c.client_order_id for c in of_type(market, CancelOrder)] == [high.client_order_id]


def test_self_match_deny_uses_best_resting_price() -> None:
    world = Harness({"self_match": "deny"})
    world.accepted(Side.SELL, qty="5", limit_price="101")
    assert world.state.resting_prices("A", "X") == (None, D(101))
    assert decision_of(world.intent(Side.BUY, qty="5", limit_price="101")).blocking == "ORD-010"
    assert decision_of(world.intent(Side.BUY, qty="5", limit_price="100.5")).decision is (
        DecisionKind.ALLOW
    )
    assert world.state.resting_prices("A", "X") == (D("100.5"), D(101))
