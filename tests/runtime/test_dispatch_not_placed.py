"""A submit the venue refused as rate limited (HTTP 429), or one the adapter never sent
(`BrokerNotSent`), is a definite answer that nothing was placed: the order is rejected at
once with a reason that says so (and the venue's Retry-After), its reservation is freed, it
is never asked after nor sent again, and the failure counts for the broker_submit breaker as
classified. A resend refused as rate limited is held, never sent a third time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ordergate.brokers.base import (
    BrokerCapabilities,
    BrokerError,
    BrokerNotSent,
    BrokerOrder,
    BrokerPosition,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.labels import PriceLimit
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy, intent, quote
from ordergate.model.events import (
    AccountFunding,
    DependencyStatus,
    Dispatch,
    InputEvent,
    OrderReject,
)
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.values import utc
from ordergate.resilience.errors import Category, Classification
from ordergate.runtime.dispatch import LOST_CODE, SUBMIT_DEPENDENCY, Dispatcher
from ordergate.runtime.loop import Runtime

TS = utc(2026, 3, 2, 15, 0)
CID = "og-nothing-placed-1"


def _order(ts: datetime = TS) -> Dispatch:
    return Dispatch(ts=ts, client_order_id=CID, intent_id="i-1", account="A", strategy="s",
                    symbol="AAPL", side=Side.BUY, qty=Decimal(10), order_type=OrderType.LIMIT,
                    limit_price=Decimal("100.00"))


def _rate_limited() -> BrokerError:
    return BrokerRateLimited("venue: submit: HTTP 429: rate limit exceeded", http_status=429,
                             retry_after_s=30)


def _not_sent_timeout() -> BrokerError:
    try:
        raise BrokerUnavailable("venue: positions: timed out")
    except BrokerUnavailable as exc:
        try:
            raise BrokerNotSent("venue: submit: not sent, the position read failed: "
                                f"{exc}") from exc
        except BrokerNotSent as not_sent:
            return not_sent


class RefusingVenue:
    """A venue double whose next submits raise `errors` (nothing is placed); later submits
    are taken. `unique=True` refuses a repeated client order id (Alpaca); `unique=False`
    takes it (a Tradier tag, a Deribit label). Every call is counted."""

    def __init__(self, *errors: BrokerError, unique: bool) -> None:
        self.errors = list(errors)
        self.unique = unique
        self.sent: list[str] = []
        self.lookups: list[str] = []
        self.orders: list[BrokerOrder] = []

    @property
    def name(self) -> str:
        return "refusing"

    @property
    def capabilities(self) -> BrokerCapabilities:
        return BrokerCapabilities(order_types=frozenset(OrderType),
                                  time_in_force=frozenset(TimeInForce),
                                  unique_client_order_id=self.unique)

    def submit(self, order: Dispatch) -> SubmitResult:
        self.sent.append(order.client_order_id)
        if self.errors:
            raise self.errors.pop(0)
        self.orders.append(BrokerOrder(client_order_id=order.client_order_id,
                                       broker_order_id=f"R-{len(self.orders) + 1}",
                                       symbol=order.symbol, status=OrderStatus.NEW,
                                       qty=order.qty))
        return SubmitResult(accepted=True, broker_order_id=self.orders[-1].broker_order_id)

    def cancel(self, client_order_id: str) -> None:
        raise AssertionError("no cancel expected")

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        self.lookups.append(client_order_id)
        found = [o for o in self.orders if o.client_order_id == client_order_id]
        return found[0] if found else None

    def open_orders(self) -> list[BrokerOrder]:
        return list(self.orders)

    def positions(self) -> list[BrokerPosition]:
        return []

    def poll_events(self, until: datetime) -> list[InputEvent]:
        return []

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        return None

    def server_time(self) -> datetime:
        return TS


class Watching:
    """A CallMonitor that records what the Dispatcher reports."""

    def __init__(self) -> None:
        self.failures: list[Classification] = []

    def allow_submit(self) -> bool:
        return True

    def succeeded(self, dependency: str, ts: datetime) -> list[InputEvent]:
        return []

    def failed(self, verdict: Classification, ts: datetime) -> list[InputEvent]:
        self.failures.append(verdict)
        return []


def _rejects(events: list[InputEvent]) -> list[OrderReject]:
    return [e for e in events if isinstance(e, OrderReject)]


NOT_PLACED = [
    pytest.param(_rate_limited, Category.RATE_LIMIT, "Retry-After 30 s", id="429"),
    pytest.param(_not_sent_timeout, Category.TRANSIENT_NETWORK, "never left for refusing",
                 id="not-sent-timeout"),
]


@pytest.mark.parametrize("unique", [True, False], ids=["refuses-repeat-ids", "takes-repeats"])
@pytest.mark.parametrize(("error", "category", "words"), NOT_PLACED)
def test_a_submit_that_placed_nothing_is_rejected_at_once_and_never_asked_after(
        error: Callable[[], BrokerError], category: Category, words: str, unique: bool) -> None:
    venue = RefusingVenue(error(), unique=unique)
    monitor = Watching()
    dispatcher = Dispatcher(venue, lambda: 10)
    dispatcher.attach(monitor)
    outcome = dispatcher.submit(_order(), 1)
    assert not outcome.unresolved
    [reject] = _rejects(outcome.events)
    assert reject.client_order_id == CID and reject.code == "broker"
    assert reject.reason.startswith("not placed:") and words in reject.reason
    assert venue.sent == [CID] and venue.lookups == []
    # Counted for the broker_submit breaker and health as the taxonomy classifies it.
    assert [(v.dependency, v.category) for v in monitor.failures] == [
        (SUBMIT_DEPENDENCY, category)]
    [down] = [e for e in outcome.events if isinstance(e, DependencyStatus)]
    assert down.dependency == SUBMIT_DEPENDENCY and not down.healthy
    assert category.value in down.detail
    # Ended: nothing for a cancel or a poll to wait on.
    dispatcher.poll(TS + timedelta(seconds=120))
    assert venue.sent == [CID] and venue.lookups == []


def test_a_429_without_retry_after_still_says_it_was_not_placed() -> None:
    venue = RefusingVenue(BrokerRateLimited("venue: 429", http_status=429), unique=True)
    [reject] = _rejects(Dispatcher(venue, lambda: 10).submit(_order(), 1).events)
    assert reject.reason.startswith("not placed: refusing refused the submit as rate limited")
    assert "Retry-After" not in reject.reason
    # the same intent_id would be answered its first decision and send nothing
    assert "send it as a new intent (a new intent_id)" in reject.reason
    assert venue.sent == [CID] and venue.lookups == []


@pytest.mark.parametrize("unique", [True, False], ids=["refuses-repeat-ids", "takes-repeats"])
@pytest.mark.parametrize(("error", "category", "words"), NOT_PLACED)
def test_runtime_frees_the_reservation_of_an_order_that_was_not_placed(
        tmp_path: Path, error: Callable[[], BrokerError], category: Category, words: str,
        unique: bool) -> None:
    venue = RefusingVenue(unique=unique)
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), venue)
    try:
        runtime.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                         quote("AAPL", 0)])
        venue.errors.append(error())
        runtime.process([quote("AAPL", 1), intent("open", Side.BUY, 10, 1)])
        [cid] = venue.sent
        assert cid not in runtime.awaiting
        status = runtime.status()
        assert cid not in {o.client_order_id for o in status.open_orders}
        assert all(p.working_buy == 0 for p in status.positions if p.symbol == "AAPL")
        for second in range(2, 90, 8):  # later batches neither ask after it nor resend it
            runtime.process([quote("AAPL", second)])
        assert venue.sent == [cid] and venue.lookups == []
    finally:
        runtime.close()


def test_a_resend_refused_as_rate_limited_is_held_never_sent_a_third_time() -> None:
    """The first submit had no answer (the order may be live), so a 429 on its resend is not a
    reject; nor is the order sent again at once against the venue's Retry-After: it is held,
    only asked about, and declared lost after the wait."""
    venue = RefusingVenue(BrokerUnavailable("venue: submit: timed out"), _rate_limited(),
                          unique=True)
    dispatcher = Dispatcher(venue, lambda: 10)
    first = dispatcher.submit(_order(), 1)  # timeout -> asked (not found) -> resent -> 429
    assert first.unresolved and not _rejects(first.events)
    assert venue.sent == [CID, CID]
    assert dispatcher.resend_is_held(CID)
    assert "rate limited (Retry-After 30 s)" in dispatcher.resolve(_order(), 1).detail
    for second in range(1, 60, 10):  # the runtime's later retries: only asking
        dispatcher.poll(TS + timedelta(seconds=second))
        later = dispatcher.resolve(_order(), 1)
        assert later.unresolved and not _rejects(later.events)
    assert venue.sent == [CID, CID]
    dispatcher.poll(TS + timedelta(seconds=60))
    [lost] = _rejects(dispatcher.resolve(_order(), 1).events)
    assert lost.code == LOST_CODE
    assert venue.sent == [CID, CID]
