"""Bounded retries for reads, and never a blind resubmission of an order."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
)
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderType, Side
from ordergate.model.values import utc
from ordergate.resilience.clock import ManualClock
from ordergate.resilience.retry import RetryPolicy, backoff_delay, retry_read, safe_to_resubmit


class Flaky:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def _run(fn: Flaky, policy: RetryPolicy, clock: ManualClock, seed: int = 7) -> str:
    return retry_read(fn, policy, rng=random.Random(seed), sleep=clock.sleep, clock=clock)


def test_transient_read_failures_are_retried_until_an_answer() -> None:
    clock = ManualClock()
    fn = Flaky(BrokerUnavailable("timeout"), TimeoutError("slow"))
    assert _run(fn, RetryPolicy(max_attempts=3), clock) == "answer"
    assert fn.calls == 3


def test_attempts_are_bounded() -> None:
    clock = ManualClock()
    fn = Flaky(*(BrokerUnavailable(f"timeout {n}") for n in range(5)))
    with pytest.raises(BrokerUnavailable) as caught:
        _run(fn, RetryPolicy(max_attempts=3), clock)
    assert fn.calls == 3
    assert "gave up after 3 attempts" in " ".join(caught.value.__notes__)


def test_total_time_is_bounded() -> None:
    clock = ManualClock()
    fn = Flaky(*(BrokerRateLimited("429", retry_after_s=4.0) for _ in range(10)))
    with pytest.raises(BrokerRateLimited):
        _run(fn, RetryPolicy(max_attempts=10, max_total_s=10.0), clock)
    # Two waits of at least 4 s fit in 10 s; a third would not.
    assert fn.calls == 3
    assert clock.monotonic() <= 10.0


def test_non_retryable_failures_are_raised_at_once() -> None:
    for error in (BrokerAuthError("401", http_status=401), BrokerOrderRejected("no"),
                  ValueError("garbage")):
        clock = ManualClock()
        fn = Flaky(error)
        with pytest.raises(type(error)):
            _run(fn, RetryPolicy(max_attempts=5), clock)
        assert fn.calls == 1
        assert clock.monotonic() == 0.0


def test_bugs_propagate_without_classification_or_retry() -> None:
    clock = ManualClock()
    fn = Flaky(KeyError("missing"))
    with pytest.raises(KeyError):
        _run(fn, RetryPolicy(max_attempts=5), clock)
    assert fn.calls == 1


def test_retry_after_is_a_floor_for_the_wait() -> None:
    clock = ManualClock()
    fn = Flaky(BrokerRateLimited("429", retry_after_s=2.5))
    _run(fn, RetryPolicy(max_attempts=2, base_delay_s=0.01), clock)
    assert clock.monotonic() == 2.5


def test_backoff_is_full_jitter_below_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0)
    rng = random.Random(1)
    for retry in range(8):
        ceiling = min(3.0, 0.5 * 2 ** retry)
        for _ in range(20):
            assert 0.0 <= backoff_delay(policy, retry, rng) <= ceiling


def test_backoff_after_thousands_of_retries_stays_at_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0)
    rng = random.Random(1)
    for retry in (1023, 1024, 1100, 100_000):
        assert 0.0 <= backoff_delay(policy, retry, rng) <= 3.0


def test_same_seed_same_waits() -> None:
    waits = []
    for _ in range(2):
        clock = ManualClock()
        _run(Flaky(BrokerUnavailable("a"), BrokerUnavailable("b")),
             RetryPolicy(max_attempts=3), clock, seed=42)
        waits.append(clock.monotonic())
    assert waits[0] == waits[1] > 0


# ---------------------------------------------------------------- resubmission

def _dispatch(client_order_id: str = "acct1-strat-0001") -> Dispatch:
    return Dispatch(ts=utc(2024, 3, 1, 15), client_order_id=client_order_id,
                    intent_id="i-1", account="acct1", strategy="strat", symbol="AAPL",
                    side=Side.BUY, qty=Decimal(10), order_type=OrderType.LIMIT,
                    limit_price=Decimal("100"))


def test_submit_timeout_when_broker_took_the_order_is_never_resent() -> None:
    broker = SimBroker(SimConfig())
    broker.faults.fail_next_submits = 1
    broker.faults.accept_before_failing = True
    with pytest.raises(BrokerUnavailable):
        broker.submit(_dispatch())
    assert not safe_to_resubmit("acct1-strat-0001", broker, journal_has_ack=False)
    assert broker.submissions() == ["acct1-strat-0001"]


def test_failed_order_lookup_means_no_resend() -> None:
    broker = SimBroker(SimConfig())
    broker.faults.fail_next_submits = 1
    with pytest.raises(BrokerUnavailable):
        broker.submit(_dispatch())
    broker.faults.fail_next_reads = 1
    assert not safe_to_resubmit("acct1-strat-0001", broker, journal_has_ack=False)


def test_journaled_ack_means_no_resend_without_asking() -> None:
    broker = SimBroker(SimConfig())
    broker.faults.fail_next_reads = 1  # would fail if asked; it must not be asked
    assert not safe_to_resubmit("acct1-strat-0001", broker, journal_has_ack=True)
    assert broker.faults.fail_next_reads == 1


def test_resend_allowed_only_when_unknown_to_broker_and_unacknowledged() -> None:
    broker = SimBroker(SimConfig())
    broker.faults.fail_next_submits = 1  # refused before the broker saw it
    with pytest.raises(BrokerUnavailable):
        broker.submit(_dispatch())
    assert safe_to_resubmit("acct1-strat-0001", broker, journal_has_ack=False)
    assert broker.submit(_dispatch()).accepted
    assert not safe_to_resubmit("acct1-strat-0001", broker, journal_has_ack=False)
