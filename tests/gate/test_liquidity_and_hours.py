from datetime import timedelta

from gate.build import NOW, D, decide, intent, limits, quote, view, violation
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.policy.limits import TradingSessions

EPOCH_NOW = int(NOW.timestamp())
LONG = {("A1", "XYZ"): D("100")}


def test_volume_participation_boundary() -> None:
    policy = limits(max_volume_participation_pct=D("0.01"))
    assert decide(intent(qty=D("10")), policy=policy).decision is DecisionKind.ALLOW
    decision = decide(intent(qty=D("10.5")), policy=policy)
    assert decision.blocking == "LIQ-001"
    assert violation(decision, "LIQ-001").observed == "0.0105"


def test_missing_or_zero_volume_fails_closed_when_participation_is_limited() -> None:
    policy = limits(max_volume_participation_pct=D("1"))
    for volume in (None, D(0)):
        world = view(markets={"XYZ": quote(volume=volume)})
        assert decide(world=world, policy=policy).blocking == "LIQ-001"
    assert decide(world=view(markets={"XYZ": quote(volume=None)})).decision \
        is DecisionKind.ALLOW


def sessions(open_offset: int, close_offset: int) -> TradingSessions:
    return TradingSessions(
        calendar="XNYS",
        opens=(EPOCH_NOW - 86400, EPOCH_NOW + open_offset),
        closes=(EPOCH_NOW - 80000, EPOCH_NOW + close_offset),
    )


def test_market_hours_open_interval_includes_open_and_excludes_close() -> None:
    assert decide(policy=limits(sessions=sessions(0, 60))).decision is DecisionKind.ALLOW
    assert decide(policy=limits(sessions=sessions(-60, 0))).blocking == "MKT-001"
    assert decide(policy=limits(sessions=sessions(1, 60))).blocking == "MKT-001"
    early = TradingSessions(calendar="XNYS", opens=(EPOCH_NOW + 10,), closes=(EPOCH_NOW + 20,))
    assert decide(policy=limits(sessions=early)).blocking == "MKT-001"


def test_closed_market_stops_a_reducing_intent_too() -> None:
    decision = decide(intent(side=Side.SELL), view(positions=LONG),
                      limits(sessions=sessions(60, 120)))
    assert decision.blocking == "MKT-001"


def test_canary_mode_denies_non_canary_symbols() -> None:
    assert decide(policy=limits(canary_allowed=False)).blocking == "MKT-002"


def test_liquidity_outranks_hours() -> None:
    policy = limits(canary_allowed=False, max_volume_participation_pct=D("0.0001"))
    decision = decide(intent(ts=NOW - timedelta(0)), policy=policy)
    assert [v.code for v in decision.violations] == ["LIQ-001", "MKT-002"]
