"""Compiled plans: leaving out the rows whose limits are unset never changes a decision."""

from __future__ import annotations

import gc
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.build import NOW, intent, limits, view
from gate.test_properties import intents, resolved_limits, worlds
from gate.views import MemoryView
from ordergate.gate import (
    FULL_PLAN,
    PlanCache,
    compile_plan,
    decide,
    evaluate,
    evaluate_limits,
)
from ordergate.gate.context import build_context, fingerprint
from ordergate.gate.evaluate import _PLANS as COMPILED_PLANS
from ordergate.gate.explain import explain
from ordergate.gate.view import RateScope
from ordergate.model.intent import OrderIntent, OrderType
from ordergate.policy.limits import RateLimit, ResolvedLimits, SelfMatch, TradingSessions

D = Decimal
EPOCH_NOW = int(NOW.timestamp())
SESSIONS = (
    TradingSessions(calendar="open", opens=(EPOCH_NOW - 60,), closes=(EPOCH_NOW + 60,)),
    TradingSessions(calendar="closed", opens=(EPOCH_NOW + 60,), closes=(EPOCH_NOW + 120,)),
)


@st.composite
def more_limits(draw: st.DrawFn) -> ResolvedLimits:
    """The shared limits strategy, with the fields it leaves alone also switched on and off."""
    base = draw(resolved_limits())
    rate = RateLimit(max_count=draw(st.integers(1, 5)), window=timedelta(minutes=1))
    extra: dict[str, Any] = {
        "kill_switch": draw(st.booleans()),
        "require_instrument": draw(st.booleans()),
        "max_intent_skew": draw(st.sampled_from([None, timedelta(0), timedelta(seconds=1)])),
        "max_daily_loss_pct": draw(st.sampled_from([None, D(1), D(20)])),
        "allowed_order_types": draw(st.sampled_from(
            [None, frozenset({OrderType.LIMIT}), frozenset(OrderType)])),
        "self_match": draw(st.sampled_from(list(SelfMatch))),
        "rate_global": draw(st.sampled_from([None, rate])),
        "rate_strategy": draw(st.sampled_from([None, rate])),
        "max_firm_gross_exposure": draw(st.sampled_from([None, D(1000), D(10**9)])),
        "sessions": draw(st.sampled_from([None, *SESSIONS])),
        "canary_allowed": draw(st.booleans()),
    }
    return msgspec.structs.replace(base, **extra)


@st.composite
def busier_worlds(draw: st.DrawFn) -> MemoryView:
    world = draw(worlds())
    world.shared_gross = draw(st.sampled_from([None, D(500), D("NaN")]))
    world.resting = {("A1", "XYZ"): (draw(st.sampled_from([None, D("99.95"), D(101)])),
                                     draw(st.sampled_from([None, D("100.05"), D(99)])))}
    world.fingerprints = {}
    return world


@settings(max_examples=150, deadline=None)
@given(intents(), busier_worlds(), more_limits())
def test_a_compiled_plan_decides_exactly_as_the_full_table(
        order: OrderIntent, world: MemoryView, policy: ResolvedLimits) -> None:
    planned, _ = decide(order, world, policy, "h", compile_plan(policy))
    assert msgspec.json.encode(planned) == msgspec.json.encode(
        evaluate_limits(order, world, policy, "h"))


@settings(max_examples=150, deadline=None)
@given(intents(), busier_worlds(), more_limits())
def test_a_rule_left_out_of_a_plan_could_not_have_broken(
        order: OrderIntent, world: MemoryView, policy: ResolvedLimits) -> None:
    ctx = build_context(order, world, policy)
    kept = {id(rule) for _, rule in compile_plan(policy).rows}
    for check, rule in FULL_PLAN.rows:
        if id(rule) not in kept:
            assert check(ctx) is None, rule.code


def test_a_plan_is_compiled_once_per_limits_object() -> None:
    plans = PlanCache()
    first = limits(max_order_qty=D(10))
    assert plans.plan(first) is plans.plan(first)
    equal_but_another_object = limits(max_order_qty=D(10))
    assert plans.plan(equal_but_another_object) is plans.plan(first)
    assert len(compile_plan(limits()).rows) < len(FULL_PLAN.rows)


@settings(max_examples=100, deadline=None)
@given(intents(), busier_worlds(), more_limits())
def test_a_decision_record_from_the_gate_context_equals_one_read_from_the_view(
        order: OrderIntent, world: MemoryView, policy: ResolvedLimits) -> None:
    _, ctx = decide(order, world, policy, "h", compile_plan(policy))
    assert msgspec.json.encode(explain(order, world, policy, context=ctx)) == (
        msgspec.json.encode(explain(order, world, policy)))


@given(st.sampled_from(["100", "100.00", "0.500", "10.50", "1E+2", "1.000E+3", "0.0000001",
                        "12345678901234.56789012345670", "2.5000", "7"]))
def test_fingerprint_prints_decimals_normalized(text: str) -> None:
    value = D(text)
    normalized = value.normalize()
    expected = format(normalized, "f") if "E" in str(normalized) else str(normalized)
    order = intent(qty=value, limit_price=value, order_type=OrderType.LIMIT)
    assert fingerprint(order) == f"A1 S1 XYZ buy {expected} {expected}"


def test_the_gate_context_counts_only_the_rate_limits_that_are_set() -> None:
    rate = RateLimit(max_count=5, window=timedelta(minutes=1))
    recent = [NOW - timedelta(seconds=seconds) for seconds in (3, 2, 1)]
    world = view(accepted={(RateScope.GLOBAL, ""): recent, (RateScope.ACCOUNT, "A1"): recent,
                           (RateScope.STRATEGY, "S1"): recent, (RateScope.SYMBOL, "XYZ"): recent})
    ctx = build_context(intent(), world, limits(rate_symbol=rate))
    assert (ctx.count_global, ctx.count_account, ctx.count_strategy, ctx.count_symbol) == (
        0, 0, 0, 3)
    assert ctx.fingerprint == ""
    both = build_context(intent(), world, limits(rate_global=rate, duplicate_window=rate.window))
    assert (both.count_global, both.count_symbol) == (3, 0)
    assert both.fingerprint == fingerprint(intent())


class OnePolicy:
    """A `LimitSource` with the same limits for every key."""

    def __init__(self, limits: ResolvedLimits) -> None:
        self.limits = limits
        self.hash = "h"

    def limits_for(self, account: str, strategy: str, symbol: str) -> ResolvedLimits:
        return self.limits


class PlainView:
    """`MemoryView` without `read_intent`: a plain `GateView`."""

    def __init__(self, world: MemoryView) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        if name == "read_intent":
            raise AttributeError(name)
        return getattr(self._world, name)


@settings(max_examples=100, deadline=None)
@given(intents(), busier_worlds(), more_limits())
def test_public_evaluate_takes_the_screened_plan_and_decides_as_the_full_table(
        order: OrderIntent, world: MemoryView, policy: ResolvedLimits) -> None:
    source = OnePolicy(policy)
    full = msgspec.json.encode(evaluate_limits(order, world, policy, "h"))
    assert msgspec.json.encode(evaluate(order, world, source)) == full
    assert COMPILED_PLANS[id(source)][0]() is source  # judged through its compiled plans
    assert msgspec.json.encode(evaluate(order, PlainView(world), OnePolicy(policy))) == full


def test_a_policy_that_is_gone_takes_its_compiled_plans_with_it() -> None:
    world = view()
    source = OnePolicy(limits(max_order_qty=D(10)))
    kept = OnePolicy(limits(max_order_qty=D(10)))
    first = evaluate(intent(), world, source)
    evaluate(intent(), world, kept)
    key = id(source)
    assert COMPILED_PLANS[key][0]() is source
    del source
    gc.collect()
    assert key not in COMPILED_PLANS
    assert COMPILED_PLANS[id(kept)][0]() is kept
    assert evaluate(intent(), world, kept) == first
