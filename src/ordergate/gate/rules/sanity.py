"""Order sanity: is this a legal, well-formed order at a sane price?

These are the hard safety gates (invariant 7): they stop risk-reducing orders too, except
the restricted list (ORD-009), which forbids taking new risk in a symbol but never traps a
position that already exists in it.

Price collar (ORD-008), compared cross-multiplied so no division rounds the boundary:
* limit and stop-limit orders: |limit_price - reference| * 100 > price_collar_pct * reference.
* market orders: the price a market order is expected to fill at is the far side of the
  quote (ask for a buy, bid for a sell); |far side - reference| * 100 > market_collar_pct *
  reference, i.e. half the spread in % of the mid. Without a valid two-sided quote a market
  order's fill price is unbounded, so it breaks the collar (fail closed). The policy resolves
  `market_collar_pct` to `price_collar_pct` where only the latter is set and refuses one
  looser than it (`policy.collars`): a market order is never collared less than a limit order.
* stop (stop-market) orders: a stop the market has already reached (a buy stop at or below
  the reference, a sell stop at or above it) triggers at once and is a market order, so it is
  collared as one, on the quote's far side. A stop the market has not reached is not
  collared: how far a protective stop sits from the market is the strategy's choice, and its
  value is bounded by ORD-007. Stop-limit orders are collared on their limit price, as limit
  orders.

Order value (ORD-007) is qty times the valuation price of the context: the limit price of a
limit or stop-limit order (the reference price for a sell limited below it, which is
marketable: `context.limit_valuation_price`), the reference price of a market order, and for
a stop order the
larger of its stop price and the reference price (`context.stop_valuation_price`), so a stop
is never valued below a market order of the same size.
"""

from __future__ import annotations

from decimal import Decimal

from ordergate.gate.context import HUNDRED, RuleContext, pct_text
from ordergate.model.decision import Violation
from ordergate.model.intent import OrderType, Side
from ordergate.model.values import QUOTIENT
from ordergate.policy.limits import SelfMatch

# Enum members bound once: reading a member off its Enum class costs ~0.2 µs on CPython
# 3.11, and these comparisons run for every intent.
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_BUY = Side.BUY
_DENY = SelfMatch.DENY
# A remainder is a division: it keeps Decimal's default 28 digits in any behaviour
# (`model.values.QUOTIENT`), so a quantity of 10**32 lots is still beyond exact arithmetic.
_remainder = QUOTIENT.remainder


def order_type_not_allowed(ctx: RuleContext) -> Violation | None:
    allowed = ctx.limits.allowed_order_types
    order_type = ctx.intent.order_type
    if allowed is None:
        return None
    for allowed_type in allowed:  # identity scan: hashing an Enum member is slow
        if allowed_type is order_type:
            return None
    return Violation(
        code="ORD-001", observed=order_type.value,
        limit=",".join(sorted(allowed_type.value for allowed_type in allowed)),
    )


def price_missing(ctx: RuleContext) -> Violation | None:
    intent = ctx.intent
    order_type = intent.order_type
    has_limit = intent.limit_price is not None
    has_stop = intent.stop_price is not None
    needs_limit = order_type is _LIMIT or order_type is _STOP_LIMIT
    needs_stop = order_type is _STOP or order_type is _STOP_LIMIT
    if has_limit == needs_limit and has_stop == needs_stop:
        return None
    observed = f"limit_price={intent.limit_price} stop_price={intent.stop_price}"
    expected = (
        f"limit_price {'required' if needs_limit else 'absent'}, "
        f"stop_price {'required' if needs_stop else 'absent'}"
    )
    return Violation(
        code="ORD-003", observed=observed, limit=expected,
        detail=f"a {order_type.value} order needs {expected}",
    )


def price_tick(ctx: RuleContext) -> Violation | None:
    instrument = ctx.limits.instrument
    if instrument is None or instrument.tick_size is None:
        return None
    tick = instrument.tick_size
    intent = ctx.intent
    limit_price, stop_price = intent.limit_price, intent.stop_price
    if (limit_price is None or _remainder(limit_price, tick) == 0) and (
        stop_price is None or _remainder(stop_price, tick) == 0
    ):
        return None  # the common case, without building the pairs below
    for name, price in (("limit_price", limit_price), ("stop_price", stop_price)):
        if price is not None and _remainder(price, tick) != 0:
            return Violation(
                code="ORD-004", observed=str(price), limit=str(tick),
                detail=f"{name} is not a multiple of tick_size",
            )
    return None


def qty_lot(ctx: RuleContext) -> Violation | None:
    instrument = ctx.limits.instrument
    if instrument is None or instrument.lot_size is None:
        return None
    lot = instrument.lot_size
    qty = ctx.intent.qty
    if _remainder(qty, lot) == 0:
        return None
    return Violation(
        code="ORD-005", observed=str(qty), limit=str(lot),
        detail="qty is not a multiple of lot_size",
    )


def max_order_qty(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_order_qty
    if limit is None or ctx.intent.qty <= limit:
        return None
    return Violation(code="ORD-006", observed=str(ctx.intent.qty), limit=str(limit))


def max_order_value(ctx: RuleContext) -> Violation | None:
    limit = ctx.limits.max_order_value
    value = ctx.order_value
    # an order that cannot be valued is already refused by SYS-001/SYS-003
    if limit is None or value is None or value <= limit:
        return None
    return Violation(
        code="ORD-007", observed=str(value), limit=str(limit),
        detail=f"qty {ctx.intent.qty} at {ctx.valuation_price}",
    )


def _collar_violation(
    price: Decimal, reference: Decimal, limit: Decimal, what: str
) -> Violation | None:
    distance = abs(price - reference)
    if distance * HUNDRED <= limit * reference:
        return None
    return Violation(
        code="ORD-008", observed=pct_text(distance, reference), limit=str(limit),
        detail=f"{what} {price} vs reference {reference}",
    )


def price_collar(ctx: RuleContext) -> Violation | None:
    intent = ctx.intent
    reference = ctx.reference
    order_type = intent.order_type
    if order_type is _STOP:
        # A stop the market has already crossed triggers at once: a market order, collared as
        # one. One the market has not reached is collared by nothing: how far a protective
        # stop sits from the market is the strategy's choice (its value is bounded by ORD-007).
        stop = intent.stop_price
        if stop is None or reference is None or not (
            stop <= reference if intent.side is _BUY else stop >= reference
        ):
            return None
    if order_type is _MARKET or order_type is _STOP:
        limit = ctx.limits.market_collar_pct
        if limit is None:
            return None
        market = ctx.market
        bid = None if market is None else market.bid
        ask = None if market is None else market.ask
        if (
            reference is None or bid is None or ask is None or not bid.is_finite()
            or not ask.is_finite() or not 0 < bid <= ask
        ):
            return Violation(
                code="ORD-008", observed="no quote", limit=str(limit),
                detail="a market order needs a valid two-sided quote to bound its fill price",
            )
        far_side = ask if intent.side is _BUY else bid
        return _collar_violation(far_side, reference, limit, "expected fill")
    limit = ctx.limits.price_collar_pct
    price = intent.limit_price
    if limit is None or reference is None or price is None:
        return None
    return _collar_violation(price, reference, limit, "limit_price")


def restricted_symbol(ctx: RuleContext) -> Violation | None:
    if not ctx.limits.restricted:
        return None
    return Violation(
        code="ORD-009", observed=ctx.intent.symbol, limit="not restricted",
        detail=f"{ctx.intent.symbol} is on the restricted list",
    )


def resting_text(price: Decimal) -> str:
    """A resting price as a reason words it. The account's working market orders rest at
    +infinity (a buy) and 0 (a sell), where no limit price can be
    (`engine.records.MARKET_BUY_PRICE`)."""
    return "market" if price.is_infinite() or not price else str(price)


def self_match(ctx: RuleContext) -> Violation | None:
    """The order would trade against the account's own resting order on the other side. An
    order without a limit price (market, stop) is treated as marketable. Resting orders are
    the account's working limit orders, its working market orders (which cross anything) and
    its stops once they are known to have triggered (`engine.records.OrderRecord`)."""
    if ctx.limits.self_match is not _DENY:
        return None
    intent = ctx.intent
    best_buy, best_sell = ctx.view.resting_prices(intent.account, intent.symbol, intent.side)
    price = intent.limit_price
    if intent.side is _BUY:
        if best_sell is None or (price is not None and price < best_sell):
            return None
        resting = best_sell
    else:
        if best_buy is None or (price is not None and price > best_buy):
            return None
        resting = best_buy
    limit = resting_text(resting)
    what = "working market order" if limit == "market" else f"resting order at {limit}"
    return Violation(
        code="ORD-010", observed="marketable" if price is None else str(price), limit=limit,
        detail=f"would trade against the account's own {what}",
    )


def reduce_only_would_increase(ctx: RuleContext) -> Violation | None:
    if not ctx.intent.reduce_only or ctx.risk_reducing:
        return None
    return Violation(
        code="ORD-011", observed="increases or opens a position", limit="reduce-only",
        detail=f"position={ctx.position} working_buy={ctx.working_buy} "
        f"working_sell={ctx.working_sell}",
    )
