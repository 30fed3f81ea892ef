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
from ordergate.model.values import MAX_ADJUSTED
from ordergate.policy.limits import ModeOnFault, SelfMatch

API_VERSION = "ordergate/v1"
KIND = "Policy"

DURATION_PATTERN = r"^[1-9][0-9]*(ms|s|m|h|d)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}

# The exported JSON Schema states the loader's decimal checks as far as JSON Schema can: a
# pattern for a decimal written as text, bounds for one written as a number (`pattern` applies
# only to strings, the bounds only to numbers). The loader reads text with `Decimal`, which
# strips whitespace (what `str.isspace` calls one) from both ends and then ignores an
# underscore anywhere ("1_000", even "_1__0_"), so the patterns do too.
_U = "_*"
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
_ZEROS = rf"(?:0{_U})*"
_DIGITS = rf"(?:[0-9]{_U})*"
_FRACTION = rf"(?:\.{_U}{_DIGITS})?"
_ZERO_FRACTION = rf"(?:\.{_U}{_ZEROS})?"
# a zero or absent whole part and a fraction (the lookahead in `_decimal_pattern` makes the
# number non-zero)
_FRACTION_ONLY = rf"{_ZEROS}\.{_U}{_DIGITS}"
_NEGATIVE_EXPONENT = rf"[eE]{_U}-{_U}[0-9]{_U}{_DIGITS}"


def _whole(most_digits: int) -> str:
    """A non-zero whole part of at most `most_digits` digits (leading zeros aside), then any
    fraction: a number below 10**most_digits."""
    return rf"{_ZEROS}[1-9]{_U}(?:[0-9]{_U}){{0,{most_digits - 1}}}{_FRACTION}"


def _exponent(*values: int) -> str:
    """An exponent of one of `values` (each >= 0): 'e2', 'E+02', 'e-0'."""
    numbers = "|".join("".join(f"{digit}{_U}" for digit in str(value)) for value in values)
    sign = "[+-]" if 0 in values else r"\+"
    return rf"[eE]{_U}(?:{sign}{_U})?{_ZEROS}(?:{numbers})"


def _below_power_of_ten(power: int) -> list[str]:
    """Forms of a positive decimal below 10**power. Exact without an exponent. With one, a
    regular expression cannot do the sum (digits before the point + exponent), so these
    forms are stricter than the value: the whole part's digits and a positive exponent
    together stay at most `power` (with no whole part, the exponent at most `power`), and a
    negative exponent does not admit a longer whole part. 0.001E+17 and
    1000000000000000000E-5 are below 1E+15 but refused."""
    return [
        rf"{_whole(power)}(?:{_NEGATIVE_EXPONENT})?",
        rf"{_FRACTION_ONLY}(?:{_NEGATIVE_EXPONENT}|{_exponent(*range(power + 1))})?",
        *(rf"{_whole(power - exponent)}{_exponent(exponent)}" for exponent in range(power)),
    ]


def _decimal_pattern(forms: list[str]) -> str:
    non_zero = r"(?=[0-9._]*[1-9])"  # a non-zero digit before any exponent
    return rf"^{_SPACE}{_U}(?:\+{_U})?{non_zero}(?:{'|'.join(forms)}){_SPACE}$"


# positive and below 1E+15
AMOUNT_PATTERN = _decimal_pattern(_below_power_of_ten(MAX_ADJUSTED))
# above 0 and at most 100
PERCENT_PATTERN = _decimal_pattern([
    *_below_power_of_ten(2),
    rf"{_ZEROS}1{_U}0{_U}0{_U}{_ZERO_FRACTION}(?:{_NEGATIVE_EXPONENT}|{_exponent(0)})?",
    rf"{_ZEROS}1{_U}0{_U}{_ZERO_FRACTION}{_exponent(1)}",
    rf"{_ZEROS}1{_U}{_ZERO_FRACTION}{_exponent(2)}",
])
# A number is bounded with `not`, not only with `exclusiveMinimum`: YAML's .nan arrives as a
# float NaN, which passes every comparison, so "not (at most 0)" is what refuses it.
_POSITIVE_NUMBER = {"exclusiveMinimum": 0, "not": {"type": "number", "maximum": 0}}
_LIMITS_OF_THE_SCHEMA = (
    " Where a schema check and `ordergate policy check` differ: the schema sees a YAML number "
    "as a float, so one rounded onto or off a bound (999999999999999.99, 1e-400, "
    "100.000000000000001) is misjudged (quote it); it refuses text that only its exponent "
    "brings in range (0.001E+17, 1000000000000000000E-5, 0.1E+3, 350E-2); and it reads only "
    "the digits 0-9 (not '\u0665'). The loader is the last word."
)
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
                "number or a string; it is read from its text, never through a float."
                + _LIMITS_OF_THE_SCHEMA,
    examples=["100000", "0.001"],
    extra={"kind": "positive"},
    extra_json_schema={"pattern": AMOUNT_PATTERN, **_POSITIVE_NUMBER,
                       "exclusiveMaximum": 10**MAX_ADJUSTED},
)]
Percent = Annotated[Decimal, Meta(
    description="A percentage above 0 and at most 100: 2.5 means 2.5 %." + _LIMITS_OF_THE_SCHEMA,
    examples=["2.5"],
    extra={"kind": "percent"},
    extra_json_schema={"pattern": PERCENT_PATTERN, **_POSITIVE_NUMBER, "maximum": 100},
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
