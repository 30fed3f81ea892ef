"""The JSON Schema comes from the same definition that validates, and the CLI reports with
the contract's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.policy import load_policy, policy_schema
from ordergate.policy.spec import Limits

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
BAD = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: bad}
defaults:
  max_market_data_age: 2s
  max_order_value: -5
"""


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_schema_is_a_closed_json_schema_document() -> None:
    schema = policy_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    definitions = schema["$defs"]
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in definitions
    root = definitions[schema["$ref"].removeprefix("#/$defs/")]
    assert set(root["required"]) == {"apiVersion", "kind", "metadata", "defaults"}
    assert root["properties"]["apiVersion"] == {"enum": ["ordergate/v1"]}
    for definition in definitions.values():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition["additionalProperties"] is False  # unknown keys are errors
    json.dumps(schema)  # serializable


def test_schema_describes_every_limit_with_its_units() -> None:
    limits = policy_schema()["$defs"]["Limits"]["properties"]
    assert set(limits) == set(Limits.__struct_fields__)
    assert limits["max_order_value"]["type"] == ["string", "number"]
    assert limits["max_market_data_age"]["pattern"].startswith("^[1-9]")
    assert limits["rate_symbol"] == {"$ref": "#/$defs/Throttle"}


def test_example_document_has_only_keys_the_schema_declares() -> None:
    schema = policy_schema()
    definitions = schema["$defs"]
    document = load_policy(EXAMPLE).document

    def check(value: Any, node: dict[str, Any]) -> None:
        if "$ref" in node:
            node = definitions[node["$ref"].removeprefix("#/$defs/")]
        if isinstance(value, dict) and "properties" in node:
            assert set(value) <= set(node["properties"]), set(value) - set(node["properties"])
            for key, item in value.items():
                check(item, node["properties"][key])
        elif isinstance(value, dict) and "additionalProperties" in node:
            for item in value.values():
                check(item, node["additionalProperties"])

    check(document, schema)


def test_check_prints_a_summary_and_the_hash() -> None:
    result = CliRunner().invoke(app, ["policy", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    policy = load_policy(EXAMPLE)
    assert policy.hash in result.output
    assert "desk-equities-crypto" in result.output
    assert "GME" in result.output and "max_order_qty" in result.output


def test_hash_prints_only_the_hash() -> None:
    result = CliRunner().invoke(app, ["policy", "hash", str(EXAMPLE)])
    assert result.exit_code == 0
    assert result.output.strip() == load_policy(EXAMPLE).hash


def test_schema_command_prints_the_schema_as_json() -> None:
    result = CliRunner().invoke(app, ["policy", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == policy_schema()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_bad_policy_exits_1_with_one_line_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BAD)
    result = _run("policy", "check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    message = " ".join(result.stderr.split())  # the console may wrap long lines
    assert f"{path}:6:20: defaults.max_order_value: expected a positive decimal" in message
    assert "Traceback" not in result.stderr


def test_missing_file_exits_1(tmp_path: Path) -> None:
    result = _run("policy", "hash", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "absent.yaml" in result.stderr and result.stdout == ""
