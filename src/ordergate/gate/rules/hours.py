"""Market hours (the policy's resolved sessions, looked up with a bisect on event time) and
canary mode (only the canary symbols may trade)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta

from ordergate.gate.context import RuleContext
from ordergate.model.decision import Violation

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


def market_closed(ctx: RuleContext) -> Violation | None:
    sessions = ctx.limits.sessions
    if sessions is None:
        return None
    now = ctx.view.now
    epoch_seconds = (now - _EPOCH) // _ONE_SECOND
    index = bisect_right(sessions.opens, epoch_seconds) - 1
    if index >= 0 and epoch_seconds < sessions.closes[index]:
        return None
    return Violation(
        code="MKT-001", observed=now.isoformat(), limit=f"{sessions.calendar} sessions",
        detail=f"{ctx.intent.symbol} is outside its {sessions.calendar} trading session",
    )


def canary_not_allowed(ctx: RuleContext) -> Violation | None:
    if ctx.limits.canary_allowed:
        return None
    return Violation(
        code="MKT-002", observed=ctx.intent.symbol, limit="a canary symbol",
        detail="canary mode: only the canary symbols may trade",
    )
