"""`Policy`: a loaded, validated, hashed policy, and the functions that make one.

A `Policy` is immutable. Its identity is `hash`, a SHA-256 over the canonical JSON of the
normalized document (sorted keys, decimals as normalized strings, durations in their largest
exact unit), so key order, YAML formatting and comments never change it, and
`Policy.from_document(p.document).hash == p.hash`.

`limits_for` is on the gate's hot path: the first call for an (account, strategy, symbol)
merges the overrides field by field, later calls are one dict lookup.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from ordergate.model.intent import OrderType
from ordergate.policy.collars import fill_market_collar
from ordergate.policy.document import (
    CRITICAL_DEFAULTS,
    build_spec,
    meta_kind,
    spec_to_document,
)
from ordergate.policy.errors import PolicyError
from ordergate.policy.limits import (
    EngineSettings,
    Instrument,
    RateLimit,
    ResolvedLimits,
    TradingSessions,
)
from ordergate.policy.sessions import trading_sessions
from ordergate.policy.spec import EngineSpec, Limits, PolicySpec, Throttle, parse_duration
from ordergate.policy.yamlsource import SourceMap, read_yaml

# Keys come from intents; bound the memo so a stream of unknown symbols cannot grow it
# without end. Clearing is safe: entries are recomputed identically.
_MEMO_LIMIT = 100_000

_Fields = dict[str, Any]


@functools.cache
def _limit_field_kinds() -> tuple[tuple[str, str | None], ...]:
    """(name, meta kind) of every `Limits` field. Asked once: `msgspec.structs.fields`
    evaluates the class's annotations on every call, which made loading a policy with
    hundreds of symbol overrides take most of a second."""
    return tuple((info.name, meta_kind(info.type)) for info in msgspec.structs.fields(Limits))


def _limit_fields(limits: Limits) -> _Fields:
    """The fields a `Limits` section sets, in `ResolvedLimits` units."""
    fields: _Fields = {}
    for name, kind in _limit_field_kinds():
        value = getattr(limits, name)
        if value is UNSET:
            continue
        if isinstance(value, Throttle):
            value = RateLimit(max_count=value.max, window=parse_duration(value.window))
        elif kind == "duration":
            value = parse_duration(value)
        elif name == "allowed_order_types":
            value = frozenset(OrderType(item) for item in value)
        fields[name] = value
    return fields


def _engine_settings(spec: PolicySpec) -> EngineSettings:
    engine = spec.engine if spec.engine is not UNSET else EngineSpec()
    reset_window: timedelta | None = (
        parse_duration(engine.reset_window) if engine.reset_window is not UNSET else None
    )
    return EngineSettings(
        cancel_all_on_kill=engine.cancel_all_on_kill,
        on_stale_data=engine.on_stale_data,
        on_bad_data=engine.on_bad_data,
        on_clock_fault=engine.on_clock_fault,
        on_dependency_down=engine.on_dependency_down,
        on_reconciliation_mismatch=engine.on_reconciliation_mismatch,
        on_drawdown=engine.on_drawdown,
        resume_requires_two_operators=engine.resume_requires_two_operators,
        reset_window=reset_window,
        day_roll_calendar=(
            engine.day_roll_calendar if engine.day_roll_calendar is not UNSET else None
        ),
        canary_symbols=frozenset(spec.canary_symbols),
    )


class Policy:
    """A validated policy. Build one with `load_policy`, `parse_policy` or
    `Policy.from_document`; never mutate what it returns."""

    __slots__ = (
        "__weakref__", "_accounts", "_base", "_canary", "_canonical", "_engine", "_hash",
        "_instruments", "_memo", "_restricted", "_session_symbols", "_sessions", "_spec",
        "_strategies", "_symbols",
    )

    def __init__(self, spec: PolicySpec) -> None:
        """Wrap an already validated and normalized spec (see `build_spec`)."""
        self._spec = spec
        self._canonical = msgspec.json.encode(spec_to_document(spec), order="sorted")
        self._hash = "sha256:" + hashlib.sha256(self._canonical).hexdigest()
        self._engine = _engine_settings(spec)
        self._base: _Fields = {
            "kill_switch": spec.kill_switch,
            "monitor": spec.monitor,
            "require_instrument": spec.require_instrument,
            **_limit_fields(spec.defaults),
        }
        self._accounts = {key: _limit_fields(value) for key, value in spec.accounts.items()}
        self._strategies = {key: _limit_fields(value) for key, value in spec.strategies.items()}
        self._symbols = {key: _limit_fields(value) for key, value in spec.symbols.items()}
        self._instruments = {
            key: Instrument(
                tick_size=value.tick_size if value.tick_size is not UNSET else None,
                lot_size=value.lot_size if value.lot_size is not UNSET else None,
            )
            for key, value in spec.instruments.items()
        }
        self._restricted = frozenset(spec.restricted_symbols)
        self._canary = frozenset(spec.canary_symbols)
        self._sessions: TradingSessions | None = None
        self._session_symbols: frozenset[str] = frozenset()
        if spec.market_hours is not UNSET:
            first, last = spec.market_hours.years
            self._sessions = trading_sessions(spec.market_hours.calendar, first, last)
            self._session_symbols = frozenset(spec.market_hours.symbols)
        self._memo: dict[tuple[str, str, str], ResolvedLimits] = {}

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = "<document>") -> Policy:
        """A policy from its normalized document (or any plain data in the policy format).
        Decimals must be strings or ints: a float has already lost exactness."""
        smap = SourceMap(source)
        _reject_floats(document, (), smap)
        return cls(build_spec(dict(document), smap))

    @property
    def name(self) -> str:
        return self._spec.metadata.name

    @property
    def hash(self) -> str:
        """`sha256:<hex>` of the canonical JSON of the normalized document."""
        return self._hash

    @property
    def canonical_json(self) -> bytes:
        """The bytes `hash` is computed over (sorted keys, no whitespace)."""
        return self._canonical

    @property
    def document(self) -> dict[str, Any]:
        """The normalized document as JSON-ready builtins (a fresh copy on each call)."""
        document: dict[str, Any] = msgspec.json.decode(self._canonical)
        return document

    @property
    def spec(self) -> PolicySpec:
        """The validated document as Structs; treat it as read-only."""
        return self._spec

    @property
    def engine(self) -> EngineSettings:
        return self._engine

    @property
    def monitor(self) -> bool:
        return self._spec.monitor

    @property
    def effective_from(self) -> datetime | None:
        """`metadata.effective_from`: the policy may not be activated before it."""
        value = self._spec.metadata.effective_from
        return None if isinstance(value, UnsetType) else value

    @property
    def kill_switch(self) -> bool:
        return self._spec.kill_switch

    def limits_for(self, account: str, strategy: str, symbol: str) -> ResolvedLimits:
        """The limits for one key: defaults, then the account's, the strategy's and the
        symbol's overrides, field by field (most specific wins). Market orders without a
        collar of their own take the limit-order collar (`policy.collars`)."""
        key = (account, strategy, symbol)
        found = self._memo.get(key)
        if found is not None:
            return found
        fields = dict(self._base)
        for overrides, name in ((self._accounts, account), (self._strategies, strategy),
                                (self._symbols, symbol)):
            section = overrides.get(name)
            if section:
                fields.update(section)
        fill_market_collar(fields)
        limits = ResolvedLimits(
            **fields,
            restricted=symbol in self._restricted,
            canary_allowed=not self._canary or symbol in self._canary,
            instrument=self._instruments.get(symbol),
            sessions=self._sessions if symbol in self._session_symbols else None,
        )
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = limits
        return limits

    def __repr__(self) -> str:
        return f"Policy(name={self.name!r}, hash={self.hash!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and other._hash == self._hash

    def __hash__(self) -> int:
        return hash(self._hash)


def _reject_floats(value: object, path: tuple[str | int, ...], smap: SourceMap) -> None:
    if isinstance(value, float):
        raise smap.error(path, f"expected a decimal string such as \"{value!r}\", got the "
                               f"float {value!r} (floats are not exact)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _reject_floats(item, (*path, str(key)), smap)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, (*path, index), smap)


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """A policy from YAML text; `source` names the file in error messages."""
    data, smap = read_yaml(text, source)
    return Policy(build_spec(data, smap))


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a policy file. Raises `PolicyError` naming the file, line and field."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PolicyError(source, f"cannot read the policy: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(source, f"the policy is not UTF-8 text (byte {exc.start})") from None
    return parse_policy(text, source)


def _allow_numbers_for_decimals(node: Any) -> None:
    # msgspec describes decimals as strings; a policy may also write them as YAML numbers.
    if isinstance(node, dict):
        if node.get("format") == "decimal":
            node["type"] = ["string", "number"]
        for value in node.values():
            _allow_numbers_for_decimals(value)
    elif isinstance(node, list):
        for value in node:
            _allow_numbers_for_decimals(value)


def _unique_lists(node: Any) -> None:
    # the loader refuses a list that names an entry twice; fixed-length tuples are not lists
    if isinstance(node, dict):
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            node["uniqueItems"] = True
        for value in node.values():
            _unique_lists(value)
    elif isinstance(node, list):
        for value in node:
            _unique_lists(value)


def policy_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the policy document, from the same Structs that
    validate it, with the loader's checks that JSON Schema can state: positive decimals below
    1E+15, percentages above 0 and at most 100, UTC timestamps, lists without repeats, the
    `defaults` that are required. What it cannot state (a market collar no looser than the
    limit collar, known calendars) only the loader checks, and the few decimals the two judge
    differently are named in the decimals' descriptions (`policy.spec`): `ordergate policy
    check` is the last word."""
    schema: dict[str, Any] = msgspec.json.schema(PolicySpec)
    _allow_numbers_for_decimals(schema)
    _unique_lists(schema)
    schema["$defs"]["PolicySpec"]["properties"]["defaults"]["required"] = list(
        CRITICAL_DEFAULTS
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ordergate policy (apiVersion: ordergate/v1, kind: Policy)",
        "description": "`ordergate policy check` is the last word: it also checks what JSON "
                       "Schema cannot state (a market collar no looser than the limit collar, "
                       "known calendars), and the decimals' descriptions name the few values "
                       "the two judge differently.",
        **schema,
    }
