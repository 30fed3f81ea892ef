"""A monitor-mode policy (`monitor: true`) is a dry run (engine behaviour 5 on): its
`cancel_rate` refuses no cancel and its `drawdown_kill` halts nothing; an Alert says what an
enforcing policy would have done. A journal written under behaviour 4 replays with the refusals
and the halt it was decided with."""

from __future__ import annotations

from engine.harness import Harness, decision_of, encode, of_type
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import Alert, AlertSeverity, CancelOrder, ModeChanged
from ordergate.model.intent import Side
from ordergate.model.modes import Mode

CANCEL_RATE = {"cancel_rate": {"max": 1, "window": "1m"}}
DRAWDOWN = {"max_drawdown_pct": "5", "drawdown_kill": True}


def _working_sells(world: Harness, count: int) -> list[str]:
    """Long 100 and `count` resting sells of 1: cancelling one adds risk, so the rate counts."""
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100")
    return [world.accepted(Side.SELL, qty="1", limit_price=str(200 + index)).client_order_id
            for index in range(count)]


def _long_100(world: Harness) -> None:
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100", price="100")


def _replays(world: Harness) -> None:
    engine = Engine()
    assert [encode(engine.handle(event)) for event in world.log] == [
        encode(outputs) for outputs in world.outputs]


def test_a_monitor_mode_cancel_over_the_rate_goes_out_and_says_it_would_have_been_refused(
) -> None:
    world = Harness(CANCEL_RATE, monitor=True)
    orders = _working_sells(world, 3)
    assert of_type(world.cancel_request(orders[0]), CancelOrder)
    for order in orders[1:]:
        outputs = world.cancel_request(order)
        assert [cancel.client_order_id for cancel in of_type(outputs, CancelOrder)] == [order]
        (alert,) = of_type(outputs, Alert)
        assert (alert.severity, alert.code) == (AlertSeverity.INFO, "THR-005")
        assert alert.message.startswith(f"THR-005 would have refused this cancel of {order}")
    assert world.state.counters["cancel_would_deny"] == 2
    assert "cancel_denied" not in world.state.counters
    assert all(world.state.open_orders[order].cancel_requested for order in orders)
    _replays(world)


def test_an_enforcing_policy_still_refuses_a_cancel_over_the_rate() -> None:
    world = Harness(CANCEL_RATE)
    orders = _working_sells(world, 2)
    assert of_type(world.cancel_request(orders[0]), CancelOrder)
    refused = world.cancel_request(orders[1])
    assert of_type(refused, CancelOrder) == []
    assert [(alert.severity, alert.code) for alert in of_type(refused, Alert)] == [
        (AlertSeverity.WARNING, "THR-005")]


def test_a_monitor_mode_drawdown_kill_halts_nothing_and_says_once_it_would_have() -> None:
    world = Harness(DRAWDOWN, cash="10000", monitor=True)
    _long_100(world)
    outputs = world.quote("X", "90")
    assert of_type(outputs, ModeChanged) == []
    assert world.state.mode is Mode.ACTIVE
    assert world.state.guard.reasons() == ()
    (alert,) = of_type(outputs, Alert)
    assert (alert.severity, alert.code) == (AlertSeverity.CRITICAL, "LOS-003")
    assert alert.message == (
        "account A: equity 9000.00 is more than 5% below its high-water mark 10000.00; "
        "drawdown_kill would have moved the mode to HALTED (monitor mode: trading goes on)")
    # said once per high-water mark, not on every mark change that keeps it down
    assert of_type(world.quote("X", "89"), Alert) == []
    decision = decision_of(world.intent(qty="1"))
    assert decision.decision is DecisionKind.ALLOW and decision.would_block == "LOS-003"
    # a new high-water mark and a new breach of it: said again
    world.quote("X", "120")
    (again,) = of_type(world.quote("X", "100"), Alert)
    assert "high-water mark 12000.00" in again.message
    assert [name for name in world.state.counters if name.startswith("drawdown_would_halt")] == [
        "drawdown_would_halt:A:12000.00"]
    assert world.state.mode is Mode.ACTIVE
    _replays(world)


def test_an_enforcing_drawdown_kill_still_halts() -> None:
    world = Harness(DRAWDOWN, cash="10000")
    _long_100(world)
    (change,) = of_type(world.quote("X", "90"), ModeChanged)
    assert change.mode is Mode.HALTED
    assert decision_of(world.intent(qty="1")).blocking == "MOD-001"


def test_a_behaviour_4_monitor_journal_replays_its_refused_cancels_and_its_halt() -> None:
    world = Harness({**CANCEL_RATE, **DRAWDOWN}, cash="10000", monitor=True, behaviour=4)
    orders = _working_sells(world, 2)
    assert of_type(world.cancel_request(orders[0]), CancelOrder)
    refused = world.cancel_request(orders[1])
    assert of_type(refused, CancelOrder) == []
    assert [(alert.severity, alert.code) for alert in of_type(refused, Alert)] == [
        (AlertSeverity.WARNING, "THR-005")]
    (change,) = of_type(world.quote("X", "90"), ModeChanged)
    assert change.mode is Mode.HALTED and change.reasons[0].code == "LOS-003"
    assert decision_of(world.intent(qty="1")).blocking == "MOD-001"
    _replays(world)
