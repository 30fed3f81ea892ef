"""Circuit breakers, one per dependency, with rolling-window escalation.

A breaker counts failures in rolling windows. Each `EscalationTier` says "this many failures
within this many seconds opens the circuit for that long"; the highest tier reached wins.
When the open period ends the breaker is HALF_OPEN and lets exactly one probe through: success
closes it, failure re-opens it at the next tier. A breaker whose circuit was open when the
process stopped starts HALF_OPEN (`recover_open`): the first probe says whether the dependency
answers again, as it would have once the open period had passed. Windows are inclusive: the
3rd failure exactly 60 s after the 1st still counts as "3 within 60 s" (when in doubt, fail
closed).

Transitions come back from `record_failure` / `record_success` as `DependencyStatus` events
(SYS-007 CIRCUIT_OPEN), for the runtime to journal and feed to the engine.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import msgspec
import structlog

from ordergate.model.events import DependencyStatus
from ordergate.resilience.clock import Clock

log = structlog.get_logger(__name__)

CIRCUIT_OPEN = "SYS-007"
STANDARD_DEPENDENCIES = ("broker_submit", "broker_reads", "clock")


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class EscalationTier(msgspec.Struct, frozen=True, kw_only=True):
    failures: int
    window_s: float
    open_s: float

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError(f"failures: expected at least 1, got {self.failures}")
        if self.window_s <= 0 or self.open_s <= 0:
            raise ValueError(
                f"window_s/open_s: expected positive seconds, got {self.window_s}/{self.open_s}")


class BreakerPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Tiers from mildest to harshest."""

    tiers: tuple[EscalationTier, ...] = (
        EscalationTier(failures=3, window_s=60, open_s=60),
        EscalationTier(failures=10, window_s=600, open_s=900),
    )

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("tiers: at least one escalation tier is required")


class BreakerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    state: BreakerState
    recent_failures: int  # within the longest window
    opened_until: datetime | None
    tier: int | None  # index of the tier that opened it, while open or half-open
    opens: int  # how many times it has opened since start


class CircuitBreaker:
    def __init__(self, name: str, clock: Clock, policy: BreakerPolicy | None = None) -> None:
        self.name = name
        self._clock = clock
        self._policy = policy if policy is not None else BreakerPolicy()
        self._longest_window = max(tier.window_s for tier in self._policy.tiers)
        self._failures: deque[float] = deque()
        self._state = BreakerState.CLOSED
        self._open_until_mono: float | None = None
        self._opened_until: datetime | None = None
        self._tier: int | None = None
        self._probe_in_flight = False
        self._opens = 0

    @property
    def state(self) -> BreakerState:
        if (self._state is BreakerState.OPEN and self._open_until_mono is not None
                and self._clock.monotonic() >= self._open_until_mono):
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
            log.info("breaker_half_open", dependency=self.name)
        return self._state

    @property
    def opened_until(self) -> datetime | None:
        """When the current open period ends (wall time), None when not open."""
        return self._opened_until if self.state is BreakerState.OPEN else None

    def allow(self) -> bool:
        """May a call go to the dependency now? In HALF_OPEN, True exactly once (the probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def recover_open(self) -> None:
        """The circuit was open when the process stopped (its reason is in the replayed
        state, its open period is not): start HALF_OPEN, so the first probe that gets through
        closes it (and reports it closed) and a failed one opens it at the first tier."""
        if self._state is not BreakerState.CLOSED:
            return
        self._state = BreakerState.HALF_OPEN
        self._tier = None
        self._probe_in_flight = False
        log.info("breaker_recovered_half_open", dependency=self.name)

    def record_success(self) -> DependencyStatus | None:
        if self.state is BreakerState.CLOSED:
            return None
        # A success while OPEN is a call that started before the circuit opened; only a probe
        # (HALF_OPEN) may close it.
        if self._state is not BreakerState.HALF_OPEN:
            return None
        self._state = BreakerState.CLOSED
        self._tier = None
        self._open_until_mono = None
        self._opened_until = None
        self._probe_in_flight = False
        log.info("breaker_closed", dependency=self.name)
        return DependencyStatus(
            ts=self._clock.now(), dependency=self.name, healthy=True, code=CIRCUIT_OPEN,
            detail=f"CIRCUIT_CLOSED_{self.name}",
        )

    def record_failure(self) -> DependencyStatus | None:
        now = self._clock.monotonic()
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self._longest_window:
            self._failures.popleft()

        state = self.state
        if state is BreakerState.HALF_OPEN:
            # No tier: recovered half-open (`recover_open`), so a failure opens the first.
            following = 0 if self._tier is None else self._tier + 1
            return self._open(min(following, len(self._policy.tiers) - 1))
        reached = self._highest_tier_reached(now)
        if reached is None:
            return None
        if state is BreakerState.OPEN and self._tier is not None and reached <= self._tier:
            return None
        return self._open(reached)

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock.monotonic()
        recent = sum(1 for t in self._failures if now - t <= self._longest_window)
        state = self.state
        return BreakerSnapshot(
            name=self.name, state=state, recent_failures=recent,
            opened_until=self._opened_until if state is BreakerState.OPEN else None,
            tier=self._tier, opens=self._opens,
        )

    def _highest_tier_reached(self, now: float) -> int | None:
        reached = None
        for index, tier in enumerate(self._policy.tiers):
            count = sum(1 for t in self._failures if now - t <= tier.window_s)
            if count >= tier.failures:
                reached = index
        return reached

    def _open(self, tier_index: int) -> DependencyStatus:
        tier = self._policy.tiers[tier_index]
        self._state = BreakerState.OPEN
        self._tier = tier_index
        self._probe_in_flight = False
        self._open_until_mono = self._clock.monotonic() + tier.open_s
        wall_now = self._clock.now()
        self._opened_until = wall_now + timedelta(seconds=tier.open_s)
        self._opens += 1
        log.warning("breaker_open", dependency=self.name, tier=tier_index, open_s=tier.open_s)
        return DependencyStatus(
            ts=wall_now, dependency=self.name, healthy=False, code=CIRCUIT_OPEN,
            detail=f"CIRCUIT_OPEN_{self.name}",
        )


class BreakerBoard:
    """One breaker per dependency: broker_submit, broker_reads, clock, and feed:<name> (made
    on first use). `policies` overrides the default policy per dependency name."""

    def __init__(
        self,
        clock: Clock,
        policy: BreakerPolicy | None = None,
        policies: Mapping[str, BreakerPolicy] | None = None,
        feeds: tuple[str, ...] = (),
    ) -> None:
        self._clock = clock
        self._policy = policy if policy is not None else BreakerPolicy()
        self._policies = dict(policies or {})
        self._breakers: dict[str, CircuitBreaker] = {}
        for name in (*STANDARD_DEPENDENCIES, *(f"feed:{feed}" for feed in feeds)):
            self.get(name)

    def get(self, dependency: str) -> CircuitBreaker:
        breaker = self._breakers.get(dependency)
        if breaker is None:
            breaker = CircuitBreaker(
                dependency, self._clock, self._policies.get(dependency, self._policy))
            self._breakers[dependency] = breaker
        return breaker

    def recover_open(self, dependencies: Iterable[str]) -> None:
        """Start the breakers of `dependencies` HALF_OPEN: their circuits were open when the
        process stopped (`CircuitBreaker.recover_open`)."""
        for dependency in dependencies:
            self.get(dependency).recover_open()

    def feed(self, name: str) -> CircuitBreaker:
        return self.get(f"feed:{name}")

    def open_dependencies(self) -> list[str]:
        """Dependencies whose breaker is not closed, sorted by name."""
        return sorted(name for name, breaker in self._breakers.items()
                      if breaker.state is not BreakerState.CLOSED)

    def snapshot(self) -> list[BreakerSnapshot]:
        """Every breaker's state, sorted by name (for status pages and metrics)."""
        return [self._breakers[name].snapshot() for name in sorted(self._breakers)]
