"""Exposure arithmetic shared by the gate (projecting an intent) and the engine (keeping
per-account totals incrementally). One formula, one place."""

from __future__ import annotations

from decimal import Decimal

from ordergate.gate.view import ExposureTotals


def symbol_exposure(
    position: Decimal, working_buy: Decimal, working_sell: Decimal, mark: Decimal
) -> ExposureTotals:
    """The contribution of one (account, symbol) to the account's ExposureTotals."""
    long_side = position + working_buy
    short_side = position - working_sell
    return ExposureTotals(
        gross=max(abs(long_side), abs(short_side)) * mark,
        net_long=long_side * mark,
        net_short=short_side * mark,
    )


def is_risk_reducing(
    signed_qty: Decimal, position: Decimal, working_buy: Decimal, working_sell: Decimal
) -> bool:
    """True when the order shrinks |position| without flipping it, counting the working
    orders on the same side as if they fill first (so two reducing orders cannot together
    flip a position)."""
    if position == 0 or (signed_qty > 0) == (position > 0):
        return False
    already_reducing = working_sell if position > 0 else working_buy
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
        and 0 < bid <= ask
    ):
        return (bid + ask) * _HALF
    if last is not None and last.is_finite() and last > 0:
        return last
    return None
