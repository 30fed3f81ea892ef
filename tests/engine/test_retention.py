"""The engine remembers two trading days: a retry, a late fill or a redelivered fill from
yesterday is still recognized; older history is dropped at the day roll, so a gateway that runs
for weeks keeps a bounded state (and snapshot)."""

from __future__ import annotations

from datetime import timedelta

from tests.engine.harness import Harness

from ordergate.engine.core import Engine
from ordergate.engine.retention import RetainedMap, RetainedSet
from ordergate.model.events import ClockTick
from ordergate.model.intent import OrderIntent


def test_retained_map_and_set_keep_two_generations() -> None:
    seen: RetainedMap[str, int] = RetainedMap()
    ids: RetainedSet[str] = RetainedSet()
    seen["a"], _ = 1, ids.add("a")
    seen.rotate(), ids.rotate()
    seen["b"], _ = 2, ids.add("b")
    assert seen.get("a") == 1 and seen.get("b") == 2 and "a" in ids and "b" in ids
    seen.rotate(), ids.rotate()
    assert seen.get("a") is None and "a" not in seen and "a" not in ids
    assert seen.get("b") == 2 and "b" in ids and len(seen) == 1 and len(ids) == 1


def test_history_is_kept_two_trading_days_then_dropped_at_the_roll() -> None:
    desk = Harness()
    first = desk.intent()
    sent = next(event for event in reversed(desk.log) if isinstance(event, OrderIntent))
    order = next(out for out in first if type(out).__name__ == "Dispatch")
    desk.fill(order.client_order_id, "10")
    state = desk.state
    assert len(state.decided) == 1 and len(state.done) == 1 and len(state.fill_ids) == 1
    before = len(desk.engine.snapshot())

    desk.tick(86_400)  # the next trading day: yesterday's history is still known
    retry = desk.send(sent)  # the same intent again
    assert [type(out).__name__ for out in retry] == ["Decision"]  # its first answer, no order
    assert order.client_order_id in state.done and len(state.fill_ids) == 1

    desk.tick(86_400)  # two rolls later it is gone, and so is its weight in the snapshot
    assert len(state.decided) == 0 and len(state.done) == 0 and len(state.fill_ids) == 0
    assert len(desk.engine.snapshot()) < before


def test_both_generations_survive_snapshot_and_restore() -> None:
    desk = Harness()
    order = next(out for out in desk.intent() if type(out).__name__ == "Dispatch")
    desk.fill(order.client_order_id, "10")
    desk.tick(86_400)
    desk.intent(qty="11")
    restored = Engine.restore(desk.engine.snapshot())
    assert restored.snapshot() == desk.engine.snapshot()
    assert order.client_order_id in restored.state.done
    assert len(restored.state.decided.previous) == 1 and len(restored.state.decided.current) == 1
    # one roll (a gap of any length is one trading day): the older generation goes
    restored.handle(ClockTick(ts=desk.now + timedelta(days=2)))
    assert len(restored.state.decided) == 1
    assert order.client_order_id not in restored.state.done
