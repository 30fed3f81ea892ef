"""A cancel the broker refuses (`CancelRefused`: Alpaca's 422 "order is not cancelable") is an
input the engine answers: an Alert names the order and the broker's reason, and the order's
cancel-requested mark is cleared, so a later cancel request, a cancel-all or the session close
asks the broker again. The order goes on working with its reservation. A refusal for an order
that has ended meanwhile (the usual reason for one) only counts."""

from __future__ import annotations

from engine.harness import Harness, of_type
from engine.test_behaviour_epochs import _assert_replays
from ordergate.engine.lifecycle import CANCEL_REFUSED, ORDER_UNKNOWN
from ordergate.model.events import (
    Alert,
    CancelOrder,
    CancelRefused,
    CommandAction,
    OutputEvent,
)
from ordergate.model.intent import Side
from ordergate.model.modes import Mode

REASON = "alpaca: cancel: HTTP 422: order is not cancelable"


def _refused(world: Harness, client_order_id: str) -> list[OutputEvent]:
    return world.send(CancelRefused(ts=world.now, client_order_id=client_order_id,
                                    reason=REASON))


def test_a_refused_cancel_alerts_and_leaves_the_order_working() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10", limit_price="99").client_order_id
    world.fill(order, "4", price="99")
    assert of_type(world.cancel_request(order), CancelOrder) != []
    assert world.state.open_orders[order].cancel_requested
    outputs = _refused(world, order)
    (alert,) = of_type(outputs, Alert)
    assert outputs == [alert]
    assert alert.code == CANCEL_REFUSED and alert.severity == "warning"
    assert alert.message == (
        f"the broker refused to cancel order {order} (buy 6 of 10 X, account A, strategy s1): "
        f"{REASON}. The order is still working; a new cancel request, a cancel-all or the "
        "session close asks the broker again")
    working = world.state.open_orders[order]
    assert not working.cancel_requested
    assert world.state.working("A", "X") == (6, 0)  # still reserved
    assert world.state.mode is Mode.ACTIVE
    _assert_replays(world)


def test_after_a_refusal_a_cancel_all_asks_again() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10", limit_price="99").client_order_id
    world.cancel_request(order)
    _refused(world, order)
    outputs = world.command(CommandAction.HALT, operator="ops1", reason="end of test",
                            cancel_all=True)
    assert [cancel.client_order_id for cancel in of_type(outputs, CancelOrder)] == [order]
    assert world.state.open_orders[order].cancel_requested
    _assert_replays(world)


def test_after_a_refusal_a_cancel_request_asks_again() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10", limit_price="99").client_order_id
    world.cancel_request(order)
    _refused(world, order)
    world.advance(1)
    (again,) = of_type(world.cancel_request(order), CancelOrder)
    assert again.client_order_id == order
    world.canceled(order)
    assert order not in world.state.open_orders
    assert world.state.working("A", "X") == (0, 0)


def test_a_refusal_for_an_order_that_ended_meanwhile_only_counts() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10", limit_price="99").client_order_id
    world.cancel_request(order)
    world.fill(order, "10", price="99")  # it filled before the cancel reached the broker
    assert _refused(world, order) == []
    assert world.state.counters["cancel_refused_after_done"] == 1


def test_a_refusal_for_an_order_the_gateway_never_had_alerts() -> None:
    world = Harness()
    (alert,) = of_type(_refused(world, "og-nosuchorder"), Alert)
    assert alert.code == ORDER_UNKNOWN
    assert "og-nosuchorder, which is no order of this gateway" in alert.message
