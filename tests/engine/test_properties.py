"""Invariants over random event sequences built from a small alphabet of intents, market
moves, broker callbacks, dependencies and operator commands."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness import D, Harness, decision_of, encode
from ordergate.engine.core import Engine
from ordergate.gate.exposure import symbol_exposure
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import CommandAction, KillScope
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY, Family

DEFAULTS: dict[str, Any] = {
    "max_market_data_age": "10m",
    "max_position_qty": "60",
    "max_gross_exposure": "9000",
    "max_daily_loss": "400",
    "max_drawdown_pct": "4",
    "drawdown_kill": True,
    "rate_account": {"max": 6, "window": "20s"},
    "repeated_execution": {"max": 5, "window": "1m"},
    "duplicate_window": "2s",
    "cancel_rate": {"max": 2, "window": "10s"},
    "self_match": "cancel_resting",
}
SYMBOLS = ("X", "Y")
RISK_FAMILIES = {Family.LOSS, Family.THROTTLE, Family.EXPOSURE}

intent_op = st.tuples(
    st.just("intent"), st.sampled_from(list(Side)), st.integers(1, 40),
    st.one_of(st.none(), st.integers(-3, 3)), st.sampled_from(SYMBOLS),
    st.sampled_from(("s1", "s2")),
)
# one snapshot in ten is invalid (zero bid)
market_op = st.tuples(st.just("market"), st.sampled_from(SYMBOLS), st.integers(85, 115),
                      st.integers(0, 9).map(lambda draw: draw > 0))
fill_op = st.tuples(st.just("fill"), st.integers(0, 50), st.booleans())
order_op = st.tuples(st.sampled_from(("canceled", "reject", "cancel_request", "ack")),
                     st.integers(0, 50))
tick_op = st.tuples(st.just("tick"), st.integers(0, 90))
dependency_op = st.tuples(st.just("dependency"), st.sampled_from(("broker_submit", "clock")),
                          st.booleans())
tighten_op = st.tuples(st.sampled_from(("halt", "reduce_only", "kill")),
                       st.sampled_from(("A", "X", "s1")))
loosen_op = st.tuples(st.sampled_from(("resume", "unkill")), st.sampled_from(("A", "X", "s1")))

# weights by repetition: mostly intents, market moves and broker callbacks
_COMMON = [*[intent_op] * 8, *[market_op] * 3, *[fill_op] * 4, *[order_op] * 2, tick_op]
tightening_ops = st.sampled_from([*_COMMON, dependency_op, tighten_op]).flatmap(
    lambda op: op)
all_ops = st.sampled_from([*_COMMON, dependency_op, tighten_op, loosen_op]).flatmap(
    lambda op: op)


def run(ops: list[tuple[Any, ...]], check: Any = None) -> Harness:
    """Interpret ops against a fresh harness; `check(world, op, before, outputs)` after each."""
    world = Harness(DEFAULTS, cash="20000", symbols=SYMBOLS)
    for op in ops:
        before = world.book_image()
        mode_before = world.state.mode
        outputs = _apply(world, op)
        if check is not None:
            check(world, op, before, mode_before, outputs)
    return world


def _nth_order(world: Harness, index: int) -> Any:
    orders = sorted(world.state.open_orders)
    return world.state.open_orders[orders[index % len(orders)]] if orders else None


def _apply(world: Harness, op: tuple[Any, ...]) -> list[Any]:
    kind = op[0]
    if kind == "intent":
        _, side, qty, offset, symbol, strategy = op
        fields: dict[str, Any] = {"symbol": symbol, "strategy": strategy}
        if offset is not None:
            fields["limit_price"] = str(_mark(world, symbol) + offset)
        return world.intent(side, str(qty), **fields)
    if kind == "market":
        _, symbol, price, good = op
        world.advance(1)
        if good:
            return world.quote(symbol, str(price))
        return world.quote(symbol, str(price), bid=D(0))
    if kind == "fill":
        _, index, whole = op
        order = _nth_order(world, index)
        if order is None:
            return []
        qty = order.remaining if whole else min(order.remaining, D(1))
        price = order.limit_price or _mark(world, order.symbol)
        return world.fill(order.client_order_id, str(qty), str(price))
    if kind in ("canceled", "reject", "cancel_request", "ack"):
        order = _nth_order(world, op[1])
        if order is None:
            return []
        method = {"canceled": world.canceled, "reject": world.reject,
                  "cancel_request": world.cancel_request, "ack": world.ack}[kind]
        return method(order.client_order_id)
    if kind == "tick":
        return world.tick(op[1])
    if kind == "dependency":
        _, name, healthy = op
        return world.dependency(name, healthy, "CLK-002" if name == "clock" else "SYS-007")
    scope = {"A": KillScope.ACCOUNT, "X": KillScope.SYMBOL, "s1": KillScope.STRATEGY}[op[1]]
    action = {"halt": CommandAction.HALT, "reduce_only": CommandAction.REDUCE_ONLY,
              "kill": CommandAction.KILL, "resume": CommandAction.RESUME,
              "unkill": CommandAction.UNKILL}[kind]
    return world.command(action, scope=scope, key=op[1], operator="ops1", reason="test")


def _mark(world: Harness, symbol: str) -> Decimal:
    return world.state.marks.get(symbol, D(100)).to_integral_value()


@settings(max_examples=50, deadline=None)
@given(st.lists(tightening_ops, min_size=5, max_size=50))
def test_mode_rank_never_decreases_without_an_operator_resume(ops: list[Any]) -> None:
    def check(world: Harness, op: Any, before: bytes, mode_before: Mode, outputs: Any) -> None:
        assert world.state.mode.rank >= mode_before.rank, op

    run(ops, check)


@settings(max_examples=50, deadline=None)
@given(st.lists(all_ops, min_size=5, max_size=50))
def test_rejection_has_no_side_effects(ops: list[Any]) -> None:
    denied = 0

    def check(world: Harness, op: Any, before: bytes, mode_before: Mode, outputs: Any) -> None:
        nonlocal denied
        decisions = [output for output in outputs if isinstance(output, Decision)]
        if decisions and decisions[0].decision is DecisionKind.DENY:
            denied += 1
            assert world.book_image() == before, (op, decisions[0])

    run(ops, check)


@settings(max_examples=50, deadline=None)
@given(st.lists(all_ops, min_size=5, max_size=50), st.sampled_from(SYMBOLS))
def test_capital_supremacy_risk_reducing_intents_pass_risk_gates(
    ops: list[Any], symbol: str
) -> None:
    world = run(ops)
    state = world.state
    position = state.position("A", symbol)
    working_buy, working_sell = state.working("A", symbol)
    reducing_room = abs(position) - (working_sell if position > 0 else working_buy)
    if position == 0 or reducing_room <= 0 or state.mode is Mode.HALTED:
        return
    side = Side.SELL if position > 0 else Side.BUY
    outputs = world.intent(side, str(min(reducing_room, D(5))), symbol=symbol,
                           limit_price=str(_mark(world, symbol)))
    decision = decision_of(outputs)
    assert decision.risk_reducing
    if decision.blocking:
        assert REGISTRY[decision.blocking].family not in RISK_FAMILIES, decision


@settings(max_examples=40, deadline=None)
@given(st.lists(all_ops, min_size=5, max_size=50), st.integers(0, 45))
def test_determinism_and_snapshot_restore_give_identical_outputs(
    ops: list[Any], cut: int
) -> None:
    world = run(ops)
    events, expected = world.log, world.outputs
    replay = Engine()
    assert [encode(replay.handle(event)) for event in events] == [
        encode(outputs) for outputs in expected]
    assert replay.snapshot() == world.engine.snapshot()

    cut = min(cut, len(events))
    first = Engine()
    for event in events[:cut]:
        first.handle(event)
    image = first.snapshot()
    restored = Engine.restore(image)
    assert restored.snapshot() == image
    assert [encode(restored.handle(event)) for event in events[cut:]] == [
        encode(outputs) for outputs in expected[cut:]]
    assert restored.snapshot() == world.engine.snapshot()


@settings(max_examples=50, deadline=None)
@given(st.lists(all_ops, min_size=5, max_size=50))
def test_incremental_exposure_equals_recomputation(ops: list[Any]) -> None:
    world = run(ops)
    state = world.state
    for account, record in state.accounts.items():
        gross = net_long = net_short = market_value = D(0)
        for (holder, symbol), book in state.books.items():
            if holder != account:
                continue
            mark = state.marks.get(symbol, book.avg_price)
            contribution = symbol_exposure(book.qty, book.working_buy, book.working_sell, mark)
            gross += contribution.gross
            net_long += contribution.net_long
            net_short += contribution.net_short
            market_value += book.qty * mark
        assert (record.gross, record.net_long, record.net_short) == (gross, net_long, net_short)
        assert record.market_value == market_value
    for order in state.open_orders.values():
        assert order.remaining > 0
    for (account, symbol), book in state.books.items():
        orders = [o for o in state.open_orders.values()
                  if (o.account, o.symbol) == (account, symbol)]
        assert book.working_buy == sum((o.remaining for o in orders if o.side is Side.BUY),
                                       D(0))
        assert book.working_sell == sum((o.remaining for o in orders if o.side is Side.SELL),
                                        D(0))


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(2, 100), data=st.data())
def test_reservations_let_exactly_one_of_two_intents_over_a_cap_together_pass(
    cap: int, data: st.DataObject
) -> None:
    first = data.draw(st.integers(1, cap))
    second = data.draw(st.integers(max(1, cap - first + 1), cap))
    world = Harness({"max_position_qty": str(cap)})
    decisions = [decision_of(world.intent(qty=str(qty))).decision for qty in (first, second)]
    assert decisions == [DecisionKind.ALLOW, DecisionKind.DENY]

