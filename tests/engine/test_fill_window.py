"""The repeated-execution window counts a fill from its own event time: a fill the broker
reported late (handled after newer events) leaves the window when its own window ends, not a
window after it was handled. The series stays ascending when such an older time is recorded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.engine.harness import T0, Harness, of_type

from ordergate.engine.lifecycle import fill_key
from ordergate.engine.windows import TimeSeries, WindowKind, micros
from ordergate.model.events import Alert, Fill, OutputEvent


def _late_fill(world: Harness, client_order_id: str, seconds_after_t0: int,
               fill_id: str) -> list[OutputEvent]:
    """A fill stamped `seconds_after_t0` after T0, handled at the harness's current time."""
    return world.send(Fill(ts=T0 + timedelta(seconds=seconds_after_t0),
                           client_order_id=client_order_id, fill_id=fill_id,
                           qty=Decimal(1), price=Decimal(100)))


def test_a_late_fill_leaves_the_window_when_its_own_window_ends() -> None:
    world = Harness({"repeated_execution": {"max": 3, "window": "1m"}})
    order = world.accepted(qty="10").client_order_id
    world.fill(order, "1")  # at T0
    world.advance(50)
    world.quote("X", "100")  # the engine's time is now T0+50s
    _late_fill(world, order, 0, "late-1")  # executed at T0, reported at T0+50s
    key = fill_key("A", "s1")
    assert world.state.windows.image().series[-1].times == [micros(T0), micros(T0)]

    world.advance(11)  # T0+61s: both fills executed at T0 are out of the 1 minute window
    world.fill(order, "1")
    outputs = world.fill(order, "1")
    assert of_type(outputs, Alert) == []
    assert not world.state.strategy_disabled("A", "s1")
    assert world.state.windows.count(WindowKind.FILL, key, world.now, timedelta(minutes=1)) == 2

    # the throttle itself still works: a third fill inside the window disables the strategy
    outputs = world.fill(order, "1")
    assert [alert.code for alert in of_type(outputs, Alert)] == ["THR-006"]
    assert world.state.strategy_disabled("A", "s1")


def test_a_fill_stamped_before_the_engine_time_is_recorded_at_its_own_time() -> None:
    world = Harness({"repeated_execution": {"max": 5, "window": "1m"}})
    order = world.accepted(qty="10").client_order_id
    world.advance(10)
    world.quote("X", "100")
    _late_fill(world, order, 5, "older")
    times = world.state.windows.image().series[-1].times
    assert times == [micros(T0 + timedelta(seconds=5))]


def test_series_inserts_an_older_time_in_order_and_counts_it() -> None:
    series = TimeSeries([10, 20, 30])
    assert series.count_window(30, 15) == 2  # (15, 30]: 20, 30; remembers the window
    series.record(12)  # inside the dead part of the last window
    series.record(25)  # inside the last window
    series.record(40)  # newest: appended
    assert series.export() == [10, 12, 20, 25, 30, 40]
    assert series.count_window(40, 15) == 2  # (25, 40]: 30, 40 (stepped from the last index)
    assert series.count_window(40, 21) == 4  # (19, 40]: 20, 25, 30, 40 (a new span: bisect)
    series.prune(20)
    series.record(15)  # older than every kept time: lands at the head
    assert series.export() == [15, 25, 30, 40]
    assert series.count_after(14) == 4
