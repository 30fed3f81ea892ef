"""Engine behaviour epochs: an engine decides every input under the behaviour it was journaled
with. It starts at behaviour 1 (the behaviour before epochs were journaled), a journaled
`EngineUpgrade` raises it, and a snapshot keeps it, so a journal written under behaviour 1
replays byte for byte, and the newer behaviour applies only to inputs after the upgrade."""

from __future__ import annotations

import msgspec
import pytest

from engine.harness import D, Harness, decision_of, encode, of_type
from ordergate.engine.core import Engine
from ordergate.engine.image import SnapshotError
from ordergate.engine.lifecycle import fill_key
from ordergate.engine.state import ENGINE_BEHAVIOUR, EngineTooNew
from ordergate.model.decision import DecisionKind
from ordergate.model.events import (
    Alert,
    CancelOrder,
    CommandAction,
    Dispatch,
    EngineUpgrade,
    OutputEvent,
)
from ordergate.model.intent import OrderType, Side


def _stop_loss(world: Harness) -> Dispatch:
    """Long 100, protected by an untriggered sell stop-limit (stop 95, limit 94)."""
    entry = world.accepted(Side.BUY, qty="100", order_type=OrderType.MARKET)
    world.fill(entry.client_order_id, "100")
    return world.accepted(Side.SELL, qty="100", order_type=OrderType.STOP_LIMIT,
                          limit_price=D(94), stop_price=D(95))


def _replayed(world: Harness) -> list[list[OutputEvent]]:
    """The harness's inputs, in order, through a fresh engine (as `replay verify` does)."""
    engine = Engine()
    return [engine.handle(event) for event in world.log]


def _assert_replays(world: Harness) -> None:
    replayed = _replayed(world)
    assert len(replayed) == len(world.outputs)
    for journaled, again in zip(world.outputs, replayed, strict=True):
        assert encode(again) == encode(journaled)


# ---------------------------------------------------------------- behaviour 1, replayed


def test_a_behaviour_1_stop_limit_self_match_journal_replays_as_it_was_decided() -> None:
    world = Harness({"self_match": "deny"}, behaviour=1)
    _stop_loss(world)
    # behaviour 1: the stop-limit rested at its limit from its acceptance on
    assert world.state.resting_prices("A", "X") == (None, D(94))
    denied = decision_of(world.intent(Side.BUY, qty="10", limit_price="100.01"))
    assert denied.blocking == "ORD-010"
    cancel = Harness({"self_match": "cancel_resting"}, behaviour=1)
    stop = _stop_loss(cancel)
    outputs = cancel.intent(Side.BUY, qty="10", limit_price="100.01")
    # the stop-loss was cancelled, and the decision carried no note of it
    assert decision_of(outputs).violations == ()
    assert [item.client_order_id for item in of_type(outputs, CancelOrder)] == [
        stop.client_order_id]
    _assert_replays(world)
    _assert_replays(cancel)


def test_a_behaviour_1_working_market_order_journal_replays_as_it_was_decided() -> None:
    for policy in ("deny", "cancel_resting"):
        world = Harness({"self_match": policy}, behaviour=1)
        world.accepted(Side.BUY, qty="5", order_type=OrderType.MARKET)
        # behaviour 1: a working market order did not rest, so nothing self-matched it
        assert world.state.resting_prices("A", "X", Side.SELL) == (None, None)
        outputs = world.intent(Side.SELL, qty="5", limit_price="99")
        decision = decision_of(outputs)
        assert decision.decision is DecisionKind.ALLOW and decision.violations == ()
        assert of_type(outputs, CancelOrder) == []
        _assert_replays(world)


def test_a_behaviour_1_re_enable_journal_keeps_the_fill_history_on_replay() -> None:
    world = Harness({"repeated_execution": {"max": 3, "window": "1m"}}, behaviour=1)
    order = world.accepted(qty="10").client_order_id
    for _ in range(3):
        world.advance(1)
        world.fill(order, "1")
    world.advance(1)
    world.command(CommandAction.ENABLE_STRATEGY, key="s1", operator="ops1", reason="checked")
    assert not world.state.strategy_disabled("A", "s1")
    world.advance(1)
    # behaviour 1: the three fills before the re-enable still counted, so one more disabled it
    (alert,) = of_type(world.fill(order, "1"), Alert)
    assert alert.code == "THR-006"
    assert world.state.strategy_disabled("A", "s1")
    _assert_replays(world)


def test_a_behaviour_1_stop_limit_rests_once_through_its_first_fill() -> None:
    world = Harness({"self_match": "deny"}, behaviour=1)
    stop = _stop_loss(world)
    world.fill(stop.client_order_id, "40", price="94")
    ladder = world.state.ladder("A", "X")
    assert ladder is not None and [coid for _, coid in ladder.sells] == [stop.client_order_id]
    world.fill(stop.client_order_id, "60", price="94")
    assert world.state.resting_prices("A", "X") == (None, None)
    _assert_replays(world)


# ---------------------------------------------------------------- the upgrade


def test_an_upgrade_applies_the_new_behaviour_only_to_inputs_after_it() -> None:
    world = Harness({"self_match": "deny"}, behaviour=1)
    _stop_loss(world)
    before = decision_of(world.intent(Side.BUY, qty="10", limit_price="100.01"))
    assert before.blocking == "ORD-010"
    assert world.send(EngineUpgrade(ts=world.now, behaviour=2)) == []
    assert world.state.behaviour == 2
    # the ladders were rebuilt: the untriggered stop no longer rests
    assert world.state.resting_prices("A", "X") == (None, None)
    after = decision_of(world.intent(Side.BUY, qty="10", limit_price="100.01"))
    assert after.decision is DecisionKind.ALLOW
    _assert_replays(world)


def test_an_upgrade_never_lowers_the_behaviour() -> None:
    world = Harness()
    assert world.state.behaviour == ENGINE_BEHAVIOUR
    assert world.send(EngineUpgrade(ts=world.now, behaviour=1)) == []
    assert world.state.behaviour == ENGINE_BEHAVIOUR


def test_an_upgrade_to_a_behaviour_this_engine_does_not_know_stops_the_replay() -> None:
    # a newer version wrote it: not a bad input to quarantine (halting and going on would
    # append to that version's journal) but a journal this one cannot read
    world = Harness()
    with pytest.raises(EngineTooNew, match=f"engine behaviour {ENGINE_BEHAVIOUR + 1}: "
                                           "written by a newer version"):
        world.send(EngineUpgrade(ts=world.now, behaviour=ENGINE_BEHAVIOUR + 1))
    assert world.state.behaviour == ENGINE_BEHAVIOUR


def test_an_engine_built_from_nothing_runs_behaviour_1() -> None:
    assert Engine().state.behaviour == 1
    assert ENGINE_BEHAVIOUR == 5


# ---------------------------------------------------------------- snapshots


def _without_behaviour(snapshot: bytes) -> bytes:
    image = msgspec.json.decode(snapshot)
    del image["behaviour"]
    return msgspec.json.encode(image)


@pytest.mark.parametrize("behaviour", [1, 2])
def test_a_snapshot_keeps_the_behaviour(behaviour: int) -> None:
    world = Harness({"self_match": "deny"}, behaviour=behaviour)
    _stop_loss(world)
    restored = Engine.restore(world.engine.snapshot())
    assert restored.state.behaviour == behaviour
    assert restored.snapshot() == world.engine.snapshot()
    assert restored.state.resting_prices("A", "X") == world.state.resting_prices("A", "X")


def test_a_snapshot_taken_before_epochs_restores_at_behaviour_1() -> None:
    world = Harness({"self_match": "deny"}, behaviour=1)
    _stop_loss(world)
    restored = Engine.restore(_without_behaviour(world.engine.snapshot()))
    assert restored.state.behaviour == 1
    assert restored.state.resting_prices("A", "X") == (None, D(94))
    assert restored.snapshot() == world.engine.snapshot()


def test_a_snapshot_of_a_behaviour_this_engine_does_not_know_is_refused() -> None:
    image = msgspec.json.decode(Harness().engine.snapshot())
    image["behaviour"] = ENGINE_BEHAVIOUR + 1
    with pytest.raises(SnapshotError, match=f"engine behaviour {ENGINE_BEHAVIOUR + 1}"):
        Engine.restore(msgspec.json.encode(image))


def test_forget_fills_drops_only_that_strategys_fill_series() -> None:
    world = Harness({"repeated_execution": {"max": 9, "window": "1m"}})
    world.fill(world.accepted(qty="10").client_order_id, "1")
    world.fill(world.accepted(qty="10", strategy="s2").client_order_id, "1")

    def series() -> set[tuple[str, str]]:
        return {(item.kind.value, item.key) for item in world.state.windows.image().series}

    assert ("fill", fill_key("A", "s1")) in series()
    world.state.forget_fills(fill_key("A", "s1"))
    assert ("fill", fill_key("A", "s1")) not in series()
    assert ("fill", fill_key("A", "s2")) in series()
