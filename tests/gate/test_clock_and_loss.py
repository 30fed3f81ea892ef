from datetime import timedelta

from gate.build import NOW, D, decide, intent, limits, view, violation
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.model.portfolio import AccountState

LONG = {("A1", "XYZ"): D("100")}


def marks(equity: str, day_start: str = "100000", hwm: str = "120000") -> dict[str, AccountState]:
    return {"A1": AccountState(account="A1", equity=D(equity), day_start_equity=D(day_start),
                               high_water_mark=D(hwm))}


def test_intent_skew_boundary_is_allowed_and_both_directions_deny_past_it() -> None:
    policy = limits(max_intent_skew=timedelta(seconds=2))
    assert decide(intent(ts=NOW - timedelta(seconds=2)), policy=policy).decision \
        is DecisionKind.ALLOW
    late = decide(intent(ts=NOW - timedelta(seconds=2, microseconds=1)), policy=policy)
    early = decide(intent(ts=NOW + timedelta(seconds=3)), policy=policy)
    assert late.blocking == early.blocking == "CLK-001"
    assert violation(early, "CLK-001").observed == "3s"


def test_daily_loss_denies_when_the_loss_reaches_the_limit() -> None:
    policy = limits(max_daily_loss=D("5000"))
    assert decide(world=view(accounts=marks("95000.01")), policy=policy).decision \
        is DecisionKind.ALLOW
    decision = decide(world=view(accounts=marks("95000")), policy=policy)
    assert decision.blocking == "LOS-001"
    assert (violation(decision, "LOS-001").observed, violation(decision, "LOS-001").limit) \
        == ("5000", "5000")


def test_daily_loss_pct_denies_at_the_percentage_of_day_start_equity() -> None:
    policy = limits(max_daily_loss_pct=D("2.5"))
    assert decide(world=view(accounts=marks("97500.01")), policy=policy).decision \
        is DecisionKind.ALLOW
    decision = decide(world=view(accounts=marks("97500")), policy=policy)
    assert decision.blocking == "LOS-002"
    assert violation(decision, "LOS-002").observed == "2.5000"


def test_drawdown_denies_only_past_the_limit() -> None:
    policy = limits(max_drawdown_pct=D("10"))
    assert decide(world=view(accounts=marks("108000")), policy=policy).decision \
        is DecisionKind.ALLOW
    decision = decide(world=view(accounts=marks("107999.99")), policy=policy)
    assert decision.blocking == "LOS-003"
    assert violation(decision, "LOS-003").observed == "10.0001"


def test_a_profit_day_never_breaks_the_loss_limit() -> None:
    policy = limits(max_daily_loss=D("1"), max_daily_loss_pct=D("0.01"))
    assert decide(world=view(accounts=marks("150000")), policy=policy).decision \
        is DecisionKind.ALLOW


def test_loss_limits_never_block_a_reducing_intent() -> None:
    policy = limits(max_daily_loss=D("10"), max_drawdown_pct=D("1"))
    decision = decide(intent(side=Side.SELL), view(positions=LONG, accounts=marks("50000")),
                      policy)
    assert decision.decision is DecisionKind.ALLOW
    assert [v.code for v in decision.violations] == ["LOS-001", "LOS-003"]


def test_loss_outranks_duplicate_and_sanity() -> None:
    policy = limits(max_daily_loss=D("10"), max_order_qty=D("1"))
    decision = decide(intent(client_order_id="c-1"),
                      view(accounts=marks("0"), client_order_ids={"c-1"}), policy)
    assert [v.code for v in decision.violations] == ["LOS-001", "DUP-001", "ORD-006"]
    assert decision.blocking == "LOS-001"
