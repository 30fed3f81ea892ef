"""The intent's own timestamp must be close to the gateway's event time: an intent from a
sender whose clock is off (or a delayed replay of an old one) was decided on a world that
no longer exists. This is a check on the message, so it stops reducing intents too."""

from __future__ import annotations

from ordergate.gate.context import RuleContext, duration_text
from ordergate.model.decision import Violation


def intent_timestamp_skew(ctx: RuleContext) -> Violation | None:
    max_skew = ctx.limits.max_intent_skew
    if max_skew is None:
        return None
    skew = abs(ctx.intent.ts - ctx.view.now)
    if skew <= max_skew:
        return None
    return Violation(
        code="CLK-001", observed=duration_text(skew), limit=duration_text(max_skew),
        detail=f"intent ts {ctx.intent.ts.isoformat()} vs event time "
        f"{ctx.view.now.isoformat()}",
    )
