"""No input the model accepts can make the engine raise: an intent whose figures do not fit
Decimal's exact arithmetic (a quantity of 10**34 lots, a price of 10**35 ticks) is denied with
SYS-008 and a record that decodes; fills, marks and funding at the edge of the bound are
booked without raising. The engine is deterministic on all of it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.harness import D, Harness, decision_of, encode, of_type
from ordergate.engine.core import Engine
from ordergate.evidence.reproduce import reproduce
from ordergate.gate.evaluate import PRECISION_LIMIT
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import (
    Alert,
    CommandAction,
    DecisionRecord,
    Dispatch,
    LimitsRecord,
    OutputEvent,
    PolicyDocument,
    ShadowDecision,
)
from ordergate.model.intent import OrderType, Side
from ordergate.policy import Policy

TINY_LOT: dict[str, Any] = {"instruments": {"X": {"lot_size": "1E-20"}}}
BOUND_EDGE = "999999999999999"  # the largest whole number below the bound, 10**15


def _replayed(world: Harness) -> bytes:
    """The outputs a fresh engine gives for the same inputs."""
    engine = Engine()
    return b"\n".join(encode(engine.handle(event)) for event in world.log)


def _record(outputs: list[OutputEvent]) -> DecisionRecord:
    (record,) = of_type(outputs, DecisionRecord)
    # it is journaled: it must go through the journal's encoding and come back whole
    decoded = msgspec.json.decode(msgspec.json.encode(record), type=DecisionRecord)
    assert decoded == record
    return record


def test_a_quantity_of_too_many_lots_is_denied_sys_008_and_changes_nothing() -> None:
    world = Harness(**TINY_LOT)
    world.accepted(qty="5")
    before = world.book_image()
    counters = dict(world.state.counters)

    outputs = world.intent(qty="1E+14")  # 10**34 lots: `qty % lot` cannot be computed

    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "SYS-008"
    (violation,) = decision.violations
    assert violation.code == "SYS-008"
    assert violation.observed == "InvalidOperation qty=1E+14"
    assert violation.limit == PRECISION_LIMIT
    assert "28-digit" in violation.detail
    assert of_type(outputs, Dispatch) == []
    assert world.book_image() == before  # no reservation, order or exposure
    assert world.state.counters["decision:DENY"] == counters.get("decision:DENY", 0) + 1
    assert world.state.counters["blocking:SYS-008"] == 1
    record = _record(outputs)
    assert record.context.position == 0 and record.context.working_buy == D(5)
    assert record.context.reference_price == D(100)

    # the next intent is decided as if nothing had happened
    assert decision_of(world.intent(qty="3")).decision is DecisionKind.ALLOW
    # a retry of the refused intent gets the same answer
    assert world.send(world.log[-2]) == [decision]


def test_the_precision_denial_is_deterministic_and_re_derived_from_its_record() -> None:
    world = Harness(**TINY_LOT)
    outputs = world.intent(qty="1E+14")
    world.intent(qty="2")
    assert _replayed(world) == b"\n".join(encode(step) for step in world.outputs)

    (limits,) = (record for step in world.outputs for record in of_type(step, LimitsRecord))
    intent = world.log[-2]
    again = reproduce(intent, _record(outputs), limits)  # type: ignore[arg-type]
    assert again == decision_of(outputs)


def test_a_price_of_too_many_ticks_is_denied_not_raised() -> None:
    ticks = Harness(instruments={"X": {"tick_size": "1E-20"}})
    decision = decision_of(ticks.intent(qty="1", limit_price=BOUND_EDGE))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "SYS-008")
    assert decision.violations[0].observed == f"InvalidOperation qty=1 limit_price={BOUND_EDGE}"
    # a collar breach too large to print: tests/engine/test_exact_arithmetic.py


def test_monitor_mode_still_denies_what_cannot_be_computed() -> None:
    world = Harness(monitor=True, **TINY_LOT)
    decision = decision_of(world.intent(qty="1E+14"))
    assert decision.decision is DecisionKind.DENY
    assert (decision.blocking, decision.would_block, decision.monitor) == (
        "SYS-008", "SYS-008", True)


def test_a_shadow_policy_that_cannot_judge_an_intent_says_so_without_raising() -> None:
    world = Harness()
    shadow = Policy.from_document({**world.policy.document, **TINY_LOT})
    world.send(PolicyDocument(ts=world.now, policy_hash=shadow.hash,
                              document=shadow.document))
    world.command(CommandAction.SHADOW_POLICY, policy_hash=shadow.hash, operator="o",
                  reason="try a lot size")
    outputs = world.intent(qty="1E+14")
    assert decision_of(outputs).decision is DecisionKind.ALLOW  # the active policy decides
    (judged,) = of_type(outputs, ShadowDecision)
    assert (judged.decision, judged.blocking) == (DecisionKind.DENY, "SYS-008")


def test_a_record_whose_figures_overflow_is_written_without_them() -> None:
    """Figures the engine computed itself beyond Decimal's exponent range (only a corrupted
    state holds them: no input inside the bound gets there) cannot stop the record either."""
    world = Harness({"max_daily_loss": "1000"})
    record = world.state.accounts["A"]
    record.day_start_equity = D("-9E+999999")
    record.cash = D("9E+999999")  # day_start - equity overflows

    outputs = world.intent(qty="1")

    decision = decision_of(outputs)
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "SYS-008")
    assert decision.violations[0].observed.startswith("Overflow ")
    context = _record(outputs).context
    assert context.account is None and context.daily_loss is None
    assert context.reference_price is None and context.firm_gross_exposure is None
    assert context.market is not None and context.position == 0


def test_fills_and_marks_at_the_edge_of_the_bound_are_booked_without_raising() -> None:
    """The fill path has no remainder, quantize or division by a figure that can be zero:
    within the bound it cannot raise. The drawdown alert words figures of 10**30 that do not
    fit in 28 digits to the cent as they are."""
    world = Harness({"max_drawdown_pct": "5", "drawdown_kill": True}, cash="1")
    buy = world.accepted(qty=BOUND_EDGE)
    sell = world.accepted(Side.SELL, qty=BOUND_EDGE)
    world.fill(buy.client_order_id, qty=BOUND_EDGE, price=BOUND_EDGE, fee=BOUND_EDGE)

    record = world.state.accounts["A"]
    assert record.cash < D("-9.99E+29")
    book = world.state.books[("A", "X")]
    assert book.qty == D(BOUND_EDGE) and book.avg_price == D(BOUND_EDGE)
    (alert,) = [alert for alert in of_type(world.outputs[-1], Alert) if alert.code == "LOS-003"]
    assert "equity -999999999999899000000000000099.000 is more" in alert.message
    assert world.state.mode.value == "HALTED"

    # the mark falls to a tiny price and the position is sold there: revalued and realized,
    # still without a raise
    world.quote(price="0.000000000000001", spread="0")
    world.fill(sell.client_order_id, qty=BOUND_EDGE, price="0.000000000000001")
    assert book.qty == 0 and record.realized_pnl < D("-9.99E+29")
    assert _replayed(world) == b"\n".join(encode(step) for step in world.outputs)


# ---------------------------------------------------------------- the property

_EXPONENTS = st.integers(min_value=-18, max_value=14)  # the input bounds (model.values)


@st.composite
def _decimals(draw: st.DrawFn) -> Decimal:
    """A positive decimal inside the bounds: up to 15 significant digits at any exponent from
    10**-18 to 10**14 (its leading digit's place)."""
    digits = draw(st.integers(min_value=1, max_value=15))
    coefficient = draw(st.integers(min_value=10 ** (digits - 1), max_value=10 ** digits - 1))
    exponent = draw(_EXPONENTS)
    return Decimal(coefficient).scaleb(exponent - digits + 1)


_STEPS = st.sampled_from([None, "1E-20", "1E-12", "0.001", "0.01", "1", "100"])


@st.composite
def _intent_fields(draw: st.DrawFn) -> dict[str, Any]:
    order_type = draw(st.sampled_from([OrderType.MARKET, OrderType.LIMIT]))
    fields: dict[str, Any] = {
        "qty": str(draw(_decimals())), "side": draw(st.sampled_from([Side.BUY, Side.SELL])),
    }
    if order_type is OrderType.LIMIT:
        fields["limit_price"] = str(draw(_decimals()))
    return fields


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lot=_STEPS, tick=_STEPS, price=_decimals(),
    steps=st.lists(st.tuples(_intent_fields(), st.booleans(), _decimals()), min_size=1,
                   max_size=6),
    exposure_modify=st.booleans(),
)
def test_no_intent_inside_the_bound_makes_the_engine_raise(
        lot: str | None, tick: str | None, price: Decimal,
        steps: list[tuple[dict[str, Any], bool, Decimal]], exposure_modify: bool) -> None:
    instrument = {
        **({"lot_size": lot} if lot is not None else {}),
        **({"tick_size": tick} if tick is not None else {}),
    }
    world = Harness(
        {"max_order_value": "1000000", "max_gross_exposure": "5000000",
         "max_position_value": "2000000", "price_collar_pct": "10",
         "max_daily_loss": "1000", "max_drawdown_pct": "5", "drawdown_kill": True,
         "exposure_modify": exposure_modify},
        instruments={"X": instrument} if instrument else {},
    )
    world.quote(price=str(price), spread="0")
    for fields, fill, mark in steps:
        outputs = world.intent(**fields)
        decisions = of_type(outputs, Decision)
        assert len(decisions) == 1, outputs
        assert of_type(outputs, DecisionRecord)  # the record is always written
        if fill:
            for dispatch in of_type(outputs, Dispatch):
                world.fill(dispatch.client_order_id, qty=str(dispatch.qty), price=str(mark))
        world.quote(price=str(mark), spread="0")
    assert _replayed(world) == b"\n".join(encode(step) for step in world.outputs)
