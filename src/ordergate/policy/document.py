"""Plain data -> a validated, normalized `PolicySpec`, with errors that point into the file.

msgspec does the structural validation (types, unknown keys, enums); this module turns its
errors into messages a risk officer can act on (file, line, column, field path, the fix) and
adds the checks a type cannot express: positive finite decimals, percentages, UTC timestamps,
no duplicate list entries, known exchange calendars, the critical keys, a market collar no
looser than the limit collar (`policy.collars`). Normalizing (decimals without trailing zeros,
durations in their largest exact unit, set-like lists sorted) makes two documents that mean
the same thing identical, so they hash the same.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET

from ordergate.model.values import MAGNITUDE_LIMIT, MAX_ADJUSTED
from ordergate.policy.collars import check_collars
from ordergate.policy.errors import Path
from ordergate.policy.sessions import unknown_calendar_message
from ordergate.policy.spec import (
    API_VERSION,
    DURATION_PATTERN,
    KEYED_SECTIONS,
    KIND,
    PolicySpec,
    normalize_duration,
)
from ordergate.policy.yamlsource import SourceMap

_HUNDRED = Decimal(100)
_MAX_CALENDAR_YEARS = 10
_NAME_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_FRIENDLY_TYPES = {
    "decimal": "a decimal such as 100 or 0.25",
    "int": "a whole number",
    "str": "text",
    "bool": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "datetime": "an RFC 3339 UTC timestamp such as 2026-01-05T00:00:00Z",
    "null": "null",
}
_DURATION_HINT = "expected a positive duration such as '250ms', '1s', '5m', '1h' or '1d'"
# `defaults` fields with no safe default: a policy without them is refused
CRITICAL_DEFAULTS = ("max_market_data_age",)


@functools.cache
def _all_field_names() -> tuple[str, ...]:
    names: set[str] = set()
    pending: list[type[msgspec.Struct]] = [PolicySpec]
    seen: set[type[msgspec.Struct]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for info in msgspec.structs.fields(cls):
            names.add(info.encode_name)
            pending.extend(_structs_in(info.type))
    return tuple(sorted(names))


def _structs_in(tp: Any) -> list[type[msgspec.Struct]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    found: list[type[msgspec.Struct]] = []
    for arg in typing.get_args(tp):
        found.extend(_structs_in(arg))
    return found


def meta_kind(tp: Any) -> str | None:
    """The `extra={"kind": ...}` marker of an annotated field type, looking through unions."""
    if typing.get_origin(tp) is typing.Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, msgspec.Meta) and meta.extra and "kind" in meta.extra:
                return str(meta.extra["kind"])
        return meta_kind(typing.get_args(tp)[0])
    for arg in typing.get_args(tp):
        kind = meta_kind(arg)
        if kind is not None:
            return kind
    return None


def _shown(value: object, smap: SourceMap, path: Path) -> str:
    if path in smap.text:
        return smap.text[path]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lookup(data: object, path: Path) -> object:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _translate(exc: msgspec.ValidationError, data: object, prefix: Path,
               smap: SourceMap) -> Exception:
    match = _ERROR.match(str(exc))
    assert match is not None  # the pattern matches any text
    message = match.group("message")
    path: Path = prefix
    for name, index in _PATH_PART.findall(match.group("path") or ""):
        path = (*path, int(index)) if index else (*path, name)
    actual = _lookup(data, path[len(prefix):])
    if path not in smap.text and isinstance(actual, list | dict):
        got = ", got a list" if isinstance(actual, list) else ", got a mapping"
    else:
        got = f", got '{_shown(actual, smap, path)}'"

    if found := re.match(r"Object contains unknown field `(.*)`$", message):
        field = found.group(1)
        here = _type_at(path[len(prefix):], prefix)
        known = ([info.encode_name for info in msgspec.structs.fields(here)]
                 if isinstance(here, type) and issubclass(here, msgspec.Struct) else [])
        close = difflib.get_close_matches(field, known, n=1)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        elif field in _all_field_names():
            hint = " in this section; check its indentation or move it"
        else:
            hint = "; remove it or fix the spelling"
        return smap.error((*path, field), f"unknown field '{field}'{hint}", key=True)
    if found := re.match(r"Object missing required field `(.*)`$", message):
        return smap.error(path, f"missing required field '{found.group(1)}'", key=True)
    if found := re.match(r"Expected `(\w+)`, got `(\w+)`$", message):
        wanted = _FRIENDLY_TYPES.get(found.group(1), found.group(1))
        return smap.error(path, f"expected {wanted}{got}")
    if message.startswith("Expected `str` matching regex"):
        if DURATION_PATTERN in message:
            return smap.error(path, _DURATION_HINT + got)
        return smap.error(path, "expected a name of 1 to 128 printable characters without "
                                f"spaces{got}")
    if message == "Invalid decimal string":
        return smap.error(path, f"expected a decimal such as 100 or 0.25{got}")
    if message.startswith("Invalid enum value"):
        shown = _shown(_lookup(data, path[len(prefix):]), smap, path)
        return smap.error(path, f"invalid value '{shown}'; expected one of "
                                f"{_enum_choices(path[len(prefix):], prefix)}")
    if message.startswith(("Expected `datetime`", "Invalid RFC3339")):
        return smap.error(path, f"expected {_FRIENDLY_TYPES['datetime']}{got}")
    if found := re.match(r"Expected `int` (>=|<=) (-?\d+)$", message):
        bound = "at least" if found.group(1) == ">=" else "at most"
        return smap.error(path, f"expected a whole number {bound} {found.group(2)}{got}")
    if found := re.match(r"Expected `array` of length (>= |<= )?(\d+)(?:, got (\d+))?$",
                         message):
        bound = {"": "exactly", ">= ": "at least", "<= ": "at most"}[found.group(1) or ""]
        count = f", got {found.group(3)}" if found.group(3) else ""
        return smap.error(path, f"expected a list of {bound} {found.group(2)} "
                                f"item(s){count}")
    return smap.error(path, message[0].lower() + message[1:])


def _type_at(rel_path: Path, prefix: Path) -> Any:
    """The declared type at a path inside the struct being converted."""
    tp: Any = KEYED_SECTIONS[str(prefix[0])] if prefix else PolicySpec
    for part in rel_path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            fields = {info.encode_name: info.type for info in msgspec.structs.fields(tp)}
            tp = fields.get(str(part))
        else:
            args = typing.get_args(tp)
            tp = args[-1] if args else None
    return _unwrap(tp)


def _enum_choices(rel_path: Path, prefix: Path) -> str:
    tp = _type_at(rel_path, prefix)
    if typing.get_origin(tp) is typing.Literal:
        return ", ".join(repr(v) for v in typing.get_args(tp))
    if isinstance(tp, type) and hasattr(tp, "__members__"):
        return ", ".join(repr(m.value) for m in tp.__members__.values())
    return "the documented values"


def _unwrap(tp: Any) -> Any:
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not msgspec.UnsetType]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _convert(data: object, cls: type[msgspec.Struct], prefix: Path,
             smap: SourceMap) -> Any:
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise _translate(exc, data, prefix, smap) from None


def _check_header(data: object, smap: SourceMap) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise smap.error((), "expected a mapping at the top of the policy, starting with "
                             f"'apiVersion: {API_VERSION}'")
    if "apiVersion" not in data:
        raise smap.error((), f"missing 'apiVersion'; add 'apiVersion: {API_VERSION}' "
                             "as the first line")
    if data["apiVersion"] != API_VERSION:
        raise smap.error(("apiVersion",), f"unsupported version "
                         f"'{_shown(data['apiVersion'], smap, ('apiVersion',))}'; "
                         f"this ordergate reads '{API_VERSION}'")
    if "kind" not in data:
        raise smap.error((), f"missing 'kind'; add 'kind: {KIND}'")
    if data["kind"] != KIND:
        raise smap.error(("kind",), f"expected '{KIND}', got "
                                    f"'{_shown(data['kind'], smap, ('kind',))}'")
    return data


def build_spec(data: object, smap: SourceMap) -> PolicySpec:
    """Validate plain data (from YAML or a normalized document) into a normalized spec."""
    top = dict(_check_header(data, smap))
    sections: dict[str, dict[str, Any]] = {}
    for section, cls in KEYED_SECTIONS.items():
        raw = top.get(section)
        if not isinstance(raw, dict):
            continue  # absent, or the wrong type: the structural check below reports it
        entries: dict[str, Any] = {}
        for key, value in raw.items():
            if not _NAME_PATTERN.match(key):
                raise smap.error((section, key), "expected a name of 1 to 128 printable "
                                 f"characters without spaces, got '{key}'", key=True)
            entries[key] = _convert(value, cls, (section, key), smap)
        sections[section] = entries
        top[section] = {}
    spec: PolicySpec = msgspec.structs.replace(_convert(top, PolicySpec, (), smap), **sections)
    _check_critical(spec, smap)
    normalized: PolicySpec = _normalize(spec, (), smap)
    _check_calendars(normalized, smap)
    check_collars(normalized, smap)
    return normalized


def _check_critical(spec: PolicySpec, smap: SourceMap) -> None:
    for name in CRITICAL_DEFAULTS:
        if getattr(spec.defaults, name) is UNSET:
            raise smap.error(("defaults",), f"missing required field '{name}': it has no safe "
                             f"default; set it, e.g. '{name}: 2s'", key=True)


def _check_calendars(spec: PolicySpec, smap: SourceMap) -> None:
    hours = spec.market_hours
    if hours is not UNSET:
        first, last = hours.years
        if first > last or last - first >= _MAX_CALENDAR_YEARS:
            raise smap.error(("market_hours", "years"), "expected [first_year, last_year] with "
                             f"first <= last and at most {_MAX_CALENDAR_YEARS} years, "
                             f"got [{first}, {last}]")
        if problem := unknown_calendar_message(hours.calendar):
            raise smap.error(("market_hours", "calendar"), problem)
    roll = spec.engine.day_roll_calendar if spec.engine is not UNSET else UNSET
    if roll is not UNSET and (problem := unknown_calendar_message(roll)):
        raise smap.error(("engine", "day_roll_calendar"), problem)


def _normalize_decimal(value: Decimal, kind: str | None, smap: SourceMap, path: Path) -> Decimal:
    shown = _shown(value, smap, path)
    if kind == "percent":
        if not value.is_finite() or value <= 0 or value > _HUNDRED:
            raise smap.error(path, "expected a percentage above 0 and at most 100 "
                                   f"(2.5 means 2.5 %), got '{shown}'")
    elif not value.is_finite() or value <= 0:
        raise smap.error(path, f"expected a positive decimal, got '{shown}'")
    elif value.adjusted() >= MAX_ADJUSTED:
        # the bound every input decimal has (model.values): a limit beyond it is no limit
        raise smap.error(path, f"expected a decimal below {MAGNITUDE_LIMIT}, got '{shown}'")
    # Not `Decimal.normalize()`: it rounds to the context's 28 digits.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


@functools.cache
def _field_kinds(cls: type[msgspec.Struct]) -> tuple[tuple[str, str, str | None], ...]:
    """(name, encoded name, meta kind) of a spec class's fields. Asked once per class:
    `msgspec.structs.fields` evaluates the annotations on every call, and a policy with
    hundreds of symbol sections would pay that hundreds of times."""
    return tuple((info.name, info.encode_name, meta_kind(info.type))
                 for info in msgspec.structs.fields(cls))


def _normalize(value: Any, path: Path, smap: SourceMap, kind: str | None = None) -> Any:
    if isinstance(value, msgspec.Struct):
        changes: dict[str, Any] = {}
        for name, encode_name, field_kind in _field_kinds(type(value)):
            current = getattr(value, name)
            if current is UNSET:
                continue
            changes[name] = _normalize(current, (*path, encode_name), smap, field_kind)
        return msgspec.structs.replace(value, **changes)
    if isinstance(value, dict):
        for key in value:
            _require_encodable(key, (*path, key), smap)
        return {key: _normalize(item, (*path, key), smap, kind) for key, item in value.items()}
    if isinstance(value, list):
        seen: dict[object, int] = {}
        for index, item in enumerate(value):
            if item in seen:
                raise smap.error((*path, index), f"duplicate entry '{item}' (already at "
                                                 f"[{seen[item]}]); list it once")
            seen[item] = index
        return sorted(value)
    if isinstance(value, Decimal):
        return _normalize_decimal(value, kind, smap, path)
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise smap.error(path, "expected a UTC timestamp ending in 'Z', got "
                                   f"'{_shown(value, smap, path)}'")
        return value.astimezone(UTC)
    if isinstance(value, str):
        _require_encodable(value, path, smap)
        if kind == "duration":
            try:
                return normalize_duration(value)
            except OverflowError:
                raise smap.error(path, "expected a duration of at most 999999999d, got "
                                       f"'{value}'") from None
    return value


def _require_encodable(text: str, path: Path, smap: SourceMap) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise smap.error(path, "the text holds an unpaired surrogate (\\ud800-\\udfff); "
                               "write the character itself") from None


def spec_to_document(spec: PolicySpec) -> dict[str, Any]:
    """The normalized document: JSON-ready builtins, defaults left out."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(spec))
    return document
