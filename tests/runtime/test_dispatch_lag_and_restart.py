"""Two edges of an order whose submit had no answer: at a venue that refuses a repeated client
order id, a refused resend is not a reject while the venue's lookups lag (the refusal may be of
the duplicate of a live order); and after a restart the wait before an order is declared lost
starts again, instead of counting the time the gateway was down."""

from __future__ import annotations

from datetime import timedelta

from tests.runtime.test_dispatch_unknown_outcome import (
    CID,
    TS,
    LaggingVenue,
    _order,
    _rejects,
)

from ordergate.brokers.base import BrokerOrderRejected, SubmitResult
from ordergate.model.events import Dispatch
from ordergate.runtime.dispatch import LOST_CODE, Dispatcher


def test_a_refused_resend_is_not_a_reject_while_the_venue_lags_behind_the_live_order() -> None:
    venue = LaggingVenue(unique=True, hidden_lookups=2)
    venue.take_then_drop = 1  # the venue took the order; its answer was lost
    dispatcher = Dispatcher(venue, lambda: 10)
    first = dispatcher.submit(_order(), 1)  # lookup 1 lags: resent, refused as a duplicate;
    assert first.unresolved and not _rejects(first.events)  # lookup 2 lags too
    assert len(venue.live()) == 1
    dispatcher.poll(TS + timedelta(seconds=1))
    later = dispatcher.resolve(_order(), 1)  # the venue shows it now: the original order
    assert not later.unresolved and not _rejects(later.events)
    assert len(venue.live()) == 1


class RefusingVenue(LaggingVenue):
    """Never saw the order (the connection dropped first) and refuses every resend of it."""

    def submit(self, order: Dispatch) -> SubmitResult:
        if self.sent:
            self.sent.append(order.client_order_id)
            raise BrokerOrderRejected("refusing: submit: HTTP 422: insufficient buying power",
                                      http_status=422)
        return super().submit(order)


def test_a_resend_refused_for_itself_is_rejected_once_the_venue_never_showed_it() -> None:
    venue = RefusingVenue(unique=True)
    venue.drop_before_taking = 1
    dispatcher = Dispatcher(venue, lambda: 10)
    first = dispatcher.submit(_order(), 1)
    assert first.unresolved and not _rejects(first.events)
    dispatcher.poll(TS + timedelta(seconds=1))
    waiting = dispatcher.resolve(_order(), 1)  # resent, refused, not shown: the wait starts
    assert waiting.unresolved and not _rejects(waiting.events)
    dispatcher.poll(TS + timedelta(seconds=61))
    refused = dispatcher.resolve(_order(), 1)
    [reject] = _rejects(refused.events)
    assert reject.code == "broker" and "insufficient buying power" in reject.reason
    assert venue.live() == []


def test_after_a_restart_the_wait_starts_again_instead_of_counting_the_downtime() -> None:
    venue = LaggingVenue(hidden_lookups=100)  # takes repeats; its order list lags
    venue.orders.extend([])  # nothing visible: a lookup misses until the lag ends
    dispatcher = Dispatcher(venue, lambda: 10)  # the restarted process
    order = _order()  # journaled at TS, before the crash; the gateway was then down 2 minutes
    at_start = dispatcher.resolve(order, 1, recovering=True)
    assert at_start.unresolved and not _rejects(at_start.events)
    restarted = TS + timedelta(minutes=2)
    dispatcher.advance(restarted)  # the first batch after start-up
    first_retry = dispatcher.resolve(order, 1)
    assert first_retry.unresolved and not _rejects(first_retry.events)
    dispatcher.advance(restarted + timedelta(seconds=59))
    assert not _rejects(dispatcher.resolve(order, 1).events)
    dispatcher.advance(restarted + timedelta(seconds=60))
    [reject] = _rejects(dispatcher.resolve(order, 1).events)
    assert reject.code == LOST_CODE and reject.client_order_id == CID
    assert venue.sent == []  # never sent by this process
