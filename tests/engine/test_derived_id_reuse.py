"""One client order id, one order: an intent without a client order id is denied (DUP-001)
when the id derived from its (account, strategy, intent_id) is still in use, a flatten order
takes a free id, and the engine never tracks two orders under one id. The working quantities
stay the sum of the open orders throughout."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from engine.harness import Harness, decision_of, of_type
from evidence.support import invoke
from ordergate.engine.core import Engine
from ordergate.engine.ids import derive_client_order_id
from ordergate.engine.records import OrderRecord
from ordergate.engine.state import OrderIdInUse
from ordergate.gate import decide, evaluate_limits
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import CommandAction, Dispatch
from ordergate.model.intent import OrderIntent, OrderType, Side, TimeInForce

D = Decimal
DAY = 86_400


def assert_reservations_match_orders(world: Harness) -> None:
    state = world.state
    for (account, symbol), book in state.books.items():
        orders = [order for order in state.open_orders.values()
                  if (order.account, order.symbol) == (account, symbol)]
        assert book.working_buy == sum(
            (order.remaining for order in orders if order.side is Side.BUY), D(0))
        assert book.working_sell == sum(
            (order.remaining for order in orders if order.side is Side.SELL), D(0))


def resting_gtc(world: Harness) -> tuple[OrderIntent, Dispatch]:
    """A GTC buy that rests, and the intent that made it."""
    outputs = world.intent(Side.BUY, "10", intent_id="gtc-1", limit_price="95",
                           tif=TimeInForce.GTC)
    (dispatch,) = of_type(outputs, Dispatch)
    sent = world.log[-1]
    assert isinstance(sent, OrderIntent)
    return sent, dispatch


def forget_its_decision(world: Harness) -> None:
    for _ in range(3):  # decisions are kept two trading days
        world.tick(DAY)
        world.quote("X", "100")


def test_a_retry_after_its_decision_is_forgotten_is_denied_while_its_order_works() -> None:
    world = Harness({"max_market_data_age": "100d"})
    sent, dispatch = resting_gtc(world)
    forget_its_decision(world)
    assert world.state.decided.get(("A", "s1", "gtc-1")) is None
    outputs = world.send(sent)
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.DENY and decision.blocking == "DUP-001"
    (violation,) = decision.violations
    assert violation.observed == dispatch.client_order_id
    assert "derived from (account, strategy, intent_id)" in violation.detail
    assert "gtc-1" in violation.detail
    assert not of_type(outputs, Dispatch)
    assert list(world.state.open_orders) == [dispatch.client_order_id]
    assert_reservations_match_orders(world)


def test_screened_and_full_table_agree_on_a_derived_id_collision() -> None:
    world = Harness({"max_market_data_age": "100d"})
    sent, _ = resting_gtc(world)
    forget_its_decision(world)
    state, policy = world.state, world.policy
    limits = policy.limits_for("A", "s1", "X")
    fresh = msgspec.structs.replace(sent, intent_id="gtc-2")
    for intent, code in ((sent, "DUP-001"), (fresh, "")):
        screened, _ = decide(intent, state, limits, policy.hash,
                             world.engine.plans.plan(limits))
        full = evaluate_limits(intent, state, limits, policy.hash)
        assert msgspec.json.encode(screened) == msgspec.json.encode(full)
        assert screened.blocking == code


def test_flatten_takes_a_free_id_when_an_intent_holds_the_derived_one() -> None:
    world = Harness({"max_market_data_age": "10m"})
    bought = world.accepted(Side.BUY, "10")
    world.fill(bought.client_order_id, "10")
    held = world.accepted(Side.SELL, "3", strategy="operator-flatten",
                          intent_id="flatten-1-X", limit_price="150")
    outputs = world.command(CommandAction.FLATTEN, operator="op", reason="r")
    (flatten,) = of_type(outputs, Dispatch)
    assert flatten.intent_id == "flatten-1-X-2"
    assert flatten.client_order_id == derive_client_order_id(
        "A", "operator-flatten", "flatten-1-X-2")
    assert set(world.state.open_orders) == {held.client_order_id, flatten.client_order_id}
    assert_reservations_match_orders(world)


def test_the_derived_id_index_survives_a_restore_and_forgets_rotated_orders() -> None:
    world = Harness({"max_market_data_age": "100d"})
    sent, dispatch = resting_gtc(world)
    state = world.state
    assert state.derived_ids == {("A", "s1", "gtc-1"): dispatch.client_order_id}
    restored = Engine.restore(world.engine.snapshot())
    assert restored.state.derived_ids == state.derived_ids
    world.fill(dispatch.client_order_id, "10", price="95")
    assert state.derived_ids  # done orders keep their id for two trading days
    forget_its_decision(world)
    assert state.derived_ids == {} and state.client_order_id_in_use(sent) is False
    assert decision_of(world.send(sent)).decision is DecisionKind.ALLOW


def test_an_order_is_never_added_under_a_working_id() -> None:
    world = Harness()
    dispatch = world.accepted(Side.BUY, "10", limit_price="95")
    order = world.state.open_orders[dispatch.client_order_id]
    twin = msgspec.structs.replace(order, intent_id="other", remaining=D(5))
    with pytest.raises(OrderIdInUse, match=dispatch.client_order_id):
        world.state.add_order(twin)
    assert world.state.open_orders[dispatch.client_order_id] is order
    assert_reservations_match_orders(world)


def test_a_dry_run_policy_still_denies_a_second_order_under_one_id() -> None:
    # monitor mode allows what it would block, but never DUP-001: no second order can be
    # tracked under one id, so it is denied as in enforcing mode and the first order is kept
    world = Harness({"max_market_data_age": "100d"}, monitor=True)
    sent, dispatch = resting_gtc(world)
    forget_its_decision(world)
    outputs = world.send(sent)
    assert not of_type(outputs, Dispatch)
    (decision,) = of_type(outputs, Decision)
    assert decision.decision is DecisionKind.DENY and decision.blocking == "DUP-001"
    assert decision.would_block == "DUP-001"
    assert world.state.mode.value == "ACTIVE"
    assert list(world.state.open_orders) == [dispatch.client_order_id]
    assert_reservations_match_orders(world)


def test_an_id_that_only_looks_derived_is_still_found() -> None:
    # an explicit "og-" id (refused since, held only by old journals) equal to the id another
    # intent derives: the index cannot find it, so the derived id is looked up directly
    world = Harness()
    taken = derive_client_order_id("A", "s1", "later")
    world.state.add_order(OrderRecord(
        client_order_id=taken, intent_id="earlier", account="A", strategy="s1", symbol="X",
        side=Side.BUY, qty=D(1), remaining=D(1), order_type=OrderType.MARKET,
        created=world.now))
    assert world.state.foreign_derived_ids == {taken: None}
    decision = decision_of(world.intent(Side.BUY, "5", intent_id="later"))
    assert decision.blocking == "DUP-001" and decision.violations[0].observed == taken
    restored = Engine.restore(world.engine.snapshot())
    assert restored.state.foreign_derived_ids == {taken: None}


@pytest.mark.parametrize("name", ["flatten", "retry"])
def test_the_journal_of_a_denied_collision_replays(tmp_path: Path, name: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: ordergate/v1\nkind: Policy\nmetadata:\n  name: ids\n"
                      "defaults:\n  max_market_data_age: 10d\n  max_order_qty: 500\n")
    head = [{"type": "account", "ts": "2026-03-02T14:30:00Z", "account": "A",
             "cash": "100000"}]
    quote = {"type": "market", "symbol": "X", "bid": "99.99", "ask": "100.01",
             "last": "100.00"}
    if name == "flatten":
        events = [*head, {**quote, "ts": "2026-03-02T14:30:00Z"},
                  {"type": "intent", "ts": "2026-03-02T14:30:01Z", "intent_id": "i-1",
                   "account": "A", "strategy": "s", "symbol": "X", "side": "buy",
                   "qty": "10"},
                  {"type": "intent", "ts": "2026-03-02T14:30:02Z", "intent_id": "flatten-1-X",
                   "account": "A", "strategy": "operator-flatten", "symbol": "X",
                   "side": "sell", "qty": "3", "order_type": "limit", "limit_price": "104"},
                  {"type": "command", "ts": "2026-03-02T14:30:03Z", "action": "flatten",
                   "operator": "op", "reason": "r"}]
    else:
        gtc = {"type": "intent", "ts": "2026-03-02T14:30:01Z", "intent_id": "gtc-1",
               "account": "A", "strategy": "s", "symbol": "X", "side": "buy", "qty": "10",
               "order_type": "limit", "limit_price": "95", "tif": "gtc"}
        events = [*head, {**quote, "ts": "2026-03-02T14:30:00Z"}, gtc,
                  *({**quote, "ts": f"2026-03-0{day}T14:30:00Z"} for day in (3, 4, 5)), gtc]
    feed = tmp_path / "events.jsonl"
    feed.write_text("".join(json.dumps(event) + "\n" for event in events))
    journal = tmp_path / "j.db"
    ran = invoke("run", "--batch-size", "1", "--policy", str(policy), "--journal",
                 str(journal), str(feed))
    assert ran.code == 0, ran.output
    printed = [json.loads(line) for line in ran.output.splitlines() if line.startswith("{")]
    dispatched = [item["client_order_id"] for item in printed if item["type"] == "dispatch"]
    assert len(dispatched) == len(set(dispatched))
    if name == "retry":
        assert [item.get("blocking", "") for item in printed
                if item["type"] == "decision"] == ["", "DUP-001"]
    verified = invoke("replay", "verify", "--journal", str(journal))
    assert verified.code == 0, verified.output
