"""Order-rate throttles and the repeated-execution disable. A rate limit allows `max_count`
accepted orders per sliding window; this intent would be one more, so it is refused when
count + 1 > max_count. The counts are read once per intent into the context."""

from __future__ import annotations

from ordergate.gate.context import RuleContext, duration_text
from ordergate.gate.view import RateScope
from ordergate.model.decision import Violation
from ordergate.model.intent import OrderIntent
from ordergate.policy.limits import RateLimit


def rate_key(scope: RateScope, intent: OrderIntent) -> str:
    """The key an accepted intent is counted under for a scope; the engine records with it.
    (The rules below inline these keys on the hot path; a test holds them equal.)"""
    if scope is RateScope.ACCOUNT:
        return intent.account
    if scope is RateScope.STRATEGY:
        return intent.strategy
    if scope is RateScope.SYMBOL:
        return intent.symbol
    return ""


# Enum members bound once: reading a member off its Enum class costs ~0.2 µs on CPython
# 3.11, and these comparisons run for every intent.
_GLOBAL = RateScope.GLOBAL
_ACCOUNT = RateScope.ACCOUNT
_STRATEGY = RateScope.STRATEGY
_SYMBOL = RateScope.SYMBOL


def _rate(code: str, scope: RateScope, key: str, limit: RateLimit, count: int) -> Violation:
    return Violation(
        code=code, observed=str(count + 1), limit=str(limit.max_count),
        detail=f"{scope.value} {key!r}: {count} orders in the last {duration_text(limit.window)}",
    )


def rate_global(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.rate_global
    # counted by the context (`RuleContext.count_global`) when the limit is set
    if limit is None or ctx.count_global + 1 <= limit.max_count:
        return None
    return _rate("THR-001", _GLOBAL, "", limit, ctx.count_global)


def rate_account(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.rate_account
    # counted by the context (`RuleContext.count_account`) when the limit is set
    if limit is None or ctx.count_account + 1 <= limit.max_count:
        return None
    return _rate("THR-002", _ACCOUNT, ctx.intent.account, limit, ctx.count_account)


def rate_strategy(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.rate_strategy
    # counted by the context (`RuleContext.count_strategy`) when the limit is set
    if limit is None or ctx.count_strategy + 1 <= limit.max_count:
        return None
    return _rate("THR-003", _STRATEGY, ctx.intent.strategy, limit, ctx.count_strategy)


def rate_symbol(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.rate_symbol
    # counted by the context (`RuleContext.count_symbol`) when the limit is set
    if limit is None or ctx.count_symbol + 1 <= limit.max_count:
        return None
    return _rate("THR-004", _SYMBOL, ctx.intent.symbol, limit, ctx.count_symbol)


def strategy_disabled(ctx: RuleContext) -> Violation | None:
    intent = ctx.intent
    if not ctx.view.strategy_disabled(intent.account, intent.strategy):
        return None
    return Violation(
        code="THR-006", observed="disabled", limit="enabled",
        detail=f"strategy {intent.strategy} was disabled after repeated executions",
    )
