"""What brokers tell the engine about its orders (acks, rejects, fills, cancels) and what
strategies ask of them (cancel requests).

A reservation lives exactly as long as the order works: a reject or a cancel frees what
remains, a fill turns the filled part into position. A fill the engine cannot place, or
one that contradicts its books (overfill, fill after done), is a reconciliation mismatch:
the books win nothing silently, the mode tightens per policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergate.engine.modes import fault_mode
from ordergate.engine.records import OrderRecord, OrderStatus
from ordergate.engine.state import DisabledStrategy
from ordergate.engine.windows import WindowKind
from ordergate.model.events import (
    AlertSeverity,
    CancelOrder,
    CancelRequest,
    Fill,
    OrderAck,
    OrderCanceled,
    OrderReject,
    OutputEvent,
)
from ordergate.model.intent import OrderType, Side
from ordergate.model.modes import Mode

if TYPE_CHECKING:
    from ordergate.engine.core import Engine

ORDER_UNKNOWN = "ORDER_UNKNOWN"
RECONCILIATION = "SYS-009"
_STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)


def fill_key(account: str, strategy: str) -> str:
    return f"{account}|{strategy}"


def _mismatch(engine: Engine, out: list[OutputEvent], client_order_id: str,
              detail: str) -> None:
    engine.raise_condition(
        out, f"reconciliation:{client_order_id}", RECONCILIATION, detail,
        fault_mode(engine.settings.on_reconciliation_mismatch), latched=True,
    )


def on_ack(engine: Engine, event: OrderAck, out: list[OutputEvent]) -> None:
    state = engine.state
    order = state.open_orders.get(event.client_order_id)
    if order is None:
        if event.client_order_id in state.done:
            state.count("ack_after_done")
            return
        _mismatch(engine, out, event.client_order_id,
                  f"broker acknowledged order {event.client_order_id}, which was never sent")
        return
    order.acked = True
    if event.broker_order_id:
        order.broker_order_id = event.broker_order_id


def on_reject(engine: Engine, event: OrderReject, out: list[OutputEvent]) -> None:
    _close_by_broker(engine, event.client_order_id, OrderStatus.REJECTED, out,
                     f"reject for unknown order {event.client_order_id}: {event.reason}")


def on_canceled(engine: Engine, event: OrderCanceled, out: list[OutputEvent]) -> None:
    _close_by_broker(engine, event.client_order_id, OrderStatus.CANCELED, out,
                     f"cancel confirmation for unknown order {event.client_order_id}")


def _close_by_broker(engine: Engine, client_order_id: str, status: OrderStatus,
                     out: list[OutputEvent], unknown: str) -> None:
    """The broker ended an order (its reservation is freed); an answer about an order the
    engine never had, or already closed, only raises an alert the first time."""
    state = engine.state
    order = state.open_orders.get(client_order_id)
    if order is None:
        state.count(f"{status.value}_unknown")
        if client_order_id not in state.done:
            engine.alert(out, AlertSeverity.WARNING, ORDER_UNKNOWN, unknown)
        return
    state.count(f"order_{status.value}")
    state.close(order, status)


def on_fill(engine: Engine, event: Fill, out: list[OutputEvent]) -> None:
    state = engine.state
    if event.fill_id in state.fill_ids:
        state.count("fill_duplicate")
        return
    order = state.open_orders.get(event.client_order_id)
    if order is None:
        order = state.done.get(event.client_order_id)
    if order is None:
        state.fill_ids.add(event.fill_id)
        _mismatch(engine, out, event.client_order_id,
                  f"fill {event.fill_id} of {event.qty} @ {event.price} for unknown order "
                  f"{event.client_order_id}")
        return
    state.fill_ids.add(event.fill_id)
    state.count("fill")

    # A fill cannot be refused, and none of what follows can raise: with qty, price and fee
    # below 10**15 (the model's bound) it is sums, products and one division by size + qty
    # (> 0), which round to 28 digits and stay far from Decimal's exponent limit; nothing
    # takes a remainder or quantizes (the drawdown alert words uncentable figures as they
    # are). tests/engine/test_precision.py books a fill at the edge of the bound.
    book = state.book(order.account, order.symbol)
    record = state.accounts[order.account]
    realized = book.execute(order.side, event.qty, event.price)
    notional = event.qty * event.price
    record.cash += -notional if order.side is Side.BUY else notional
    record.cash -= event.fee
    record.fees += event.fee
    record.realized_pnl += realized
    # a stop's first fill is the engine's proof that it triggered (`records.resting_price`)
    triggered = not order.filled and order.order_type in _STOPS
    order.filled += event.qty

    was_working = order.status is OrderStatus.WORKING
    overfill = event.qty - order.remaining if was_working else event.qty
    if was_working:
        state.release(order, event.qty)
        if order.remaining == 0:
            state.close(order, OrderStatus.FILLED)
        else:
            if triggered and state.behaviour >= 2:
                # what remains works on the book now (under behaviour 1 a stop-limit rested
                # from its acceptance and a stop never: `records.limit_resting_price`)
                state.rest(order)
            state.refresh(book)
    else:
        state.refresh(book)
    if overfill > 0:
        what = "more than its remaining quantity" if was_working else f"after it was {order.status}"
        _mismatch(engine, out, order.client_order_id,
                  f"fill {event.fill_id} of {event.qty} for {order.client_order_id} "
                  f"executed {what}")

    _repeated_execution(engine, order, event, out)
    engine.check_drawdown(out, record)


def _repeated_execution(engine: Engine, order: OrderRecord, fill: Fill,
                        out: list[OutputEvent]) -> None:
    """After `max_count` fills of a strategy inside the window, disable it until an
    operator re-enables it (never by a timer).

    A fill counts from its own event time (never later than the engine's): a fill the broker
    reported late, behind newer events, leaves the window when its own window ends."""
    state = engine.state
    limits = None if engine.active is None else engine.active.limits_for(
        order.account, order.strategy, order.symbol)
    throttle = None if limits is None else limits.repeated_execution
    key = fill_key(order.account, order.strategy)
    state.windows.record(WindowKind.FILL, key, min(fill.ts, state.now),
                         None if throttle is None else throttle.window)
    if throttle is None or state.strategy_disabled(order.account, order.strategy):
        return
    fills = state.windows.count(WindowKind.FILL, key, state.now, throttle.window)
    if fills < throttle.max_count:
        return
    state.disabled[(order.account, order.strategy)] = DisabledStrategy(
        account=order.account, strategy=order.strategy, fills=fills,
        window=throttle.window, since=state.now,
    )
    engine.alert(out, AlertSeverity.CRITICAL, "THR-006",
                 f"strategy {order.strategy} of account {order.account} disabled after "
                 f"{fills} fills within {throttle.window}; an operator must re-enable it")


def _cancel_reduces_risk(engine: Engine, order: OrderRecord) -> bool:
    """Cancelling an order reduces risk unless the order itself would shrink a position."""
    position = engine.state.position(order.account, order.symbol)
    if position == 0 or (position > 0) == (order.side is Side.BUY):
        return True
    return order.remaining > abs(position)


def on_cancel_request(engine: Engine, event: CancelRequest, out: list[OutputEvent]) -> None:
    state = engine.state
    order = state.open_orders.get(event.client_order_id)
    if order is None or order.account != event.account:
        state.count("cancel_request_unknown")
        engine.alert(out, AlertSeverity.WARNING, ORDER_UNKNOWN,
                     f"cancel request for {event.client_order_id} (account {event.account}): "
                     "no such working order")
        return
    limits = None if engine.active is None else engine.active.limits_for(
        order.account, order.strategy, order.symbol)
    rate = None if limits is None else limits.cancel_rate
    if (
        rate is not None
        and state.mode is not Mode.HALTED
        and not _cancel_reduces_risk(engine, order)
    ):
        count = state.cancel_count(order.account, rate.window)
        if count + 1 > rate.max_count:
            state.count("cancel_denied")
            engine.alert(out, AlertSeverity.WARNING, "THR-005",
                         f"cancel of {order.client_order_id} refused: account {order.account} "
                         f"sent {count} cancels within {rate.window} (limit {rate.max_count})")
            return
    state.windows.record(WindowKind.CANCEL, order.account, state.now,
                         None if rate is None else rate.window)
    order.cancel_requested = True
    out.append(CancelOrder(ts=state.now, client_order_id=order.client_order_id,
                           reason=event.requested_by or "cancel requested"))
