"""Portfolio state as supplied from outside (e.g. `ordergate eval --state`), or as snapshotted."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from ordergate.model.intent import Identifier
from ordergate.model.values import require_finite, require_finite_sum, require_non_negative


class Position(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Signed quantity (long > 0, short < 0) and its average entry price (never negative,
    as the engine's `PositionSeed` requires: a short is a negative quantity, not a price)."""

    account: Identifier
    symbol: Identifier
    qty: Decimal
    avg_price: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        require_finite("qty", self.qty)
        require_non_negative("avg_price", self.avg_price)


class AccountState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                   gc=False):
    """Cash and equity marks of one account. Equity fields drive the loss and drawdown limits."""

    account: Identifier
    cash: Decimal = Decimal(0)
    equity: Decimal = Decimal(0)
    day_start_equity: Decimal = Decimal(0)
    high_water_mark: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if (
            self.cash.is_finite() and self.equity.is_finite()
            and self.day_start_equity.is_finite() and self.high_water_mark.is_finite()
            and self.realized_pnl.is_finite()
        ):
            return  # the engine's view builds one per intent: skip the named checks below
        for name in _ACCOUNT_FIGURES:
            require_finite_sum(name, getattr(self, name))


class PortfolioState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A state file (`ordergate eval --state`): its figures are input, so each is bounded
    like every decimal of every input. `AccountState` itself is not: the engine builds one
    per intent from its own sums, and decision records carry them."""

    accounts: tuple[AccountState, ...] = ()
    positions: tuple[Position, ...] = ()

    def __post_init__(self) -> None:
        for index, account in enumerate(self.accounts):
            for name in _ACCOUNT_FIGURES:
                require_finite(f"accounts[{index}].{name}", getattr(account, name))


_ACCOUNT_FIGURES = ("cash", "equity", "day_start_equity", "high_water_mark", "realized_pnl")
