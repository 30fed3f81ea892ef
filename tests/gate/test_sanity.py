from gate.build import D, decide, intent, limits, quote, view, violation
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import OrderType, Side
from ordergate.policy.limits import Instrument, SelfMatch

LONG = {("A1", "XYZ"): D("100")}
MARKET_BUY = {"order_type": OrderType.MARKET, "limit_price": None}


def test_order_type_outside_the_allowed_set_is_denied() -> None:
    policy = limits(allowed_order_types=frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT}))
    assert decide(policy=policy).decision is DecisionKind.ALLOW
    decision = decide(intent(**MARKET_BUY), policy=policy)
    assert decision.blocking == "ORD-001"
    assert violation(decision, "ORD-001").limit == "limit,stop_limit"


def test_prices_must_match_the_order_type() -> None:
    bad = [
        {"order_type": OrderType.LIMIT, "limit_price": None},
        {"order_type": OrderType.MARKET, "limit_price": D("100")},
        {"order_type": OrderType.STOP, "limit_price": None},
        {"order_type": OrderType.STOP_LIMIT},
        {"order_type": OrderType.LIMIT, "stop_price": D("101")},
    ]
    for fields in bad:
        assert decide(intent(**fields)).blocking == "ORD-003", fields
    good = [
        {"order_type": OrderType.STOP, "limit_price": None, "stop_price": D("101")},
        {"order_type": OrderType.STOP_LIMIT, "stop_price": D("100.05")},
    ]
    for fields in good:
        assert decide(intent(**fields)).decision is DecisionKind.ALLOW, fields


def test_price_tick_and_lot_size() -> None:
    policy = limits(instrument=Instrument(tick_size=D("0.05"), lot_size=D("5")))
    assert decide(intent(limit_price=D("100.05"), qty=D("15")), policy=policy).decision \
        is DecisionKind.ALLOW
    assert decide(intent(limit_price=D("100.01")), policy=policy).blocking == "ORD-004"
    stop = intent(order_type=OrderType.STOP_LIMIT, stop_price=D("100.02"))
    assert violation(decide(stop, policy=policy), "ORD-004").observed == "100.02"
    assert decide(intent(qty=D("12")), policy=policy).blocking == "ORD-005"


def test_max_order_qty_boundary() -> None:
    policy = limits(max_order_qty=D("10"))
    assert decide(intent(qty=D("10")), policy=policy).decision is DecisionKind.ALLOW
    assert decide(intent(qty=D("10.0001")), policy=policy).blocking == "ORD-006"


def test_max_order_value_uses_limit_stop_or_reference_price() -> None:
    policy = limits(max_order_value=D("1000"))
    assert decide(intent(limit_price=D("100")), policy=policy).decision is DecisionKind.ALLOW
    assert decide(intent(limit_price=D("100.01")), policy=policy).blocking == "ORD-007"
    stop = intent(order_type=OrderType.STOP, limit_price=None, stop_price=D("100.01"))
    assert decide(stop, policy=policy).blocking == "ORD-007"
    # market order valued at the mid of 99.90 / 100.10 = 100.00
    assert decide(intent(**MARKET_BUY), policy=policy).decision is DecisionKind.ALLOW
    wide = view(markets={"XYZ": quote(bid=D("99.90"), ask=D("100.12"))})
    decision = decide(intent(**MARKET_BUY), wide, policy)
    assert violation(decision, "ORD-007").observed == "1000.100"


def test_limit_price_collar_boundary_and_reducing_orders_are_collared_too() -> None:
    policy = limits(price_collar_pct=D("1"))
    assert decide(intent(limit_price=D("101")), policy=policy).decision is DecisionKind.ALLOW
    assert decide(intent(limit_price=D("99")), policy=policy).decision is DecisionKind.ALLOW
    decision = decide(intent(limit_price=D("101.01")), policy=policy)
    assert decision.blocking == "ORD-008"
    assert (violation(decision, "ORD-008").observed, violation(decision, "ORD-008").limit) \
        == ("1.0100", "1")
    reducing = decide(intent(side=Side.SELL, limit_price=D("90")), view(positions=LONG), policy)
    assert reducing.risk_reducing
    assert reducing.blocking == "ORD-008"


def test_market_order_collar_is_half_the_spread_and_needs_a_quote() -> None:
    policy = limits(market_collar_pct=D("0.1"))
    # mid 100, ask 100.10: 0.1 % exactly
    assert decide(intent(**MARKET_BUY), policy=policy).decision is DecisionKind.ALLOW
    wide = view(markets={"XYZ": quote(bid=D("99.80"), ask=D("100.20"))})
    assert decide(intent(**MARKET_BUY), wide, policy).blocking == "ORD-008"
    last_only = view(markets={"XYZ": quote(bid=None, ask=None)})
    decision = decide(intent(**MARKET_BUY), last_only, policy)
    assert decision.blocking == "ORD-008"
    assert violation(decision, "ORD-008").observed == "no quote"


def test_stop_orders_are_not_collared() -> None:
    stop = intent(order_type=OrderType.STOP, limit_price=None, stop_price=D("150"))
    assert decide(stop, policy=limits(price_collar_pct=D("1"))).decision is DecisionKind.ALLOW


def test_restricted_symbol_blocks_new_risk_but_not_a_reducing_intent() -> None:
    policy = limits(restricted=True)
    assert decide(policy=policy).blocking == "ORD-009"
    reducing = decide(intent(side=Side.SELL), view(positions=LONG), policy)
    assert reducing.decision is DecisionKind.ALLOW
    assert [v.code for v in reducing.violations] == ["ORD-009"]


def test_self_match_denies_crossing_the_accounts_own_resting_order() -> None:
    policy = limits(self_match=SelfMatch.DENY)
    resting = view(resting={("A1", "XYZ"): (D("99.50"), D("100.00"))})
    assert decide(intent(limit_price=D("99.99")), resting, policy).decision \
        is DecisionKind.ALLOW
    assert decide(intent(limit_price=D("100.00")), resting, policy).blocking == "ORD-010"
    assert decide(intent(**MARKET_BUY), resting, policy).blocking == "ORD-010"
    sell = intent(side=Side.SELL, limit_price=D("99.50"))
    assert decide(sell, resting, policy).blocking == "ORD-010"
    assert decide(intent(limit_price=D("100.00")), resting,
                  limits(self_match=SelfMatch.CANCEL_RESTING)).decision is DecisionKind.ALLOW


def test_reduce_only_flag_that_would_open_or_flip_is_denied() -> None:
    assert decide(intent(reduce_only=True)).blocking == "ORD-011"
    flip = intent(side=Side.SELL, qty=D("150"), reduce_only=True)
    assert decide(flip, view(positions=LONG)).blocking == "ORD-011"
    reduce = intent(side=Side.SELL, qty=D("100"), reduce_only=True)
    assert decide(reduce, view(positions=LONG)).decision is DecisionKind.ALLOW


def test_sanity_codes_are_listed_in_registry_order() -> None:
    policy = limits(max_order_qty=D("1"), max_order_value=D("1"), price_collar_pct=D("1"),
                    instrument=Instrument(tick_size=D("1"), lot_size=D("3")))
    decision = decide(intent(limit_price=D("120.5")), policy=policy)
    assert [v.code for v in decision.violations] == \
        ["ORD-004", "ORD-005", "ORD-006", "ORD-007", "ORD-008"]
