"""Time for the shell: the injectable `Clock`, and `ClockSync`, which measures how far the local
clock drifts from a reference (broker or exchange) clock.

The core never reads a clock (time comes in on events); the shell does, always through this
protocol, so tests and the simulator drive time by hand with `ManualClock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from ordergate.model.events import DependencyStatus
from ordergate.model.values import utc
from ordergate.resilience.errors import DEPENDENCY_ERRORS

log = structlog.get_logger(__name__)

CLOCK_DEPENDENCY = "clock"
CLOCK_DRIFT = "CLK-002"
CLOCK_UNAVAILABLE = "CLK-003"


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for measuring durations."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to. Both readings advance together.

    Time is kept as whole microseconds so that boundaries such as "exactly 60 s later" are
    exact, whatever fractions the steps were.
    """

    def __init__(self, start: datetime | None = None, monotonic_start: float = 0.0) -> None:
        self._start = start if start is not None else utc(2024, 1, 2, 14, 30)
        if self._start.utcoffset() != timedelta(0):
            raise ValueError(f"start: expected a UTC timestamp, got '{self._start}'")
        self._monotonic_start_us = round(monotonic_start * 1_000_000)
        self._elapsed_us = 0

    def now(self) -> datetime:
        return self._start + timedelta(microseconds=self._elapsed_us)

    def monotonic(self) -> float:
        return (self._monotonic_start_us + self._elapsed_us) / 1_000_000

    def advance(self, step: timedelta | float) -> None:
        """Move forward by `step` (a timedelta, or seconds). Never backwards."""
        step_us = (
            step // timedelta(microseconds=1) if isinstance(step, timedelta)
            else round(step * 1_000_000)
        )
        if step_us < 0:
            raise ValueError(f"step: a clock cannot go backwards, got {step}")
        self._elapsed_us += step_us

    def sleep(self, seconds: float) -> None:
        """An injectable `sleep` that returns at once and advances the clock instead."""
        self.advance(seconds)


class ClockSync:
    """Compares the local clock with a reference clock and reports health changes.

    The reference reading is compared with the midpoint of the local round trip, so network
    latency does not count as drift. `check()` returns only transitions: an unhealthy event
    when drift first exceeds `max_drift_ms` (CLK-002) or the reference first fails (CLK-003),
    and a healthy event carrying the same code when that one condition clears.
    """

    def __init__(
        self,
        local: Clock,
        reference: Callable[[], datetime],
        max_drift_ms: float = 1000,
    ) -> None:
        if max_drift_ms <= 0:
            raise ValueError(f"max_drift_ms: expected a positive number, got {max_drift_ms}")
        self._local = local
        self._reference = reference
        self._max_drift_ms = max_drift_ms
        self._drifting = False
        self._unavailable = False
        self.last_drift_ms: float | None = None
        self.last_round_trip_ms: float | None = None

    @property
    def healthy(self) -> bool:
        return not (self._drifting or self._unavailable)

    @property
    def active_codes(self) -> tuple[str, ...]:
        codes = []
        if self._unavailable:
            codes.append(CLOCK_UNAVAILABLE)
        if self._drifting:
            codes.append(CLOCK_DRIFT)
        return tuple(codes)

    def check(self) -> list[DependencyStatus]:
        """Measure once; return the health transitions this measurement caused (maybe none)."""
        sent_at = self._local.now()
        sent_mono = self._local.monotonic()
        try:
            reference_time = self._reference()
            if reference_time.utcoffset() is None:
                raise ValueError(f"reference time has no UTC offset: '{reference_time}'")
        except DEPENDENCY_ERRORS as exc:
            return self._reference_failed(f"{type(exc).__name__}: {exc}")
        round_trip = timedelta(seconds=self._local.monotonic() - sent_mono)
        midpoint = sent_at + round_trip / 2
        drift_ms = (reference_time - midpoint) / timedelta(milliseconds=1)
        self.last_drift_ms = drift_ms
        self.last_round_trip_ms = round_trip / timedelta(milliseconds=1)

        events: list[DependencyStatus] = []
        now = self._local.now()
        if self._unavailable:
            self._unavailable = False
            events.append(DependencyStatus(
                ts=now, dependency=CLOCK_DEPENDENCY, healthy=True, code=CLOCK_UNAVAILABLE,
                detail="reference time source answers again",
            ))
        detail = (f"drift {drift_ms:+.3f} ms (reference minus local), "
                  f"tolerance {self._max_drift_ms:g} ms")
        drifting = abs(drift_ms) > self._max_drift_ms
        if drifting != self._drifting:
            self._drifting = drifting
            log.warning("clock_drift_changed", drifting=drifting, drift_ms=drift_ms)
            events.append(DependencyStatus(
                ts=now, dependency=CLOCK_DEPENDENCY, healthy=not drifting, code=CLOCK_DRIFT,
                detail=detail,
            ))
        return events

    def _reference_failed(self, why: str) -> list[DependencyStatus]:
        log.warning("clock_reference_failed", error=why)
        if self._unavailable:
            return []
        self._unavailable = True
        return [DependencyStatus(
            ts=self._local.now(), dependency=CLOCK_DEPENDENCY, healthy=False,
            code=CLOCK_UNAVAILABLE, detail=f"reference time source failed: {why}",
        )]
