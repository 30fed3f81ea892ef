"""Exact money and time primitives.

Prices, quantities and cash are `decimal.Decimal` (invariant 9, exact money); on the wire
they are decimal strings. Timestamps are timezone-aware UTC `datetime`s; on the wire they
are RFC 3339 strings. These helpers validate both at the edge so the core can trust them.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from typing import ParamSpec, TypeVar

ZERO = Decimal(0)

# Every decimal of an input is below 10**15 in magnitude: beyond any real quantity, price or
# cash, and small enough that a product of two (a notional) keeps the engine's arithmetic in
# the range Decimal's 28 digits hold (the engine still refuses, SYS-008, the rare figure that
# does not fit). Checked as `value.adjusted() < MAX_ADJUSTED`: its power of ten, one call.
MAX_ADJUSTED = 15
MAGNITUDE_LIMIT = Decimal(f"1E+{MAX_ADJUSTED}")
# ...and a non-zero one is at least 10**-18 in magnitude (the finest unit of any asset, an
# ether's wei): a figure of 1E-1000030 is below what Decimal's exponent range can carry through
# a sum, which rounds it to 0 and turns an average price into 0/0.
MIN_ADJUSTED = -18
SMALLEST = Decimal(f"1E{MIN_ADJUSTED}")
# ...and it carries at most 28 significant digits, what the engine's sums keep exactly: a
# quantity of 10.00000000000000000000000000001 would be booked as 10 by its fill and leave
# 1E-29 working for ever. Checked as "rounding to 28 digits leaves it unchanged".
MAX_DIGITS = 28
_DIGITS = Context(prec=MAX_DIGITS)

# The engine's and the gate's arithmetic from engine behaviour 5 on (`engine.state`), set for
# each event by `Engine.handle` and by the public `gate.evaluate`. Decimal's default context
# rounds every sum and product to 28 digits: next to a notional of 10**29 a position's 49
# vanished from an account's gross and never came back, and 3 x 333333.3333333333333333333334
# came out as exactly a 1,000,000 cap. An input's digits lie between 10**14 and 10**-45 (28
# digits below 10**15, at least 10**-18), so a product of two spans at most 120 digits; 30 more
# keep sums of up to 10**30 such products exact. Exact results keep the exponents the 28-digit
# context gave them, so only what it rounded changes. Divisions never end in general: they keep
# Decimal's default 28 digits (`QUOTIENT`), as before.
EXACT = Context(prec=2 * (MAX_ADJUSTED - (MIN_ADJUSTED - MAX_DIGITS + 1)) + 30,
                rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999,
                traps=[InvalidOperation, DivisionByZero, Overflow])
QUOTIENT = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999,
                   traps=[InvalidOperation, DivisionByZero, Overflow])
# Decimal's default context (28 digits, half even, the default traps), fixed: what every
# entry point of ordergate computes in whatever the caller's own context is (an embedding
# program's `getcontext().prec = 6` or `traps[Inexact]`, a sitecustomize): the embedded
# `Gateway`, the runtime's batches and recovery (run, serve, gateway), the status view and
# replay. Engine behaviour 1 to 4 decided in it (`Engine.handle` leaves their arithmetic to
# the context it is called in), so their journals replay as decided; behaviour 5 sets `EXACT`
# inside it for each event.
STANDARD = Context(prec=MAX_DIGITS, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999,
                   traps=[InvalidOperation, DivisionByZero, Overflow])

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_standard_arithmetic(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`function` run in a fresh copy of `STANDARD`, the caller's decimal context put back
    after it. For entry points: once per call (a batch, a replay), never per record."""
    @functools.wraps(function)
    def pinned(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        previous = getcontext()
        setcontext(STANDARD.copy())  # a copy: flags and any change inside stay in this call
        try:
            return function(*args, **kwargs)
        finally:
            setcontext(previous)
    return pinned


def exact_arithmetic() -> bool:
    """Whether the caller runs in `EXACT` (or as wide): for the few texts whose 28-digit
    form raised where the exact arithmetic must not (`gate.context.pct_text`)."""
    return getcontext().prec >= EXACT.prec
# Set while a journaled record that the digits rule refused is read again: a journal written
# before the rule keeps what it accepted then, so an upgrade never makes it unreadable.
_JOURNALED: ContextVar[bool] = ContextVar("ordergate_journaled", default=False)


@contextmanager
def journaled_digits() -> Iterator[None]:
    """Inside: decimals are not refused for their number of digits (only for being beyond
    the magnitude bounds or not finite). For reading back what a journal already holds."""
    token = _JOURNALED.set(True)
    try:
        yield
    finally:
        _JOURNALED.reset(token)


class InvalidValue(ValueError):
    """A field holds a value that is not allowed; the message names the field."""


def require_finite(field: str, value: Decimal) -> Decimal:
    """A finite decimal below `MAGNITUDE_LIMIT` in magnitude, with at most `MAX_DIGITS`
    significant digits (the check every decimal of every input event goes through)."""
    try:
        finite = value.is_finite()
    except AttributeError:  # a float, int, str... built in code: only the error path pays
        raise InvalidValue(f"{field}: expected a Decimal (exact; e.g. Decimal('10.5')), got "
                           f"{type(value).__name__} {value!r}") from None
    if not finite:
        raise InvalidValue(f"{field}: expected a finite decimal, got '{value}'")
    if not MIN_ADJUSTED <= value.adjusted() < MAX_ADJUSTED and value:  # 0E+20 is zero
        raise_out_of_range(field, value)
    if _DIGITS.plus(value) != value and not _JOURNALED.get():
        raise InvalidValue(f"{field}: expected at most {MAX_DIGITS} significant digits, got "
                           f"'{value}' ({len(value.as_tuple().digits)} digits)")
    return value


def raise_out_of_range(field: str, value: Decimal) -> None:
    if value.adjusted() >= MAX_ADJUSTED:
        raise InvalidValue(f"{field}: expected a decimal below {MAGNITUDE_LIMIT} in magnitude, "
                           f"got '{value}'")
    raise InvalidValue(f"{field}: expected 0 or a decimal of at least {SMALLEST} in magnitude, "
                       f"got '{value}'")


def require_finite_sum(field: str, value: Decimal) -> Decimal:
    """A finite decimal with no magnitude bound: for a sum of figures the engine computed
    itself (another shard's exposure), which it only adds and compares."""
    if not value.is_finite():
        raise InvalidValue(f"{field}: expected a finite decimal, got '{value}'")
    return value


def require_positive(field: str, value: Decimal) -> Decimal:
    require_finite(field, value)
    if value <= 0:
        raise InvalidValue(f"{field}: expected a positive decimal, got '{value}'")
    return value


def require_non_negative(field: str, value: Decimal) -> Decimal:
    require_finite(field, value)
    if value < 0:
        raise InvalidValue(f"{field}: expected a non-negative decimal, got '{value}'")
    return value


# Every timestamp of an input lies in [EARLIEST, LATEST): wide enough for any historical
# replay and any live clock, and far enough from datetime's own limits (years 1 and 9999) that
# the engine's time arithmetic (the next day roll, windows reaching back from now) can never
# overflow. An event time outside it would advance the engine's clock there for good.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _offset_text(offset: timedelta) -> str:
    """A UTC offset as RFC 3339 writes it: '-05:00', '+05:30'."""
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def require_utc(field: str, value: datetime) -> datetime:
    if value.tzinfo is not UTC:  # the decoder gives a 'Z' timestamp UTC itself
        offset = value.utcoffset()
        if offset is None:
            raise InvalidValue(
                f"{field}: timestamp must carry a UTC offset ('Z'), got '{value}'")
        if offset != timedelta(0):
            raise InvalidValue(f"{field}: timestamp must be UTC ('Z'), got offset "
                               f"{_offset_text(offset)}")
    if not EARLIEST <= value < LATEST:
        shown = value.isoformat().replace("+00:00", "Z")
        raise InvalidValue(f"{field}: expected a time from {EARLIEST:%Y-%m-%d} up to (not "
                           f"including) {LATEST:%Y-%m-%d}, got '{shown}'")
    return value


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    """A UTC timestamp; a convenience for tests, examples and synthetic data."""
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def control_character_problem(text: str) -> str | None:
    """Where `text` holds a control character (a NUL, a line break, a terminal escape), in
    words, or None. Operator reasons and names are journaled, alerted and printed on
    terminals: they must be one line of plain text."""
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            return f"character {position} is the control character U+{ord(char):04X}"
    return None


def same_person_key(name: str) -> str:
    """An operator id as a person reads it, for telling two operators apart: Unicode
    compatibility forms (full-width letters, ligatures), case, invisible format characters
    (zero-width spaces, soft hyphens) and runs of spaces do not make a second person."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(char for char in folded if unicodedata.category(char) != "Cf")
    return " ".join(visible.split())


def is_blank(text: str) -> bool:
    """Nothing visible: only spaces or zero-width (format) characters."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


# Patterns of the model's text fields, and what a user is told when a value does not match
# one (msgspec would quote the regex).
IDENTIFIER_PATTERN = r"^[\x21-\x7e]+$"
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
_PATTERN_WORDS = {
    IDENTIFIER_PATTERN: "printable ASCII without spaces",
    PRINTABLE_PATTERN: "text without control characters (no line breaks, tabs or escapes)",
}


def describe_error(exc: Exception) -> str:
    """A msgspec decode/validation error as users read it: "field qty: <problem>".

    msgspec says "<problem> - at `$.qty`"; the field path goes first so it is seen first.
    """
    text = str(exc)
    for pattern, words in _PATTERN_WORDS.items():
        text = text.replace(f"Expected `str` matching regex {pattern!r}", f"Expected {words}")
    key_problem, sep, mapping = text.rpartition(" - at `key` in `")
    if sep:  # a mapping's key, not one of its values, is wrong
        field = mapping.rstrip("`").removeprefix("$.").removeprefix("$")
        return f"field {field} (a key): {key_problem}"
    message, sep, where = text.rpartition(" - at `")
    if sep:
        field = where.rstrip("`").removeprefix("$.").removeprefix("$")
        return f"field {field}: {message}" if field else message
    return text
