from gate.build import D, decide, intent, limits, quote, view, violation
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.policy.limits import Instrument


def test_position_qty_cap_counts_working_orders_on_the_same_side() -> None:
    policy = limits(max_position_qty=D("100"))
    world = view(positions={("A1", "XYZ"): D("60")},
                 working_orders={("A1", "XYZ"): (D("30"), D("500"))})
    assert decide(intent(qty=D("10")), world, policy).decision is DecisionKind.ALLOW
    decision = decide(intent(qty=D("11")), world, policy)
    assert decision.blocking == "EXP-001"
    assert (violation(decision, "EXP-001").observed, violation(decision, "EXP-001").limit) \
        == ("101", "100")


def test_position_qty_cap_applies_to_shorts() -> None:
    policy = limits(max_position_qty=D("100"))
    world = view(positions={("A1", "XYZ"): D("-95")})
    assert decide(intent(side=Side.SELL, qty=D("5")), world, policy).decision \
        is DecisionKind.ALLOW
    assert decide(intent(side=Side.SELL, qty=D("6")), world, policy).blocking == "EXP-001"


def test_position_value_cap_is_valued_at_the_reference_price() -> None:
    policy = limits(max_position_value=D("5000"))
    world = view(positions={("A1", "XYZ"): D("40")})
    assert decide(intent(qty=D("10")), world, policy).decision is DecisionKind.ALLOW
    decision = decide(intent(qty=D("10.01")), world, policy)
    assert decision.blocking == "EXP-002"
    assert violation(decision, "EXP-002").observed == "5001.00000"


def two_symbol_world(**overrides: object) -> object:
    base: dict[str, object] = {
        "markets": {"XYZ": quote(), "ABC": quote("ABC", bid=D("49.99"), ask=D("50.01"))},
        "positions": {("A1", "XYZ"): D("20"), ("A1", "ABC"): D("-100")},
    }
    base.update(overrides)
    return view(**base)


def test_gross_exposure_replaces_the_symbols_contribution() -> None:
    # gross now: 20 * 100 + 100 * 50 = 7000; buying 10 more XYZ adds 1000
    world = two_symbol_world()
    assert decide(intent(qty=D("10")), world, limits(max_gross_exposure=D("8000"))).decision \
        is DecisionKind.ALLOW
    decision = decide(intent(qty=D("10")), world, limits(max_gross_exposure=D("7999.99")))
    assert decision.blocking == "EXP-003"
    assert violation(decision, "EXP-003").observed == "8000.000"


def test_net_exposure_is_checked_on_the_larger_side() -> None:
    # net now: 2000 - 5000 = -3000; buying 10 XYZ makes net_long -2000, net_short stays -3000
    world = two_symbol_world()
    assert decide(intent(qty=D("10")), world, limits(max_net_exposure=D("3000"))).decision \
        is DecisionKind.ALLOW
    # selling 30 XYZ (a flip, not reducing) makes net_short -1000 - 5000 = -6000
    flip = intent(side=Side.SELL, qty=D("30"))
    assert decide(flip, world, limits(max_net_exposure=D("6000"))).decision \
        is DecisionKind.ALLOW
    decision = decide(flip, world, limits(max_net_exposure=D("5999.99")))
    assert decision.blocking == "EXP-004"
    assert violation(decision, "EXP-004").observed == "6000.000"


def test_firm_gross_uses_the_shared_store_and_fails_closed_without_it() -> None:
    policy = limits(max_firm_gross_exposure=D("1000000"))
    assert decide(world=view(shared_gross=D("999000")), policy=policy).decision \
        is DecisionKind.ALLOW
    assert decide(world=view(shared_gross=D("999000.01")), policy=policy).blocking == "EXP-005"
    missing = decide(world=view(shared_gross=None), policy=policy)
    assert missing.blocking == "EXP-005"
    assert violation(missing, "EXP-005").observed.startswith("unavailable")


def test_exposure_modify_offers_the_largest_lot_that_fits() -> None:
    policy = limits(max_position_qty=D("100"), exposure_modify=True,
                    instrument=Instrument(lot_size=D("5")))
    world = view(positions={("A1", "XYZ"): D("68")})
    decision = decide(intent(qty=D("50")), world, policy)
    assert decision.decision is DecisionKind.MODIFY
    assert decision.modified_qty == D("30")
    assert decision.blocking == "EXP-001"


def test_exposure_modify_fits_every_cap_at_once() -> None:
    policy = limits(max_position_qty=D("100"), max_position_value=D("3333"),
                    max_gross_exposure=D("9000"), exposure_modify=True)
    world = two_symbol_world()
    decision = decide(intent(qty=D("50")), world, policy)
    assert decision.decision is DecisionKind.MODIFY
    # value cap: 3333 / 100 = 33.33 -> 13 more; gross: 2000 of room -> 20 more
    assert decision.modified_qty == D("13")
    assert decide(intent(qty=D("13")), world, policy).decision is DecisionKind.ALLOW
    assert decide(intent(qty=D("14")), world, policy).decision is DecisionKind.MODIFY


def test_exposure_modify_denies_when_nothing_fits_or_another_rule_blocks() -> None:
    policy = limits(max_position_qty=D("100"), exposure_modify=True)
    full = view(positions={("A1", "XYZ"): D("100")})
    assert decide(intent(qty=D("5")), full, policy).decision is DecisionKind.DENY
    half = view(positions={("A1", "XYZ"): D("50")})
    restricted = limits(max_position_qty=D("100"), exposure_modify=True, restricted=True)
    decision = decide(intent(qty=D("80")), half, restricted)
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "ORD-009"
    assert decision.modified_qty is None


def test_exposure_modify_step_is_the_intents_decimal_place_without_a_lot_size() -> None:
    policy = limits(max_position_qty=D("1"), exposure_modify=True)
    decision = decide(intent(qty=D("2.50")), view(positions={("A1", "XYZ"): D("0.333")}),
                      policy)
    assert decision.modified_qty == D("0.66")


def test_exposure_caps_never_block_a_reducing_intent() -> None:
    policy = limits(max_position_qty=D("10"), max_gross_exposure=D("1"))
    decision = decide(intent(side=Side.SELL, qty=D("50")),
                      view(positions={("A1", "XYZ"): D("100")}), policy)
    assert decision.risk_reducing
    assert decision.decision is DecisionKind.ALLOW
    assert [v.code for v in decision.violations] == ["EXP-001", "EXP-003"]
