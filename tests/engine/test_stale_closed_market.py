"""Stale market data and market hours (engine behaviour 4 on): the age of a symbol bound to
`market_hours` counts only the time its market has been open. A position held after the close
is not stale overnight, over a weekend or a holiday (its last quote, the close, is still the
right mark); from the open the age is the time since the open until a quote arrives, so data
that does not come within `max_market_data_age` of the open, or stops during the session,
still tightens the mode. Symbols without market hours (24/7) count every hour, as before, and
so does a market-hours symbol outside the years the policy resolves sessions for.

A journal written under behaviour 1 to 3 replays as it was: there an overnight clock tick
raised SYS-002."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.harness import D, Harness, of_type
from ordergate.engine.calendar import open_since
from ordergate.model.events import Alert, CommandAction, ModeChanged, PositionSeed
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import utc
from ordergate.policy.limits import TradingSessions

# XNYS in January 2026 (EST): 14:30 to 21:00 UTC; Monday 19 January is a holiday (MLK day)
FRIDAY_CLOSE = utc(2026, 1, 9, 21, 0, 0)
MONDAY_OPEN = utc(2026, 1, 12, 14, 30, 0)
HOLIDAY_FRIDAY_CLOSE = utc(2026, 1, 16, 21, 0, 0)
TUESDAY_OPEN = utc(2026, 1, 20, 14, 30, 0)


def _world(years: tuple[int, int] = (2026, 2026), behaviour: int | None = None,
           **engine: Any) -> Harness:
    """AAPL bound to XNYS market hours, BTC trading around the clock, max age 1 minute; a
    position in each, quoted last 30 s before Friday's close."""
    extra: dict[str, Any] = {} if behaviour is None else {"behaviour": behaviour}
    world = Harness(
        {"max_market_data_age": "1m"}, {"on_stale_data": "REDUCE_ONLY", **engine},
        symbols=("AAPL", "BTC"),
        market_hours={"calendar": "XNYS", "symbols": ["AAPL"], "years": list(years)},
        **extra,
    )
    for symbol in ("AAPL", "BTC"):
        world.send(PositionSeed(ts=world.now, account="A", symbol=symbol, qty=D(10),
                                avg_price=D(100)))
    world.now = FRIDAY_CLOSE - timedelta(seconds=30)
    world.quote("AAPL", "100")
    world.quote("BTC", "100")
    return world


def _tick_at(world: Harness, moment: datetime) -> list[Any]:
    world.now = moment
    return world.tick()


def _mode(world: Harness) -> Mode:
    mode: Mode = world.state.mode
    return mode


def _stale_alerts(outputs: list[Any]) -> list[Alert]:
    return [alert for alert in of_type(outputs, Alert) if alert.code == "SYS-002"]


def _keep_btc_fresh(world: Harness, moment: datetime) -> None:
    world.now = moment
    world.quote("BTC", "100")


def test_a_position_held_over_the_weekend_is_not_stale_while_its_market_is_closed() -> None:
    world = _world()
    for moment in (FRIDAY_CLOSE, FRIDAY_CLOSE + timedelta(minutes=30),
                   utc(2026, 1, 10, 0, 8, 0), utc(2026, 1, 11, 12, 0, 0),
                   MONDAY_OPEN - timedelta(seconds=1)):
        _keep_btc_fresh(world, moment - timedelta(seconds=1))
        assert _tick_at(world, moment) == [], moment
    assert _mode(world) is Mode.ACTIVE
    assert world.state.guard.reasons() == ()


def test_a_holiday_counts_as_closed_too() -> None:
    world = _world()
    world.now = HOLIDAY_FRIDAY_CLOSE - timedelta(seconds=30)
    world.quote("AAPL", "100")
    for moment in (utc(2026, 1, 17, 0, 8, 0), utc(2026, 1, 19, 15, 0, 0),
                   TUESDAY_OPEN + timedelta(minutes=1)):
        _keep_btc_fresh(world, moment - timedelta(seconds=1))
        assert _tick_at(world, moment) == [], moment
    assert _mode(world) is Mode.ACTIVE


def test_from_the_open_a_quote_must_come_within_max_market_data_age() -> None:
    world = _world()
    _keep_btc_fresh(world, MONDAY_OPEN + timedelta(seconds=59))
    # the open counts as the quote's time: one minute of session without data is allowed
    assert _tick_at(world, MONDAY_OPEN + timedelta(minutes=1)) == []
    outputs = _tick_at(world, MONDAY_OPEN + timedelta(minutes=1, seconds=1))
    (alert,) = _stale_alerts(outputs)
    assert alert.message == (
        "AAPL: no market data in the 0:01:01 its XNYS session has been open "
        "(last at 2026-01-09T20:59:30Z; limit 0:01:00)")
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.REDUCE_ONLY
    assert [reason.code for reason in change.reasons] == ["SYS-002"]


def test_a_quote_at_the_open_keeps_the_gateway_active() -> None:
    world = _world()
    world.now = MONDAY_OPEN + timedelta(seconds=5)
    world.quote("AAPL", "101")
    world.quote("BTC", "100")
    assert _tick_at(world, MONDAY_OPEN + timedelta(seconds=65)) == []
    assert _mode(world) is Mode.ACTIVE


def test_data_that_stops_during_the_session_still_tightens_the_mode() -> None:
    world = _world()
    world.now = MONDAY_OPEN + timedelta(hours=1)
    world.quote("AAPL", "101")
    _keep_btc_fresh(world, MONDAY_OPEN + timedelta(hours=1, minutes=1))
    outputs = _tick_at(world, MONDAY_OPEN + timedelta(hours=1, minutes=1, seconds=1))
    (alert,) = _stale_alerts(outputs)
    assert alert.message == "AAPL: last market data is 0:01:01 old (limit 0:01:00)"
    assert _mode(world) is Mode.REDUCE_ONLY
    # stale at the close stays listed through the night (nothing fresh came) ...
    _keep_btc_fresh(world, utc(2026, 1, 13, 0, 7, 59))
    assert _tick_at(world, utc(2026, 1, 13, 0, 8, 0)) == []
    assert world.state.guard.has("data:stale:AAPL")
    # ... and clears with the next quote, the mode held until an operator resumes
    world.quote("AAPL", "101")
    assert not world.state.guard.has("data:stale:AAPL")
    assert _mode(world) is Mode.REDUCE_ONLY


def test_a_symbol_without_market_hours_counts_every_hour() -> None:
    world = _world()
    world.now = FRIDAY_CLOSE
    world.quote("AAPL", "100")  # AAPL is fresh anyway
    outputs = _tick_at(world, utc(2026, 1, 10, 0, 8, 0))
    (alert,) = _stale_alerts(outputs)
    assert alert.message == "BTC: last market data is 3:08:30 old (limit 0:01:00)"
    assert _mode(world) is Mode.REDUCE_ONLY
    assert not world.state.guard.has("data:stale:AAPL")


def test_outside_the_resolved_years_every_hour_counts() -> None:
    world = _world(years=(2025, 2025))
    _keep_btc_fresh(world, utc(2026, 1, 10, 0, 7, 59))
    (alert,) = _stale_alerts(_tick_at(world, utc(2026, 1, 10, 0, 8, 0)))
    assert alert.message == (
        "AAPL: last market data is 3:08:30 old (limit 0:01:00); the policy resolves AAPL's "
        "XNYS sessions only from 2025-01-02 to 2025-12-31 (market_hours.years), so every "
        "hour counts outside them")


def test_a_resumed_gateway_stays_active_through_the_next_night() -> None:
    world = _world()
    world.now = MONDAY_OPEN + timedelta(minutes=5)
    world.tick()  # no AAPL quote 5 minutes into the session: stale
    assert _mode(world) is Mode.REDUCE_ONLY
    world.quote("AAPL", "100")
    world.quote("BTC", "100")
    world.command(CommandAction.RESUME, operator="ops", reason="feed back")
    assert _mode(world) is Mode.ACTIVE
    world.now = utc(2026, 1, 12, 20, 59, 59)
    world.quote("AAPL", "100")
    _keep_btc_fresh(world, utc(2026, 1, 13, 0, 7, 59))
    assert _tick_at(world, utc(2026, 1, 13, 0, 8, 0)) == []
    assert _mode(world) is Mode.ACTIVE


@pytest.mark.parametrize("behaviour", [1, 2, 3])
def test_older_behaviours_count_every_hour_as_they_did(behaviour: int) -> None:
    world = _world(behaviour=behaviour)
    assert world.state.behaviour == behaviour
    _keep_btc_fresh(world, utc(2026, 1, 10, 0, 7, 59))
    outputs = _tick_at(world, utc(2026, 1, 10, 0, 8, 0))
    (alert,) = _stale_alerts(outputs)
    assert alert.message == "AAPL: last market data is 3:08:30 old (limit 0:01:00)"
    assert _mode(world) is Mode.REDUCE_ONLY


# ---------------------------------------------------------------- open_since


def _sessions(*spans: tuple[int, int]) -> TradingSessions:
    return TradingSessions(calendar="TEST", opens=tuple(open_ for open_, _ in spans),
                           closes=tuple(close for _, close in spans))


def _at(seconds: int) -> datetime:
    return utc(1970, 1, 1) + timedelta(seconds=seconds)


def test_open_since_is_the_open_of_the_span_now_is_in() -> None:
    # a morning and an afternoon session (a lunch break from 200 to 300), then a gap
    sessions = _sessions((100, 200), (300, 400), (1000, 1100))
    assert open_since(sessions, _at(150), _at(0)) == _at(100)
    assert open_since(sessions, _at(150), _at(120)) == _at(120)  # never before the quote
    assert open_since(sessions, _at(200), _at(0)) is None  # [open, close): closed at 200
    assert open_since(sessions, _at(350), _at(150)) == _at(300)  # from the end of lunch
    assert open_since(sessions, _at(999), _at(0)) is None


def test_open_since_runs_back_over_sessions_that_meet() -> None:
    # a 24/5 calendar: Monday to Friday each a full day, meeting at midnight
    day = 86_400
    sessions = _sessions(*((n * day, (n + 1) * day) for n in range(5)),
                         *((n * day, (n + 1) * day) for n in range(7, 12)))
    assert open_since(sessions, _at(4 * day + 5), _at(0)) == _at(0)
    assert open_since(sessions, _at(4 * day + 5), _at(2 * day + 7)) == _at(2 * day + 7)
    assert open_since(sessions, _at(6 * day), _at(0)) is None  # the weekend
    assert open_since(sessions, _at(8 * day), _at(0)) == _at(7 * day)


def test_open_since_outside_the_resolved_sessions_counts_from_the_quote() -> None:
    sessions = _sessions((100, 200), (300, 400))
    assert open_since(sessions, _at(50), _at(10)) == _at(10)
    assert open_since(sessions, _at(400), _at(350)) == _at(350)
    assert open_since(sessions, _at(5000), _at(350)) == _at(350)


def test_a_late_snapshot_received_while_closed_clears_a_stale_reason() -> None:
    """A quote stamped before the close but arriving after it is the mark the closed market
    keeps: it clears the reason the session's silence raised."""
    world = _world()
    world.now = MONDAY_OPEN + timedelta(hours=1)
    world.quote("AAPL", "101")
    _tick_at(world, MONDAY_OPEN + timedelta(hours=1, minutes=2))
    assert world.state.guard.has("data:stale:AAPL")
    assert _tick_at(world, utc(2026, 1, 12, 21, 5, 0)) == []  # closed: nothing new
    world.send(MarketSnapshot(ts=utc(2026, 1, 12, 20, 59, 0), symbol="AAPL",
                              bid=D("100.99"), ask=D("101.01"), last=D(101)))
    assert not world.state.guard.has("data:stale:AAPL")
