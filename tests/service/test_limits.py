"""The per-token rate limit refuses past the burst and says when to retry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.service.limits import RateLimiter


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_allows_burst_then_refuses_with_retry_after() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock)
    assert all(limiter.check("t", rate=2.0, burst=3.0) == 0 for _ in range(3))
    assert limiter.check("t", rate=2.0, burst=3.0) == 1
    assert limiter.check("other", rate=2.0, burst=3.0) == 0  # buckets are per token
    clock.now += 0.5
    assert limiter.check("t", rate=2.0, burst=3.0) == 0


def test_retry_after_is_whole_seconds_until_a_request_fits() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock)
    assert limiter.check("slow", rate=0.25, burst=1.0) == 0
    assert limiter.check("slow", rate=0.25, burst=1.0) == 4


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(0.5, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60))
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int,
                                                       gaps: list[float]) -> None:
    clock = _Clock()
    limiter = RateLimiter(clock)
    start = clock.now
    allowed = 0
    for gap in gaps:
        clock.now += gap
        if limiter.check("k", rate=rate, burst=float(burst)) == 0:
            allowed += 1
    assert allowed <= burst + rate * (clock.now - start) + 1e-9
