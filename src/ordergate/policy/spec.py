"""The policy document, `apiVersion: ordergate/v1`, `kind: Policy`, as msgspec Structs.

These Structs are the single definition of the format: loading validates against them and
`policy_schema()` exports them as JSON Schema. Values are in the units a risk officer
writes (durations as "250ms", percentages as "2.5" meaning 2.5 %); `policy.resolve` turns
them into `ResolvedLimits` for the gate. An unset limit is `UNSET` (absent from the
document), never null: a policy cannot say "no limit" by accident.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ordergate.model.intent import Identifier, OrderType
from ordergate.policy.limits import ModeOnFault, SelfMatch

API_VERSION = "ordergate/v1"
KIND = "Policy"

DURATION_PATTERN = r"^[1-9][0-9]*(ms|s|m|h|d)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}

# The exported JSON Schema states the loader's decimal checks as far as JSON Schema can: a
# pattern for a decimal written as text, bounds for one written as a number (`pattern` applies
# only to strings, the bounds only to numbers). A non-zero digit before any exponent:
_NON_ZERO = r"(?=[0-9.]*[1-9])"
# positive and below 1E+15 (at most 15 digits before the point); one written with an exponent
# is bounded by the loader alone
AMOUNT_PATTERN = (r"^\+?" + _NON_ZERO + r"(?:0*(?:[1-9][0-9]{0,14})?(?:\.[0-9]*)?"
                  r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+)$")
# above 0 and at most 100 (an exponent may only make it smaller)
PERCENT_PATTERN = (r"^\+?" + _NON_ZERO + r"0*(?:100(?:\.0*)?|[0-9]{0,2}(?:\.[0-9]*)?)"
                   r"(?:[eE](?:-[0-9]+|[+-]?0+))?$")
# RFC 3339 with a zero UTC offset, as the loader takes it
UTC_TIMESTAMP_PATTERN = (r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ]"
                         r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
                         r"(?:[Zz]|[+-]00:00)$")

Duration = Annotated[str, Meta(
    pattern=DURATION_PATTERN,
    description="A positive duration: a whole number and a unit (ms, s, m, h, d).",
    examples=["250ms", "1s", "5m", "1h", "1d"],
    extra={"kind": "duration"},
)]
Amount = Annotated[Decimal, Meta(
    description="A positive exact decimal (money or quantity) below 1E+15. Write it as a "
                "number or a string; it is read from its text, never through a float.",
    examples=["100000", "0.001"],
    extra={"kind": "positive"},
    extra_json_schema={"pattern": AMOUNT_PATTERN, "exclusiveMinimum": 0,
                       "exclusiveMaximum": 10**15},
)]
Percent = Annotated[Decimal, Meta(
    description="A percentage above 0 and at most 100: 2.5 means 2.5 %.",
    examples=["2.5"],
    extra={"kind": "percent"},
    extra_json_schema={"pattern": PERCENT_PATTERN, "exclusiveMinimum": 0, "maximum": 100},
)]
Name = Identifier
UtcTimestamp = Annotated[datetime, Meta(
    tz=True, description="An RFC 3339 timestamp in UTC, e.g. 2026-01-05T00:00:00Z.",
    extra_json_schema={"pattern": UTC_TIMESTAMP_PATTERN},
)]
Year = Annotated[int, Meta(ge=1990, le=2100)]


def parse_duration(text: str) -> timedelta:
    """'250ms' -> timedelta(milliseconds=250). The text must match `DURATION_PATTERN`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: '{text}'")
    unit = match.group(1)
    return timedelta(milliseconds=int(text[: -len(unit)]) * _UNIT_MS[unit])


def normalize_duration(text: str) -> str:
    """The same duration in the largest unit that states it exactly: '60s' -> '1m'."""
    millis = parse_duration(text) // timedelta(milliseconds=1)
    for unit, size in _UNIT_MS.items():
        if millis % size == 0:
            return f"{millis // size}{unit}"
    raise AssertionError("unreachable: every duration is a whole number of milliseconds")


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
            omit_defaults=True):
    pass


class Throttle(_Spec, frozen=True, kw_only=True):
    """At most `max` events in any sliding `window`."""

    max: Annotated[int, Meta(ge=1, description="Most events allowed in one window.")]
    window: Duration


class Limits(_Spec, frozen=True, kw_only=True):
    """Limits for one scope. Any field may be left out; overrides are resolved field by field:
    defaults -> account -> strategy -> symbol, the most specific setting wins."""

    # data integrity and clock
    max_market_data_age: Duration | UnsetType = UNSET
    max_intent_skew: Duration | UnsetType = UNSET
    # loss and drawdown
    max_daily_loss: Amount | UnsetType = UNSET
    max_daily_loss_pct: Percent | UnsetType = UNSET
    max_drawdown_pct: Percent | UnsetType = UNSET
    drawdown_kill: bool | UnsetType = UNSET
    # duplicates
    duplicate_window: Duration | UnsetType = UNSET
    # order sanity
    allowed_order_types: list[OrderType] | UnsetType = UNSET
    max_order_qty: Amount | UnsetType = UNSET
    max_order_value: Amount | UnsetType = UNSET
    price_collar_pct: Percent | UnsetType = UNSET
    market_collar_pct: Percent | UnsetType = UNSET
    self_match: SelfMatch | UnsetType = UNSET
    # throttles
    rate_global: Throttle | UnsetType = UNSET
    rate_account: Throttle | UnsetType = UNSET
    rate_strategy: Throttle | UnsetType = UNSET
    rate_symbol: Throttle | UnsetType = UNSET
    cancel_rate: Throttle | UnsetType = UNSET
    repeated_execution: Throttle | UnsetType = UNSET
    # exposure
    max_position_qty: Amount | UnsetType = UNSET
    max_position_value: Amount | UnsetType = UNSET
    max_gross_exposure: Amount | UnsetType = UNSET
    max_net_exposure: Amount | UnsetType = UNSET
    max_firm_gross_exposure: Amount | UnsetType = UNSET
    exposure_modify: bool | UnsetType = UNSET
    # liquidity
    max_volume_participation_pct: Percent | UnsetType = UNSET


class InstrumentSpec(_Spec, frozen=True, kw_only=True):
    tick_size: Amount | UnsetType = UNSET
    lot_size: Amount | UnsetType = UNSET


class Metadata(_Spec, frozen=True, kw_only=True):
    name: Name
    description: str = ""
    effective_from: UtcTimestamp | UnsetType = UNSET


class EngineSpec(_Spec, frozen=True, kw_only=True):
    """Settings the engine acts on (see `EngineSettings`); durations in friendly units."""

    cancel_all_on_kill: bool = False
    on_stale_data: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_bad_data: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_clock_fault: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_dependency_down: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_reconciliation_mismatch: ModeOnFault = ModeOnFault.REDUCE_ONLY
    on_drawdown: ModeOnFault = ModeOnFault.HALTED
    resume_requires_two_operators: bool = False
    reset_window: Duration | UnsetType = UNSET
    day_roll_calendar: str | UnsetType = UNSET


class MarketHours(_Spec, frozen=True, kw_only=True):
    """Symbols that may trade only while `calendar` (an exchange_calendars code such as XNYS)
    is in session. Sessions are resolved at load for the years `[first, last]`."""

    calendar: str
    symbols: Annotated[list[Name], Meta(min_length=1)]
    years: tuple[Year, Year]


class PolicySpec(_Spec, frozen=True, kw_only=True):
    api_version: Literal["ordergate/v1"] = msgspec.field(name="apiVersion")
    kind: Literal["Policy"]
    metadata: Metadata
    monitor: bool = False
    kill_switch: bool = False
    engine: EngineSpec | UnsetType = UNSET
    require_instrument: bool = False
    instruments: dict[Name, InstrumentSpec] = {}
    restricted_symbols: list[Name] = []
    canary_symbols: list[Name] = []
    market_hours: MarketHours | UnsetType = UNSET
    defaults: Limits
    accounts: dict[Name, Limits] = {}
    strategies: dict[Name, Limits] = {}
    symbols: dict[Name, Limits] = {}


#: Sections keyed by a user-chosen name (account, strategy, symbol): validated entry by entry
#: so an error can name the key.
KEYED_SECTIONS: dict[str, type[_Spec]] = {
    "instruments": InstrumentSpec,
    "accounts": Limits,
    "strategies": Limits,
    "symbols": Limits,
}
