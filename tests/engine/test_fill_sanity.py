"""A fill is checked against its own order and the market (engine behaviour 3 on).

A fill past its order's limit price, or more than ten times above or below the symbol's mark,
is booked as the broker reported it (it happened) with an Alert in plain words; the mode
stays. Past the limit by however little is critical: the engine cannot tell a venue's rounding
from a broken limit, so a part-fill priced from the venue's rounded averages is kept within the
limit where it is derived (`brokers.labels.within_limit`), not here. A fill id seen again with
another order, quantity or price is no redelivery: it is booked as the execution it is, and the
books are held as after an over-fill (SYS-009, the mode per `on_reconciliation_mismatch`). A
true redelivery stays silent. A journal written under behaviour 2 (which checked none of this
and dropped every known fill id) replays as it was written."""

from __future__ import annotations

from engine.harness import D, Harness, of_type
from engine.test_behaviour_epochs import _assert_replays
from ordergate.engine.core import Engine
from ordergate.engine.lifecycle import FILL_PRICE
from ordergate.model.events import Alert, EngineUpgrade, ModeChanged, OutputEvent
from ordergate.model.intent import Side
from ordergate.model.modes import Mode


def _alerts(outputs: list[OutputEvent]) -> list[Alert]:
    return of_type(outputs, Alert)


# ---------------------------------------------------------------- the price of a fill


def test_a_buy_filled_above_its_limit_is_booked_with_an_alert() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10", limit_price="100").client_order_id
    outputs = world.fill(order, "10", price="150", fill_id="F1")
    (alert,) = _alerts(outputs)
    assert alert.code == FILL_PRICE and alert.severity == "critical"
    assert alert.message == (
        f"order {order} (buy 10 X, account A, strategy s1) was filled at 150, above its limit "
        "price 100: the broker executed it at a price the order did not allow. The fill (10, "
        "fill id F1) is booked as the broker reported it; check it with the broker")
    assert world.state.position("A", "X") == 10
    assert world.state.accounts["A"].cash == D(100000) - D(1500)
    assert order not in world.state.open_orders
    assert world.state.mode is Mode.ACTIVE and of_type(outputs, ModeChanged) == []
    _assert_replays(world)


def test_a_sell_filled_below_its_limit_is_booked_with_an_alert() -> None:
    world = Harness()
    world.fill(world.accepted(Side.BUY, qty="10").client_order_id, "10")
    order = world.accepted(Side.SELL, qty="10", limit_price="99").client_order_id
    (alert,) = _alerts(world.fill(order, "4", price="98.5"))
    assert alert.code == FILL_PRICE
    assert "was filled at 98.5, below its limit price 99" in alert.message
    assert world.state.position("A", "X") == 6
    assert world.state.mode is Mode.ACTIVE


def test_fills_at_or_better_than_the_limit_say_nothing() -> None:
    world = Harness()
    buy = world.accepted(Side.BUY, qty="10", limit_price="100").client_order_id
    assert _alerts(world.fill(buy, "5", price="100")) == []
    assert _alerts(world.fill(buy, "5", price="99.5")) == []
    sell = world.accepted(Side.SELL, qty="10", limit_price="99").client_order_id
    assert _alerts(world.fill(sell, "10", price="99.01")) == []


def test_a_fill_a_hair_past_the_limit_is_as_critical_as_any_other() -> None:
    # Behaviour 3 as journals written with it were answered: 100.00005 on a buy limit 100 (a
    # part-fill priced from two averages rounded to 4 decimals, had it been derived without
    # regard to the limit) is a critical alert, never a note, and counts as any fill past it
    world = Harness()
    order = world.accepted(Side.BUY, qty="3", limit_price="100").client_order_id
    assert _alerts(world.fill(order, "1", price="99.99", fill_id="F1")) == []
    outputs = world.fill(order, "2", price="100.00005", fill_id="F2")
    (alert,) = _alerts(outputs)
    assert alert.code == FILL_PRICE and alert.severity == "critical"
    assert alert.message == (
        f"order {order} (buy 3 X, account A, strategy s1) was filled at 100.00005, above its "
        "limit price 100: the broker executed it at a price the order did not allow. The fill "
        "(2, fill id F2) is booked as the broker reported it; check it with the broker")
    assert world.state.counters["fill_past_limit"] == 1
    assert "fill_past_limit_rounding" not in world.state.counters
    assert world.state.position("A", "X") == 3
    assert world.state.mode is Mode.ACTIVE and of_type(outputs, ModeChanged) == []
    _assert_replays(world)


def test_a_buy_past_its_limit_by_any_amount_is_critical() -> None:
    for price in ("100.000000001", "100.01", "100.0101", "101"):
        world = Harness()
        order = world.accepted(Side.BUY, qty="10", limit_price="100").client_order_id
        (alert,) = _alerts(world.fill(order, "10", price=price))
        assert (alert.code, alert.severity) == (FILL_PRICE, "critical"), price
        assert f"was filled at {price}, above its limit price 100: the broker executed it at a " \
            "price the order did not allow" in alert.message


def test_a_sell_past_its_limit_by_any_amount_is_critical() -> None:
    for price in ("99.99995", "99.99", "99.9899", "99"):
        world = Harness()
        world.fill(world.accepted(Side.BUY, qty="10").client_order_id, "10")
        order = world.accepted(Side.SELL, qty="10", limit_price="100").client_order_id
        (alert,) = _alerts(world.fill(order, "10", price=price))
        assert (alert.code, alert.severity) == (FILL_PRICE, "critical"), price
        assert f"was filled at {price}, below its limit price 100" in alert.message
        assert world.state.position("A", "X") == 0
        assert world.state.mode is Mode.ACTIVE


def test_a_fill_far_above_the_market_is_booked_with_an_alert() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10").client_order_id  # a market order
    (alert,) = _alerts(world.fill(order, "10", price="1000000000", fill_id="F9"))
    assert alert.code == FILL_PRICE and alert.severity == "warning"
    assert alert.message == (
        f"order {order} (buy 10 X, account A, strategy s1) was filled at 1000000000, more than "
        "10 times above the last market price of X (100.000). The fill (10, fill id F9) is "
        "booked as the broker reported it; check it with the broker")
    assert world.state.position("A", "X") == 10
    assert world.state.accounts["A"].cash == D(100000) - D(10_000_000_000)
    assert world.state.mode is Mode.ACTIVE
    _assert_replays(world)


def test_a_fill_far_below_the_market_alerts_and_one_within_ten_times_does_not() -> None:
    world = Harness()
    world.fill(world.accepted(Side.BUY, qty="10").client_order_id, "10")
    order = world.accepted(Side.SELL, qty="10").client_order_id
    assert _alerts(world.fill(order, "5", price="10")) == []  # a tenth: not beyond
    (alert,) = _alerts(world.fill(order, "5", price="9.99"))
    assert "more than 10 times below the last market price of X" in alert.message


# ---------------------------------------------------------------- a reused fill id


def test_a_fill_id_reused_for_another_order_is_booked_and_holds_the_books() -> None:
    world = Harness()
    first = world.accepted(Side.BUY, qty="10").client_order_id
    world.advance(1)
    second = world.accepted(Side.BUY, qty="5", limit_price="99").client_order_id
    assert _alerts(world.fill(first, "10", price="100", fill_id="T1")) == []
    outputs = world.fill(second, "5", price="99", fill_id="T1")
    (alert,) = _alerts(outputs)
    assert alert.code == "SYS-009"
    assert alert.message == (
        f"the broker used fill id T1 twice: first for 10 @ 100 of order {first}, now for 5 @ "
        f"99 of order {second}. Both are booked; compare the position with the broker's")
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.REDUCE_ONLY
    # booked: the second order no longer works and holds no reservation
    assert world.state.position("A", "X") == 15
    assert second not in world.state.open_orders
    assert world.state.working("A", "X") == (0, 0)
    _assert_replays(world)


def test_a_fill_id_reused_with_another_quantity_or_price_is_an_anomaly() -> None:
    for qty, price in (("4", "100"), ("3", "101")):
        world = Harness()
        order = world.accepted(Side.BUY, qty="10").client_order_id
        world.fill(order, "3", fill_id="F1")
        outputs = world.fill(order, qty, price=price, fill_id="F1")
        assert [alert.code for alert in _alerts(outputs)] == ["SYS-009"]
        assert world.state.position("A", "X") == 3 + D(qty)
        assert world.state.mode is Mode.REDUCE_ONLY


def test_a_fill_id_reused_for_an_order_the_gateway_never_had_is_not_booked() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10").client_order_id
    world.fill(order, "10", fill_id="T1")
    reused, unknown = _alerts(world.fill("og-nosuchorder", "5", fill_id="T1"))
    assert reused.code == unknown.code == "SYS-009"
    assert reused.message.endswith(
        "of order og-nosuchorder. The second is for no order of this gateway and is not booked")
    assert world.state.position("A", "X") == 10


def test_a_redelivered_fill_is_silent_and_booked_once() -> None:
    world = Harness()
    first = world.accepted(Side.BUY, qty="10").client_order_id
    second = world.accepted(Side.BUY, qty="10", limit_price="99").client_order_id
    world.fill(first, "3", fill_id="F1")
    world.advance(5)
    assert world.fill(first, "3.0", price="100.00", fill_id="F1") == []  # same figures
    world.fill(second, "2", price="99", fill_id="F1")  # reused: booked, SYS-009
    world.advance(5)
    # either of what was booked under F1, delivered again, is a redelivery
    assert world.fill(first, "3", fill_id="F1") == []
    assert world.fill(second, "2", price="99", fill_id="F1") == []
    assert world.state.position("A", "X") == 5
    assert world.state.counters["fill_duplicate"] == 3
    _assert_replays(world)


def test_what_fill_ids_said_survives_a_snapshot() -> None:
    world = Harness()
    order = world.accepted(Side.BUY, qty="10").client_order_id
    world.fill(order, "3", fill_id="F1")
    restored = Engine.restore(world.engine.snapshot())
    assert restored.snapshot() == world.engine.snapshot()
    world.engine = restored
    assert [alert.code for alert in _alerts(world.fill(order, "4", fill_id="F1"))] == [
        "SYS-009"]


# ---------------------------------------------------------------- behaviour 2, replayed


def _behaviour_2_inputs(world: Harness, ids: tuple[str, str] = ("T1", "T2")) -> None:
    """The inputs behaviour 3 answers differently: a limit broken, a fill far from the market,
    a fill id reused for another order and for another quantity."""
    first = world.accepted(Side.BUY, qty="10", limit_price="100").client_order_id
    world.advance(1)
    second = world.accepted(Side.BUY, qty="5", limit_price="99").client_order_id
    world.fill(first, "4", price="150", fill_id=ids[0])
    world.fill(first, "3", price="1000000", fill_id=ids[1])
    world.fill(second, "5", price="99", fill_id=ids[0])
    world.fill(first, "1", price="100", fill_id=ids[1])


def test_a_behaviour_2_journal_replays_as_it_was_written() -> None:
    world = Harness(behaviour=2)
    _behaviour_2_inputs(world)
    # behaviour 2: no alert for the prices, and a known fill id was dropped
    assert [output for outputs in world.outputs[-4:] for output in outputs] == []
    assert world.state.position("A", "X") == 7
    assert world.state.mode is Mode.ACTIVE
    assert len(world.state.fill_contents) == 0
    _assert_replays(world)
    restored = Engine.restore(world.engine.snapshot())
    assert restored.snapshot() == world.engine.snapshot()


def test_the_same_inputs_after_the_upgrade_alert_and_the_replay_switches_with_it() -> None:
    world = Harness(behaviour=2)
    _behaviour_2_inputs(world)
    assert world.send(EngineUpgrade(ts=world.now, behaviour=3)) == []
    world.advance(1)
    _behaviour_2_inputs(world, ids=("U1", "U2"))
    codes = [alert.code for outputs in world.outputs[-4:] for alert in _alerts(outputs)]
    assert codes == [FILL_PRICE, FILL_PRICE, FILL_PRICE, "SYS-009", "SYS-009"]
    assert world.state.mode is Mode.REDUCE_ONLY
    # T1 was booked under behaviour 2, which kept nothing of what it said: seen again after
    # the upgrade, whatever it says, it is dropped as a redelivery as it was then
    order = world.accepted(Side.SELL, qty="5", limit_price="99").client_order_id
    assert world.fill(order, "5", price="99", fill_id="T1") == []
    assert order in world.state.open_orders
    _assert_replays(world)
