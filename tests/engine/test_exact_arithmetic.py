"""Engine behaviour 5: the engine's sums and products are exact (`model.values.EXACT`), so a
limit is never decided on a figure rounded to 28 digits, and an account's running totals come
back to what its positions make once a very large one has come and gone. A percentage too
large for evidence's 4 places is written out whole instead of refusing the intent SYS-008.
Journals written at behaviour 4 replay as they were decided."""

from __future__ import annotations

from decimal import Decimal, getcontext

from engine.harness import D, Harness, decision_of, encode
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import AccountFunding, PositionSeed
from ordergate.model.intent import Side

# 3 x this is 1000000.0000000000000000000002: 29 digits, 1,000,000 when rounded to 28
THIRD = "333333.3333333333333333333334"
BIG = "900000000000000"  # 9 x 10**14: a position of BIG at BIG is worth 8.1 x 10**29


def _assert_replays(world: Harness) -> None:
    """The harness's inputs through a fresh engine give the same bytes (`replay verify`)."""
    engine = Engine()
    for journaled, event in zip(world.outputs, world.log, strict=True):
        assert encode(engine.handle(event)) == encode(journaled)


def _large_position_came_and_went(behaviour: int) -> Harness:
    """Long 49 Y (gross 49), then a position of 9 x 10**14 X at 9 x 10**14 seeded and seeded
    away again, under a gross cap of 100."""
    world = Harness({"max_gross_exposure": "100"}, cash="100000000000000", symbols=("Y",),
                    price="1", behaviour=behaviour)
    world.send(PositionSeed(ts=world.now, account="A", symbol="Y", qty=D(49), avg_price=D(1)))
    world.send(PositionSeed(ts=world.now, account="A", symbol="X", qty=D(BIG),
                            avg_price=D(BIG)))
    world.send(PositionSeed(ts=world.now, account="A", symbol="X", qty=D(0), avg_price=D(0)))
    return world


def test_a_very_large_position_that_came_and_went_leaves_the_gross_exposure_exact() -> None:
    world = _large_position_came_and_went(5)
    record = world.state.accounts["A"]
    assert (record.gross, record.net_long, record.net_short) == (D(49), D(49), D(49))
    assert record.market_value == D(49) and record.unrealized_pnl == 0

    # 49 + 100 = 149 breaks the cap of 100
    decision = decision_of(world.intent(symbol="Y", qty="100", limit_price="1"))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "EXP-003")
    assert D(decision.violations[0].observed) == D(149)
    _assert_replays(world)


def test_a_behaviour_4_journal_keeps_the_rounded_gross_it_was_decided_on() -> None:
    world = _large_position_came_and_went(4)
    # 8.1 x 10**29 + 49 rounded to 28 digits lost the 49
    assert world.state.accounts["A"].gross == 0
    decision = decision_of(world.intent(symbol="Y", qty="100", limit_price="1"))
    assert decision.decision is DecisionKind.ALLOW
    _assert_replays(world)


def test_an_order_value_a_hair_above_the_cap_is_denied() -> None:
    world = Harness({"max_order_value": "1000000"}, cash="10000000", price="333333.3333")
    decision = decision_of(world.intent(qty="3", limit_price=THIRD))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "ORD-007")
    assert decision.violations[0].observed == "1000000.0000000000000000000002"
    # exactly at the cap is allowed, and keeps the digits it is written with
    assert decision_of(world.intent(qty="3", limit_price="333333.3333333333333333333333")
                       ).decision is DecisionKind.ALLOW
    _assert_replays(world)


def test_a_behaviour_4_journal_keeps_the_order_value_rounded_to_the_cap() -> None:
    world = Harness({"max_order_value": "1000000"}, cash="10000000", price="333333.3333",
                    behaviour=4)
    assert decision_of(world.intent(qty="3", limit_price=THIRD)).decision is DecisionKind.ALLOW
    _assert_replays(world)


def _deep_loss(behaviour: int) -> Harness:
    """Long 10 X at 100, equity -999,999,999,999,000 against a day-start equity and high-water
    mark of 10**-18: a loss of 10**35 %."""
    world = Harness({"max_daily_loss_pct": "50", "max_drawdown_pct": "10"}, behaviour=behaviour)
    world.send(PositionSeed(ts=world.now, account="A", symbol="X", qty=D(10),
                            avg_price=D(100)))
    world.send(AccountFunding(ts=world.now, account="A", cash=D("-999999999999999"),
                              equity=D("-999999999999000"), day_start_equity=D("1E-18"),
                              high_water_mark=D("1E-18")))
    return world


def test_a_loss_too_large_to_print_to_4_places_still_lets_a_risk_reducing_order_through(
) -> None:
    world = _deep_loss(5)
    decision = decision_of(world.intent(Side.SELL, qty="5", limit_price="100"))
    assert decision.decision is DecisionKind.ALLOW and decision.risk_reducing
    loss, drawdown = decision.violations
    assert (loss.code, drawdown.code) == ("LOS-002", "LOS-003")
    # written out whole: 999999999999000.000000000000000001 x 100 / 10**-18, to 28 digits
    assert loss.observed == "99999999999900000000000000000000000"
    assert Decimal(drawdown.observed) > D("9.9E+34")
    # a new risk is refused on the loss, not on its printing
    denied = decision_of(world.intent(qty="1", limit_price="100"))
    assert (denied.decision, denied.blocking) == (DecisionKind.DENY, "LOS-002")
    _assert_replays(world)


def test_a_collar_breach_too_large_to_print_to_4_places_is_denied_on_the_collar() -> None:
    world = Harness({"price_collar_pct": "5"})
    world.quote(price="1E-18", spread="0")  # the smallest price an input may carry
    decision = decision_of(world.intent(qty="1", limit_price="999999999999999"))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "ORD-008")
    assert decision.violations[0].observed == "99999999999999900000000000000000000"
    _assert_replays(world)


def test_a_behaviour_4_journal_keeps_its_sys_008_for_an_unprintable_percentage() -> None:
    world = _deep_loss(4)
    decision = decision_of(world.intent(Side.SELL, qty="5", limit_price="100"))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "SYS-008")
    collar = Harness({"price_collar_pct": "5"}, behaviour=4)
    collar.quote(price="1E-18", spread="0")
    decision = decision_of(collar.intent(qty="1", limit_price="999999999999999"))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "SYS-008")
    _assert_replays(world)
    _assert_replays(collar)


def test_the_engine_leaves_the_callers_decimal_context_as_it_was() -> None:
    before = getcontext()
    world = Harness({"max_order_value": "1000000"})
    world.intent(qty="3", limit_price=THIRD)
    assert getcontext() is before and before.prec == 28
