"""Bounded retries for idempotent reads, and the one question that guards a resubmission.

Reads (quotes, order status, positions) may be retried: asking twice changes nothing.
Submitting an order may NOT be retried blindly: a timeout says nothing about whether the
broker took the order. `safe_to_resubmit` answers yes only when the venue refuses a repeated
client order id and both the journal and the broker say the order was never received; any
doubt means no.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import msgspec
import structlog

from ordergate.brokers.base import BrokerCapabilities, BrokerOrder
from ordergate.resilience.clock import Clock, SystemClock
from ordergate.resilience.errors import (
    DEPENDENCY_ERRORS,
    Action,
    Category,
    Classification,
    classify,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """At most `max_attempts` calls and `max_total_s` seconds (waits included). Waits are
    full-jitter exponential: uniform(0, min(max_delay_s, base_delay_s * 2**retry)), but never
    shorter than the provider's Retry-After. The exponent stops growing at
    `MAX_BACKOFF_DOUBLINGS` (the cap is reached long before)."""

    max_attempts: int = 3
    max_total_s: float = 10.0
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: expected at least 1, got {self.max_attempts}")
        if self.max_total_s < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("max_total_s/base_delay_s/max_delay_s: expected non-negative seconds")


MAX_BACKOFF_DOUBLINGS = 64
"""Doublings after which the backoff stops growing: 2**retry for a larger retry number is
too large for a float (OverflowError after about 1024 retries)."""


def backoff_delay(policy: RetryPolicy, retry: int, rng: random.Random,
                  minimum_s: float | None = None) -> float:
    """The wait before retry number `retry` (0 for the first retry)."""
    doublings = min(retry, MAX_BACKOFF_DOUBLINGS)
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** doublings))
    delay = rng.uniform(0.0, ceiling)
    return max(delay, minimum_s) if minimum_s is not None else delay


def retry_read(
    fn: Callable[[], T],
    policy: RetryPolicy,
    classify: Callable[[BaseException, str, str | None], Classification] = classify,
    *,
    dependency: str = "broker_reads",
    symbol: str | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock | None = None,
) -> T:
    """Call the idempotent read `fn`, retrying only failures classified as RETRY, within the
    policy's attempt and time budget. When the budget is spent, or the failure is not worth
    retrying, the last error is raised unchanged (with a note saying how many attempts ran).
    Errors that are not dependency errors (bugs) propagate at once."""
    rng = rng if rng is not None else random.Random()
    clock = clock if clock is not None else SystemClock()
    started = clock.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except DEPENDENCY_ERRORS as exc:
            verdict = classify(exc, dependency, symbol)
            if verdict.action is not Action.RETRY:
                raise
            if attempt >= policy.max_attempts:
                exc.add_note(f"{dependency}: gave up after {attempt} attempts")
                raise
            # The provider's Retry-After is a floor; other hints leave the jitter alone.
            floor = verdict.backoff_hint_s if verdict.category is Category.RATE_LIMIT else None
            delay = backoff_delay(policy, attempt - 1, rng, floor)
            elapsed = clock.monotonic() - started
            if elapsed + delay > policy.max_total_s:
                exc.add_note(f"{dependency}: gave up after {attempt} attempts, "
                             f"{elapsed:.3f} s; the next wait ({delay:.3f} s) exceeds "
                             f"the {policy.max_total_s:g} s budget")
                raise
            log.info("retrying_read", dependency=dependency, attempt=attempt,
                     delay_s=round(delay, 6), error=verdict.detail)
            sleep(delay)


class OrderLookup(Protocol):
    @property
    def capabilities(self) -> BrokerCapabilities: ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None: ...


def safe_to_resubmit(client_order_id: str, broker: OrderLookup, journal_has_ack: bool) -> bool:
    """True only when the venue refuses a second order with a client order id it holds
    (`BrokerCapabilities.unique_client_order_id`), the journal holds no acknowledgement for
    the order AND the broker, asked by client order id, says it has never seen it.

    The capability comes first because "never seen" may only mean "not visible yet": a venue
    that took the order a moment ago can still miss it in a lookup. Where a repeated id is
    refused that costs nothing (the resend is refused and the original stands); where it is
    not (a Tradier tag, a Deribit label) the resend would be a second live order, so the
    answer there is always False and the broker is not even asked. If the question cannot be
    answered (the lookup fails), the answer is False too: never resend blindly."""
    if journal_has_ack:
        return False
    if not broker.capabilities.unique_client_order_id:
        log.info("resubmit_refused_venue_accepts_repeated_ids",
                 client_order_id=client_order_id)
        return False
    try:
        known = broker.get_order(client_order_id)
    except DEPENDENCY_ERRORS as exc:
        log.warning("resubmit_refused_lookup_failed", client_order_id=client_order_id,
                    error=f"{type(exc).__name__}: {exc}")
        return False
    if known is not None:
        log.info("resubmit_refused_broker_knows_order", client_order_id=client_order_id,
                 status=known.status.value)
        return False
    return True
