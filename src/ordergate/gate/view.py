"""What the gate may read about the world: the `GateView` protocol.

The engine's state implements it with incrementally maintained aggregates, so every method
here is O(1) or O(log n) and the gate's cost does not grow with the number of positions or
working orders. The gate never mutates the view; recording an accepted intent (rate
windows, duplicate window, working orders) is the engine's job after the decision.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import msgspec

from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState


class RateScope(enum.StrEnum):
    GLOBAL = "global"
    ACCOUNT = "account"
    STRATEGY = "strategy"
    SYMBOL = "symbol"


class ExposureTotals(msgspec.Struct, frozen=True, kw_only=True):
    """An account's exposure valued at current marks, working orders included as if filled.

    gross     = Σ_symbols max(|pos + working_buy|, |pos - working_sell|) × mark
    net_long  = Σ_symbols (pos + working_buy) × mark      (every working buy fills)
    net_short = Σ_symbols (pos - working_sell) × mark     (every working sell fills)
    The net cap is checked against max(|net_long|, |net_short|). `gate.exposure` holds the
    per-symbol formula; the engine sums it incrementally.
    """

    gross: Decimal
    net_long: Decimal
    net_short: Decimal


class ActiveReason(msgspec.Struct, frozen=True, kw_only=True):
    """A fail-closed condition raised outside the gate (journal down, breaker open, clock
    drift, reconciliation mismatch...): a registry code and a human detail."""

    code: str
    detail: str = ""


class GateView(Protocol):
    @property
    def now(self) -> datetime:
        """The engine's event time: the timestamp of the event being handled."""
        ...

    @property
    def mode(self) -> Mode: ...

    def integrity_reasons(self) -> tuple[ActiveReason, ...]:
        """Fail-closed conditions currently active (SYS-*, CLK-002/003 codes)."""
        ...

    def operator_kill(self, account: str, strategy: str, symbol: str) -> bool:
        """An operator kill switch covers this firm, account, strategy or symbol."""
        ...

    def firm_kill(self) -> bool:
        """The firm-wide kill switch shared across gateways is engaged."""
        ...

    def market(self, symbol: str) -> MarketSnapshot | None: ...

    def account(self, account: str) -> AccountState | None:
        """Equity marks: equity, day-start equity, high-water mark, realized PnL."""
        ...

    def position(self, account: str, symbol: str) -> Decimal:
        """Signed position quantity (0 when flat)."""
        ...

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        """Remaining quantity of working (accepted, not yet done) buy and sell orders."""
        ...

    def exposure(self, account: str) -> ExposureTotals: ...

    def order_count(self, scope: RateScope, key: str, window: timedelta) -> int:
        """Accepted orders in (now - window, now] for the scope's key ("" for GLOBAL)."""
        ...

    def cancel_count(self, account: str, window: timedelta) -> int: ...

    def client_order_id_seen(self, client_order_id: str) -> bool: ...

    def fingerprint_seen(self, fingerprint: str, window: timedelta) -> bool:
        """An accepted intent with this fingerprint in (now - window, now]."""
        ...

    def resting_prices(self, account: str, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """Highest working buy limit price and lowest working sell limit price of the account
        (None when there is none), for self-match prevention."""
        ...

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        """Disabled by the repeated-execution throttle until an operator re-enables it."""
        ...

    def shared_exposure_gross(self) -> Decimal | None:
        """Firm-wide gross exposure across gateways, or None when no shared store is used."""
        ...
