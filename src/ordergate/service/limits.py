"""Request limits of the HTTP API: body size, per-token request rate and how far an intent's
or a market snapshot's `ts` may be from the server's clock.

The rate limit is a token bucket per principal (refill `requests_per_second`, capacity
`burst`). A refused request gets 429 with `Retry-After` in whole seconds (at least 1), the
time until one request's worth of tokens is back. The clock is injected so tests drive it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# How far an intent's or a snapshot's `ts` may be from the server's clock: one rule, which the
# embedded Gateway applies too (see runtime.timebound).
from ordergate.runtime.timebound import MAX_TS_AHEAD as MAX_TS_AHEAD
from ordergate.runtime.timebound import MAX_TS_BEHIND as MAX_TS_BEHIND

MAX_BODY_BYTES = 1_048_576
MAX_BATCH_INTENTS = 1000


class TokenBucket:
    __slots__ = ("_capacity", "_level", "_rate", "_stamp")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._level = capacity
        self._stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens. Returns 0 when allowed, else the seconds until it would be."""
        elapsed = now - self._stamp
        if elapsed > 0:
            self._level = min(self._capacity, self._level + elapsed * self._rate)
            self._stamp = now
        if self._level >= cost:
            self._level -= cost
            return 0.0
        return (cost - self._level) / self._rate


class RateLimiter:
    """One bucket per principal name. Safe to call from several threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, key: str, rate: float, burst: float) -> int:
        """0 when the request may proceed, else the Retry-After seconds (>= 1)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate, burst, now)
            wait = bucket.take(now)
        if wait <= 0:
            return 0
        return max(1, math.ceil(wait))
