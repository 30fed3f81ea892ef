from datetime import timedelta

from gate.build import NOW, D, decide, intent, limits, quote, view, violation
from ordergate.gate.view import ActiveReason
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import OrderType, Side
from ordergate.model.portfolio import AccountState
from ordergate.policy.limits import Instrument

LONG = {("A1", "XYZ"): D("100")}


def test_missing_market_data_denies_new_risk() -> None:
    decision = decide(world=view(markets={}))
    assert decision.blocking == "SYS-001"


def test_snapshot_without_any_usable_price_is_missing() -> None:
    decision = decide(world=view(markets={"XYZ": quote(bid=D("99"), ask=None, last=None)}))
    assert decision.blocking == "SYS-001"


def test_stale_data_boundary_is_allowed_exactly_at_max_age() -> None:
    at_limit = view(markets={"XYZ": quote(ts=NOW - timedelta(seconds=5))})
    assert decide(world=at_limit).decision is DecisionKind.ALLOW
    past = view(markets={"XYZ": quote(ts=NOW - timedelta(seconds=5, microseconds=1))})
    decision = decide(world=past)
    assert decision.blocking == "SYS-002"
    assert violation(decision, "SYS-002").observed == "5.000001s"
    assert violation(decision, "SYS-002").limit == "5s"


def test_nan_infinite_zero_negative_and_crossed_data_are_invalid() -> None:
    cases = [
        {"bid": D("NaN")}, {"ask": D("Infinity")}, {"last": D("0")}, {"bid": D("-1")},
        {"bid": D("100.2"), "ask": D("100.1")}, {"volume": D("-5")}, {"last": D("sNaN")},
    ]
    for fields in cases:
        decision = decide(world=view(markets={"XYZ": quote(**fields)}))
        assert decision.decision is DecisionKind.DENY, fields
        assert "SYS-003" in [v.code for v in decision.violations], fields


def test_invalid_quote_falls_back_to_last_for_valuation_but_still_denies() -> None:
    world = view(markets={"XYZ": quote(bid=D("NaN"))})
    decision = decide(intent(order_type=OrderType.MARKET, limit_price=None), world,
                      limits(max_order_value=D("999")))
    assert [v.code for v in decision.violations] == ["SYS-003", "ORD-007"]
    assert violation(decision, "ORD-007").observed == "1000.00"


def test_unknown_instrument_fails_closed_only_when_required() -> None:
    assert decide(policy=limits(require_instrument=True)).blocking == "SYS-004"
    known = limits(require_instrument=True, instrument=Instrument(tick_size=D("0.01")))
    assert decide(policy=known).decision is DecisionKind.ALLOW


def test_missing_market_data_age_is_config_missing() -> None:
    decision = decide(policy=limits(max_market_data_age=None))
    assert decision.blocking == "SYS-005"
    assert "max_market_data_age" in violation(decision, "SYS-005").detail


def test_missing_account_marks_with_a_loss_limit_fails_closed() -> None:
    decision = decide(policy=limits(max_daily_loss=D("1000")))
    assert decision.blocking == "SYS-005"
    assert violation(decision, "SYS-005").observed == "account state"
    unmarked = view(accounts={"A1": AccountState(account="A1", equity=D(1))})
    decision = decide(world=unmarked, policy=limits(max_drawdown_pct=D("10")))
    assert violation(decision, "SYS-005").observed == "high_water_mark=0"
    decision = decide(world=unmarked, policy=limits(max_daily_loss=D("10")))
    assert violation(decision, "SYS-005").observed == "day_start_equity=0"


def test_view_integrity_reasons_become_violations_in_precedence_order() -> None:
    world = view(reasons=(
        ActiveReason(code="CLK-002", detail="drift 3s"),
        ActiveReason(code="SYS-006", detail="disk full"),
    ))
    decision = decide(intent(qty=D("5")), world, limits(max_order_qty=D("1")))
    assert [v.code for v in decision.violations] == ["SYS-006", "CLK-002", "ORD-006"]
    assert decision.blocking == "SYS-006"
    assert violation(decision, "SYS-006").detail == "disk full"


def test_non_finite_position_from_the_view_is_an_invariant_violation() -> None:
    world = view(positions={("A1", "XYZ"): D("NaN")})
    decision = decide(intent(side=Side.SELL), world)
    assert decision.blocking == "SYS-008"
    assert not decision.risk_reducing


def test_reducing_limit_order_passes_with_stale_data_but_records_it() -> None:
    world = view(positions=LONG, markets={"XYZ": quote(ts=NOW - timedelta(minutes=5))})
    decision = decide(intent(side=Side.SELL), world)
    assert decision.decision is DecisionKind.ALLOW
    assert [v.code for v in decision.violations] == ["SYS-002"]


def test_reducing_limit_order_passes_without_market_data_when_no_price_bound_is_set() -> None:
    decision = decide(intent(side=Side.SELL), view(positions=LONG, markets={}), limits())
    assert decision.decision is DecisionKind.ALLOW
    assert [v.code for v in decision.violations] == ["SYS-001"]


def test_bad_quote_stops_a_reducing_limit_order_whose_price_the_policy_bounds() -> None:
    # A fat-fingered sell of the whole position at 0.01: with a good quote the collar and the
    # value cap deny it; a missing, crossed or stale quote must not turn that into an ALLOW.
    fat_finger = intent(side=Side.SELL, qty=D("100"), limit_price=D("0.01"))
    good = decide(fat_finger, view(positions=LONG),
                  limits(price_collar_pct=D("5"), max_order_value=D("50000")))
    assert good.decision is DecisionKind.DENY and good.blocking == "ORD-008"
    bad_quotes = {
        "SYS-001": {},
        "SYS-003": {"XYZ": quote(bid=D("101"), ask=D("99"))},
        "SYS-002": {"XYZ": quote(ts=NOW - timedelta(seconds=6))},
    }
    for bound in ({"price_collar_pct": D("5")}, {"max_order_value": D("50000")}):
        for code, markets in bad_quotes.items():
            decision = decide(fat_finger, view(positions=LONG, markets=markets),
                              limits(**bound))
            assert decision.risk_reducing, (bound, code)
            assert decision.decision is DecisionKind.DENY, (bound, code)
            assert decision.blocking == code, (bound, code)
    # a fault that leaves the quote good (a broker breaker) still lets it be checked: the
    # collar decides, not the fault
    faulted = view(positions=LONG, reasons=(ActiveReason(code="SYS-007"),))
    assert decide(fat_finger, faulted, limits(price_collar_pct=D("5"))).blocking == "ORD-008"
    fair = intent(side=Side.SELL, qty=D("100"), limit_price=D("99.95"))
    assert decide(fair, faulted, limits(price_collar_pct=D("5"))).decision is DecisionKind.ALLOW


def test_reducing_market_order_with_bad_data_is_denied() -> None:
    world = view(positions=LONG, markets={"XYZ": quote(ask=D("NaN"))})
    decision = decide(intent(side=Side.SELL, order_type=OrderType.MARKET, limit_price=None),
                      world)
    assert decision.risk_reducing
    assert decision.blocking == "SYS-003"


def test_reducing_market_order_passes_external_faults_only_if_priced() -> None:
    world = view(positions=LONG, reasons=(ActiveReason(code="SYS-007"),))
    market = intent(side=Side.SELL, order_type=OrderType.MARKET, limit_price=None)
    assert decide(market, world).blocking == "SYS-007"
    assert decide(intent(side=Side.SELL), world).decision is DecisionKind.ALLOW
