"""What the gate may read about the world: the `GateView` protocol, and `ScreenedView`, the
same view answering everything one intent needs in a single call.

The engine's state implements both with incrementally maintained aggregates, so every method
here is O(1) or O(log n) and the gate's cost does not grow with the number of positions or
working orders. The gate never mutates the view; recording an accepted intent (rate
windows, duplicate window, working orders) is the engine's job after the decision.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, Protocol

import msgspec

from ordergate.model.intent import OrderIntent, Side
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
    drift, reconciliation mismatch...): a registry code, a human detail, who raised it and
    since when (event time; None when the view does not know). The gate turns it into a
    violation whose observed value and limit come from these and the code's
    `model.reasons.CONDITIONS` text."""

    code: str
    detail: str = ""
    actor: str = "system"
    since: datetime | None = None


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

    def client_order_id_seen(self, client_order_id: str) -> bool:
        """An order under this id is working or done (still remembered). The gate asks it for
        an intent's own client order id, or for one naming none, for the id derived from
        its (account, strategy, intent_id)."""
        ...

    def fingerprint_seen(self, fingerprint: str, window: timedelta) -> bool:
        """An accepted intent with this fingerprint in (now - window, now]."""
        ...

    def resting_prices(self, account: str, symbol: str, side: Side | None = None
                       ) -> tuple[Decimal | None, Decimal | None]:
        """Highest working buy limit price and lowest working sell limit price of the account
        (None when there is none). With `side`, the side of an order judged for self-matching,
        the other side's figure counts the account's working market orders too, at +infinity
        (a buy) or 0 (a sell): the order would trade against them (`engine.records.Ladder`)."""
        ...

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        """Disabled by the repeated-execution throttle until an operator re-enables it."""
        ...

    def shared_exposure_gross(self) -> Decimal | None:
        """Firm-wide gross exposure across gateways, or None when no shared store is used."""
        ...


_ONE_MICROSECOND = timedelta(microseconds=1)


class IntentQuery(NamedTuple):
    """What a compiled plan reads about each intent besides what every intent needs, fixed by
    its limits (so the plan builds it once): the optional reads, and the duplicate and rate
    windows. Each window also comes in whole microseconds (`*_span`, 0 when unset): a
    timedelta is exact to the microsecond, and a view that counts in microseconds (the
    engine's windows) would otherwise convert it for every intent. The four rate spans come
    last, in scope order, so a view can take them as `query[-4:]`."""

    account: bool  # equity marks: a loss or drawdown limit is set
    exposure: bool  # the account's exposure totals: an account or firm cap is set
    resting: bool  # resting prices: self-match prevention denies
    firm_gross: bool  # the firm-wide gross exposure: the firm cap is set
    duplicate_window: timedelta | None
    rate_global: timedelta | None
    rate_account: timedelta | None
    rate_strategy: timedelta | None
    rate_symbol: timedelta | None
    duplicate_span: int
    global_span: int
    account_span: int
    strategy_span: int
    symbol_span: int


def intent_query(
    *, account: bool, exposure: bool, resting: bool, firm_gross: bool,
    duplicate_window: timedelta | None, rate_global: timedelta | None,
    rate_account: timedelta | None, rate_strategy: timedelta | None,
    rate_symbol: timedelta | None,
) -> IntentQuery:
    """An `IntentQuery`, with the windows' microsecond spans filled in."""
    def span(window: timedelta | None) -> int:
        return 0 if window is None else window // _ONE_MICROSECOND

    return IntentQuery(
        account, exposure, resting, firm_gross, duplicate_window, rate_global, rate_account,
        rate_strategy, rate_symbol, span(duplicate_window), span(rate_global),
        span(rate_account), span(rate_strategy), span(rate_symbol),
    )


# `ScreenedView.read_intent`'s answer, in this order:
#   now, mode, integrity_reasons(), operator_kill(account, strategy, symbol), firm_kill(),
#   market(symbol), account(account) (None unless asked), position(account, symbol),
#   working(account, symbol) as two values, exposure(account) (None unless asked; a view
#   may also answer None when the symbol's market gives no reference price, as the totals
#   are then unused),
#   order_count(scope, key, window) for global, account, strategy, symbol (0 when unset),
#   client_order_id_seen(client_order_id), or without one client_order_id_seen of the id
#   derived from (account, strategy, intent_id) (`model.ids`; a view may answer it from an
#   index rather than hash every intent's key),
#   fingerprint_seen(fingerprint, duplicate_window) (False when unset),
#   resting_prices(account, symbol) as two values ((None, None) unless asked),
#   strategy_disabled(account, strategy),
#   shared_exposure_gross() (None unless asked).
# A plain tuple rather than a class: it is built and unpacked once per intent, and a
# NamedTuple's constructor is a Python call.
IntentReads = tuple[
    datetime, Mode, tuple[ActiveReason, ...], bool, bool, MarketSnapshot | None,
    AccountState | None, Decimal, Decimal, Decimal, ExposureTotals | None, int, int, int, int,
    bool, bool, Decimal | None, Decimal | None, bool, Decimal | None,
]


class ScreenedView(GateView, Protocol):
    """A `GateView` that also answers, in one call, every read a compiled plan's screen makes
    for one intent (`gate.screen`). One call instead of about fifteen: the calls were a
    large part of the gate's cost. Each value is exactly what the named `GateView` method
    answers at the same moment; a test holds every implementation to that."""

    def read_intent(
        self, intent: OrderIntent, fingerprint: str, query: IntentQuery
    ) -> IntentReads: ...
