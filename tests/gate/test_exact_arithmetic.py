"""The public `evaluate` judges in exact arithmetic (`model.values.EXACT`), as the engine does
from behaviour 5 on: no limit is decided on a figure rounded to 28 digits."""

from __future__ import annotations

from decimal import getcontext

from gate.build import D, intent, limits, quote, view
from gate.test_plan import OnePolicy, PlainView
from ordergate.gate import evaluate
from ordergate.model.decision import DecisionKind

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
