"""Override precedence holds for every limit a section may set, not only the few a hand-written
test names: defaults -> account -> strategy -> symbol, the most specific section that sets a
field wins (`Policy.limits_for`). The fields come from the policy model (`spec.Limits`), so a
new limit is covered the day it is added (or this test says how to cover it)."""

from __future__ import annotations

import enum
import itertools
import types
import typing
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from msgspec import UnsetType

from gate.build import intent, view
from ordergate.gate import evaluate
from ordergate.model.decision import DecisionKind
from ordergate.policy import Policy, ResolvedLimits
from ordergate.policy.document import meta_kind
from ordergate.policy.limits import RateLimit
from ordergate.policy.spec import Limits, Throttle

D = Decimal
LEVELS = ("defaults", "accounts", "strategies", "symbols")
ACCOUNT, STRATEGY, SYMBOL = "A1", "S1", "XYZ"
# a (document value, resolved value) pair for each level, adjacent levels always different
Pairs = list[tuple[Any, Any]]


def _declared(tp: Any) -> Any:
    """The field's type without `UNSET` and without its annotations."""
    options = [arg for arg in typing.get_args(tp) if arg is not UnsetType]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(options) == 1:
        tp = options[0]
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _enum_values(members: list[Any]) -> list[Any]:
    return [members[index % len(members)] for index in range(len(LEVELS))]


def level_values(info: msgspec.structs.FieldInfo) -> Pairs:
    """Four values of one `Limits` field, in the units of the document and of `ResolvedLimits`."""
    kind = meta_kind(info.type)
    tp = _declared(info.type)
    steps = range(1, len(LEVELS) + 1)
    if kind == "duration":
        return [(f"{step}s", timedelta(seconds=step)) for step in steps]
    if kind in ("positive", "percent"):
        return [(str(step), D(step)) for step in steps]
    if tp is bool:
        return [(step % 2 == 0, step % 2 == 0) for step in steps]
    if tp is Throttle:
        return [({"max": step, "window": "1s"}, RateLimit(max_count=step,
                                                          window=timedelta(seconds=1)))
                for step in steps]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [(member.value, member) for member in _enum_values(list(tp))]
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        if isinstance(item, type) and issubclass(item, enum.Enum):
            return [([member.value], frozenset({member}))
                    for member in _enum_values(list(item))]
    raise AssertionError(f"Limits.{info.name} has a type this test cannot make values for "
                         f"({info.type!r}); teach level_values about it")


OVERRIDABLE = list(msgspec.structs.fields(Limits))


def test_every_overridable_field_resolves_to_a_limit_of_the_same_name() -> None:
    resolved = {info.name for info in msgspec.structs.fields(ResolvedLimits)}
    assert [info.name for info in OVERRIDABLE if info.name not in resolved] == []
    assert len(OVERRIDABLE) >= 25  # the model was read, not an empty list


def layered(field: str, values: dict[str, Any]) -> Policy:
    """A policy setting `field` at the given levels (the age limit is required in defaults)."""
    defaults: dict[str, Any] = {"max_market_data_age": "5s"}
    document: dict[str, Any] = {
        "apiVersion": "ordergate/v1", "kind": "Policy", "metadata": {"name": "layers"},
        "defaults": defaults,
    }
    for level, value in values.items():
        if level == "defaults":
            defaults[field] = value
        else:
            name = {"accounts": ACCOUNT, "strategies": STRATEGY, "symbols": SYMBOL}[level]
            document[level] = {name: {field: value}}
    return Policy.from_document(document)


# (account, strategy, symbol) of a key and the most specific level whose section it matches
KEYS = [
    (("OTHER", "OTHER", "OTHER"), "defaults"),
    ((ACCOUNT, "OTHER", "OTHER"), "accounts"),
    ((ACCOUNT, STRATEGY, "OTHER"), "strategies"),
    (("OTHER", STRATEGY, "OTHER"), "strategies"),
    ((ACCOUNT, STRATEGY, SYMBOL), "symbols"),
    (("OTHER", "OTHER", SYMBOL), "symbols"),
]


@pytest.mark.parametrize("info", OVERRIDABLE, ids=lambda info: info.name)
def test_the_most_specific_section_wins_for_every_field(
    info: msgspec.structs.FieldInfo,
) -> None:
    pairs = dict(zip(LEVELS, level_values(info), strict=True))
    policy = layered(info.encode_name, {level: raw for level, (raw, _) in pairs.items()})
    for (account, strategy, symbol), winner in KEYS:
        got = getattr(policy.limits_for(account, strategy, symbol), info.name)
        assert got == pairs[winner][1], f"{info.name} for {(account, strategy, symbol)}"


@pytest.mark.parametrize("info", OVERRIDABLE, ids=lambda info: info.name)
def test_a_level_that_leaves_a_field_out_falls_through_to_the_one_below(
    info: msgspec.structs.FieldInfo,
) -> None:
    defaults_value, account_value, _, symbol_value = level_values(info)
    # no strategy section: the strategy key sees the account's value, the symbol key its own
    policy = layered(info.encode_name, {"defaults": defaults_value[0],
                                        "accounts": account_value[0],
                                        "symbols": symbol_value[0]})
    limits = policy.limits_for(ACCOUNT, STRATEGY, "OTHER")
    assert getattr(limits, info.name) == account_value[1]
    assert getattr(policy.limits_for(ACCOUNT, STRATEGY, SYMBOL), info.name) == symbol_value[1]


# The gate follows the overriding value: (field, a value that allows the plain limit buy of 10
# at 101 against a 99.90/100.10 quote, a value that denies it, the code that denies it).
# Each allowing value sits exactly at the limit.
GATE_CASES: list[tuple[str, Any, Any, str]] = [
    ("max_order_qty", "10", "9", "ORD-006"),
    ("max_order_value", "1010", "1009.99", "ORD-007"),
    ("price_collar_pct", "1", "0.99", "ORD-008"),
    ("allowed_order_types", ["limit"], ["market"], "ORD-001"),
    ("max_position_qty", "10", "9", "EXP-001"),
    ("max_position_value", "1000", "999.99", "EXP-002"),
]
LEVEL_PAIRS = list(itertools.pairwise(LEVELS))


def _judge(policy: Policy) -> tuple[DecisionKind, str]:
    decision = evaluate(intent(account=ACCOUNT, strategy=STRATEGY, symbol=SYMBOL,
                               limit_price=D("101.00")), view(), policy)
    return decision.decision, decision.blocking


def test_the_gate_cases_allow_and_deny_on_their_own() -> None:
    # a check of the cases themselves: each value alone, in defaults, gives what the table says
    for field, allowing, denying, code in GATE_CASES:
        assert _judge(layered(field, {"defaults": allowing})) == (DecisionKind.ALLOW, "")
        assert _judge(layered(field, {"defaults": denying})) == (DecisionKind.DENY, code)


@pytest.mark.parametrize(("outer", "inner"), LEVEL_PAIRS, ids=lambda level: level)
@pytest.mark.parametrize(("field", "allowing", "denying", "code"), GATE_CASES,
                         ids=[case[0] for case in GATE_CASES])
def test_the_gate_decides_by_the_overriding_value(
    field: str, allowing: Any, denying: Any, code: str, outer: str, inner: str,
) -> None:
    loosened = layered(field, {outer: denying, inner: allowing})
    assert _judge(loosened) == (DecisionKind.ALLOW, "")
    tightened = layered(field, {outer: allowing, inner: denying})
    assert _judge(tightened) == (DecisionKind.DENY, code)
