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
