"""Every timestamp of an input lies between 1970-01-01 and 2200-01-01 (exclusive): one outside
is refused at the edge, naming its field, before it can be journaled. An event time near
datetime's own limits (year 1, year 9999) would make the engine's time arithmetic (the next
day roll, windows reaching back) overflow, on every replay of the journal that held it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ordergate.model.events import InputEvent
from ordergate.model.values import EARLIEST, LATEST, describe_error, utc

_decode = msgspec.json.Decoder(InputEvent).decode

EVENTS: dict[str, dict[str, Any]] = {
    "intent": {"type": "intent", "intent_id": "i", "account": "A", "strategy": "s",
               "symbol": "X", "side": "buy", "qty": "1"},
    "market": {"type": "market", "symbol": "X", "bid": "1", "ask": "2", "last": "1",
               "volume": "5"},
    "fill": {"type": "fill", "client_order_id": "c", "fill_id": "f", "qty": "1", "price": "1"},
    "account": {"type": "account", "account": "A", "cash": "100"},
    "clock": {"type": "clock"},
}
OUTSIDE = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z",
           "9999-12-31T23:59:59.999999Z"]
INSIDE = ["1970-01-01T00:00:00Z", "2026-03-02T14:30:00Z", "2199-12-31T23:59:59.999999Z"]


def test_the_window() -> None:
    assert (datetime(1970, 1, 1, tzinfo=UTC), utc(2200, 1, 1)) == (EARLIEST, LATEST)


@pytest.mark.parametrize("kind", EVENTS)
@pytest.mark.parametrize("ts", OUTSIDE)
def test_an_event_time_outside_the_window_is_refused_naming_ts(kind: str, ts: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**EVENTS[kind], "ts": ts}))
    assert describe_error(refused.value) == (
        "ts: expected a time from 1970-01-01 up to (not including) 2200-01-01, "
        f"got '{ts}'")


@pytest.mark.parametrize("kind", EVENTS)
@pytest.mark.parametrize("ts", INSIDE)
def test_an_event_time_inside_the_window_is_accepted(kind: str, ts: str) -> None:
    event = _decode(msgspec.json.encode({**EVENTS[kind], "ts": ts}))
    assert event.ts == datetime.fromisoformat(ts)


def test_a_non_utc_offset_is_still_named_before_the_window() -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**EVENTS["clock"], "ts": "9999-01-01T00:00:00+02:00"}))
    assert describe_error(refused.value) == "ts: timestamp must be UTC ('Z'), got offset +02:00"


@pytest.mark.parametrize(("ts", "shown"), [("2026-03-06T10:00:01-05:00", "-05:00"),
                                           ("2026-03-06T10:00:01+05:30", "+05:30"),
                                           ("2026-03-06T10:00:01-00:30", "-00:30")])
def test_a_non_utc_offset_is_shown_as_written(ts: str, shown: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**EVENTS["clock"], "ts": ts}))
    assert describe_error(refused.value) == f"ts: timestamp must be UTC ('Z'), got offset {shown}"
