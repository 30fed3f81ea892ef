"""Stop (stop-market) orders meet the fat-finger limits: they are valued at the larger of their
stop price and the reference price (ORD-007), and a stop the market has already crossed
triggers at once, so it is collared as the market order it becomes (ORD-008, on the quote's
far side); a protective stop the market has not reached is not collared, however far away it
sits. Every case is decided by the public `evaluate` and by the engine's screened plan, which
must agree byte for byte."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from gate.build import intent, quote, view, violation
from gate.views import MemoryView
from ordergate.gate import PlanCache, decide, evaluate
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.policy import parse_policy

D = Decimal
HEADER = "apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: stops}\n"


def policy_text(**limits: str) -> str:
    fields = "".join(f"  {name}: {value}\n" for name, value in limits.items())
    return HEADER + "defaults:\n  max_market_data_age: 5s\n" + fields


def stop(side: Side, qty: str, stop_price: str) -> OrderIntent:
    return intent(side=side, qty=D(qty), order_type=OrderType.STOP, limit_price=None,
                  stop_price=D(stop_price))


def at_ten() -> MemoryView:
    """The symbol at 10: mid of 9.99 / 10.01."""
    return view(markets={"XYZ": quote(bid=D("9.99"), ask=D("10.01"), last=D("10.00"))})


def judged(order: OrderIntent, text: str, world: MemoryView | None = None) -> Decision:
    """The decision of the full table, after checking the screened plan gives the same bytes."""
    world = world if world is not None else at_ten()
    policy = parse_policy(text)
    full = evaluate(order, world, policy)
    limits = policy.limits_for("A1", "S1", "XYZ")
    screened, _ = decide(order, world, limits, policy.hash, PlanCache().plan(limits))
    assert msgspec.json.encode(full) == msgspec.json.encode(screened)
    return full


# -- the auditor's cases


def test_a_crossed_buy_stop_is_valued_at_the_market_not_at_its_stop_price() -> None:
    # triggers at once (10 is above 0.01) and fills near 10: 5000 x 10 = 50000, not 50
    decision = judged(stop(Side.BUY, "5000", "0.01"), policy_text(max_order_value="1000"))
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "ORD-007"
    value = violation(decision, "ORD-007")
    assert D(value.observed) == D(50000) and value.limit == "1000"


def wide(bid: str, ask: str) -> MemoryView:
    return view(markets={"XYZ": quote(bid=D(bid), ask=D(ask), last=D("10.00"))})


def test_a_crossed_buy_stop_is_collared_as_a_market_order() -> None:
    # 0.01 is below the market: it triggers at once and fills at the ask, 10 % from the mid
    decision = judged(stop(Side.BUY, "10", "0.01"), policy_text(market_collar_pct="1"),
                      wide("9.00", "11.00"))
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "ORD-008"
    collar = violation(decision, "ORD-008")
    assert collar.limit == "1" and D(collar.observed) == D(10)
    assert "expected fill 11.00" in collar.detail
    # the same stop on a tight quote fills near the market: the collar lets it through
    tight = judged(stop(Side.BUY, "10", "0.01"), policy_text(market_collar_pct="1"))
    assert tight.decision is DecisionKind.ALLOW, tight.violations


def test_the_price_collar_alone_collars_crossed_stops_through_the_market_collar() -> None:
    decision = judged(stop(Side.SELL, "10", "20.00"), policy_text(price_collar_pct="5"),
                      wide("9.00", "11.00"))
    assert decision.blocking == "ORD-008"


@pytest.mark.parametrize(("side", "stop_price"), [(Side.SELL, "5.00"), (Side.BUY, "15.00")])
def test_a_stop_the_market_has_not_reached_is_not_collared(side: Side, stop_price: str) -> None:
    # a protective stop 50 % away: the strategy's choice, even on a wide quote
    decision = judged(stop(side, "10", stop_price), policy_text(market_collar_pct="1"),
                      wide("9.00", "11.00"))
    assert decision.decision is DecisionKind.ALLOW, decision.violations


# -- ordinary stops are allowed


@pytest.mark.parametrize(("side", "stop_price"), [(Side.BUY, "10.05"), (Side.SELL, "9.95")])
def test_ordinary_protective_stops_are_allowed(side: Side, stop_price: str) -> None:
    text = policy_text(max_order_value="1000", market_collar_pct="1", price_collar_pct="5")
    decision = judged(stop(side, "50", stop_price), text)
    assert decision.decision is DecisionKind.ALLOW, decision.violations


# -- the valuation rule, side by side


@pytest.mark.parametrize(("side", "stop_price", "value"), [
    (Side.BUY, "10.05", "1005"),   # above the market: fills at the stop or higher
    (Side.BUY, "9.95", "1000"),    # crossed: triggers now, at the market
    (Side.SELL, "9.95", "1000"),   # below the market: never valued under the market
    (Side.SELL, "10.05", "1005"),  # crossed sell: the larger of the two still bounds it
])
def test_a_stop_is_valued_at_the_larger_of_its_stop_price_and_the_reference(
    side: Side, stop_price: str, value: str,
) -> None:
    # a limit one cent under the value: ORD-007 reports the value it used
    limit = D(value) - D("0.01")
    decision = judged(stop(side, "100", stop_price), policy_text(max_order_value=str(limit)))
    assert D(violation(decision, "ORD-007").observed) == D(value)


def test_a_stop_with_no_usable_price_is_valued_at_its_stop_price_and_refused_for_its_data() -> None:
    no_price = view(markets={"XYZ": quote(bid=None, ask=None, last=None)})
    decision = judged(stop(Side.BUY, "5000", "0.01"), policy_text(max_order_value="1000"),
                      no_price)
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "SYS-001"


# -- boundaries


@pytest.mark.parametrize(("limit", "kind"), [
    ("50000", DecisionKind.ALLOW), ("49999.99", DecisionKind.DENY),
])
def test_the_order_value_limit_at_its_boundary(limit: str, kind: DecisionKind) -> None:
    decision = judged(stop(Side.BUY, "5000", "0.01"), policy_text(max_order_value=limit))
    assert decision.decision is kind


@pytest.mark.parametrize(("bid", "ask", "kind"), [
    ("9.90", "10.10", DecisionKind.ALLOW),   # the far side exactly 1 % from the mid 10
    ("9.89", "10.11", DecisionKind.DENY),
])
@pytest.mark.parametrize(("side", "stop_price"), [(Side.BUY, "10.00"), (Side.SELL, "10.00")])
def test_a_crossed_stops_collar_at_its_boundary(side: Side, stop_price: str, bid: str, ask: str,
                                                kind: DecisionKind) -> None:
    # a stop exactly at the reference has been reached: it triggers at once
    decision = judged(stop(side, "10", stop_price), policy_text(market_collar_pct="1"),
                      wide(bid, ask))
    assert decision.decision is kind, decision.violations


def test_a_stop_limit_is_collared_on_its_limit_price_not_its_stop_price() -> None:
    text = policy_text(price_collar_pct="5", market_collar_pct="1")
    near_limit = intent(order_type=OrderType.STOP_LIMIT, qty=D("10"), limit_price=D("10.20"),
                        stop_price=D("10.30"))
    assert judged(near_limit, text).decision is DecisionKind.ALLOW
    far_limit = intent(order_type=OrderType.STOP_LIMIT, qty=D("10"), limit_price=D("10.60"),
                       stop_price=D("10.30"))
    decision = judged(far_limit, text)
    assert decision.blocking == "ORD-008"
    assert "limit_price 10.60" in violation(decision, "ORD-008").detail


# -- limit orders: a sell limited below the market is valued at the market


def limit(side: Side, qty: str, price: str, order_type: OrderType = OrderType.LIMIT,
          stop_price: str | None = None) -> OrderIntent:
    return intent(side=side, qty=D(qty), order_type=order_type, limit_price=D(price),
                  stop_price=None if stop_price is None else D(stop_price))


def test_a_sell_limited_far_below_the_market_is_valued_at_the_market() -> None:
    # marketable: it sells near 10, whatever its limit says: 5000 x 10 = 50000, not 50
    decision = judged(limit(Side.SELL, "5000", "0.01"), policy_text(max_order_value="1000"))
    assert decision.blocking == "ORD-007"
    assert D(violation(decision, "ORD-007").observed) == D(50000)


@pytest.mark.parametrize(("side", "price", "order_type", "value"), [
    (Side.SELL, "10.05", OrderType.LIMIT, "1005"),  # above the market: it sells at the limit
    (Side.SELL, "9.95", OrderType.LIMIT, "1000"),   # marketable: at the market
    (Side.BUY, "9.95", OrderType.LIMIT, "995"),     # a buy pays at most its limit
    (Side.BUY, "10.05", OrderType.LIMIT, "1005"),
    (Side.SELL, "9.95", OrderType.STOP_LIMIT, "1000"),
])
def test_a_limit_order_is_valued_at_its_limit_unless_a_sell_is_limited_below_the_market(
    side: Side, price: str, order_type: OrderType, value: str,
) -> None:
    order = limit(side, "100", price, order_type,
                  stop_price=price if order_type is OrderType.STOP_LIMIT else None)
    decision = judged(order, policy_text(max_order_value=str(D(value) - D("0.01"))))
    assert D(violation(decision, "ORD-007").observed) == D(value)
    at_limit = judged(order, policy_text(max_order_value=value))
    assert "ORD-007" not in {found.code for found in at_limit.violations}
