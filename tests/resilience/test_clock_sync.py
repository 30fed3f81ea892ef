"""Clock drift against a reference clock: CLK-002 beyond tolerance, CLK-003 without a source."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ordergate.brokers.base import BrokerUnavailable
from ordergate.brokers.sim import SimBroker
from ordergate.resilience.clock import ClockSync, ManualClock, SystemClock


class Reference:
    """A reference clock at a chosen offset from `local`; it takes `latency` to answer and can
    be made to fail."""

    def __init__(self, local: ManualClock, offset_ms: float = 0.0, latency_s: float = 0.0):
        self.local = local
        self.offset = timedelta(milliseconds=offset_ms)
        self.latency_s = latency_s
        self.failing = False

    def __call__(self) -> datetime:
        self.local.advance(self.latency_s / 2)
        if self.failing:
            raise BrokerUnavailable("time endpoint down")
        reading = self.local.now() + self.offset
        self.local.advance(self.latency_s / 2)
        return reading


def test_drift_within_tolerance_is_healthy_and_silent() -> None:
    local = ManualClock()
    sync = ClockSync(local, Reference(local, offset_ms=999.999), max_drift_ms=1000)
    assert sync.check() == []
    assert sync.healthy
    assert sync.last_drift_ms == pytest.approx(999.999)


def test_round_trip_latency_is_not_drift() -> None:
    local = ManualClock()
    sync = ClockSync(local, Reference(local, offset_ms=0, latency_s=4.0), max_drift_ms=1000)
    assert sync.check() == []
    assert sync.last_drift_ms == 0.0
    assert sync.last_round_trip_ms == 4000.0


def test_drift_beyond_tolerance_raises_clk_002_then_clears_it() -> None:
    local = ManualClock()
    reference = Reference(local, offset_ms=-1000.001)
    sync = ClockSync(local, reference, max_drift_ms=1000)
    [event] = sync.check()
    assert (event.dependency, event.healthy, event.code) == ("clock", False, "CLK-002")
    assert "-1000.001 ms" in event.detail
    assert sync.check() == []  # still drifting: no repeat
    reference.offset = timedelta(milliseconds=10)
    [recovered] = sync.check()
    assert (recovered.healthy, recovered.code) == (True, "CLK-002")
    assert sync.healthy


def test_reference_failure_raises_clk_003_and_recovery_clears_only_it() -> None:
    local = ManualClock()
    reference = Reference(local, offset_ms=5000)
    sync = ClockSync(local, reference, max_drift_ms=1000)
    assert [e.code for e in sync.check()] == ["CLK-002"]
    reference.failing = True
    [down] = sync.check()
    assert (down.healthy, down.code) == (False, "CLK-003")
    assert "time endpoint down" in down.detail
    assert sync.check() == []
    assert sync.active_codes == ("CLK-003", "CLK-002")
    reference.failing = False
    [back] = sync.check()  # the source is back, but the drift persists
    assert (back.healthy, back.code) == (True, "CLK-003")
    assert tuple(sync.active_codes) == ("CLK-002",)
    assert not sync.healthy


def test_a_naive_reference_time_counts_as_a_failed_source() -> None:
    local = ManualClock()
    sync = ClockSync(local, lambda: datetime(2024, 1, 1), max_drift_ms=1000)
    [event] = sync.check()
    assert event.code == "CLK-003" and not event.healthy


def test_simulated_broker_clock_offset_is_measured_as_drift() -> None:
    local = ManualClock()
    broker = SimBroker()
    broker.advance(local.now())
    broker.clock_offset = timedelta(seconds=2)
    sync = ClockSync(local, broker.server_time, max_drift_ms=1000)
    [event] = sync.check()
    assert event.code == "CLK-002" and sync.last_drift_ms == 2000.0


def test_manual_clock_moves_only_forward_and_exactly() -> None:
    clock = ManualClock(monotonic_start=5.0)
    start = clock.now()
    clock.advance(timedelta(seconds=59, microseconds=999_999))
    clock.advance(0.000001)
    assert clock.now() - start == timedelta(seconds=60)
    assert clock.monotonic() == 65.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_system_clock_is_utc_and_monotonic_does_not_go_back() -> None:
    clock = SystemClock()
    assert clock.now().utcoffset() == timedelta(0)
    first = clock.monotonic()
    assert clock.monotonic() >= first
