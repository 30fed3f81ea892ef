"""A market order is never collared more loosely than a limit order (ORD-008): the policy gives
market orders the limit-order collar when they have none of their own, and refuses a market
collar looser than the limit collar that applies with it."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from gate.build import intent, quote, view, violation
from gate.views import MemoryView
from ordergate.gate import PlanCache, decide, evaluate
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.policy import PolicyError, parse_policy

D = Decimal
HEADER = "apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: collars}\n"
ONLY_LIMIT_COLLAR = HEADER + """\
defaults:
  max_market_data_age: 5s
  price_collar_pct: 1
symbols:
  TIGHT: {price_collar_pct: 0.5}
  OWN: {market_collar_pct: 0.25}
"""


def market_order(symbol: str = "XYZ", side: Side = Side.BUY) -> OrderIntent:
    return intent(symbol=symbol, side=side, order_type=OrderType.MARKET, limit_price=None)


def quoted(symbol: str, bid: str, ask: str) -> MemoryView:
    return view(markets={symbol: quote(symbol, bid=D(bid), ask=D(ask), last=D("100.00"))})


def both_paths(
    order: OrderIntent, world: MemoryView, symbol: str = "XYZ"
) -> tuple[Decision, Decision]:
    """The public `evaluate` and the engine's screened plan, on the same policy."""
    policy = parse_policy(ONLY_LIMIT_COLLAR)
    full = evaluate(order, world, policy)
    limits = policy.limits_for("A1", "S1", symbol)
    screened, _ = decide(order, world, limits, policy.hash, PlanCache().plan(limits))
    return full, screened


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_market_order_beyond_the_limit_collar_is_denied_when_only_price_collar_is_set(
    side: Side,
) -> None:
    # mid 100, far side 2 % away: beyond the 1 % limit-order collar
    full, screened = both_paths(market_order(side=side), quoted("XYZ", "98.00", "102.00"))
    assert full == screened
    assert full.decision is DecisionKind.DENY
    assert full.blocking == "ORD-008"
    collar = violation(full, "ORD-008")
    assert collar.limit == "1" and D(collar.observed) == 2


def test_market_order_exactly_at_the_limit_collar_is_allowed() -> None:
    full, screened = both_paths(market_order(), quoted("XYZ", "99.00", "101.00"))
    assert full == screened
    assert full.decision is DecisionKind.ALLOW


def test_market_order_without_a_quote_breaks_the_inherited_collar() -> None:
    world = view(markets={"XYZ": quote(bid=None, ask=None, last=D("100.00"))})
    full, screened = both_paths(market_order(), world)
    assert full == screened
    assert violation(full, "ORD-008").observed == "no quote"


def test_a_tighter_symbol_limit_collar_also_collars_its_market_orders() -> None:
    # 0.75 % from the mid: inside the default 1 %, outside TIGHT's 0.5 %
    full, screened = both_paths(market_order("TIGHT"), quoted("TIGHT", "99.25", "100.75"),
                                "TIGHT")
    assert full == screened
    assert full.blocking == "ORD-008"
    assert violation(full, "ORD-008").limit == "0.5"


def test_resolved_limits_carry_one_market_collar_for_every_consumer() -> None:
    policy = parse_policy(ONLY_LIMIT_COLLAR)
    assert policy.limits_for("A1", "S1", "XYZ").market_collar_pct == D(1)
    assert policy.limits_for("A1", "S1", "TIGHT").market_collar_pct == D("0.5")
    own = policy.limits_for("A1", "S1", "OWN")
    assert (own.price_collar_pct, own.market_collar_pct) == (D(1), D("0.25"))
    unset = parse_policy(HEADER + "defaults: {max_market_data_age: 5s}\n")
    assert unset.limits_for("A1", "S1", "XYZ").market_collar_pct is None


# (body, line, path) of a market collar looser than the limit collar that applies with it
LOOSER = [
    pytest.param("""\
        defaults:
          max_market_data_age: 5s
          price_collar_pct: 3
          market_collar_pct: 4
        """, 7, ("defaults", "market_collar_pct"), id="one-section"),
    pytest.param("""\
        defaults:
          max_market_data_age: 5s
          price_collar_pct: 3
        accounts:
          ACC2:
            market_collar_pct: 3.5
        """, 9, ("accounts", "ACC2", "market_collar_pct"), id="account-market-over-default"),
    pytest.param("""\
        defaults:
          max_market_data_age: 5s
          price_collar_pct: 5
          market_collar_pct: 2
        symbols:
          TSLA:
            price_collar_pct: 1
        """, 10, ("symbols", "TSLA", "price_collar_pct"), id="symbol-price-under-default"),
    pytest.param("""\
        defaults:
          max_market_data_age: 5s
        strategies:
          burst:
            market_collar_pct: 2
        symbols:
          TSLA:
            price_collar_pct: 1.5
        """, 11, ("symbols", "TSLA", "price_collar_pct"), id="strategy-market-meets-symbol"),
]


@pytest.mark.parametrize(("body", "line", "path"), LOOSER)
def test_a_looser_market_collar_is_a_load_error_naming_the_field(
    body: str, line: int, path: tuple[str, ...],
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(HEADER + textwrap.dedent(body), "policy.yaml")
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert str(error).startswith(f"policy.yaml:{line}:")
    assert ".".join(path) in str(error)
    assert "looser" in error.detail and "at most" in error.detail


def test_an_equal_or_tighter_market_collar_loads() -> None:
    policy = parse_policy(HEADER + textwrap.dedent("""\
        defaults:
          max_market_data_age: 5s
          price_collar_pct: 2
          market_collar_pct: 2
        symbols:
          TSLA: {price_collar_pct: 3, market_collar_pct: 0.5}
        """))
    assert policy.limits_for("A", "S", "TSLA").market_collar_pct == D("0.5")
