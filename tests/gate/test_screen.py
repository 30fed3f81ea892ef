"""The screen of a compiled plan (`gate.screen`) against the full table it stands in for.

Three promises, over generated intents, worlds and limits, with limits placed exactly at, just
inside and just outside the values the world makes them judge (where a rewritten comparison
would slip):
* its context is the one `build_context` builds, field for field and digit for digit;
* a row it leaves out returns None (soundness: it never lets through what a rule would stop);
* the decision it leads to is byte for byte the full table's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.build import NOW, intent, limits, quote
from gate.test_plan import SESSIONS, busier_worlds, more_limits
from gate.test_properties import SYMBOLS, intents
from gate.views import MemoryView
from ordergate.gate import FULL_PLAN, PlanCache, compile_plan, decide, evaluate_limits
from ordergate.gate.context import RuleContext, build_context
from ordergate.gate.rules import hours
from ordergate.gate.screen import SessionClock, screen
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.policy.limits import (
    Instrument,
    RateLimit,
    ResolvedLimits,
    SelfMatch,
    TradingSessions,
)

D = Decimal
# a session that opened and closed before now
ENDED = TradingSessions(calendar="ended", opens=(int(NOW.timestamp()) - 120,),
                        closes=(int(NOW.timestamp()) - 60,))
# how far from a boundary a limit is placed: on it, one step either side, far either side
NUDGES = (D(0), D("0.01"), D("-0.01"), D("0.0001"), D(-1), D(1000))


def fields(ctx: RuleContext) -> list[str]:
    """Each field's repr: Decimals compare by digits and exponent, not only by value."""
    return [repr(getattr(ctx, name)) for name in ctx.__struct_fields__]


def outcome(run: Callable[[], object]) -> object:
    """What a call gives, or the kind of error it raises (a world can be broken enough for
    Decimal to refuse a comparison: then both paths must refuse it)."""
    try:
        return run()
    except ArithmeticError as error:
        return type(error)


@st.composite
def wide_intents(draw: st.DrawFn) -> OrderIntent:
    """Every order type, prices with and without trailing zeros, reduce-only or not."""
    order_type = draw(st.sampled_from(list(OrderType)))
    price = draw(st.sampled_from([D("100.00"), D("100"), D("99.955"), D("1E+2"), D("100.5")]))
    has_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    has_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if draw(st.integers(0, 9)) == 0:  # now and then the wrong prices for the type (ORD-003)
        has_limit, has_stop = not has_limit, draw(st.booleans())
    return intent(
        symbol=draw(st.sampled_from(SYMBOLS)), side=draw(st.sampled_from(list(Side))),
        qty=draw(st.sampled_from([D(1), D(10), D("10.0"), D("2.5"), D(150), D(400)])),
        order_type=order_type,
        limit_price=price if has_limit else None,
        stop_price=draw(st.sampled_from([D("101.00"), D("98.5")])) if has_stop else None,
        reduce_only=draw(st.booleans()),
        client_order_id=draw(st.sampled_from([None, "c-1", "c-2"])),
        ts=NOW - draw(st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(1)])),
    )


@st.composite
def wide_worlds(draw: st.DrawFn) -> MemoryView:
    """`busier_worlds`, plus quotes with missing sides, no or zero volume, non-finite
    positions and working quantities, missing or zero equity marks, any mode."""
    world = draw(busier_worlds())
    for symbol in SYMBOLS:
        kind = draw(st.sampled_from(["keep", "keep", "no_bid", "last_only", "no_volume",
                                     "zero_volume", "bad_last", "locked", "bad_volume",
                                     "six_seconds_old"]))
        fields_: dict[str, Any] = {
            "no_bid": {"bid": None},
            "last_only": {"bid": None, "ask": None},
            "no_volume": {"volume": None},
            "zero_volume": {"volume": D(0)},
            "bad_last": {"last": D(0)},
            "locked": {"bid": D("100.00"), "ask": D("100.00")},
            "bad_volume": {"volume": D("-1")},
            "six_seconds_old": {"ts": NOW - timedelta(seconds=6)},
        }.get(kind, {})
        if fields_:
            world.markets[symbol] = quote(symbol, **fields_)
    if draw(st.integers(0, 5)) == 0:
        world.positions[("A1", draw(st.sampled_from(SYMBOLS)))] = draw(
            st.sampled_from([D("NaN"), D("Infinity"), D("-Infinity")]))
    if draw(st.integers(0, 5)) == 0:
        world.working_orders[("A1", draw(st.sampled_from(SYMBOLS)))] = (D("NaN"), D(0))
    marks = draw(st.sampled_from(["keep", "keep", "none", "zero_day_start", "zero_high"]))
    if marks == "none":
        world.accounts = {}
    elif marks != "keep":
        state = world.accounts["A1"]
        world.accounts["A1"] = msgspec.structs.replace(
            state, **({"day_start_equity": D(0)} if marks == "zero_day_start"
                      else {"high_water_mark": D(0)}))
    world.mode = draw(st.sampled_from(list(Mode)))
    return world


@st.composite
def boundary_limits(draw: st.DrawFn, order: OrderIntent, world: MemoryView) -> ResolvedLimits:
    """Limits on, or one step off, the values the world gives this intent (read from the full
    table's own context), with the rest drawn as `more_limits` does."""
    base = draw(more_limits())
    base = msgspec.structs.replace(
        base,
        max_intent_skew=draw(st.sampled_from([None, timedelta(0), timedelta(seconds=1)])),
        sessions=draw(st.sampled_from([None, *SESSIONS, ENDED])),
        instrument=draw(st.sampled_from([
            None, Instrument(tick_size=D("0.01"), lot_size=D(1)),
            Instrument(tick_size=D("0.05")), Instrument(lot_size=D("0.5"))])),
        max_market_data_age=draw(st.sampled_from([timedelta(seconds=5), timedelta(0)])),
    )
    ctx = outcome(lambda: build_context(order, world, base))
    if not isinstance(ctx, RuleContext):
        return base  # the world breaks Decimal: no boundary to place limits on

    def near(value: Decimal | None) -> Decimal | None:
        if value is None or not value.is_finite():
            return draw(st.sampled_from([None, D(1), D(10**6)]))
        return draw(st.sampled_from([None, *(abs(value) + nudge for nudge in NUDGES)]))

    qty = order.qty
    moved = ctx.position + (ctx.working_buy + qty if order.side is Side.BUY
                            else -ctx.working_sell - qty)
    reference = ctx.reference
    totals, before, after = ctx.totals, ctx.contribution_now, ctx.contribution_after
    account = ctx.account
    overrides: dict[str, Any] = {
        "max_order_qty": near(qty),
        "max_order_value": near(ctx.order_value),
        "max_position_qty": near(moved),
        "max_position_value": near(None if reference is None else moved * reference),
        "max_volume_participation_pct": draw(st.sampled_from([None, D("0.1"), D(10)])),
        "self_match": draw(st.sampled_from(list(SelfMatch))),
    }
    if totals is not None and before is not None and after is not None:
        overrides["max_gross_exposure"] = near(totals.gross - before.gross + after.gross)
        overrides["max_net_exposure"] = near(totals.net_long - before.net_long + after.net_long)
        overrides["max_firm_gross_exposure"] = draw(st.sampled_from([None, D(1000), D(10**9)]))
    if account is not None:
        loss = account.day_start_equity - account.equity
        overrides["max_daily_loss"] = near(loss)
        if account.day_start_equity > 0:
            overrides["max_daily_loss_pct"] = near(loss * 100 / account.day_start_equity)
        if account.high_water_mark > 0:
            drop = account.high_water_mark - account.equity
            overrides["max_drawdown_pct"] = near(drop * 100 / account.high_water_mark)
    if reference is not None and order.limit_price is not None:
        overrides["price_collar_pct"] = near(
            abs(order.limit_price - reference) * 100 / reference)
    if reference is not None and order.stop_price is not None:
        overrides["market_collar_pct"] = near(
            abs(order.stop_price - reference) * 100 / reference)
    count = draw(st.integers(1, 7))
    rate = RateLimit(max_count=count, window=timedelta(minutes=1))
    overrides["rate_account"] = draw(st.sampled_from([None, rate]))
    overrides["rate_symbol"] = draw(st.sampled_from([None, rate]))
    return msgspec.structs.replace(base, **overrides)


@st.composite
def cases(draw: st.DrawFn) -> tuple[OrderIntent, MemoryView, ResolvedLimits]:
    order = draw(st.one_of(intents(), wide_intents()))
    world = draw(wide_worlds())
    policy = draw(st.one_of(more_limits(), boundary_limits(order, world)))
    if draw(st.integers(0, 9)):
        # mostly limits with a screen: none of the rows that break every intent applies
        policy = msgspec.structs.replace(
            policy, kill_switch=False, require_instrument=False, restricted=False,
            canary_allowed=True, max_market_data_age=draw(st.sampled_from(
                [timedelta(seconds=5), timedelta(seconds=6), timedelta(0)])))
    return order, world, policy


CASES = settings(max_examples=400, deadline=None)


@CASES
@given(cases())
def test_the_screen_builds_the_context_build_context_builds(
        case: tuple[OrderIntent, MemoryView, ResolvedLimits]) -> None:
    order, world, policy = case
    screened = compile_plan(policy).screen
    if screened is None:
        return
    assert outcome(lambda: fields(screen(order, world, policy, screened)[0])) == outcome(
        lambda: fields(build_context(order, world, policy)))


@CASES
@given(cases())
def test_a_row_the_screen_leaves_out_could_not_have_broken(
        case: tuple[OrderIntent, MemoryView, ResolvedLimits]) -> None:
    order, world, policy = case
    plan = compile_plan(policy)
    if plan.screen is None or isinstance(outcome(lambda: build_context(order, world, policy)),
                                         type):
        return
    ctx, suspects = screen(order, world, policy, plan.screen)
    suspected = {id(rule) for _, rule in suspects}
    in_order = [rule.code for _, rule in plan.rows if id(rule) in suspected]
    assert [rule.code for _, rule in suspects] == in_order  # table order, no repeats
    for check, rule in FULL_PLAN.rows:
        if id(rule) not in suspected:
            assert check(ctx) is None, rule.code


@CASES
@given(cases())
def test_a_screened_plan_decides_exactly_as_the_full_table(
        case: tuple[OrderIntent, MemoryView, ResolvedLimits]) -> None:
    order, world, policy = case
    assert outcome(lambda: msgspec.json.encode(
        decide(order, world, policy, "h", compile_plan(policy))[0])) == outcome(
        lambda: msgspec.json.encode(evaluate_limits(order, world, policy, "h")))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_plans_sharing_market_facts_decide_as_the_full_table_while_quotes_change(
        data: st.DataObject) -> None:
    """One plan cache judges intent after intent, under varied limits, while quotes are
    replaced (by new snapshot objects, some equal to the old ones) or kept: the market facts
    its plans share never outlive their snapshot."""
    world = data.draw(wide_worlds())
    plans = PlanCache()
    for _ in range(data.draw(st.integers(2, 8))):
        if data.draw(st.booleans()):
            symbol = data.draw(st.sampled_from(SYMBOLS))
            world.markets[symbol] = quote(symbol, **data.draw(st.sampled_from([
                {}, {"bid": None}, {"volume": D(0)}, {"last": D(0)},
                {"bid": D("101.00"), "ask": D("101.02"), "last": D("101.01")},
            ])))
        order = data.draw(st.one_of(intents(), wide_intents()))
        policy = data.draw(st.one_of(more_limits(), boundary_limits(order, world)))
        assert both_ways(order, world, policy, plans)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_plans_sharing_loss_rows_decide_as_the_full_table_while_marks_change(
        data: st.DataObject) -> None:
    """One plan cache judges intent after intent while the account's equity marks are
    replaced (by new objects, some equal to the old ones) or kept, and its limits are kept or
    redrawn (on the marks' boundaries too): the loss rows its plans share never outlive the
    marks or the limits they were worked out on."""
    world = data.draw(wide_worlds())
    plans = PlanCache()
    policy = screened(data.draw(more_limits()))
    for _ in range(data.draw(st.integers(2, 8))):
        state = world.accounts.get("A1")
        if state is not None and data.draw(st.booleans()):
            world.accounts["A1"] = msgspec.structs.replace(state, **data.draw(st.sampled_from([
                {}, {"equity": state.equity}, {"equity": D(0)}, {"equity": D("99000")},
                {"equity": state.day_start_equity - D(1)}, {"day_start_equity": D(0)},
                {"high_water_mark": state.equity + D("0.01")}, {"high_water_mark": D(0)},
            ])))
        order = data.draw(st.one_of(intents(), wide_intents()))
        if data.draw(st.booleans()):
            policy = screened(data.draw(st.one_of(more_limits(), boundary_limits(order, world))))
        assert both_ways(order, world, policy, plans)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_plans_sharing_book_figures_decide_as_the_full_table_while_books_change(
        data: st.DataObject) -> None:
    """One plan cache judges intent after intent while an account's position and working
    quantities in a symbol are replaced (by new objects, some equal to the old ones, some not
    finite) or kept, and quotes with them: the figures of each (account, symbol) its plans
    share (`BookMemo`) never outlive the position, working quantities and mark they were
    worked out on."""
    world = data.draw(wide_worlds())
    plans = PlanCache()
    policy = screened(data.draw(more_limits()))
    for _ in range(data.draw(st.integers(2, 8))):
        key = ("A1", data.draw(st.sampled_from(SYMBOLS)))
        change = data.draw(st.sampled_from(
            ["keep", "position", "working", "buy_side", "sell_side", "same_values", "quote",
             "not_finite"]))
        position = world.positions.get(key, D(0))
        working = world.working_orders.get(key, (D(0), D(0)))
        if change == "position":
            world.positions[key] = data.draw(st.sampled_from(
                [D(0), D(5), D(-5), D("150"), D("-400.5"), D("1E+3")]))
        elif change == "working":
            world.working_orders[key] = data.draw(st.sampled_from(
                [(D(0), D(0)), (D(10), D(0)), (D(0), D("25.5")), (D(300), D(300))]))
        elif change == "buy_side":  # one side replaced, the other the very same object
            world.working_orders[key] = (working[0] + D(7), working[1])
        elif change == "sell_side":
            world.working_orders[key] = (working[0], working[1] + D("7.5"))
        elif change == "same_values":
            world.positions[key] = D(str(position))
            world.working_orders[key] = (D(str(working[0])), D(str(working[1])))
        elif change == "quote":
            world.markets[key[1]] = quote(key[1], **data.draw(st.sampled_from([
                {}, {"bid": None}, {"bid": D("101.00"), "ask": D("101.02"), "last": D("101.01")},
            ])))
        elif change == "not_finite":
            world.positions[key] = D("NaN")
        order = data.draw(st.one_of(intents(), wide_intents()))
        if data.draw(st.booleans()):
            policy = screened(data.draw(st.one_of(more_limits(), boundary_limits(order, world))))
        assert both_ways(order, world, policy, plans)
        assert contexts_agree(order, world, policy, plans)


def contexts_agree(order: OrderIntent, world: MemoryView, policy: ResolvedLimits,
                   plans: PlanCache) -> bool:
    """The cached plan's context (or error) equals the one `build_context` builds."""
    plan = plans.plan(policy)
    if plan.screen is None:
        return True
    screened_limits = plan.screen
    return outcome(lambda: fields(screen(order, world, policy, screened_limits)[0])) == outcome(
        lambda: fields(build_context(order, world, policy)))


def screened(policy: ResolvedLimits) -> ResolvedLimits:
    """`policy` without the rows that break every intent, so its plan has a screen."""
    return msgspec.structs.replace(
        policy, kill_switch=False, require_instrument=False, restricted=False,
        canary_allowed=True, max_market_data_age=timedelta(seconds=5))


def both_ways(order: OrderIntent, world: MemoryView, policy: ResolvedLimits,
              plans: PlanCache) -> bool:
    """The cached plan's decision bytes (or error) equal the full table's."""
    return outcome(lambda: msgspec.json.encode(
        decide(order, world, policy, "h", plans.plan(policy))[0])) == outcome(
        lambda: msgspec.json.encode(evaluate_limits(order, world, policy, "h")))


def test_limits_under_which_a_rule_always_breaks_have_no_screen() -> None:
    assert compile_plan(limits()).screen is not None
    for always in ({"kill_switch": True}, {"max_market_data_age": None}, {"restricted": True},
                   {"canary_allowed": False}, {"require_instrument": True}):
        assert compile_plan(limits(**always)).screen is None, always


def test_a_clean_intent_runs_no_rule() -> None:
    world = MemoryView(now=NOW, markets={"XYZ": quote()}, accounts={
        "A1": AccountState(account="A1", equity=D(100), day_start_equity=D(100),
                           high_water_mark=D(100))})
    policy = limits(max_order_qty=D(100), max_daily_loss=D(10), max_gross_exposure=D(10**6))
    plan = compile_plan(policy)
    assert plan.screen is not None
    assert screen(intent(), world, policy, plan.screen)[1] == []


def rule_says_open(sessions: TradingSessions, now: datetime) -> bool:
    ctx = build_context(intent(), MemoryView(now=now), limits(sessions=sessions))
    return hours.market_closed(ctx) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(-5, 40)), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(-2, 45), st.sampled_from([0, 1, 500_000, 999_999])),
             min_size=1, max_size=12),
)
def test_the_session_clock_answers_as_the_market_hours_rule_in_any_order_of_times(
        spans: list[tuple[int, int]], times: list[tuple[int, int]]) -> None:
    """Opens sorted (duplicates too), closes anywhere (even before their open), and event times
    to the microsecond around them, asked in any order: the remembered span never changes an
    answer."""
    start = int(NOW.timestamp())
    ordered = sorted(spans)
    sessions = TradingSessions(
        calendar="t", opens=tuple(start + open_ for open_, _ in ordered),
        closes=tuple(start + open_ + length for open_, length in ordered))
    clock = SessionClock(sessions)
    for seconds, micros in times:
        now = NOW + timedelta(seconds=seconds, microseconds=micros)
        assert clock.is_open(now) == rule_says_open(sessions, now), (seconds, micros)
