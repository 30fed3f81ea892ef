"""A `BrokerNotSent` (the order never left: a read the adapter needed first failed) is
classified by what stopped it, so the breaker and health see what the venue really did."""

from __future__ import annotations

import pytest

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerNotSent,
    BrokerRateLimited,
    BrokerUnavailable,
)
from ordergate.resilience.errors import Action, Category, classify, retry_after_s


def _not_sent(cause: BaseException, *, explicit: bool = True) -> BrokerNotSent:
    try:
        raise cause
    except BrokerError as exc:
        try:
            if explicit:
                raise BrokerNotSent(f"venue: submit: not sent: {exc}") from exc
            raise BrokerNotSent(f"venue: submit: not sent: {exc}")  # implicit context
        except BrokerNotSent as not_sent:
            return not_sent
    raise AssertionError("unreachable")


@pytest.mark.parametrize("explicit", [True, False], ids=["raise-from", "while-handling"])
def test_not_sent_after_a_timeout_says_the_venue_is_not_answering(explicit: bool) -> None:
    verdict = classify(_not_sent(BrokerUnavailable("positions: timed out"), explicit=explicit),
                       "broker_submit")
    assert verdict.category is Category.TRANSIENT_NETWORK and verdict.action is Action.RETRY
    assert "BrokerNotSent" in verdict.detail and "timed out" in verdict.detail


def test_not_sent_after_a_429_is_a_rate_limit_with_its_retry_after() -> None:
    exc = _not_sent(BrokerRateLimited("positions: 429", http_status=429, retry_after_s=12))
    verdict = classify(exc, "broker_submit")
    assert verdict.category is Category.RATE_LIMIT and verdict.backoff_hint_s == 12
    assert retry_after_s(exc) == 12


def test_not_sent_after_an_auth_failure_halts() -> None:
    verdict = classify(_not_sent(BrokerAuthError("positions: 401", http_status=401)),
                       "broker_submit")
    assert verdict.category is Category.AUTH and verdict.action is Action.HALT


def test_not_sent_without_a_cause_is_classified_by_its_own_status() -> None:
    assert classify(BrokerNotSent("x", http_status=503), "broker_submit").category \
        is Category.TRANSIENT_NETWORK
    assert classify(BrokerNotSent("x"), "broker_submit").category is Category.UNKNOWN
