"""RTS 6 Art. 15 controls: what counts as the account's own resting order for self-match
prevention (a stop only once it is known to have triggered; a working market order always),
the cancel `self_match: cancel_resting` makes named in the decision, and the repeated-execution
count starting again when an operator re-enables a strategy."""

from __future__ import annotations

from typing import Any

from engine.harness import D, Harness, decision_of, of_type, policy_document
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import (
    Alert,
    CancelOrder,
    CommandAction,
    DecisionRecord,
    Dispatch,
    OutputEvent,
    PolicyDocument,
    ShadowDecision,
)
from ordergate.model.intent import OrderType, Side
from ordergate.policy import Policy


def _stop_loss(world: Harness, **fields: Any) -> Dispatch:
    """Long 100, protected by an untriggered sell stop-limit (stop 95, limit 94)."""
    entry = world.accepted(Side.BUY, qty="100", order_type=OrderType.MARKET)
    world.fill(entry.client_order_id, "100")
    return world.accepted(Side.SELL, qty="100", order_type=OrderType.STOP_LIMIT,
                          limit_price=D(94), stop_price=D(95), **fields)


def test_an_untriggered_stop_limit_is_not_resting_so_self_match_deny_allows_buys() -> None:
    world = Harness({"self_match": "deny"})
    _stop_loss(world)
    assert world.state.resting_prices("A", "X") == (None, None)
    assert decision_of(world.intent(Side.BUY, qty="10", limit_price="100.01")).decision is (
        DecisionKind.ALLOW)
    assert decision_of(world.intent(Side.BUY, qty="10")).decision is DecisionKind.ALLOW


def test_cancel_resting_never_cancels_an_untriggered_stop_loss() -> None:
    world = Harness({"self_match": "cancel_resting"})
    stop = _stop_loss(world)
    outputs = world.intent(Side.BUY, qty="10", limit_price="100.01")
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.ALLOW and decision.violations == ()
    assert of_type(outputs, CancelOrder) == []
    assert not world.state.open_orders[stop.client_order_id].cancel_requested


def test_a_stop_limit_rests_at_its_limit_once_a_fill_shows_it_triggered() -> None:
    world = Harness({"self_match": "deny"})
    stop = _stop_loss(world)
    world.fill(stop.client_order_id, "40", price="94")
    assert world.state.resting_prices("A", "X") == (None, D(94))
    denied = decision_of(world.intent(Side.BUY, qty="10", limit_price="94"))
    assert denied.blocking == "ORD-010"
    assert denied.violations[0].detail == (
        "would trade against the account's own resting order at 94")
    # a restored engine rebuilds the same ladder from the order's fills
    restored = Engine.restore(world.engine.snapshot())
    assert restored.state.resting_prices("A", "X") == (None, D(94))
    world.fill(stop.client_order_id, "60", price="94")
    assert world.state.resting_prices("A", "X") == (None, None)
    assert world.state.ladders == {}


def test_a_stop_filled_whole_by_its_first_fill_leaves_no_ladder_behind() -> None:
    world = Harness({"self_match": "deny"})
    stop = _stop_loss(world)
    world.fill(stop.client_order_id, "100", price="94")
    assert stop.client_order_id not in world.state.open_orders
    assert world.state.ladders == {}


def test_a_working_market_order_makes_opposite_orders_self_match_under_deny() -> None:
    world = Harness({"self_match": "deny"})
    market = world.accepted(Side.BUY, qty="5", order_type=OrderType.MARKET)
    # judged for a sell, the working market buy counts, at +infinity; for a buy, or in a
    # record written without self-matching, only limit prices do
    assert world.state.resting_prices("A", "X", Side.SELL)[0] == D("Infinity")
    assert world.state.resting_prices("A", "X", Side.BUY) == (None, None)
    assert world.state.resting_prices("A", "X") == (None, None)
    limit = decision_of(world.intent(Side.SELL, qty="5", limit_price="99"))
    assert limit.blocking == "ORD-010"
    assert (limit.violations[0].observed, limit.violations[0].limit) == ("99", "market")
    assert limit.violations[0].detail == (
        "would trade against the account's own working market order")
    assert decision_of(world.intent(Side.SELL, qty="5")).blocking == "ORD-010"
    # once it is done, it crosses nothing
    world.fill(market.client_order_id, "5")
    assert world.state.resting_prices("A", "X") == (None, None)
    assert decision_of(world.intent(Side.SELL, qty="5", limit_price="99")).decision is (
        DecisionKind.ALLOW)


def test_a_working_market_sell_makes_any_buy_self_match() -> None:
    world = Harness({"self_match": "deny"})
    world.accepted(Side.SELL, qty="5", order_type=OrderType.MARKET)
    assert decision_of(world.intent(Side.BUY, qty="5", limit_price="0.01")).blocking == "ORD-010"


def test_cancel_resting_cancels_a_working_market_order_and_the_decision_says_so() -> None:
    world = Harness({"self_match": "cancel_resting"})
    market = world.accepted(Side.BUY, qty="5", order_type=OrderType.MARKET)
    outputs = world.intent(Side.SELL, qty="5", limit_price="99")
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.ALLOW and decision.blocking == ""
    (note,) = decision.violations
    assert (note.code, note.observed, note.limit) == ("ORD-010", "99", "market")
    assert note.detail == (
        "cancelled the account's own order it would trade against (self_match: cancel_resting): "
        f"{market.client_order_id} at market")
    assert [cancel.client_order_id for cancel in of_type(outputs, CancelOrder)] == [
        market.client_order_id]
    assert [type(output).__name__ for output in outputs] == [
        "Decision", "DecisionRecord", "CancelOrder", "Dispatch"]
    # a retry gets the same decision and cancels nothing again
    assert world.send(world.log[-1]) == [decision]


def test_cancel_resting_names_every_order_it_cancels_in_price_order() -> None:
    world = Harness({"self_match": "cancel_resting"})
    low = world.accepted(Side.SELL, qty="5", limit_price="101")
    high = world.accepted(Side.SELL, qty="5", limit_price="102")
    decision = decision_of(world.intent(Side.BUY, qty="5"))
    (note,) = decision.violations
    assert (note.observed, note.limit) == ("marketable", "101")
    assert note.detail.endswith(f": {low.client_order_id} at 101, {high.client_order_id} at 102")


def _disable_then_reenable(world: Harness) -> str:
    order = world.accepted(qty="10").client_order_id
    for _ in range(3):
        world.advance(1)
        world.fill(order, "1")
    assert world.state.strategy_disabled("A", "s1")
    world.advance(1)
    world.command(CommandAction.ENABLE_STRATEGY, key="s1", operator="ops1", reason="checked")
    assert not world.state.strategy_disabled("A", "s1")
    return order


def test_repeated_execution_counts_again_from_zero_after_an_operator_re_enables() -> None:
    world = Harness({"repeated_execution": {"max": 3, "window": "1m"}})
    order = _disable_then_reenable(world)
    for _ in range(2):
        world.advance(1)
        assert of_type(world.fill(order, "1"), Alert) == []
    assert not world.state.strategy_disabled("A", "s1")
    world.advance(1)
    (alert,) = of_type(world.fill(order, "1"), Alert)
    assert alert.code == "THR-006" and "after 3 fills" in alert.message
    assert world.state.strategy_disabled("A", "s1")


def test_a_snapshot_taken_after_the_re_enable_keeps_the_count_restarted() -> None:
    world = Harness({"repeated_execution": {"max": 3, "window": "1m"}})
    order = _disable_then_reenable(world)
    restored = Engine.restore(world.engine.snapshot())
    assert restored.snapshot() == world.engine.snapshot()
    world.engine = restored
    for _ in range(2):
        world.advance(1)
        assert of_type(world.fill(order, "1"), Alert) == []
    assert not world.state.strategy_disabled("A", "s1")


def test_a_cancel_resting_shadow_names_the_cancel_it_would_make_and_makes_none() -> None:
    world = Harness({"self_match": "deny"})
    document = policy_document({"self_match": "cancel_resting"})
    document["metadata"] = {"name": "shadow"}
    shadow = Policy.from_document(document)
    world.send(PolicyDocument(ts=world.now, policy_hash=shadow.hash, document=shadow.document))
    world.command(CommandAction.SHADOW_POLICY, policy_hash=shadow.hash, operator="ops1",
                  reason="dry run")
    market = world.accepted(Side.BUY, qty="5", order_type=OrderType.MARKET)
    outputs = world.intent(Side.SELL, qty="5", limit_price="99")
    assert decision_of(outputs).blocking == "ORD-010"
    (would,) = of_type(outputs, ShadowDecision)
    assert would.decision is DecisionKind.ALLOW
    assert [(v.code, v.limit) for v in would.violations] == [("ORD-010", "market")]
    assert market.client_order_id in would.violations[0].detail
    assert of_type(outputs, CancelOrder) == []
    assert not world.state.open_orders[market.client_order_id].cancel_requested


def test_a_decision_record_shows_limit_prices_unless_a_market_order_is_what_it_judged() -> None:
    # Records of decisions taken without self-matching, or by an order on the market order's
    # own side, read as records always did (older journals replay byte for byte): the best
    # limit price, not the working market order's +infinity.
    for policy in ({"self_match": "off"}, {"self_match": "deny"}):
        world = Harness(policy)
        world.accepted(Side.BUY, qty="5", limit_price="98")
        world.accepted(Side.BUY, qty="5", order_type=OrderType.MARKET)
        same_side = world.intent(Side.BUY, qty="1", limit_price="97")
        assert _record(same_side).context.resting_buy == D(98)
        opposite = world.intent(Side.SELL, qty="1", limit_price="105")
        expected = D(98) if policy["self_match"] == "off" else D("Infinity")
        assert _record(opposite).context.resting_buy == expected


def _record(outputs: list[OutputEvent]) -> DecisionRecord:
    (record,) = of_type(outputs, DecisionRecord)
    return record
