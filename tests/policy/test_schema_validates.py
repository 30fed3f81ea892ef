"""The exported JSON Schema (`ordergate policy schema`) refuses what the loader refuses where JSON
Schema can say so, and accepts the bundled policies. Each bad document is checked against both:
the loader must refuse it too, so the list cannot drift into things only the schema thinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from ordergate.policy import PolicyError, load_policy, parse_policy, policy_schema

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = [ROOT / "examples" / "policy.yaml", ROOT / "src" / "ordergate" / "data" /
           "demo_policy.yaml"]
HEADER = "apiVersion: ordergate/v1\nkind: Policy\n"
META = "metadata: {name: schema}\n"
AGE = "  max_market_data_age: 2s\n"


def validator() -> jsonschema.Draft202012Validator:
    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def as_data(text: str) -> Any:
    """The document as a YAML 1.2 tool (an editor's schema check) sees it: numbers as numbers."""
    return YAML(typ="safe").load(text)


def limit(field: str, value: str) -> str:
    return HEADER + META + "defaults:\n" + AGE + f"  {field}: {value}\n"


BAD = {
    "negative amount": limit("max_order_value", "-5"),
    "negative amount as text": limit("max_order_value", '"-5"'),
    "amount not a number": limit("max_order_value", "abc"),
    "zero amount": limit("max_order_value", "0"),
    "zero amount as text": limit("max_order_value", '"0.000"'),
    # YAML reads a plain NaN as text; JSON has no NaN number (YAML's .nan has no JSON form)
    "NaN amount": limit("max_order_value", "NaN"),
    "NaN amount as text": limit("max_order_value", '"nan"'),
    "infinite amount": limit("max_order_value", ".inf"),
    "infinite amount as text": limit("max_order_value", "Infinity"),
    "amount of 1E+15": limit("max_order_value", "1000000000000000"),
    "amount of 1E+15 as text": limit("max_order_value", '"1000000000000000.5"'),
    "percent over 100": limit("max_daily_loss_pct", "200"),
    "percent over 100 as text": limit("max_daily_loss_pct", '"100.01"'),
    "zero percent": limit("max_drawdown_pct", "0"),
    "negative percent": limit("price_collar_pct", "-1"),
    "percent not a number": limit("price_collar_pct", "five"),
    "naive effective_from": HEADER + "metadata: {name: s, effective_from: '2026-01-05T00:00:00'}\n"
                            "defaults:\n" + AGE,
    "effective_from in another zone": HEADER + "metadata: {name: s, effective_from: "
                                      "'2026-01-05T00:00:00+01:00'}\ndefaults:\n" + AGE,
    "effective_from a date": HEADER + "metadata: {name: s, effective_from: '2026-01-05'}\n"
                             "defaults:\n" + AGE,
    "no max_market_data_age": HEADER + META + "defaults:\n  max_order_qty: 10\n",
    "no defaults": HEADER + META,
    "a symbol listed twice": HEADER + META + "restricted_symbols: [GME, GME]\ndefaults:\n" + AGE,
    "an order type listed twice": limit("allowed_order_types", "[limit, limit]"),
    "an unknown field": limit("max_order_valu", "5"),
    "a bad duration": HEADER + META + "defaults:\n  max_market_data_age: 2 seconds\n",
}

GOOD = {
    "amount with an exponent": limit("max_order_value", '"1E-18"'),
    "amount as a YAML number with an exponent": limit("max_order_value", "1.5e-3"),
    "amount just under 1E+15": limit("max_order_value", '"999999999999999.99"'),
    "amount just under 1E+15 as a number": limit("max_order_value", "999999999999999"),
    "amount with a sign and a point": limit("max_order_value", '"+5."'),
    "percent of exactly 100": limit("max_daily_loss_pct", '"100.00"'),
    "percent as a number": limit("max_daily_loss_pct", "2.5"),
    "tiny percent": limit("price_collar_pct", '"1E-7"'),
    "UTC as +00:00": HEADER + "metadata: {name: s, effective_from: "
                     "'2026-01-05T00:00:00.5+00:00'}\ndefaults:\n" + AGE,
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_the_schema_refuses_what_the_loader_refuses(name: str) -> None:
    text = BAD[name]
    with pytest.raises(PolicyError):
        parse_policy(text)
    assert not validator().is_valid(as_data(text)), name


@pytest.mark.parametrize("name", sorted(GOOD))
def test_the_schema_accepts_what_the_loader_accepts(name: str) -> None:
    text = GOOD[name]
    policy = parse_policy(text)
    schema = validator()
    errors = [error.message for error in schema.iter_errors(as_data(text))]
    assert errors == [], name
    # and the normalized document the loader writes back (decimals as text, 1E-18 style)
    assert [error.message for error in schema.iter_errors(policy.document)] == []


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_the_schema_accepts_the_bundled_policies(path: Path) -> None:
    schema = validator()
    data = as_data(path.read_text(encoding="utf-8"))
    assert [error.message for error in schema.iter_errors(data)] == []
    assert [error.message for error in schema.iter_errors(load_policy(path).document)] == []
