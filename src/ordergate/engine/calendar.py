"""When the trading day rolls (00:00 UTC, or the session close of an exchange calendar), and
since when a symbol's market has been open (`open_since`, for the age of its market data).

The answer depends only on the calendar's rules and the date asked about, never on today's
date: calendars are built with explicit bounds per year (exchange_calendars would otherwise
bound them relative to the wall clock), and each date's close is memoized.
"""

from __future__ import annotations

import warnings
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from ordergate.policy.limits import TradingSessions

# Holidays never span more than a couple of weeks; a search this long finding no session
# means the calendar has none (or ended), which is a configuration problem.
_SEARCH_DAYS = 21


class CalendarUnavailable(ValueError):
    """The named calendar is unknown or has no session near the requested time."""


@lru_cache(maxsize=64)
def _calendar(name: str, year: int) -> Any:
    # Imported here, not at module load: the library (and pandas) takes over a second to
    # import, and only policies with a `day_roll_calendar` need it.
    import exchange_calendars

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return exchange_calendars.get_calendar(
                name, start=f"{year - 1}-12-01", end=f"{year + 1}-01-31"
            )
    except exchange_calendars.errors.CalendarError as exc:
        raise CalendarUnavailable(f"day_roll_calendar: {exc}") from exc
    except ValueError as exc:  # bounds outside what the calendar supports
        raise CalendarUnavailable(f"day_roll_calendar: {name}: {exc}") from exc


@lru_cache(maxsize=4096)
def session_close(name: str, day: date) -> datetime | None:
    """The UTC close of the session on `day`, or None when `day` is not a session."""
    calendar = _calendar(name, day.year)
    label = day.isoformat()
    with warnings.catch_warnings():
        # pandas deprecation noise from inside exchange_calendars; the values are unaffected
        warnings.simplefilter("ignore")
        if not calendar.is_session(label):
            return None
        close: datetime = calendar.session_close(label).to_pydatetime()
    return close.astimezone(UTC)


def next_roll(now: datetime, calendar: str | None) -> datetime:
    """The first day-roll instant strictly after `now`."""
    if calendar is None:
        return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    day = now.date() - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        close = session_close(calendar, day)
        if close is not None and close > now:
            return close
        day += timedelta(days=1)
    raise CalendarUnavailable(
        f"day_roll_calendar: {calendar} has no session close within {_SEARCH_DAYS} days "
        f"after {now.isoformat()}"
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


def resolved(sessions: TradingSessions, now: datetime) -> bool:
    """Whether `now` falls within the sessions a policy resolved (its `market_hours.years`):
    from the first session's open up to the last one's close."""
    seconds = (now - _EPOCH) // _ONE_SECOND
    return bool(sessions.opens) and sessions.opens[0] <= seconds < sessions.closes[-1]


def open_since(sessions: TradingSessions, now: datetime, earliest: datetime) -> datetime | None:
    """Since when the market of `sessions` has been open without a break at `now`, but not
    before `earliest`: the open of the session `now` is in (the end of its lunch break, when
    it has one), or of the first of a run of sessions that meet (a 24/5 calendar's Monday).
    None while the market is closed, as the gate's MKT-001 sees it (the same half-open
    [open, close) seconds). Outside the resolved sessions (`resolved`) the calendar says
    nothing, and the answer is `earliest` itself: every second counts, as for a symbol
    without market hours."""
    if not resolved(sessions, now):
        return earliest
    opens, closes = sessions.opens, sessions.closes
    seconds = (now - _EPOCH) // _ONE_SECOND
    index = bisect_right(opens, seconds) - 1
    if seconds >= closes[index]:
        return None
    floor = (earliest - _EPOCH) // _ONE_SECOND
    # back over sessions that meet, only as far as `earliest` (sessions since then, at most)
    while index > 0 and opens[index] > floor and closes[index - 1] >= opens[index]:
        index -= 1
    return max(earliest, _EPOCH + timedelta(seconds=opens[index]))
