"""Per-intent values that several rule families need, computed once before the rules run.

Why a context instead of each rule reading the view: the reference price, the order value,
the position and working quantities and the risk-reducing test are used by up to a dozen
rules each. Computing them once keeps the gate's cost flat (one view call per value, one
Decimal multiplication per value) instead of growing with the number of active rules. The
context is built fresh for every intent, read by the rules, and dropped: nothing in it
outlives the call, and nothing in the view is changed.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_CEILING, Context, Decimal

import msgspec

from ordergate.gate.exposure import is_risk_reducing, reference_price, symbol_exposure
from ordergate.gate.view import ActiveReason, ExposureTotals, GateView, RateScope
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import QUOTIENT, exact_arithmetic
from ordergate.policy.limits import ResolvedLimits

ZERO = Decimal(0)
HUNDRED = Decimal(100)

_ONE_MICROSECOND = timedelta(microseconds=1)
_PCT_STEP = Decimal("0.0001")
# Rounding up keeps a reported percentage strictly above the limit it broke.
_REPORT = Context(prec=34, rounding=ROUND_CEILING)
# the largest power of ten below which a percentage has 4 places in `_REPORT`'s 34 digits
_PCT_ROUNDABLE = 34 - 4

# Enum members bound once: reading a member off its Enum class costs ~0.2 µs on CPython
# 3.11, and these comparisons run for every intent.
_BUY = Side.BUY
_LIMIT = OrderType.LIMIT
_STOP_LIMIT = OrderType.STOP_LIMIT
_STOP = OrderType.STOP
_GLOBAL = RateScope.GLOBAL
_ACCOUNT = RateScope.ACCOUNT
_STRATEGY = RateScope.STRATEGY
_SYMBOL = RateScope.SYMBOL
# Decimal's default context keeps 28 significant digits; shorter texts never round
_PLAIN_DIGITS = 20


class RuleContext(msgspec.Struct, gc=False):
    """What the rules judge one intent on. Not tracked by the garbage collector (one is built
    per intent): nothing it holds refers back to it, so it is never part of a cycle."""

    intent: OrderIntent
    view: GateView
    limits: ResolvedLimits
    mode: Mode
    market: MarketSnapshot | None
    # mid of a valid quote, else a valid last; None when the feed gives no usable price
    reference: Decimal | None
    # `limit_valuation_price` (limit, stop_limit), `stop_valuation_price` (stop), else the
    # reference price
    valuation_price: Decimal | None
    order_value: Decimal | None
    position: Decimal
    working_buy: Decimal
    working_sell: Decimal
    risk_reducing: bool
    # the order carries its own limit price, so bad market data cannot make it fill worse
    priced: bool
    # equity marks, fetched only when a loss limit is set
    account: AccountState | None
    # why the view's risk inputs cannot be trusted (non-finite numbers); "" when they can
    invariant_detail: str
    # account totals and this symbol's contribution before and after the intent, only when
    # an account or firm exposure cap is set and the symbol has a mark
    totals: ExposureTotals | None
    contribution_now: ExposureTotals | None
    contribution_after: ExposureTotals | None
    # fail-closed conditions raised outside the gate (`GateView.integrity_reasons`)
    integrity: tuple[ActiveReason, ...]
    # the duplicate fingerprint, only when a duplicate window is set ("" otherwise)
    fingerprint: str
    # accepted orders in each scope's window, only for the rate limits that are set (0 when
    # unset): global, account, strategy, symbol
    count_global: int
    count_account: int
    count_strategy: int
    count_symbol: int


def build_context(intent: OrderIntent, view: GateView, limits: ResolvedLimits) -> RuleContext:
    account = intent.account
    symbol = intent.symbol
    market = view.market(symbol)
    reference = None if market is None else reference_price(market.bid, market.ask, market.last)

    order_type = intent.order_type
    qty = intent.qty
    if order_type is _LIMIT or order_type is _STOP_LIMIT:
        valuation_price = limit_valuation_price(intent.side, intent.limit_price, reference)
        priced = intent.limit_price is not None
    elif order_type is _STOP:
        valuation_price = stop_valuation_price(intent.stop_price, reference)
        priced = False
    else:
        valuation_price = reference
        priced = False
    order_value = None if valuation_price is None else qty * valuation_price

    account_state = None
    if (
        limits.max_daily_loss is not None
        or limits.max_daily_loss_pct is not None
        or limits.max_drawdown_pct is not None
    ):
        account_state = view.account(account)

    invariant_detail = ""
    position = view.position(account, symbol)
    working_buy, working_sell = view.working(account, symbol)
    if not (position.is_finite() and working_buy.is_finite() and working_sell.is_finite()):
        invariant_detail = (
            f"position={position} working_buy={working_buy} working_sell={working_sell}"
        )
        position = working_buy = working_sell = ZERO
        risk_reducing = False
    elif not position:
        risk_reducing = False  # nothing to reduce (`is_risk_reducing`'s first test)
    else:
        signed_qty = qty if intent.side is _BUY else -qty
        risk_reducing = is_risk_reducing(signed_qty, position, working_buy, working_sell)

    totals = contribution_now = contribution_after = None
    if reference is not None and (
        limits.max_gross_exposure is not None
        or limits.max_net_exposure is not None
        or limits.max_firm_gross_exposure is not None
    ):
        totals = view.exposure(account)
        if totals.gross.is_finite() and totals.net_long.is_finite() and (
            totals.net_short.is_finite()
        ):
            contribution_now = symbol_exposure(position, working_buy, working_sell, reference)
            contribution_after = projected_contribution(
                intent.side, qty, position, working_buy, working_sell, reference
            )
        else:
            exposure_detail = (
                f"exposure gross={totals.gross} net_long={totals.net_long} "
                f"net_short={totals.net_short}"
            )
            invariant_detail = (
                f"{invariant_detail} {exposure_detail}" if invariant_detail else exposure_detail
            )
            totals = None

    key = "" if limits.duplicate_window is None else fingerprint(intent)
    rate = limits.rate_global
    count_global = 0 if rate is None else view.order_count(_GLOBAL, "", rate.window)
    rate = limits.rate_account
    count_account = 0 if rate is None else view.order_count(_ACCOUNT, account, rate.window)
    rate = limits.rate_strategy
    count_strategy = (
        0 if rate is None else view.order_count(_STRATEGY, intent.strategy, rate.window)
    )
    rate = limits.rate_symbol
    count_symbol = 0 if rate is None else view.order_count(_SYMBOL, symbol, rate.window)

    return RuleContext(
        intent, view, limits, view.mode, market, reference, valuation_price, order_value,
        position, working_buy, working_sell, risk_reducing, priced, account_state,
        invariant_detail, totals, contribution_now, contribution_after,
        view.integrity_reasons(), key, count_global, count_account, count_strategy,
        count_symbol,
    )


def limit_valuation_price(side: Side, limit_price: Decimal | None,
                          reference: Decimal | None) -> Decimal | None:
    """The price a limit (or stop-limit) order is valued at: its limit price, except a sell
    limited below the reference price, which is valued at the reference.

    A buy pays at most its limit, so the limit bounds its value from above. A sell receives at
    least its limit: one limited below the market is marketable and fills near the market,
    so valuing it at its limit would understate it (a sell of a million shares at 0.01 with
    the symbol at 10 is a $10M order, not a $10,000 one). On equal values, or with no
    reference, the limit price is kept, so the evidence shows the order's own digits."""
    if side is not _BUY and limit_price is not None and reference is not None and (
        reference > limit_price
    ):
        return reference
    return limit_price


def stop_valuation_price(stop_price: Decimal | None, reference: Decimal | None) -> Decimal | None:
    """The price a stop (stop-market) order is valued at: the larger of its stop price and the
    reference price, for either side.

    A stop becomes a market order when it triggers, so it is never valued below a market order
    of the same size (qty x reference): a buy stop at or below the market (already crossed)
    triggers at once and fills near the reference, whatever its stop price says. A buy stop
    above the market fills at its stop price or higher, so it is valued at the stop. A sell
    stop fills at or below both prices, so the larger one bounds it from above. With no
    reference the stop price alone is used (the order is refused for its data anyway,
    SYS-001), and with no stop price the reference (ORD-003 refuses it). On equal values the
    stop price is kept, so the evidence shows the order's own digits."""
    if stop_price is None or (reference is not None and reference > stop_price):
        return reference
    return stop_price


def _plain(value: Decimal) -> str:
    # normalize so 100 and 100.00 are the same order; 'f' so 1E+2 prints as 100
    text = str(value)
    if "E" not in text and len(text) <= _PLAIN_DIGITS:
        # positional notation with fewer digits than the context's precision: dropping
        # trailing fractional zeros is exactly what normalize() and 'f' would print (and
        # there are none to drop when the last digit is not a zero: the usual price)
        if text[-1] != "0" or "." not in text:
            return text
        return text.rstrip("0").rstrip(".")
    normalized = value.normalize()
    text = str(normalized)
    return format(normalized, "f") if "E" in text else text


def fingerprint(intent: OrderIntent) -> str:
    """What makes two intents "the same order": account, strategy, symbol, side, quantity and
    limit price, and for a stop or stop-limit order its type and stop price (a stop at 95 and
    one at 90, or a market order and a stop, are different orders), with decimals normalized.
    Fields are joined with a space, which identifiers cannot contain, so no two different
    orders share a fingerprint. The engine records accepted intents under this same string.

    A market or limit order's fingerprint is the string it has always been: it is journaled
    (decision records, DUP-002 evidence) and kept in snapshots, so a journal written before
    stop orders were told apart replays to the same bytes and its duplicate window still
    holds across the upgrade."""
    # `_plain` of the quantity and the limit price, its common case inlined (a whole number,
    # or a price whose last digit is not a zero: the text as it is), saving a Python call per
    # figure on every intent
    qty = str(intent.qty)
    if "E" in qty or len(qty) > _PLAIN_DIGITS or (qty[-1] == "0" and "." in qty):
        qty = _plain(intent.qty)
    limit_price = intent.limit_price
    if limit_price is None:
        limit = ""
    else:
        limit = str(limit_price)
        if "E" in limit or len(limit) > _PLAIN_DIGITS or (limit[-1] == "0" and "." in limit):
            limit = _plain(limit_price)
    side = "buy" if intent.side is _BUY else "sell"
    text = f"{intent.account} {intent.strategy} {intent.symbol} {side} {qty} {limit}"
    order_type = intent.order_type
    if order_type is _STOP or order_type is _STOP_LIMIT:
        stop = "" if intent.stop_price is None else f" stop_price={_plain(intent.stop_price)}"
        text = f"{text} {order_type.value}{stop}"
    return text


def projected_contribution(
    side: Side, qty: Decimal, position: Decimal, working_buy: Decimal, working_sell: Decimal,
    mark: Decimal,
) -> ExposureTotals:
    """The symbol's contribution if the intent were accepted as one more working order."""
    if side is _BUY:
        return symbol_exposure(position, working_buy + qty, working_sell, mark)
    return symbol_exposure(position, working_buy, working_sell + qty, mark)


def pct_text(part: Decimal, whole: Decimal) -> str:
    """`part` in % of `whole` for evidence, rounded up to 4 places so a breach never prints as
    equal. The division keeps 28 digits (`QUOTIENT`) in any behaviour. A percentage of 10**30
    or more, far past any limit, has no 4 places in 34 digits: under the exact arithmetic
    (engine behaviour 5) it is written out whole, as text for evidence must never raise; the
    28-digit gate of behaviour 4 and before raised there (a SYS-008 denial its journals hold)."""
    value = QUOTIENT.divide(part * HUNDRED, whole)
    if value.adjusted() < _PCT_ROUNDABLE or not exact_arithmetic():
        return str(value.quantize(_PCT_STEP, context=_REPORT))
    return format(value, "f")


def duration_text(value: timedelta) -> str:
    """An exact duration in seconds: `5s`, `0.25s`, `-1.5s`."""
    micros = value // _ONE_MICROSECOND
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    if fraction:
        return f"{sign}{seconds}.{fraction:06d}".rstrip("0") + "s"
    return f"{sign}{seconds}s"
