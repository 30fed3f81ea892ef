"""How far an intent's or a market snapshot's own `ts` may be from the wall clock when it
arrives, for the shells that take inputs from outside (the HTTP service, the embedded Gateway).

Event time never goes back: the engine's clock is the latest `ts` it has seen, and the
engine cannot refuse a timestamp without changing how journals replay. One intent stamped
two days ahead (local time written with a 'Z') would roll the trading day, wipe the daily
loss, cancel every working DAY order at the session close and leave every correctly stamped
intent after it denied until the wall clock caught up. So the shell refuses it at its
boundary, before anything is journaled.

Ahead: the policy's `max_intent_skew` for the intent when set, else `MAX_TS_AHEAD`. Behind:
`MAX_TS_BEHIND`: an intent in the past moves no clock, but one older than the engine
remembers decided intents (two trading days) may be a retry it can no longer recognise. A
retry of an intent already decided is answered before this is looked at, whatever its age.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

# How far ahead of the wall clock a new intent (when the policy sets no max_intent_skew) or a
# market snapshot may be stamped: a timestamp further ahead would hold every later intent to
# a clock that is not yet.
MAX_TS_AHEAD = timedelta(seconds=5)
# How far behind it a new intent may be stamped: within what the engine remembers of decided
# intents (today's and the previous trading day's), so an old retry is still recognised.
MAX_TS_BEHIND = timedelta(hours=24)


class TimeBound(msgspec.Struct, frozen=True, kw_only=True):
    """How far a NEW intent's `ts` may be from the wall clock at its arrival (`now`).

    Ahead: the policy's `max_intent_skew` when set, else `ahead`. Event time never goes back,
    so one intent stamped in 2099 would leave every later intent of every account denied
    (stale data, clock skew), across restarts. Behind: `behind`, further than ahead: an
    intent in the past moves no clock, but one older than the engine remembers decided
    intents (two trading days) may be a retry it can no longer recognise. A retry of an
    intent already decided is answered before this is looked at, however old."""

    now: datetime
    ahead: timedelta
    behind: timedelta


def intent_out_of_time(ts: datetime, bound: TimeBound, skew: timedelta | None, *,
                       owner: str = "server") -> str | None:
    """Why a NEW intent stamped `ts` is refused under `bound` (`skew`: the policy's
    max_intent_skew for it, or None), in words for its caller; None when it is accepted.
    `owner` names whose clock `bound.now` is ("server", "gateway")."""
    now = bound.now
    ahead = bound.ahead if skew is None else skew
    said = f"the {owner}'s default" if skew is None else "the policy's max_intent_skew"
    stamp = _rfc3339(ts)
    clock = _rfc3339(now)
    if ts - now > ahead:
        return (f"{stamp} is {span(ts - now)} ahead of the {owner}'s clock ({clock}); at most "
                f"{span(ahead)} ahead is accepted ({said}). Stamp intents with the time they "
                "are sent")
    if now - ts > bound.behind:
        return (f"{stamp} is {span(now - ts)} behind the {owner}'s clock ({clock}); a new "
                f"intent may be at most {span(bound.behind)} old (a retry of an intent already "
                "decided is answered whatever its age)")
    return None


def snapshot_out_of_time(ts: datetime, now: datetime, *, owner: str = "server") -> str | None:
    """Why a market snapshot stamped `ts` is refused at `now`, or None. Only a snapshot too
    far AHEAD is: one from 2099 would leave every other quote stale and every later intent
    denied, while an old one is harmless (journaled, and ignored when older than the
    symbol's latest)."""
    if ts - now <= MAX_TS_AHEAD:
        return None
    return (f"{_rfc3339(ts)} is ahead of the {owner}'s clock ({_rfc3339(now)}) by more than "
            f"{MAX_TS_AHEAD.total_seconds():g} s, the most accepted; stamp snapshots with the "
            "time they were taken")


def line_ahead_of_clock(ts: datetime, now: datetime, skew: timedelta | None) -> str | None:
    """Why an event line stamped `ts`, read from a followed events file at `now` (the
    gateway's wall clock), is refused, or None. A followed file is fed live, so a line far
    ahead of the clock is mis-stamped, and journaling it would move event time there for
    good. The bound is the one the HTTP service and the embedded Gateway hold new intents
    to: an intent's `skew` (the policy's max_intent_skew) when set, else `MAX_TS_AHEAD`
    (every other event: `MAX_TS_AHEAD`). The gate cannot judge a stamp ahead itself
    (CLK-001): the engine's clock moves to the intent's ts before it is judged. Lines behind
    the clock are a backlog: accepted."""
    ahead = MAX_TS_AHEAD if skew is None else skew
    if ts - now <= ahead:
        return None
    said = "the gateway's default" if skew is None else "the policy's max_intent_skew"
    return (f"field ts: {_rfc3339(ts)} is {span(ts - now)} ahead of the gateway's clock "
            f"({_rfc3339(now)}); a followed file's events may be at most {span(ahead)} "
            f"ahead ({said}), or event time would move there for every later line. Stamp "
            "events with the time they are written")


def span(delta: timedelta) -> str:
    """A duration in the unit a reader takes in at once: days, hours or seconds."""
    seconds = delta.total_seconds()
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:,.0f} days"
    if seconds >= 2 * 3_600:
        return f"{seconds / 3_600:.0f} h"
    return f"{seconds:g} s"


def _rfc3339(stamp: datetime) -> str:
    return stamp.isoformat().replace("+00:00", "Z")
