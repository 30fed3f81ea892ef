"""Fail closed on what the gate cannot trust (invariant 5): missing, stale or invalid market
data, unknown instruments, missing critical configuration, non-finite risk inputs.

These deny every intent that adds risk. Whether they stop a risk-reducing intent is decided
by the rule table (`gate.table`): an order with its own limit price is let through, one whose
fill price depends on the feed (market, stop) is not, nor, when the quote itself is bad, one
whose price the policy bounds (a collar, an order value cap) that the quote would check.
"""

from __future__ import annotations

from decimal import Decimal

from ordergate.gate.context import RuleContext, duration_text
from ordergate.model.decision import Violation
from ordergate.model.market import MarketSnapshot


def _bad(name: str, value: Decimal | None) -> str:
    if value is None or (value.is_finite() and value > 0):
        return ""
    return f"{name}={value}"


def invalid_fields(market: MarketSnapshot) -> str:
    """Which fields of a snapshot are NaN, infinite, zero or negative, or "crossed"; "" if none.
    Volume may be zero (nothing traded yet) but not negative or non-finite."""
    bad = [text for text in (
        _bad("bid", market.bid), _bad("ask", market.ask), _bad("last", market.last),
    ) if text]
    volume = market.volume
    if volume is not None and not (volume.is_finite() and volume >= 0):
        bad.append(f"volume={volume}")
    bid, ask = market.bid, market.ask
    if not bad and bid is not None and ask is not None and bid > ask:
        bad.append(f"crossed bid={bid} > ask={ask}")
    return " ".join(bad)


def market_data_missing(ctx: RuleContext) -> Violation | None:
    market = ctx.market
    if market is None:
        return Violation(
            code="SYS-001", observed="none", limit="a snapshot",
            detail=f"no market data for {ctx.intent.symbol}",
        )
    if ctx.reference is not None or invalid_fields(market):
        return None
    return Violation(
        code="SYS-001", observed="no price", limit="a two-sided quote or a last price",
        detail=f"market data for {ctx.intent.symbol} has no usable price",
    )


def market_data_stale(ctx: RuleContext) -> Violation | None:
    market = ctx.market
    max_age = ctx.limits.max_market_data_age
    if market is None or max_age is None:
        return None
    age = ctx.view.now - market.ts
    if age <= max_age:
        return None
    return Violation(
        code="SYS-002", observed=duration_text(age), limit=duration_text(max_age),
        detail=f"market data for {ctx.intent.symbol} is older than max_market_data_age",
    )


def market_data_invalid(ctx: RuleContext) -> Violation | None:
    market = ctx.market
    if market is None:
        return None
    bid, ask, last, volume = market.bid, market.ask, market.last, market.volume
    if (  # each price finite and positive, inlined: this runs for every intent
        (bid is None or (bid.is_finite() and bid > 0))
        and (ask is None or (ask.is_finite() and ask > 0))
        and (last is None or (last.is_finite() and last > 0))
        and (volume is None or (volume.is_finite() and volume >= 0))
        and (bid is None or ask is None or bid <= ask)
    ):
        return None  # the common case, without building the description
    bad = invalid_fields(market)
    if not bad:
        return None
    return Violation(
        code="SYS-003", observed=bad, limit="finite, positive, bid <= ask",
        detail=f"market data for {ctx.intent.symbol} is invalid",
    )


def instrument_unknown(ctx: RuleContext) -> Violation | None:
    limits = ctx.limits
    if not limits.require_instrument or limits.instrument is not None:
        return None
    return Violation(
        code="SYS-004", observed="none", limit="instrument metadata",
        detail=f"the policy requires instrument metadata and {ctx.intent.symbol} has none",
    )


def market_data_age_missing(ctx: RuleContext) -> Violation | None:
    if ctx.limits.max_market_data_age is not None:
        return None
    return Violation(
        code="SYS-005", observed="missing", limit="required",
        detail="limits.max_market_data_age is not set: market data freshness cannot be checked",
    )


def account_marks_missing(ctx: RuleContext) -> Violation | None:
    """A loss limit is set but the account's equity marks needed to check it are absent."""
    limits = ctx.limits
    needs_day_start = limits.max_daily_loss is not None or limits.max_daily_loss_pct is not None
    needs_high_water = limits.max_drawdown_pct is not None
    if not (needs_day_start or needs_high_water):
        return None
    account = ctx.account
    missing: list[str] = []
    if account is None:
        missing.append("account state")
    else:
        if needs_day_start and account.day_start_equity <= 0:
            missing.append(f"day_start_equity={account.day_start_equity}")
        if needs_high_water and account.high_water_mark <= 0:
            missing.append(f"high_water_mark={account.high_water_mark}")
    if not missing:
        return None
    return Violation(
        code="SYS-005", observed=" ".join(missing), limit="positive equity marks",
        detail=f"loss limits are set but account {ctx.intent.account} has no usable "
        "equity marks",
    )


def risk_inputs_invalid(ctx: RuleContext) -> Violation | None:
    if not ctx.invariant_detail:
        return None
    return Violation(
        code="SYS-008", observed=ctx.invariant_detail, limit="finite",
        detail="the engine's position or exposure figures are not finite",
    )
