"""Volume participation: the order as a share of the symbol's traded volume,
qty * 100 > max_volume_participation_pct * volume breaks it. With the limit set, a snapshot
without a volume (or with zero volume) cannot show the order is small enough, so it breaks
the rule too (fail closed, invariant 5): set the limit only where the feed carries volume."""

from __future__ import annotations

from ordergate.gate.context import HUNDRED, RuleContext, pct_text
from ordergate.model.decision import Violation


def volume_participation(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_volume_participation_pct
    if limit is None:
        return None
    qty = ctx.intent.qty
    market = ctx.market
    volume = None if market is None else market.volume
    if volume is None or not volume.is_finite() or volume <= 0:
        return Violation(
            code="LIQ-001", observed=f"volume={volume}", limit=str(limit),
            detail=f"no traded volume for {ctx.intent.symbol} to measure participation against",
        )
    if qty * HUNDRED <= limit * volume:
        return None
    return Violation(
        code="LIQ-001", observed=pct_text(qty, volume), limit=str(limit),
        detail=f"qty {qty} of volume {volume}",
    )
