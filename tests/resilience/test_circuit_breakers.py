"""Circuit breakers: escalation windows at their exact boundaries, one probe when half-open."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.resilience.breakers import (
    BreakerBoard,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    EscalationTier,
)
from ordergate.resilience.clock import ManualClock


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def _breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker("broker_submit", clock, BreakerPolicy())


def _open_tier_one(clock: ManualClock, breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN


def test_third_failure_at_59_999_s_opens_the_circuit() -> None:
    clock = ManualClock(monotonic_start=1000.0)
    breaker = _breaker(clock)
    assert breaker.record_failure() is None
    clock.advance(30)
    assert breaker.record_failure() is None
    clock.advance(29.999)
    event = breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert event is not None
    assert (event.healthy, event.code, event.detail, event.dependency) == (
        False, "SYS-007", "CIRCUIT_OPEN_broker_submit", "broker_submit")
    assert event.ts == clock.now()


def test_third_failure_at_exactly_60_s_still_opens_the_circuit() -> None:
    clock = ManualClock(monotonic_start=1000.0)
    breaker = _breaker(clock)
    breaker.record_failure()
    clock.advance(60)
    breaker.record_failure()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN


def test_three_failures_spread_over_60_001_s_do_not_open() -> None:
    clock = ManualClock(monotonic_start=1000.0)
    breaker = _breaker(clock)
    breaker.record_failure()
    clock.advance(30)
    breaker.record_failure()
    clock.advance(30.001)
    assert breaker.record_failure() is None
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow()


def test_open_period_ends_exactly_at_60_s_with_one_probe() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    opened_at = clock.now()
    _open_tier_one(clock, breaker)
    assert breaker.opened_until == opened_at + timedelta(seconds=60)
    clock.advance(59.999999)
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.advance(0.000001)
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.opened_until is None
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one


def test_successful_probe_closes_and_reports_healthy() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    _open_tier_one(clock, breaker)
    clock.advance(60)
    assert breaker.allow()
    event = breaker.record_success()
    assert event is not None
    assert (event.healthy, event.code, event.dependency) == (True, "SYS-007", "broker_submit")
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()


def test_failed_probe_reopens_escalated_to_900_s() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    _open_tier_one(clock, breaker)
    clock.advance(60)
    assert breaker.allow()
    event = breaker.record_failure()
    assert event is not None and not event.healthy
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.opened_until == clock.now() + timedelta(seconds=900)
    clock.advance(899.999)
    assert state_of(breaker) is BreakerState.OPEN
    clock.advance(0.001)
    assert state_of(breaker) is BreakerState.HALF_OPEN


def test_recovered_open_circuit_is_half_open_and_a_good_probe_reports_it_closed() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    breaker.recover_open()
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one probe
    event = breaker.record_success()
    assert event is not None and event.healthy
    assert state_of(breaker) is BreakerState.CLOSED


def test_recovered_open_circuit_whose_probe_fails_opens_at_the_first_tier() -> None:
    clock = ManualClock()
    board = BreakerBoard(clock)
    board.recover_open(["broker_submit", "feed:market"])
    assert board.open_dependencies() == ["broker_submit", "feed:market"]
    breaker = board.get("broker_submit")
    assert breaker.allow()
    event = breaker.record_failure()
    assert event is not None and not event.healthy
    assert breaker.opened_until == clock.now() + timedelta(seconds=60)


def test_ten_failures_within_ten_minutes_open_for_900_s() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("broker_reads", clock, BreakerPolicy(tiers=(
        EscalationTier(failures=3, window_s=10, open_s=5),
        EscalationTier(failures=10, window_s=600, open_s=900),
    )))
    # Failures 66.666 s apart never trip tier one; the 10th, 599.994 s after the first,
    # trips tier two.
    for index in range(9):
        assert breaker.record_failure() is None, index
        clock.advance(66.666)
    assert state_of(breaker) is BreakerState.CLOSED
    event = breaker.record_failure()  # the 10th at 599.994 s after the first
    assert event is not None
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.opened_until == clock.now() + timedelta(seconds=900)


def test_ten_failures_over_600_001_s_do_not_reach_tier_two() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("broker_reads", clock, BreakerPolicy(tiers=(
        EscalationTier(failures=3, window_s=10, open_s=5),
        EscalationTier(failures=10, window_s=600, open_s=900),
    )))
    breaker.record_failure()
    clock.advance(600.001 - 8 * 66.0)
    for _ in range(8):
        breaker.record_failure()
        clock.advance(66)
    assert breaker.record_failure() is None
    assert state_of(breaker) is BreakerState.CLOSED


def test_repeated_tier_one_trips_escalate_to_tier_two() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    open_periods = []
    for _ in range(4):
        for _ in range(3):
            if breaker.record_failure() is not None:
                assert breaker.opened_until is not None
                open_periods.append(breaker.opened_until - clock.now())
        if breaker.opened_until == clock.now() + timedelta(seconds=60):
            clock.advance(60)
            assert breaker.allow()
            breaker.record_success()
            clock.advance(1)
    assert open_periods[:3] == [timedelta(seconds=60)] * 3
    # The 10th failure within 10 minutes came in the 4th burst: open for 900 s.
    assert open_periods[3:] == [timedelta(seconds=900)]


def test_board_holds_the_standard_dependencies_and_feeds() -> None:
    clock = ManualClock()
    board = BreakerBoard(clock, feeds=("polygon",))
    names = [snap.name for snap in board.snapshot()]
    assert names == ["broker_reads", "broker_submit", "clock", "feed:polygon"]
    for _ in range(3):
        board.feed("polygon").record_failure()
    assert board.open_dependencies() == ["feed:polygon"]
    snap = {s.name: s for s in board.snapshot()}["feed:polygon"]
    assert (snap.state, snap.recent_failures, snap.opens, snap.tier) == (
        BreakerState.OPEN, 3, 1, 0)
    assert snap.opened_until == clock.now() + timedelta(seconds=60)


def test_board_applies_per_dependency_policies() -> None:
    clock = ManualClock()
    strict = BreakerPolicy(tiers=(EscalationTier(failures=1, window_s=1, open_s=30),))
    board = BreakerBoard(clock, policies={"clock": strict})
    board.get("clock").record_failure()
    board.get("broker_submit").record_failure()
    assert board.open_dependencies() == ["clock"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fail", "ok", "allow"]),
                          st.integers(min_value=0, max_value=120_000)), max_size=40))
def test_open_breaker_never_allows_a_call(steps: list[tuple[str, int]]) -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    for action, wait_ms in steps:
        clock.advance(wait_ms / 1000)
        state = breaker.state
        allowed = breaker.allow()
        if state is BreakerState.OPEN:
            assert not allowed
        if state is BreakerState.CLOSED:
            assert allowed
        if action == "fail":
            breaker.record_failure()
        elif action == "ok":
            breaker.record_success()
