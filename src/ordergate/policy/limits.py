"""The limits that apply to one (account, strategy, symbol), after overrides are resolved.

This is the contract between the policy loader and the gate: the loader resolves
defaults → account → strategy → symbol overrides (most specific wins) once, at load, into
one of these per key; the gate reads nothing else from the policy. `None` means the limit
is not set. Critical values (`max_market_data_age`) have no default: when absent the gate
fails closed with `SYS-005 CONFIG_MISSING`.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from decimal import Decimal

import msgspec

from ordergate.model.intent import OrderType


class SelfMatch(enum.StrEnum):
    OFF = "off"
    DENY = "deny"
    CANCEL_RESTING = "cancel_resting"


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """At most `max_count` events in any sliding window of `window` event time."""

    max_count: int
    window: timedelta


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None


class TradingSessions(msgspec.Struct, frozen=True, kw_only=True):
    """Open intervals of an exchange calendar as sorted epoch seconds, resolved at load so
    the gate answers "is the market open" with a bisect and no calendar library on the hot path.
    `opens[i] <= t < closes[i]` means open.
    """

    calendar: str
    opens: tuple[int, ...]
    closes: tuple[int, ...]


class ResolvedLimits(msgspec.Struct, frozen=True, kw_only=True):
    # kill switch and policy mode
    kill_switch: bool = False
    monitor: bool = False
    # data integrity
    max_market_data_age: timedelta | None = None
    require_instrument: bool = False
    instrument: Instrument | None = None
    # clock
    max_intent_skew: timedelta | None = None
    # loss and drawdown (account scope)
    max_daily_loss: Decimal | None = None
    max_daily_loss_pct: Decimal | None = None
    max_drawdown_pct: Decimal | None = None
    drawdown_kill: bool = False
    # duplicates
    duplicate_window: timedelta | None = None
    # order sanity
    allowed_order_types: frozenset[OrderType] | None = None
    max_order_qty: Decimal | None = None
    max_order_value: Decimal | None = None
    price_collar_pct: Decimal | None = None
    market_collar_pct: Decimal | None = None
    restricted: bool = False
    self_match: SelfMatch = SelfMatch.OFF
    # throttles
    rate_global: RateLimit | None = None
    rate_account: RateLimit | None = None
    rate_strategy: RateLimit | None = None
    rate_symbol: RateLimit | None = None
    cancel_rate: RateLimit | None = None
    repeated_execution: RateLimit | None = None
    # exposure (position caps per symbol; gross/net per account)
    max_position_qty: Decimal | None = None
    max_position_value: Decimal | None = None
    max_gross_exposure: Decimal | None = None
    max_net_exposure: Decimal | None = None
    # firm-wide gross across gateways, checked against GateView.shared_exposure_gross()
    max_firm_gross_exposure: Decimal | None = None
    exposure_modify: bool = False
    # liquidity
    max_volume_participation_pct: Decimal | None = None
    # market hours and canary
    sessions: TradingSessions | None = None
    canary_allowed: bool = True


class ModeOnFault(enum.StrEnum):
    """Which mode a fault condition moves the engine to (never looser than it is)."""

    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Policy settings the engine (not the per-intent gate) acts on.

    `on_*` say which mode a fault moves to. `drawdown_kill` trips HALTED on a drawdown breach.
    `reset_window`, when set, lets the engine clear automatic (non-operator) reasons that have
    been resolved for that long; otherwise only an operator command loosens the mode.
    `day_roll_calendar` names an exchange calendar whose session close rolls the trading day;
    None rolls the day at 00:00 UTC (24/7 venues).
    """

    cancel_all_on_kill: bool = False
    on_stale_data: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_bad_data: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_clock_fault: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_dependency_down: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_reconciliation_mismatch: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_drawdown: ModeOnFault = ModeOnFault.HALTED
    resume_requires_two_operators: bool = False
    reset_window: timedelta | None = None
    day_roll_calendar: str | None = None
    canary_symbols: frozenset[str] = frozenset()
