"""A CI check against the exported schema (`ordergate policy schema`) and the gateway
(`ordergate policy check`) judge a decimal limit alike: NaN, infinities and numbers past the
bound are refused by both, and text the loader reads (surrounding whitespace, underscores) is
accepted by both. The few values where the two cannot agree are listed, and named in the
schema's own description."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from typer.testing import CliRunner

from ordergate.cli.errors import UserError
from ordergate.cli.main import app
from ordergate.policy import PolicyError, parse_policy

HEADER = ("apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: agree}\n"
          "defaults:\n  max_market_data_age: 2s\n")

# (YAML text of the value, what both say). Quoted values are strings, the rest YAML numbers.
AMOUNTS = [
    ('"5"', True), ("5", True), ('" 5"', True), ('"5 "', True), ('"\\t5\\n"', True),
    ('"\\u00a05"', True), ('"+5"', True), ('"5."', True), ('".5"', True), ("0.25", True),
    ("1e400", False), ('"1e400"', False), ("-1e400", False), (".nan", False), (".NaN", False),
    ('"nan"', False), ('"NaN"', False), ('"sNaN"', False), (".inf", False), ('"Infinity"', False),
    ("-1", False), ('"-1"', False), ("0", False), ('"0"', False), ('"0.000"', False),
    ('"-0"', False), ("0.0", False),
    ('"1E-29"', True), ("1E-29", True), ("1.0e-29", True), ('"1E-400"', True),
    ('"1E+14"', True), ("1.0e+14", True), ('"1E+15"', False), ("1.0e+15", False),
    ('"0.5E+15"', True), ('"99999.9e10"', True), ('"99999.9e11"', False),
    ('"999999999999999.99"', True), ("999999999999999", True), ("1000000000000000", False),
    ('"1000000000000000"', False), ("100000000000000000000000000000", False),
    ('"99999999999999999999"', False), ('"1_000"', True), ("1_000", True), ('"1__0"', True),
    ('"_1_"', True), ('" _5_ "', True), ('"_ 5"', False), ('"5 _"', False), ('"1 000"', False),
    ('"1,000"', False), ('"_"', False), ('"0x10"', False), ("0x10", True), ('"5e"', False),
    ('"e5"', False), ('"."', False), ('"abc"', False), ('""', False),
    ('"1.2345678901234567890123456789012"', True),
]
PERCENTS = [
    ("100", True), ('"100"', True), ('" 100.00 "', True), ("100.5", False), ('"100.01"', False),
    ('"1e2"', True), ('"10E+1"', True), ('"1e3"', False), ('"9.99e1"', True), ('"1E-7"', True),
    (".nan", False), ('"nan"', False), (".inf", False), ('"1e400"', False), ("1e400", False),
    ("0", False), ('"-1"', False), ('"2_5"', True), ('"0.5_0"', True),
]
# Where the two cannot agree (each case is in the schema's description): a YAML number is a
# binary float to a schema validator but exact text to the loader, a regular expression
# cannot add the exponent to the digits before the point, and the loader reads any script's
# digits. The schema is then stricter, except for a float rounded onto a bound.
DISAGREE = [
    ("max_order_qty", "1e-400", True),  # the float is 0.0
    ("max_order_qty", "999999999999999.99", True),  # the float is 1E+15
    ("max_order_qty", '"0.001E+17"', True),
    ("max_order_qty", '"1000000000000000000E-5"', True),
    ("max_order_qty", '"\u0665"', True),  # ARABIC-INDIC DIGIT FIVE
    ("price_collar_pct", '"0.1E+3"', True),
    ("price_collar_pct", '"350E-2"', True),
    ("price_collar_pct", "100.000000000000001", False),  # the float is 100.0
]


def _document(field: str, value: str) -> str:
    return HEADER + f"  {field}: {value}\n"


@cache
def _exported_schema() -> jsonschema.Draft202012Validator:
    result = CliRunner().invoke(app, ["policy", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_accepts(text: str) -> bool:
    # as a CI check reads the file: a YAML 1.2 reader, numbers as numbers (.nan a float NaN)
    data: Any = YAML(typ="safe").load(text)
    return bool(_exported_schema().is_valid(data))


def _policy_check_accepts(text: str, tmp_path: Path) -> bool:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code in (0, 1), result.output
    # a refusal is the CLI's user error (one line, exit 1), never a crash
    assert result.exception is None or isinstance(result.exception, SystemExit | UserError)
    return result.exit_code == 0


def _loader_accepts(text: str) -> bool:
    try:
        parse_policy(text)
    except PolicyError:
        return False
    return True


@pytest.mark.parametrize(("field", "value", "valid"),
                         [("max_order_qty", value, valid) for value, valid in AMOUNTS]
                         + [("max_daily_loss_pct", value, valid) for value, valid in PERCENTS])
def test_policy_check_and_the_exported_schema_agree_on_a_decimal_limit(
        field: str, value: str, valid: bool, tmp_path: Path) -> None:
    text = _document(field, value)
    assert _policy_check_accepts(text, tmp_path) is valid
    assert _schema_accepts(text) is valid


@pytest.mark.parametrize(("field", "value", "loader_accepts"), DISAGREE)
def test_the_values_they_judge_differently_are_the_documented_ones(
        field: str, value: str, loader_accepts: bool) -> None:
    text = _document(field, value)
    assert _loader_accepts(text) is loader_accepts
    assert _schema_accepts(text) is not loader_accepts
    description = _exported_schema().schema["$defs"]["Limits"]["properties"][field]
    assert value.strip('"') in description["description"]


_ASCII_DECIMAL_TEXT = st.text(alphabet="0123456789._eE+- \t\u00a0", max_size=12)


@settings(max_examples=400, deadline=None)
@given(text=_ASCII_DECIMAL_TEXT, whole=st.sampled_from(["", "1", "99", "100", "999999999999999"]))
def test_a_decimal_string_the_schema_accepts_the_loader_accepts(text: str, whole: str) -> None:
    """For any text of ASCII digits, points, signs, exponents, underscores and whitespace, the
    schema is never more lenient than the loader; without an exponent the two agree."""
    value = json.dumps(whole + text)
    for field in ("max_order_qty", "price_collar_pct"):
        document = _document(field, value)
        loader, schema = _loader_accepts(document), _schema_accepts(document)
        if schema:
            assert loader, value
        if "e" not in value.lower():
            assert schema == loader, value
