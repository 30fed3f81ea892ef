from datetime import timedelta

from gate.build import NOW, D, decide, intent, limits, view, violation
from ordergate.gate import rate_key
from ordergate.gate.view import RateScope
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.policy.limits import RateLimit

MINUTE = timedelta(minutes=1)
LONG = {("A1", "XYZ"): D("100")}


def times(count: int) -> list:
    return [NOW - timedelta(seconds=index) for index in range(count)]


def test_each_scope_denies_when_one_more_would_exceed_max_count() -> None:
    cases = [
        (RateScope.GLOBAL, "rate_global", "THR-001"),
        (RateScope.ACCOUNT, "rate_account", "THR-002"),
        (RateScope.STRATEGY, "rate_strategy", "THR-003"),
        (RateScope.SYMBOL, "rate_symbol", "THR-004"),
    ]
    for scope, field, code in cases:
        policy = limits(**{field: RateLimit(max_count=3, window=MINUTE)})
        key = rate_key(scope, intent())
        at_limit = view(accepted={(scope, key): times(2)})
        assert decide(world=at_limit, policy=policy).decision is DecisionKind.ALLOW, code
        over = decide(world=view(accepted={(scope, key): times(3)}), policy=policy)
        assert over.blocking == code
        assert (violation(over, code).observed, violation(over, code).limit) == ("4", "3")


def test_rate_keys_are_the_plain_identifiers() -> None:
    order = intent()
    assert [rate_key(scope, order) for scope in RateScope] == ["", "A1", "S1", "XYZ"]


def test_orders_outside_the_window_do_not_count() -> None:
    policy = limits(rate_account=RateLimit(max_count=1, window=MINUTE))
    old = view(accepted={(RateScope.ACCOUNT, "A1"): [NOW - MINUTE]})
    assert decide(world=old, policy=policy).decision is DecisionKind.ALLOW


def test_disabled_strategy_is_denied() -> None:
    assert decide(world=view(disabled={("A1", "S1")})).blocking == "THR-006"
    assert decide(world=view(disabled={("A2", "S1")})).decision is DecisionKind.ALLOW


def test_throttles_never_block_a_reducing_intent() -> None:
    policy = limits(rate_global=RateLimit(max_count=1, window=MINUTE))
    world = view(positions=LONG, accepted={(RateScope.GLOBAL, ""): times(5)},
                 disabled={("A1", "S1")})
    decision = decide(intent(side=Side.SELL), world, policy)
    assert decision.decision is DecisionKind.ALLOW
    assert [v.code for v in decision.violations] == ["THR-001", "THR-006"]
