"""Loss and drawdown of the account, from its equity marks.

daily loss   = day_start_equity - equity; breached when it REACHES the limit (>=), in
               currency (LOS-001) or in % of day_start_equity (LOS-002).
drawdown     = (high_water_mark - equity) / high_water_mark * 100; breached when it
               EXCEEDS the limit (>), LOS-003.
Percentages are compared cross-multiplied (loss * 100 >= pct * base), so no division
rounds a boundary. Missing marks are the integrity rule's job (SYS-005), these rules skip.
"""

from __future__ import annotations

from ordergate.gate.context import HUNDRED, RuleContext, pct_text
from ordergate.model.decision import Violation


def daily_loss_limit(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_daily_loss
    if limit is None:
        return None
    account = ctx.account
    if account is None:
        return None
    loss = account.day_start_equity - account.equity
    if loss < limit:
        return None
    return Violation(
        code="LOS-001", observed=str(loss), limit=str(limit),
        detail=f"account {ctx.intent.account} lost {loss} today",
    )


def daily_loss_pct(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_daily_loss_pct
    if limit is None:
        return None
    account = ctx.account
    if account is None or account.day_start_equity <= 0:
        return None
    loss = account.day_start_equity - account.equity
    if loss * HUNDRED < limit * account.day_start_equity:
        return None
    return Violation(
        code="LOS-002", observed=pct_text(loss, account.day_start_equity),
        limit=str(limit),
        detail=f"account {ctx.intent.account} lost {loss} of day-start equity "
        f"{account.day_start_equity}",
    )


def max_drawdown(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_drawdown_pct
    if limit is None:
        return None
    account = ctx.account
    if account is None or account.high_water_mark <= 0:
        return None
    drop = account.high_water_mark - account.equity
    if drop * HUNDRED <= limit * account.high_water_mark:
        return None
    return Violation(
        code="LOS-003", observed=pct_text(drop, account.high_water_mark),
        limit=str(limit),
        detail=f"equity {account.equity} vs high-water mark {account.high_water_mark}",
    )
