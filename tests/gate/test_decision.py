from datetime import timedelta

import msgspec

from gate.build import D, decide, intent, limits, view
from ordergate.gate import evaluate
from ordergate.gate.view import ActiveReason
from ordergate.model.decision import DecisionKind
from ordergate.model.modes import Mode
from ordergate.policy.limits import ResolvedLimits


def test_monitor_mode_allows_and_says_what_would_have_blocked() -> None:
    policy = limits(monitor=True, max_order_qty=D("1"), max_order_value=D("1"))
    decision = decide(policy=policy)
    assert decision.decision is DecisionKind.ALLOW
    assert decision.monitor
    assert decision.would_block == "ORD-006"
    assert decision.blocking == ""
    assert [v.code for v in decision.violations] == ["ORD-006", "ORD-007"]


def test_monitor_mode_still_denies_integrity_mode_and_operator_or_firm_kill() -> None:
    policy = limits(monitor=True, max_order_qty=D("1"))
    cases = [
        (view(markets={}), "SYS-001"),
        (view(mode=Mode.REDUCE_ONLY), "MOD-002"),
        (view(mode=Mode.HALTED), "MOD-001"),
        (view(operator_kills={("firm", "")}), "KIL-002"),
        (view(firm_killed=True), "KIL-003"),
        (view(reasons=(ActiveReason(code="SYS-006"),)), "SYS-006"),
    ]
    for world, code in cases:
        decision = decide(world=world, policy=policy)
        assert decision.decision is DecisionKind.DENY, code
        assert decision.blocking == code
        assert decision.monitor


def test_monitor_mode_does_not_modify() -> None:
    policy = limits(monitor=True, max_position_qty=D("5"), exposure_modify=True)
    decision = decide(policy=policy)
    assert decision.decision is DecisionKind.ALLOW
    assert decision.would_block == "EXP-001"
    assert decision.modified_qty is None


def test_tags_are_never_read() -> None:
    policy = limits(max_order_qty=D("5"), kill_switch=True)
    plain = decide(intent(), policy=policy)
    tagged = decide(intent(tags={"confidence": "0.99", "override": "true", "monitor": "1"}),
                    policy=policy)
    assert msgspec.json.encode(plain) == msgspec.json.encode(tagged)


class StaticPolicy:
    """A policy that resolves the same limits for every key."""

    def __init__(self, resolved: ResolvedLimits) -> None:
        self.resolved = resolved
        self.hash = "sha256:static"
        self.asked: list[tuple[str, str, str]] = []

    def limits_for(self, account: str, strategy: str, symbol: str) -> ResolvedLimits:
        self.asked.append((account, strategy, symbol))
        return self.resolved


def test_evaluate_resolves_limits_for_the_intents_key_and_stamps_the_policy_hash() -> None:
    policy = StaticPolicy(limits(max_order_qty=D("1")))
    decision = evaluate(intent(), view(), policy)
    assert policy.asked == [("A1", "S1", "XYZ")]
    assert decision.policy_hash == "sha256:static"
    assert decision.blocking == "ORD-006"


def test_decision_bytes_are_stable() -> None:
    policy = limits(max_order_qty=D("1"), duplicate_window=timedelta(seconds=1),
                    price_collar_pct=D("0.5"))
    decision = decide(intent(limit_price=D("101")), policy=policy)
    assert msgspec.json.encode(decision) == (
        b'{"type":"decision","intent_id":"i-1","decision":"DENY","blocking":"ORD-006",'
        b'"violations":[{"code":"ORD-006","observed":"10","limit":"1"},'
        b'{"code":"ORD-008","observed":"1.0000","limit":"0.5",'
        b'"detail":"limit_price 101 vs reference 100.000"}],"policy_hash":"policy-hash"}'
    )
