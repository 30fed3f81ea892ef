"""An input the engine cannot compute with is never raised out of `Engine.handle`: it is
journaled before the engine sees it, so a raise would come back on every restart. The engine
drops what the event produced, halts trading with SYS-008 (latched, until an operator
resumes) and says which event failed and why; replaying the same events gives the same
bytes.

The model's bounds keep every known such input out (model.values), so these events are built
the way a journal written before a bound existed would hold them: a valid event with the figure
put in afterwards (`msgspec.structs.force_setattr`, which skips `__post_init__`). The halt is the
net for whatever the bounds miss."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
import pytest

from engine.harness import D, Harness, decision_of, encode, of_type
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import (
    Alert,
    AlertSeverity,
    CommandAction,
    Dispatch,
    Fill,
    InputEvent,
    ModeChanged,
    OutputEvent,
)
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode

# Decimal's largest exponent is 999999: adding two of these overflows
HUGE = Decimal("9E+999999")


def _poisoned_quote(world: Harness) -> MarketSnapshot:
    quote = MarketSnapshot(ts=world.advance(1), symbol="X", bid=D("99.99"), ask=D("100.01"),
                           last=D(100))
    msgspec.structs.force_setattr(quote, "bid", HUGE)
    msgspec.structs.force_setattr(quote, "ask", HUGE)  # the mark, (bid + ask) / 2, overflows
    return quote


def _assert_halted_by(outputs: list[OutputEvent], kind: str, ts: datetime) -> None:
    """The outputs are exactly the halt: a SYS-008 Alert naming the event, and ModeChanged."""
    assert [type(output) for output in outputs] == [Alert, ModeChanged], outputs
    alert, change = outputs
    assert isinstance(alert, Alert) and isinstance(change, ModeChanged)
    assert alert.code == "SYS-008"
    assert alert.severity is AlertSeverity.CRITICAL
    shown = ts.isoformat().replace("+00:00", "Z")
    assert alert.message == (f"{kind} event at {shown} could not be handled (Overflow): "
                             "trading is halted until an operator resumes")
    assert change.mode is Mode.HALTED and change.previous is Mode.ACTIVE
    assert [reason.code for reason in change.reasons] == ["SYS-008"]
    assert change.reasons[0].detail == alert.message


def test_a_quote_the_engine_cannot_compute_with_halts_instead_of_raising() -> None:
    world = Harness()
    quote = _poisoned_quote(world)

    outputs = world.send(quote)  # before the quarantine: decimal.Overflow out of handle

    _assert_halted_by(outputs, "a market", quote.ts)
    assert world.state.mode is Mode.HALTED
    assert world.state.counters["input_unhandled"] == 1

    # trading stays halted: a new intent is denied by the mode, nothing is dispatched
    world.quote(price="100")
    denied = world.intent(qty="5")
    assert decision_of(denied).decision is DecisionKind.DENY
    assert decision_of(denied).blocking == "MOD-001"
    assert of_type(denied, Dispatch) == []

    # the condition is latched: a reset window or fresh data does not lift it, a resume does
    resumed = world.command(CommandAction.RESUME, operator="ops", reason="bad quote checked")
    (change,) = of_type(resumed, ModeChanged)
    assert change.mode is Mode.ACTIVE and change.previous is Mode.HALTED
    assert world.state.guard.mode is Mode.ACTIVE  # the one the gate reads
    allowed = world.intent(qty="5")
    assert decision_of(allowed).decision is DecisionKind.ALLOW
    assert len(of_type(allowed, Dispatch)) == 1


def test_a_resume_without_operator_and_reason_leaves_the_halt() -> None:
    world = Harness()
    world.send(_poisoned_quote(world))

    refused = world.command(CommandAction.RESUME, operator="ops")

    assert of_type(refused, ModeChanged) == []
    assert world.state.mode is Mode.HALTED


def test_a_fill_that_overflows_drops_its_outputs_and_halts() -> None:
    world = Harness()
    dispatch = world.accepted(qty="10")
    world.ack(dispatch.client_order_id)
    fill = Fill(ts=world.advance(1), client_order_id=dispatch.client_order_id, fill_id="f-big",
                qty=D(10), price=D(100))
    msgspec.structs.force_setattr(fill, "qty", HUGE)  # the booked notional overflows

    outputs = world.send(fill)

    _assert_halted_by(outputs, "a fill", fill.ts)
    # the order was not filled: still working, nothing booked
    order = world.state.open_orders[dispatch.client_order_id]
    assert order.filled == 0 and order.remaining == D(10)
    assert world.state.books[("A", "X")].qty == 0


def test_a_fill_below_decimal_precision_halts() -> None:
    """A fill of 1E-1000200 shares (refused by the model now, accepted before its lower bound):
    below the smallest exponent of the engine's arithmetic (1E-1000148 in its 150 digits,
    `model.values.EXACT`) the position's size rounds to zero and its average price is 0/0."""
    world = Harness()
    dispatch = world.accepted(qty="10")
    world.ack(dispatch.client_order_id)
    fill = Fill(ts=world.now, client_order_id=dispatch.client_order_id, fill_id="f-tiny",
                qty=D(1), price=D(90))
    msgspec.structs.force_setattr(fill, "qty", Decimal("1E-1000200"))

    outputs = world.send(fill)

    assert [type(output) for output in outputs] == [Alert, ModeChanged], outputs
    assert outputs[0].message.startswith(  # type: ignore[union-attr]
        "a fill event at 2026-01-05T14:00:00Z could not be handled (InvalidOperation)")
    assert world.state.mode is Mode.HALTED
    assert world.state.books[("A", "X")].qty == 0


def test_every_further_failure_is_announced_while_the_halt_stands() -> None:
    world = Harness()
    world.send(_poisoned_quote(world))
    second = _poisoned_quote(world)

    outputs = world.send(second)

    (alert,) = outputs  # already HALTED: no ModeChanged, but the event is not passed over
    assert isinstance(alert, Alert) and alert.code == "SYS-008"
    assert alert.message.startswith(
        f"a market event at {second.ts.isoformat().replace('+00:00', 'Z')} could not be "
        "handled")
    assert world.state.counters["input_unhandled"] == 2
    assert [c.code for c in world.state.guard.conditions()] == ["SYS-008"]


def test_the_halt_is_deterministic_and_survives_a_snapshot() -> None:
    world = Harness()
    world.accepted(qty="3")
    world.send(_poisoned_quote(world))
    world.quote(price="100")  # a sound quote again (a snapshot holds the newest quote)
    cut = len(world.log)
    world.intent(qty="4")
    world.command(CommandAction.RESUME, operator="ops", reason="checked")
    world.quote(price="101")
    world.intent(qty="2")
    events: list[InputEvent] = world.log

    first, second = Engine(), Engine()
    replayed_first = [first.handle(event) for event in events]
    replayed_second = [second.handle(event) for event in events]

    expected = b"\n".join(encode(step) for step in world.outputs)
    assert b"\n".join(encode(step) for step in replayed_first) == expected
    assert b"\n".join(encode(step) for step in replayed_second) == expected
    assert first.snapshot() == second.snapshot() == world.engine.snapshot()

    # restored from a snapshot taken while halted, the rest gives the same outputs
    prefix = Engine()
    for event in events[:cut]:
        prefix.handle(event)
    restored = Engine.restore(prefix.snapshot())
    assert restored.state.mode is Mode.HALTED
    rest = b"\n".join(encode(restored.handle(event)) for event in events[cut:])
    assert rest == b"\n".join(encode(step) for step in world.outputs[cut:])


def test_an_error_that_is_not_about_the_data_still_surfaces() -> None:
    world = Harness()
    quote = MarketSnapshot(ts=world.advance(1), symbol="X", bid=D("99.99"), ask=D("100.01"))
    # a timestamp without a zone cannot be compared with the engine's clock: a TypeError,
    # which is a bug in whatever built the event, not a figure: it is not swallowed
    msgspec.structs.force_setattr(quote, "ts", quote.ts.replace(tzinfo=None))

    with pytest.raises(TypeError):
        world.engine.handle(quote)
