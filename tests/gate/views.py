"""An in-memory GateView for tests: plain dicts, the protocol implemented directly (exposure
totals are summed from positions, working orders and marks on every call, the slow obvious
way, so the gate's O(1) projection is checked against it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ordergate.engine.ids import derive_client_order_id
from ordergate.gate.exposure import reference_price, symbol_exposure
from ordergate.gate.view import (
    ActiveReason,
    ExposureTotals,
    IntentQuery,
    IntentReads,
    RateScope,
)
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState

ZERO = Decimal(0)


@dataclass
class MemoryView:
    now: datetime
    mode: Mode = Mode.ACTIVE
    reasons: tuple[ActiveReason, ...] = ()
    # operator kills by scope: ("firm", ""), ("account", id), ("strategy", id), ("symbol", id)
    operator_kills: set[tuple[str, str]] = field(default_factory=set)
    firm_killed: bool = False
    markets: dict[str, MarketSnapshot] = field(default_factory=dict)
    accounts: dict[str, AccountState] = field(default_factory=dict)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    # (account, symbol) -> (working buy qty, working sell qty)
    working_orders: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)
    # (scope, key) -> times of accepted orders
    accepted: dict[tuple[RateScope, str], list[datetime]] = field(default_factory=dict)
    cancels: dict[str, list[datetime]] = field(default_factory=dict)
    client_order_ids: set[str] = field(default_factory=set)
    fingerprints: dict[str, list[datetime]] = field(default_factory=dict)
    # (account, symbol) -> (highest working buy limit, lowest working sell limit)
    resting: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = field(
        default_factory=dict
    )
    disabled: set[tuple[str, str]] = field(default_factory=set)
    shared_gross: Decimal | None = None

    def integrity_reasons(self) -> tuple[ActiveReason, ...]:
        return self.reasons

    def operator_kill(self, account: str, strategy: str, symbol: str) -> bool:
        kills = self.operator_kills
        return (
            ("firm", "") in kills or ("account", account) in kills
            or ("strategy", strategy) in kills or ("symbol", symbol) in kills
        )

    def firm_kill(self) -> bool:
        return self.firm_killed

    def market(self, symbol: str) -> MarketSnapshot | None:
        return self.markets.get(symbol)

    def account(self, account: str) -> AccountState | None:
        return self.accounts.get(account)

    def position(self, account: str, symbol: str) -> Decimal:
        return self.positions.get((account, symbol), ZERO)

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        return self.working_orders.get((account, symbol), (ZERO, ZERO))

    def exposure(self, account: str) -> ExposureTotals:
        gross = net_long = net_short = ZERO
        symbols = {symbol for (owner, symbol) in self.positions if owner == account}
        symbols |= {symbol for (owner, symbol) in self.working_orders if owner == account}
        for symbol in sorted(symbols):
            market = self.markets.get(symbol)
            mark = None if market is None else reference_price(market.bid, market.ask,
                                                               market.last)
            if mark is None:
                continue
            buy, sell = self.working(account, symbol)
            part = symbol_exposure(self.position(account, symbol), buy, sell, mark)
            gross += part.gross
            net_long += part.net_long
            net_short += part.net_short
        return ExposureTotals(gross=gross, net_long=net_long, net_short=net_short)

    def _in_window(self, times: list[datetime], window: timedelta) -> int:
        return sum(1 for ts in times if self.now - window < ts <= self.now)

    def order_count(self, scope: RateScope, key: str, window: timedelta) -> int:
        return self._in_window(self.accepted.get((scope, key), []), window)

    def cancel_count(self, account: str, window: timedelta) -> int:
        return self._in_window(self.cancels.get(account, []), window)

    def client_order_id_seen(self, client_order_id: str) -> bool:
        return client_order_id in self.client_order_ids

    def fingerprint_seen(self, fingerprint: str, window: timedelta) -> bool:
        return self._in_window(self.fingerprints.get(fingerprint, []), window) > 0

    def resting_prices(self, account: str, symbol: str, side: Side | None = None
                       ) -> tuple[Decimal | None, Decimal | None]:
        return self.resting.get((account, symbol), (None, None))

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        return (account, strategy) in self.disabled

    def shared_exposure_gross(self) -> Decimal | None:
        return self.shared_gross

    def read_intent(self, intent: OrderIntent, fingerprint: str,
                    query: IntentQuery) -> IntentReads:
        """Every answer from the methods above, so this is `read_intent`'s definition."""
        account, strategy, symbol = intent.account, intent.strategy, intent.symbol
        working_buy, working_sell = self.working(account, symbol)
        resting_buy, resting_sell = (
            self.resting_prices(account, symbol) if query.resting else (None, None)
        )
        client_order_id = intent.client_order_id
        windows = (
            (RateScope.GLOBAL, "", query.rate_global),
            (RateScope.ACCOUNT, account, query.rate_account),
            (RateScope.STRATEGY, strategy, query.rate_strategy),
            (RateScope.SYMBOL, symbol, query.rate_symbol),
        )
        counts = [0 if window is None else self.order_count(scope, key, window)
                  for scope, key, window in windows]
        market = self.market(symbol)
        # totals only for a symbol with a mark, as `build_context` reads them: summing them
        # here can fail on the broken positions some tests hold
        marked = market is not None and reference_price(
            market.bid, market.ask, market.last) is not None
        return (
            self.now, self.mode, self.integrity_reasons(),
            self.operator_kill(account, strategy, symbol), self.firm_kill(),
            market, self.account(account) if query.account else None,
            self.position(account, symbol), working_buy, working_sell,
            self.exposure(account) if query.exposure and marked else None,
            counts[0], counts[1], counts[2], counts[3],
            self.client_order_id_seen(
                client_order_id if client_order_id is not None
                else derive_client_order_id(account, strategy, intent.intent_id)),
            query.duplicate_window is not None
            and self.fingerprint_seen(fingerprint, query.duplicate_window),
            resting_buy, resting_sell, self.strategy_disabled(account, strategy),
            self.shared_exposure_gross() if query.firm_gross else None,
        )
