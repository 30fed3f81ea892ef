"""Operator commands: kill switches, mode changes, re-enabling strategies, flatten, policy
activation and the shadow (dry-run) policy.

Tightening (kill, halt, reduce_only, flatten) takes effect at once. Loosening (unkill,
resume, enable_strategy) needs an operator id and a reason, or it is refused with an Alert
and changes nothing (invariant 6). Every output list is in a deterministic order: cancels
and flatten orders are sorted by client order id / (account, symbol).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergate.engine.ids import derive_client_order_id
from ordergate.engine.lifecycle import fill_key
from ordergate.engine.records import Book, OrderRecord
from ordergate.engine.state import KillRecord, kill_key
from ordergate.model.events import (
    AlertSeverity,
    CancelOrder,
    Command,
    CommandAction,
    Dispatch,
    KillScope,
    OutputEvent,
)
from ordergate.model.intent import OrderType, Side
from ordergate.model.modes import Mode

if TYPE_CHECKING:
    from ordergate.engine.core import Engine

COMMAND_REFUSED = "COMMAND_REFUSED"
COMMAND_NOTE = "COMMAND"
FLATTEN_STRATEGY = "operator-flatten"


def on_command(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    action = command.action
    if action is CommandAction.KILL:
        _kill(engine, command, out)
    elif action is CommandAction.UNKILL:
        _unkill(engine, command, out)
    elif action is CommandAction.HALT:
        engine.raise_condition(out, "operator:halt", "MOD-001",
                               command.reason or "operator halt", Mode.HALTED,
                               latched=True, actor=command.operator or "operator")
        if command.cancel_all:
            _cancel_orders(engine, list(engine.state.open_orders.values()),
                           f"operator halt by {command.operator or 'operator'}", out)
    elif action is CommandAction.REDUCE_ONLY:
        engine.raise_condition(out, "operator:reduce_only", "MOD-002",
                               command.reason or "operator reduce-only", Mode.REDUCE_ONLY,
                               latched=True, actor=command.operator or "operator")
    elif action is CommandAction.RESUME:
        _resume(engine, command, out)
    elif action is CommandAction.ENABLE_STRATEGY:
        _enable_strategy(engine, command, out)
    elif action is CommandAction.FLATTEN:
        _flatten(engine, command, out)
    elif action is CommandAction.ACTIVATE_POLICY:
        engine.activate(command.policy_hash, out)
    elif action is CommandAction.SHADOW_POLICY:
        engine.set_shadow(command.policy_hash, command.operator or "operator", out)


def _refuse(engine: Engine, out: list[OutputEvent], command: Command, why: str) -> None:
    engine.state.count("command_refused")
    engine.alert(out, AlertSeverity.WARNING, COMMAND_REFUSED,
                 f"{command.action.value} refused: {why}")


def _loosening_allowed(engine: Engine, command: Command, out: list[OutputEvent]) -> bool:
    missing = [name for name in ("operator", "reason") if not getattr(command, name).strip()]
    if missing:
        _refuse(engine, out, command, f"missing {' and '.join(missing)}")
        return False
    return True


def _scope_key(engine: Engine, command: Command, out: list[OutputEvent]) -> str | None:
    if command.scope is not KillScope.FIRM and not command.key:
        _refuse(engine, out, command, f"scope {command.scope.value} needs a key")
        return None
    return kill_key(command.scope, command.key)


def _in_scope(scope: KillScope, key: str, account: str, strategy: str, symbol: str) -> bool:
    if scope is KillScope.FIRM:
        return True
    if scope is KillScope.ACCOUNT:
        return account == key
    if scope is KillScope.STRATEGY:
        return strategy == key
    return symbol == key


def _cancel_orders(engine: Engine, orders: list[OrderRecord], reason: str,
                   out: list[OutputEvent]) -> None:
    now = engine.state.now
    for order in sorted(orders, key=lambda order: order.client_order_id):
        if order.cancel_requested:
            continue
        order.cancel_requested = True
        out.append(CancelOrder(ts=now, client_order_id=order.client_order_id, reason=reason))


def _kill(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    key = _scope_key(engine, command, out)
    if key is None:
        return
    state = engine.state
    operator = command.operator or "operator"
    state.kills.setdefault(key, KillRecord(
        scope=command.scope, key=command.key if command.scope is not KillScope.FIRM else "",
        operator=operator, reason=command.reason, since=state.now,
    ))
    engine.alert(out, AlertSeverity.CRITICAL, "KIL-002",
                 f"kill switch engaged for {key} by {operator}: {command.reason or 'no reason'}")
    if command.cancel_all or engine.settings.cancel_all_on_kill:
        orders = [
            order for order in state.open_orders.values()
            if _in_scope(command.scope, command.key, order.account, order.strategy, order.symbol)
        ]
        _cancel_orders(engine, orders, f"kill switch {key}", out)


def _unkill(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    if not _loosening_allowed(engine, command, out):
        return
    key = _scope_key(engine, command, out)
    if key is None:
        return
    if engine.state.kills.pop(key, None) is None:
        _refuse(engine, out, command, f"no kill switch is engaged for {key}")
        return
    engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                 f"kill switch for {key} released by {command.operator}: {command.reason}")


def _resume(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    if not _loosening_allowed(engine, command, out):
        return
    state = engine.state
    guard = state.guard
    if engine.settings.resume_requires_two_operators and guard.has_code("LOS-003"):
        first = guard.first_resume_operator
        if not first or first == command.operator:
            guard.first_resume_operator = command.operator
            engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                         f"resume after a drawdown halt needs a second operator; "
                         f"{command.operator} approved: {command.reason}")
            return
    change, dropped = guard.resume(command.operator, state.now)
    for condition in dropped:
        if condition.code == "LOS-003" and condition.key.startswith("drawdown:"):
            # The operators accepted the loss: drawdown is measured from here on.
            record = state.accounts.get(condition.key.removeprefix("drawdown:"))
            if record is not None:
                record.high_water_mark = record.equity
    engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                 f"resume by {command.operator}: {command.reason}")
    if change is not None:
        out.append(change)
    if guard.mode is not Mode.ACTIVE:
        held = ", ".join(f"{c.code} ({c.detail})" for c in guard.conditions())
        engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                     f"mode stays {guard.mode.value}: still active: {held}")


def _enable_strategy(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    if not _loosening_allowed(engine, command, out):
        return
    disabled = engine.state.disabled
    keys = [key for key in disabled if key[1] == command.key]
    if not keys:
        _refuse(engine, out, command, f"strategy {command.key or '(empty)'} is not disabled")
        return
    # the repeated-execution count starts again from the re-enable (engine behaviour 2 on;
    # behaviour 1 kept the fill history): the fills that disabled it were judged already,
    # and the operator accepted them
    forget = engine.state.behaviour >= 2
    for account, strategy in keys:
        del disabled[(account, strategy)]
        if forget:
            engine.state.forget_fills(fill_key(account, strategy))
    engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                 f"strategy {command.key} re-enabled by {command.operator}: {command.reason}")


def _flatten_id(engine: Engine, book: Book) -> tuple[str, str]:
    """The intent_id and client order id of a flatten order: `flatten-{seq}-{symbol}`, or,
    when the id derived from it is in use (an intent may name any strategy and intent_id),
    the first free of `flatten-{seq}-{symbol}-2`, `-3`, ...: never a second order under one
    id, and the same choice on every replay."""
    state = engine.state
    base = f"flatten-{state.flatten_seq}-{book.symbol}"
    intent_id, attempt = base, 1
    while True:
        client_order_id = derive_client_order_id(book.account, FLATTEN_STRATEGY, intent_id)
        if not state.client_order_id_seen(client_order_id):
            return intent_id, client_order_id
        attempt += 1
        intent_id = f"{base}-{attempt}"


def _flatten(engine: Engine, command: Command, out: list[OutputEvent]) -> None:
    """Cancel every working order in scope, then close every position in scope with a
    reduce-only market order. Allowed in any mode: it only ever removes risk."""
    if not command.operator.strip():
        _refuse(engine, out, command, "missing operator")
        return
    if command.scope is KillScope.STRATEGY:
        _refuse(engine, out, command, "positions are held per account and symbol, not per "
                                      "strategy: flatten an account or a symbol")
        return
    if _scope_key(engine, command, out) is None:
        return
    state = engine.state
    scope, key = command.scope, command.key
    orders = [
        order for order in state.open_orders.values()
        if _in_scope(scope, key, order.account, "", order.symbol)
    ]
    _cancel_orders(engine, orders, f"flatten by {command.operator}", out)
    books: list[Book] = sorted(
        (book for book in state.books.values()
         if book.qty != 0 and _in_scope(scope, key, book.account, "", book.symbol)),
        key=lambda book: (book.account, book.symbol),
    )
    state.flatten_seq += 1
    for book in books:
        side = Side.SELL if book.qty > 0 else Side.BUY
        qty = abs(book.qty)
        intent_id, client_order_id = _flatten_id(engine, book)
        state.add_order(OrderRecord(
            client_order_id=client_order_id, intent_id=intent_id, account=book.account,
            strategy=FLATTEN_STRATEGY, symbol=book.symbol, side=side, qty=qty, remaining=qty,
            order_type=OrderType.MARKET, reduce_only=True, created=state.now,
        ), derived=True)
        out.append(Dispatch(
            ts=state.now, client_order_id=client_order_id, intent_id=intent_id,
            account=book.account, strategy=FLATTEN_STRATEGY, symbol=book.symbol, side=side,
            qty=qty, order_type=OrderType.MARKET, reduce_only=True,
        ))
    engine.alert(out, AlertSeverity.WARNING, COMMAND_NOTE,
                 f"flatten by {command.operator}: {len(orders)} cancels, "
                 f"{len(books)} closing orders ({command.reason or 'no reason'})")
