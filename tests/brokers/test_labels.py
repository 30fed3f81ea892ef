"""Client-id rules and the order watch that turns venue states into engine events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.brokers.base import (
    BrokerBadResponse,
    BrokerError,
    BrokerNotSent,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
)
from ordergate.brokers.labels import (
    OrderWatch,
    decimal_text,
    parse_retry_after,
    parse_timestamp,
    require_label,
    require_supported,
)
from ordergate.model.events import Fill, OrderAck, OrderCanceled, OrderReject
from ordergate.model.intent import OrderType, TimeInForce

TS = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def state(status: OrderStatus, filled: str = "0", avg: str | None = None,
          qty: str = "10") -> BrokerOrder:
    return BrokerOrder(client_order_id="c-1", broker_order_id="b-1", symbol="X", status=status,
                       qty=Decimal(qty), filled_qty=Decimal(filled),
                       avg_fill_price=None if avg is None else Decimal(avg))


def test_label_at_the_limit_passes_and_one_more_is_refused() -> None:
    assert require_label("a" * 64, venue="v", field="label", max_length=64) == "a" * 64
    with pytest.raises(BrokerOrderRejected, match="65 characters"):
        require_label("a" * 65, venue="v", field="label", max_length=64)


def test_label_with_forbidden_characters_is_refused() -> None:
    with pytest.raises(BrokerOrderRejected, match="only digits"):
        require_label("a-1", venue="v", field="tag", max_length=9,
                      pattern=re.compile(r"\d+"), allowed="only digits")


def test_refusals_before_dispatch_carry_their_reason_codes() -> None:
    # ORD-012: a label the venue cannot carry; ORD-002: a type or time in force it lacks
    with pytest.raises(BrokerOrderRejected) as too_long:
        require_label("a" * 65, venue="v", field="label", max_length=64)
    assert too_long.value.code == "ORD-012"
    with pytest.raises(BrokerOrderRejected) as unsupported:
        require_supported("v", OrderType.STOP, TimeInForce.DAY,
                          frozenset({OrderType.LIMIT}), frozenset(TimeInForce))
    assert unsupported.value.code == "ORD-002"
    with pytest.raises(BrokerOrderRejected) as no_tif:
        require_supported("v", OrderType.LIMIT, TimeInForce.IOC,
                          frozenset({OrderType.LIMIT}), frozenset({TimeInForce.DAY}))
    assert no_tif.value.code == "ORD-002"
    assert BrokerOrderRejected("insufficient funds").code == "broker"


def test_observing_the_same_state_twice_reports_nothing_new() -> None:
    watch = OrderWatch()
    watch.track("c-1", "b-1")
    first = watch.observe(state(OrderStatus.PARTIALLY_FILLED, "4", "100"), TS)
    assert [type(e) for e in first] == [OrderAck, Fill]
    assert watch.observe(state(OrderStatus.PARTIALLY_FILLED, "4", "100"), TS) == []


def test_rejected_order_reports_one_reject_and_stops_being_watched() -> None:
    watch = OrderWatch()
    watch.track("c-1", "b-1")
    assert [type(e) for e in watch.observe(state(OrderStatus.REJECTED), TS)] == [OrderReject]
    assert watch.observe(state(OrderStatus.REJECTED), TS) == []
    assert watch.working() == []


def test_cancel_after_partial_fill_reports_fill_then_cancel() -> None:
    watch = OrderWatch()
    watch.track("c-1", "b-1")
    events = watch.observe(state(OrderStatus.CANCELED, "3", "99.5"), TS)
    assert [type(e) for e in events] == [OrderAck, Fill, OrderCanceled]
    assert watch.working() == []


def test_tracking_a_known_state_reports_only_later_changes() -> None:
    watch = OrderWatch()
    watch.track("c-1", known=state(OrderStatus.PARTIALLY_FILLED, "4", "100"))
    (fill,) = watch.observe(state(OrderStatus.FILLED, "10", "101.2"), TS)
    assert isinstance(fill, Fill) and fill.qty == 6 and fill.price == Decimal(102)


def test_fill_without_a_price_is_a_bad_response_and_loses_nothing() -> None:
    watch = OrderWatch()
    watch.track("c-1", "b-1")
    with pytest.raises(BrokerBadResponse, match="average fill price"):
        watch.observe(state(OrderStatus.PARTIALLY_FILLED, "4", None), TS)
    events = watch.observe(state(OrderStatus.PARTIALLY_FILLED, "4", "100"), TS)
    assert [type(e) for e in events] == [OrderAck, Fill]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 100_000)), min_size=1,
                max_size=8))
def test_fills_add_up_to_the_venue_filled_quantity_with_unique_ids(
        executions: list[tuple[int, int]]) -> None:
    total_qty = sum(q for q, _ in executions)
    watch = OrderWatch()
    watch.track("c-1", "b-1")
    filled = Decimal(0)
    notional = Decimal(0)
    events = []
    for qty, price_cents in executions:
        filled += qty
        notional += qty * Decimal(price_cents) / 100
        status = OrderStatus.FILLED if filled == total_qty else OrderStatus.PARTIALLY_FILLED
        events += watch.observe(state(status, str(filled), str(notional / filled),
                                      qty=str(total_qty)), TS)
    fills = [e for e in events if isinstance(e, Fill)]
    assert sum(f.qty for f in fills) == total_qty
    assert len({f.fill_id for f in fills}) == len(fills) == len(executions)
    assert all(f.price > 0 for f in fills)
    assert sum(isinstance(e, OrderAck) for e in events) == 1
    assert watch.working() == []


def test_timestamps_with_nanoseconds_and_offsets_become_utc() -> None:
    parsed = parse_timestamp("v", "t", "2024-03-04T10:15:30.123456789-05:00")
    assert parsed == datetime(2024, 3, 4, 15, 15, 30, 123456, tzinfo=UTC)
    assert parse_timestamp("v", "t", "2024-03-04T15:15:30Z").tzinfo is UTC
    with pytest.raises(BrokerBadResponse, match="UTC offset"):
        parse_timestamp("v", "t", "2024-03-04T15:15:30")
    # a time that exists only before year 1 once put in UTC is a bad answer, not a crash
    with pytest.raises(BrokerBadResponse, match="out of range in UTC"):
        parse_timestamp("v", "t", "0001-01-01T00:00:00+01:00")


def test_retry_after_and_decimal_text() -> None:
    assert parse_retry_after({"Retry-After": "2.5"}) == 2.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert parse_retry_after(None) is None
    assert decimal_text(Decimal("1E-5")) == "0.00001"
    assert decimal_text(Decimal("1E+2")) == "100"


@pytest.mark.parametrize("error", [BrokerOrderRejected("refused"),
                                   BrokerRateLimited("429", http_status=429),
                                   BrokerNotSent("positions read timed out")])
def test_a_submit_answered_that_nothing_was_placed_is_not_followed(error: BrokerError) -> None:
    # Nothing reached the book: following it would only ask the venue about it every poll.
    watch = OrderWatch()
    with pytest.raises(type(error)), watch.submitting("c-1"):
        raise error
    assert watch.working() == []


def test_a_submit_without_an_answer_stays_followed() -> None:
    watch = OrderWatch()
    with pytest.raises(BrokerUnavailable), watch.submitting("c-1"):
        raise BrokerUnavailable("read timed out")
    assert watch.working() == ["c-1"]
