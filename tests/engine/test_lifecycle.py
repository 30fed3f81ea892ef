"""Broker callbacks and cancel requests: reservations freed, fills booked once, unknown
orders treated as reconciliation mismatches, repeated executions throttled."""

from __future__ import annotations

from engine.harness import D, Harness, decision_of, of_type
from ordergate.model.decision import DecisionKind
from ordergate.model.events import Alert, CancelOrder, CommandAction, ModeChanged
from ordergate.model.intent import Side
from ordergate.model.modes import Mode


def test_reject_frees_the_reservation() -> None:
    world = Harness({"max_position_qty": "100"})
    dispatch = world.accepted(qty="80")
    assert decision_of(world.intent(qty="30")).decision is DecisionKind.DENY
    world.reject(dispatch.client_order_id)
    assert world.state.working("A", "X") == (D(0), D(0))
    assert world.state.exposure("A").gross == 0
    assert decision_of(world.intent(qty="30")).decision is DecisionKind.ALLOW
    assert world.state.client_order_id_seen(dispatch.client_order_id)


def test_cancel_confirmation_frees_the_remaining_reservation() -> None:
    world = Harness()
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "4")
    world.canceled(dispatch.client_order_id)
    assert world.state.working("A", "X") == (D(0), D(0))
    assert world.state.position("A", "X") == D(4)
    assert dispatch.client_order_id not in world.state.open_orders


def test_partial_then_full_fill_books_position_cash_fees_and_closes_the_order() -> None:
    world = Harness(cash="10000")
    dispatch = world.accepted(qty="10")
    coid = dispatch.client_order_id
    world.ack(coid)
    assert world.state.open_orders[coid].acked
    world.fill(coid, "4", price="100", fee="1")
    assert world.state.position("A", "X") == D(4)
    assert world.state.working("A", "X") == (D(6), D(0))
    world.fill(coid, "6", price="105", fee="1")
    assert coid not in world.state.open_orders
    record = world.state.accounts["A"]
    assert world.state.books[("A", "X")].avg_price == D(103)
    assert record.cash == D(10000) - D(400) - D(630) - D(2)
    assert record.fees == D(2)
    assert record.equity == record.cash + D(10) * D(100)
    # selling 4 at 110 realizes (110 - 103) * 4
    sell = world.accepted(Side.SELL, qty="4")
    world.fill(sell.client_order_id, "4", price="110")
    assert record.realized_pnl == D(28)
    assert world.state.position("A", "X") == D(6)


def test_redelivered_fill_is_booked_once() -> None:
    world = Harness()
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "3", fill_id="F1")
    world.fill(dispatch.client_order_id, "3", fill_id="F1")
    assert world.state.position("A", "X") == D(3)
    assert world.state.counters["fill_duplicate"] == 1


def test_fill_for_unknown_order_raises_reconciliation_mismatch_and_tightens_mode() -> None:
    world = Harness(engine={"on_reconciliation_mismatch": "HALTED"})
    outputs = world.fill("nobody-sent-this", "1")
    assert [alert.code for alert in of_type(outputs, Alert)] == ["SYS-009"]
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.HALTED and change.reasons[0].code == "SYS-009"
    assert [reason.code for reason in world.state.integrity_reasons()] == ["SYS-009"]


def test_overfill_is_booked_and_raises_reconciliation_mismatch() -> None:
    world = Harness()
    dispatch = world.accepted(qty="5")
    outputs = world.fill(dispatch.client_order_id, "7")
    assert world.state.position("A", "X") == D(7)
    assert world.state.mode is Mode.REDUCE_ONLY
    assert any(alert.code == "SYS-009" for alert in of_type(outputs, Alert))


def test_repeated_executions_disable_the_strategy_until_an_operator_enables_it() -> None:
    world = Harness({"repeated_execution": {"max": 3, "window": "1m"}})
    dispatch = world.accepted(qty="10")
    for _ in range(2):
        world.fill(dispatch.client_order_id, "1")
    assert not world.state.strategy_disabled("A", "s1")
    outputs = world.fill(dispatch.client_order_id, "1")
    assert [alert.code for alert in of_type(outputs, Alert)] == ["THR-006"]
    assert world.state.strategy_disabled("A", "s1")
    assert decision_of(world.intent(qty="1")).blocking == "THR-006"
    world.advance(3600)  # never re-enabled by time
    world.quote("X", "100")
    world.tick()
    assert decision_of(world.intent(qty="1")).blocking == "THR-006"
    refused = world.command(CommandAction.ENABLE_STRATEGY, key="s1")
    assert [alert.code for alert in of_type(refused, Alert)] == ["COMMAND_REFUSED"]
    world.command(CommandAction.ENABLE_STRATEGY, key="s1", operator="ops1", reason="checked")
    assert decision_of(world.intent(qty="1")).decision is DecisionKind.ALLOW


def test_cancel_request_emits_cancel_for_a_known_working_order_only() -> None:
    world = Harness()
    dispatch = world.accepted(qty="10")
    outputs = world.cancel_request(dispatch.client_order_id)
    assert [cancel.client_order_id for cancel in of_type(outputs, CancelOrder)] == [
        dispatch.client_order_id
    ]
    assert of_type(world.cancel_request("unknown"), CancelOrder) == []
    assert of_type(world.cancel_request(dispatch.client_order_id, account="B"), CancelOrder) == []


def _reducing_orders(world: Harness, count: int) -> list[str]:
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100")
    return [world.accepted(Side.SELL, qty="1", limit_price=str(200 + index)).client_order_id
            for index in range(count)]


def test_cancel_rate_refuses_cancels_of_risk_reducing_orders_over_the_limit() -> None:
    world = Harness({"cancel_rate": {"max": 2, "window": "1m"}})
    orders = _reducing_orders(world, 3)
    assert of_type(world.cancel_request(orders[0]), CancelOrder)
    assert of_type(world.cancel_request(orders[1]), CancelOrder)
    refused = world.cancel_request(orders[2])
    assert of_type(refused, CancelOrder) == []
    assert [alert.code for alert in of_type(refused, Alert)] == ["THR-005"]


def test_cancels_are_always_allowed_when_halted() -> None:
    world = Harness({"cancel_rate": {"max": 1, "window": "1m"}})
    orders = _reducing_orders(world, 2)
    assert of_type(world.cancel_request(orders[0]), CancelOrder)
    world.command(CommandAction.HALT, operator="ops1", reason="incident")
    assert of_type(world.cancel_request(orders[1]), CancelOrder)


def test_cancel_that_reduces_risk_is_not_rate_limited() -> None:
    world = Harness({"cancel_rate": {"max": 1, "window": "1m"}})
    first = world.accepted(qty="1", limit_price="90")
    second = world.accepted(qty="1", limit_price="91")
    assert of_type(world.cancel_request(first.client_order_id), CancelOrder)
    assert of_type(world.cancel_request(second.client_order_id), CancelOrder)
