"""The policy hash depends on what a policy means, never on how it is written."""

from __future__ import annotations

import json
import random
import re
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.policy import Policy, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
_DURATION = re.compile(r"^([1-9][0-9]*)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

names = st.text(alphabet=string.ascii_uppercase + string.digits + "-_", min_size=1, max_size=6)
descriptions = st.text(alphabet=string.ascii_letters + string.digits + " .,:-#'\"\\éü€漢",
                       max_size=20)
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 500),
                      st.sampled_from(list(_UNIT_MS)))
amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e12"), places=4)
percents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)
# a market collar may not be looser than the limit collar in any combination of sections:
# drawn from disjoint ranges, every generated pair is a valid policy
limit_collars = st.decimals(min_value=Decimal(1), max_value=Decimal(100), places=2)
market_collars = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1), places=2)
throttles = st.fixed_dictionaries({"max": st.integers(1, 10_000), "window": durations})
order_types = st.lists(st.sampled_from(["market", "limit", "stop", "stop_limit"]),
                       min_size=1, max_size=4, unique=True)

LIMIT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_intent_skew": durations,
    "max_daily_loss": amounts,
    "max_daily_loss_pct": percents,
    "max_drawdown_pct": percents,
    "drawdown_kill": st.booleans(),
    "duplicate_window": durations,
    "allowed_order_types": order_types,
    "max_order_qty": amounts,
    "max_order_value": amounts,
    "price_collar_pct": limit_collars,
    "market_collar_pct": market_collars,
    "self_match": st.sampled_from(["off", "deny", "cancel_resting"]),
    "rate_global": throttles,
    "rate_account": throttles,
    "rate_strategy": throttles,
    "rate_symbol": throttles,
    "cancel_rate": throttles,
    "repeated_execution": throttles,
    "max_position_qty": amounts,
    "max_position_value": amounts,
    "max_gross_exposure": amounts,
    "max_net_exposure": amounts,
    "max_firm_gross_exposure": amounts,
    "exposure_modify": st.booleans(),
    "max_volume_participation_pct": percents,
}
limits = st.fixed_dictionaries({}, optional={"max_market_data_age": durations, **LIMIT_FIELDS})
defaults = st.fixed_dictionaries({"max_market_data_age": durations}, optional=LIMIT_FIELDS)
documents = st.fixed_dictionaries(
    {
        "apiVersion": st.just("ordergate/v1"),
        "kind": st.just("Policy"),
        "metadata": st.fixed_dictionaries({"name": names},
                                          optional={"description": descriptions}),
        "defaults": defaults,
    },
    optional={
        "monitor": st.booleans(),
        "kill_switch": st.booleans(),
        "require_instrument": st.booleans(),
        "engine": st.fixed_dictionaries({}, optional={
            "cancel_all_on_kill": st.booleans(),
            "on_stale_data": st.sampled_from(["REDUCE_ONLY", "HALTED"]),
            "reset_window": durations,
        }),
        "instruments": st.dictionaries(names, st.fixed_dictionaries(
            {}, optional={"tick_size": amounts, "lot_size": amounts}), max_size=3),
        "restricted_symbols": st.lists(names, max_size=3, unique=True),
        "canary_symbols": st.lists(names, max_size=3, unique=True),
        "accounts": st.dictionaries(names, limits, max_size=2),
        "strategies": st.dictionaries(names, limits, max_size=2),
        "symbols": st.dictionaries(names, limits, max_size=2),
    },
)


def _scalar(value: object, rnd: random.Random) -> str:
    if isinstance(value, bool):
        return rnd.choice(["true", "True", "TRUE"] if value else ["false", "False", "FALSE"])
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        text = format(value, "f")
        text = rnd.choice([text, text + ("0" if "." in text else ".0"), text + "00"])
        return rnd.choice([text, f'"{text}"', f"'{text}'"])
    assert isinstance(value, str)
    if (match := _DURATION.match(value)) and rnd.random() < 0.5:
        # the same duration in milliseconds
        value = f"{int(match.group(1)) * _UNIT_MS[match.group(2)]}ms"
    return json.dumps(value, ensure_ascii=False)  # a double-quoted YAML scalar


def _flow(value: object, rnd: random.Random) -> str:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return "{" + ", ".join(f"{json.dumps(k)}: {_flow(v, rnd)}" for k, v in items) + "}"
    if isinstance(value, list):
        items = list(value)
        rnd.shuffle(items)
        return "[" + ", ".join(_flow(v, rnd) for v in items) + "]"
    return _scalar(value, rnd)


def render(document: dict[str, Any], rnd: random.Random, indent: int = 0) -> str:
    """YAML for `document` with shuffled keys, mixed block/flow style, quoting and comments."""
    items = list(document.items())
    rnd.shuffle(items)
    lines = []
    pad = " " * indent
    for key, value in items:
        if rnd.random() < 0.2:
            lines.append(f"{pad}# a comment about {key}")
        if isinstance(value, dict) and value and rnd.random() < 0.6:
            lines.append(f"{pad}{key}:")
            lines.append(render(value, rnd, indent + rnd.choice([2, 4])).rstrip("\n"))
        else:
            lines.append(f"{pad}{key}: {_flow(value, rnd)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(documents, st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_hash_ignores_key_order_formatting_and_comments(
    document: dict[str, Any], first: random.Random, second: random.Random,
) -> None:
    one = parse_policy(render(document, first))
    two = parse_policy(render(document, second))
    assert one.hash == two.hash
    assert one.document == two.document


@settings(max_examples=40, deadline=None)
@given(documents, st.randoms(use_true_random=False))
def test_document_round_trips_to_the_same_hash(
    document: dict[str, Any], rnd: random.Random,
) -> None:
    policy = parse_policy(render(document, rnd))
    again = Policy.from_document(policy.document)
    assert again.hash == policy.hash
    assert again.document == policy.document
    assert json.loads(json.dumps(policy.document)) == policy.document


def test_hash_is_sha256_of_the_canonical_json() -> None:
    import hashlib

    policy = load_policy(EXAMPLE)
    assert policy.hash == "sha256:" + hashlib.sha256(policy.canonical_json).hexdigest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", policy.hash)


def test_example_rewritten_as_json_keeps_its_hash() -> None:
    policy = load_policy(EXAMPLE)
    text = json.dumps(policy.document, indent=1)  # JSON is YAML: no comments, other layout
    assert parse_policy(text).hash == policy.hash


def test_changing_any_meaning_changes_the_hash() -> None:
    base = load_policy(EXAMPLE).document
    changed = json.loads(json.dumps(base))
    changed["defaults"]["max_order_value"] = "250000.01"
    assert Policy.from_document(changed).hash != Policy.from_document(base).hash
    changed = json.loads(json.dumps(base))
    changed["symbols"]["TSLA"]["price_collar_pct"] = "4"
    assert Policy.from_document(changed).hash != Policy.from_document(base).hash


def test_equal_values_written_differently_hash_the_same() -> None:
    template = ("apiVersion: ordergate/v1\nkind: Policy\nmetadata: {{name: p}}\n"
                "defaults: {{max_market_data_age: {age}, max_order_value: {value}}}\n")
    first = parse_policy(template.format(age="60s", value="100"))
    second = parse_policy(template.format(age="1m", value='"100.000"'))
    third = parse_policy(template.format(age="60000ms", value="1e2"))
    assert first.hash == second.hash == third.hash
    assert first.document["defaults"] == {"max_market_data_age": "1m", "max_order_value": "100"}
