"""Clock sync against a broker clock that reads in whole seconds (Tradier's /v1/markets/clock).

The broker's true time lies in [reading, reading + 1 s): a local clock a few milliseconds off
must never be called drifting, whatever the fraction of the broker's second, and one off by
more than the tolerance plus that second always must. Time is injected: a fake broker clock
truncates a chosen true time, the local clock is a `ManualClock` at a fixed offset from it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ordergate.brokers.config import Secret
from ordergate.brokers.tradier import TradierAdapter
from ordergate.chaos.harness import chaos_policy
from ordergate.model.events import DependencyStatus, InputEvent
from ordergate.resilience.breakers import BreakerBoard
from ordergate.resilience.clock import CLOCK_DRIFT, ManualClock
from ordergate.runtime.health import ClockWatch, GuardedRuntime, GuardSettings

TOLERANCE_MS = 1000
SECOND_START = datetime(2026, 3, 6, 15, 0, 0, tzinfo=UTC)
# True times across one broker second, every 5 ms from xx.000 to xx.995.
FRACTIONS_MS = range(0, 1000, 5)


def _whole_seconds(true_time: datetime) -> datetime:
    return true_time.replace(microsecond=0)


def _drift_raised(events: list[InputEvent]) -> bool:
    return any(isinstance(e, DependencyStatus) and e.code == CLOCK_DRIFT and not e.healthy
               for e in events)


def _trips(offset_ms: float, fraction_ms: float, resolution_ms: int = 1000) -> bool:
    """Does one check raise CLK-002 when the broker's true time is `fraction_ms` into its
    second and the local clock is `offset_ms` off it?"""
    true_time = SECOND_START + timedelta(milliseconds=fraction_ms)
    local = ManualClock(true_time + timedelta(milliseconds=offset_ms))
    watch = ClockWatch(local, lambda: _whole_seconds(true_time), BreakerBoard(local),
                       max_drift_ms=TOLERANCE_MS, resolution_ms=resolution_ms)
    return _drift_raised(watch.check(local.now()))


@pytest.mark.parametrize("offset_ms", [50, -50, 999, -999])
def test_local_clock_within_tolerance_never_trips_on_a_whole_second_broker_clock(
        offset_ms: float) -> None:
    assert [f for f in FRACTIONS_MS if _trips(offset_ms, f)] == []


@pytest.mark.parametrize("offset_ms", [2500, -2500, 2001, -2001])
def test_local_clock_off_by_tolerance_plus_a_step_always_trips(offset_ms: float) -> None:
    assert [f for f in FRACTIONS_MS if not _trips(offset_ms, f)] == []


def test_allowed_window_is_exactly_tolerance_around_the_broker_step() -> None:
    reading = SECOND_START
    for local_ms, drifting in [(-1000, False), (-1000.001, True),
                               (2000, False), (2000.001, True), (500, False)]:
        local = ManualClock(reading + timedelta(milliseconds=local_ms))
        watch = ClockWatch(local, lambda: reading, BreakerBoard(local),
                           max_drift_ms=TOLERANCE_MS, resolution_ms=1000)
        assert _drift_raised(watch.check(local.now())) is drifting, local_ms


def test_exact_broker_clock_keeps_the_plain_tolerance() -> None:
    reading = SECOND_START
    for local_ms, drifting in [(-1000, False), (1000, False), (1000.001, True),
                               (-1000.001, True)]:
        local = ManualClock(reading + timedelta(milliseconds=local_ms))
        watch = ClockWatch(local, lambda: reading, BreakerBoard(local),
                           max_drift_ms=TOLERANCE_MS)
        assert _drift_raised(watch.check(local.now())) is drifting, local_ms


def _tradier(true_now: list[datetime]) -> TradierAdapter:
    def handler(request: httpx.Request) -> httpx.Response:  # whole Unix seconds, as documented
        return httpx.Response(200, json={"clock": {
            "date": "2026-03-06", "description": "open", "state": "open",
            "timestamp": int(true_now[0].timestamp()), "next_change": "16:00",
            "next_state": "postmarket"}})
    adapter = TradierAdapter(token=Secret("x"), broker_account="VA1", account="A1",
                             base_url="https://sandbox.tradier.com", paper=True)
    adapter._http = httpx.Client(base_url="https://sandbox.tradier.com",
                                 transport=httpx.MockTransport(handler))
    return adapter


def test_guarded_tradier_runtime_allows_for_whole_second_clock(tmp_path: Path) -> None:
    true_now = [SECOND_START]
    adapter = _tradier(true_now)
    assert adapter.capabilities.clock_resolution_ms == 1000
    local = ManualClock(SECOND_START)
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(),
                                adapter, local, GuardSettings(reconcile_every_batches=0))
    try:
        assert guard.clock_watch.resolution_ms == 1000
        for offset_ms, expected in [(50, False), (-50, False), (-2500, True), (2500, True)]:
            flagged = []
            for fraction_ms in FRACTIONS_MS:
                true_now[0] = SECOND_START + timedelta(milliseconds=fraction_ms)
                clock = ManualClock(true_now[0] + timedelta(milliseconds=offset_ms))
                watch = ClockWatch(clock, adapter.server_time, BreakerBoard(clock),
                                   max_drift_ms=TOLERANCE_MS,
                                   resolution_ms=guard.clock_watch.resolution_ms)
                flagged.append(_drift_raised(watch.check(clock.now())))
            assert set(flagged) == {expected}, offset_ms
    finally:
        guard.runtime.journal.close()
