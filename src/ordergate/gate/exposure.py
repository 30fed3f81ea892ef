"""Exposure arithmetic shared by the gate (projecting an intent) and the engine (keeping
per-account totals incrementally). One formula, one place."""

from __future__ import annotations

from decimal import Decimal

from ordergate.gate.view import ExposureTotals

# Comparing with a Decimal zero instead of the int 0 saves a conversion per comparison
_ZERO = Decimal(0)


def symbol_exposure(
    position: Decimal, working_buy: Decimal, working_sell: Decimal, mark: Decimal
) -> ExposureTotals:
    """The contribution of one (account, symbol) to the account's ExposureTotals."""
    long_side = position + working_buy
    short_side = position - working_sell
    # max(abs(long_side), abs(short_side)) without the builtin's cost: the first of equals
    # wins, as with max, so the product keeps the same exponent
    larger = abs(long_side)
    other = abs(short_side)
    if other > larger:
        larger = other
    return ExposureTotals(
        gross=larger * mark,
        net_long=long_side * mark,
        net_short=short_side * mark,
    )


def is_risk_reducing(
    signed_qty: Decimal, position: Decimal, working_buy: Decimal, working_sell: Decimal
) -> bool:
    """True when the order shrinks |position| without flipping it, counting the working
    orders on the same side as if they fill first (so two reducing orders cannot together
    flip a position)."""
    if position == _ZERO or (signed_qty > _ZERO) == (position > _ZERO):
        return False
    already_reducing = working_sell if position > _ZERO else working_buy
    return abs(signed_qty) + already_reducing <= abs(position)


_HALF = Decimal("0.5")


def reference_price(
    bid: Decimal | None, ask: Decimal | None, last: Decimal | None
) -> Decimal | None:
    """The price an order is valued and marked at: the mid of a valid two-sided quote, else a
    valid last trade, else None. Valid means finite and positive, and bid <= ask. The gate and
    the engine both mark exposure with it, so the gate's projection (replace a symbol's
    contribution) subtracts exactly what the engine added."""
    if (
        bid is not None and ask is not None and bid.is_finite() and ask.is_finite()
        and _ZERO < bid <= ask
    ):
        return (bid + ask) * _HALF
    if last is not None and last.is_finite() and last > _ZERO:
        return last
    return None
