"""The public `evaluate` judges in exact arithmetic (`model.values.EXACT`), as the engine does
from behaviour 5 on: no limit is decided on a figure rounded to 28 digits, and a percentage
too large for evidence's 4 places is written out whole instead of raising."""

from __future__ import annotations

from decimal import getcontext

from gate.build import D, intent, limits, quote, view
from gate.test_plan import OnePolicy, PlainView
from ordergate.gate import evaluate
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side
from ordergate.model.portfolio import AccountState

# 3 x this is 1000000.0000000000000000000002: 29 digits, 1,000,000 when rounded to 28
THIRD = D("333333.3333333333333333333334")


def test_an_order_value_a_hair_above_the_cap_is_denied() -> None:
    policy = OnePolicy(limits(max_order_value=D(1_000_000)))
    world = view(markets={"XYZ": quote(bid=D("333333.33"), ask=D("333333.34"),
                                       last=D("333333.33"))})
    for judged in (world, PlainView(world)):  # the screened plans and the full table
        decision = evaluate(intent(qty=D(3), limit_price=THIRD), judged, policy)
        assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "ORD-007")
        assert decision.violations[0].observed == "1000000.0000000000000000000002"
        at_cap = evaluate(intent(qty=D(3), limit_price=D("333333.3333333333333333333333")),
                          judged, policy)
        assert at_cap.decision is DecisionKind.ALLOW
    assert getcontext().prec == 28  # the caller's arithmetic is left as it was


def test_a_loss_of_10_to_the_35_percent_is_written_out_whole() -> None:
    policy = OnePolicy(limits(max_daily_loss_pct=D(50)))
    world = view(
        positions={("A1", "XYZ"): D(10)},
        accounts={"A1": AccountState(
            account="A1", cash=D("-999999999999999"), equity=D("-999999999999000"),
            day_start_equity=D("1E-18"), high_water_mark=D("1E-18"), realized_pnl=D(0))},
    )
    reducing = evaluate(intent(side=Side.SELL, qty=D(5)), world, policy)
    assert reducing.decision is DecisionKind.ALLOW and reducing.risk_reducing
    (loss,) = reducing.violations
    assert (loss.code, loss.observed) == ("LOS-002", "99999999999900000000000000000000000")
    adding = evaluate(intent(qty=D(5)), world, policy)
    assert (adding.decision, adding.blocking) == (DecisionKind.DENY, "LOS-002")
