"""What brokers tell the engine about its orders (acks, rejects, fills, cancels, refused
cancels) and what strategies ask of them (cancel requests).

A reservation lives exactly as long as the order works: a reject or a cancel frees what
remains, a fill turns the filled part into position. A fill the engine cannot place, or
one that contradicts its books (overfill, fill after done, a fill id reused for another
execution), is a reconciliation mismatch: the books win nothing silently, the mode tightens
per policy. A fill at a price its order did not allow, or far from the market, is booked as
reported with an Alert. A refused cancel leaves the order working, ready to be canceled again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ordergate.engine.modes import fault_mode
from ordergate.engine.records import FillSeen, OrderRecord, OrderStatus
from ordergate.engine.state import DisabledStrategy
from ordergate.engine.windows import WindowKind
from ordergate.model.events import (
    AlertSeverity,
    CancelOrder,
    CancelRefused,
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
FILL_PRICE = "FILL_PRICE"
"""Alert code of a fill past its order's limit or far from the market (behaviour 3 on)."""
CANCEL_REFUSED = "CANCEL_REFUSED"
"""Alert code of a cancel the broker refused: the order goes on working."""
FAR_FROM_MARK = Decimal(10)
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
    # behaviour 3 on: what the fill says is kept by its id, and its price is checked
    checked = state.behaviour >= 3
    content = FillSeen(client_order_id=event.client_order_id, qty=event.qty,
                       price=event.price) if checked else None
    seen: tuple[FillSeen, ...] | None = None
    if event.fill_id in state.fill_ids:
        seen = None if content is None else state.fill_contents.get(event.fill_id)
        if content is None or seen is None or content in seen:
            # a redelivery (before behaviour 3, or for an id booked before it: any fill
            # whose id is known)
            state.count("fill_duplicate")
            return
    else:
        state.fill_ids.add(event.fill_id)
        if content is not None:
            state.fill_contents[event.fill_id] = (content,)
    order = state.open_orders.get(event.client_order_id)
    if order is None:
        order = state.done.get(event.client_order_id)
    if seen is not None and content is not None:
        _reused_fill_id(engine, event, seen, content, out, booked=order is not None)
    if order is None:
        _mismatch(engine, out, event.client_order_id,
                  f"fill {event.fill_id} of {event.qty} @ {event.price} for unknown order "
                  f"{event.client_order_id}")
        return
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
    if checked:
        _check_fill_price(engine, order, event, out)

    _repeated_execution(engine, order, event, out)
    engine.check_drawdown(out, record)


def _reused_fill_id(engine: Engine, fill: Fill, seen: tuple[FillSeen, ...],
                    content: FillSeen, out: list[OutputEvent], *, booked: bool) -> None:
    """A fill id already booked comes with another order, quantity or price: not a
    redelivery (that repeats what was booked) but another execution under the same id, or a
    broker correcting one. It is booked like any fill, since dropping it would leave its order
    working with its reservation for good, and the books are held as after an over-fill
    (SYS-009, per `on_reconciliation_mismatch`) until someone compares them with the broker."""
    engine.state.count("fill_id_reused")
    engine.state.fill_contents[fill.fill_id] = (*seen, content)
    first = seen[0]
    engine.raise_condition(
        out, f"reconciliation:fill_id:{fill.fill_id}", RECONCILIATION,
        f"the broker used fill id {fill.fill_id} twice: first for {first.qty} @ {first.price} "
        f"of order {first.client_order_id}, now for {fill.qty} @ {fill.price} of order "
        f"{fill.client_order_id}. "
        + ("Both are booked; compare the position with the broker's" if booked
           else "The second is for no order of this gateway and is not booked"),
        fault_mode(engine.settings.on_reconciliation_mismatch), latched=True,
    )


def _check_fill_price(engine: Engine, order: OrderRecord, fill: Fill,
                      out: list[OutputEvent]) -> None:
    """Engine behaviour 3 on: an Alert for a fill past its order's limit price, or more than
    `FAR_FROM_MARK` times above or below the symbol's mark. The fill is booked as the broker
    reported it (it happened) and the mode stays: the mark may be old. A part-fill priced from
    a venue's rounded average prices comes in kept within its limit where the rounding allows
    (`brokers.labels.within_limit`), so one past it here is past it beyond any rounding."""
    price, limit = fill.price, order.limit_price
    buy = order.side is Side.BUY
    what = (f"order {order.client_order_id} ({order.side} {order.qty} {order.symbol}, account "
            f"{order.account}, strategy {order.strategy})")
    if limit is not None and (price > limit if buy else price < limit):
        engine.state.count("fill_past_limit")
        engine.alert(out, AlertSeverity.CRITICAL, FILL_PRICE,
                     f"{what} was filled at {price}, {'above' if buy else 'below'} its limit "
                     f"price {limit}: the broker executed it at a price the order did not "
                     f"allow. The fill ({fill.qty}, fill id {fill.fill_id}) is booked as the "
                     "broker reported it; check it with the broker")
    mark = engine.state.marks.get(order.symbol)
    if mark is None or mark <= 0:
        return
    if price > mark * FAR_FROM_MARK:
        direction = "above"
    elif price * FAR_FROM_MARK < mark:
        direction = "below"
    else:
        return
    engine.state.count("fill_far_from_mark")
    engine.alert(out, AlertSeverity.WARNING, FILL_PRICE,
                 f"{what} was filled at {price}, more than {FAR_FROM_MARK} times {direction} "
                 f"the last market price of {order.symbol} ({mark}). The fill ({fill.qty}, "
                 f"fill id {fill.fill_id}) is booked as the broker reported it; check it with "
                 "the broker")


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
            over = (f"account {order.account} sent {count} cancels within {rate.window} "
                    f"(limit {rate.max_count})")
            if limits is not None and limits.monitor and state.behaviour >= 5:
                # a dry run refuses nothing the docs do not list: the cancel goes out, and
                # what an enforcing policy would have done is said, as `would_block` says it
                state.count("cancel_would_deny")
                engine.alert(out, AlertSeverity.INFO, "THR-005",
                             f"THR-005 would have refused this cancel of "
                             f"{order.client_order_id} (monitor mode: sent): {over}")
            else:
                state.count("cancel_denied")
                engine.alert(out, AlertSeverity.WARNING, "THR-005",
                             f"cancel of {order.client_order_id} refused: {over}")
                return
    state.windows.record(WindowKind.CANCEL, order.account, state.now,
                         None if rate is None else rate.window)
    order.cancel_requested = True
    out.append(CancelOrder(ts=state.now, client_order_id=order.client_order_id,
                           reason=event.requested_by or "cancel requested"))


def on_cancel_refused(engine: Engine, event: CancelRefused, out: list[OutputEvent]) -> None:
    """The broker refused a cancel: the order goes on working there. Its cancel-requested
    mark is cleared, so the next cancel request, cancel-all or session close asks again, and
    an Alert names the order and the broker's reason. A refusal for an order already done
    (it filled or was canceled meanwhile, which is usually why) only counts."""
    state = engine.state
    order = state.open_orders.get(event.client_order_id)
    reason = event.reason or "no reason given"
    if order is None:
        if event.client_order_id in state.done:
            state.count("cancel_refused_after_done")
            return
        state.count("cancel_refused_unknown")
        engine.alert(out, AlertSeverity.WARNING, ORDER_UNKNOWN,
                     f"the broker refused to cancel {event.client_order_id}, which is no "
                     f"order of this gateway ({reason})")
        return
    state.count("cancel_refused")
    order.cancel_requested = False
    engine.alert(out, AlertSeverity.WARNING, CANCEL_REFUSED,
                 f"the broker refused to cancel order {order.client_order_id} ({order.side} "
                 f"{order.remaining} of {order.qty} {order.symbol}, account {order.account}, "
                 f"strategy {order.strategy}): {reason}. The order is still working; a new "
                 "cancel request, a cancel-all or the session close asks the broker again")
