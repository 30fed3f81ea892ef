"""Exchange calendars resolved once, at policy load, into `TradingSessions`.

The gate answers "is the market open at t" with a bisect over sorted epoch seconds, so the
calendar library stays off the hot path. The range of years comes from the policy itself,
which keeps the result independent of the day the policy is loaded.
"""

from __future__ import annotations

import difflib
import functools
import warnings
from typing import Any

from ordergate.policy.limits import TradingSessions


def _calendars() -> Any:
    # Imported lazily: the library is slow to import and only needed when a policy names
    # a calendar.
    import exchange_calendars

    return exchange_calendars


@functools.cache
def calendar_names() -> frozenset[str]:
    names: list[str] = _calendars().get_calendar_names(include_aliases=True)
    return frozenset(names)


def unknown_calendar_message(name: str) -> str | None:
    """None when `name` is a known exchange calendar, else a message with a suggestion."""
    names = calendar_names()
    if name in names:
        return None
    close = difflib.get_close_matches(name.upper(), sorted(names), n=3)
    hint = ("; did you mean " + " or ".join(f"'{c}'" for c in close) + "?" if close
            else "; use a code such as XNYS or XLON")
    return f"unknown exchange calendar '{name}'{hint}"


@functools.cache
def trading_sessions(calendar: str, first_year: int, last_year: int) -> TradingSessions:
    """Every session of `calendar` from 1 January `first_year` to 31 December `last_year`,
    split at lunch breaks, as half-open [open, close) epoch-second intervals."""
    with warnings.catch_warnings():
        # The calendar library's own pandas deprecation notices say nothing about the policy.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        schedule = _calendars().get_calendar(
            calendar, start=f"{first_year}-01-01", end=f"{last_year}-12-31"
        ).schedule
    opens: list[int] = []
    closes: list[int] = []
    for open_, break_start, break_end, close in zip(
        schedule["open"], schedule["break_start"], schedule["break_end"], schedule["close"],
        strict=True,
    ):
        has_break = break_start == break_start and break_end == break_end  # NaT != NaT
        if has_break:
            opens += [int(open_.timestamp()), int(break_end.timestamp())]
            closes += [int(break_start.timestamp()), int(close.timestamp())]
        else:
            opens.append(int(open_.timestamp()))
            closes.append(int(close.timestamp()))
    return TradingSessions(calendar=calendar, opens=tuple(opens), closes=tuple(closes))
