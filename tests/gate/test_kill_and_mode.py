from gate.build import D, decide, intent, limits, view, violation
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.model.modes import Mode

# long 100 XYZ: a sell of up to 100 reduces risk
LONG = {("A1", "XYZ"): D("100")}


def test_clean_limit_buy_is_allowed_with_no_violations() -> None:
    decision = decide()
    assert decision.decision is DecisionKind.ALLOW
    assert decision.violations == ()
    assert decision.blocking == ""
    assert decision.policy_hash == "policy-hash"


def test_policy_kill_switch_denies_even_a_reducing_intent() -> None:
    decision = decide(intent(side=Side.SELL), view(positions=LONG), limits(kill_switch=True))
    assert decision.risk_reducing
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "KIL-001"


def test_operator_kill_matches_each_scope_and_only_its_key() -> None:
    for scope, key in (("firm", ""), ("account", "A1"), ("strategy", "S1"), ("symbol", "XYZ")):
        decision = decide(world=view(operator_kills={(scope, key)}))
        assert decision.blocking == "KIL-002", scope
    assert decide(world=view(operator_kills={("account", "A2")})).decision is DecisionKind.ALLOW


def test_firm_kill_denies() -> None:
    assert decide(world=view(firm_killed=True)).blocking == "KIL-003"


def test_kill_outranks_every_other_violation() -> None:
    decision = decide(
        intent(qty=D("1000")), view(mode=Mode.HALTED, firm_killed=True),
        limits(kill_switch=True, max_order_qty=D("1")),
    )
    assert decision.blocking == "KIL-001"
    assert [v.code for v in decision.violations] == ["KIL-001", "KIL-003", "MOD-001", "ORD-006"]


def test_halted_denies_even_a_reducing_intent() -> None:
    decision = decide(intent(side=Side.SELL), view(mode=Mode.HALTED, positions=LONG))
    assert decision.blocking == "MOD-001"
    assert decision.mode is Mode.HALTED


def test_reduce_only_denies_new_risk() -> None:
    decision = decide(world=view(mode=Mode.REDUCE_ONLY))
    assert decision.blocking == "MOD-002"


def test_reduce_only_allows_a_reducing_intent() -> None:
    decision = decide(intent(side=Side.SELL, qty=D("100")), view(mode=Mode.REDUCE_ONLY,
                                                                 positions=LONG))
    assert decision.decision is DecisionKind.ALLOW


def test_reduce_only_denies_a_sell_that_would_flip_the_position() -> None:
    decision = decide(intent(side=Side.SELL, qty=D("101")), view(mode=Mode.REDUCE_ONLY,
                                                                 positions=LONG))
    assert decision.blocking == "MOD-002"
    assert "position=100" in violation(decision, "MOD-002").detail


def test_reduce_only_counts_working_reducing_orders_first() -> None:
    world = view(mode=Mode.REDUCE_ONLY, positions=LONG,
                 working_orders={("A1", "XYZ"): (D(0), D("60"))})
    assert decide(intent(side=Side.SELL, qty=D("40")), world).decision is DecisionKind.ALLOW
    assert decide(intent(side=Side.SELL, qty=D("41")), world).blocking == "MOD-002"
