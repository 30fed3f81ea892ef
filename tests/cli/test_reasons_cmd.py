"""`ordergate reasons` prints the reason-code registry: every id once, in precedence order (the
order that picks the blocking reason), as a table or as JSON entries a program can read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.gate.table import RULES
from ordergate.model.reasons import FAMILY_ORDER, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
BY_PRECEDENCE = sorted(REGISTRY.values(), key=lambda code: code.precedence)
FIELDS = {"id", "name", "family", "severity", "precedence", "meaning"}


def test_the_table_lists_every_code_once_in_precedence_order() -> None:
    # a process of its own, wide enough that rich never wraps a row (the console reads COLUMNS
    # when it is created)
    ran = subprocess.run([sys.executable, "-m", "ordergate.cli.main", "reasons"],
                         capture_output=True, check=True, cwd=ROOT, text=True,
                         env={**os.environ, "COLUMNS": "400"})
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in ran.stdout.splitlines() if line.strip().startswith("│")]
    assert "precedence order" in ran.stdout
    assert [row[1] for row in rows] == [code.id for code in BY_PRECEDENCE]
    for number, name, family, severity, meaning in (
            [row[0], *row[2:]] for row in rows):
        code = BY_PRECEDENCE[int(number)]
        assert (name, family, severity, meaning) == (
            code.name, code.family.value, code.severity.value, code.meaning)


def test_json_entries_carry_every_field_in_precedence_order() -> None:
    result = CliRunner().invoke(app, ["reasons", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert all(set(entry) == FIELDS for entry in entries)
    assert [entry["id"] for entry in entries] == [code.id for code in BY_PRECEDENCE]
    assert sorted(entry["id"] for entry in entries) == sorted(REGISTRY)
    assert [entry["precedence"] for entry in entries] == list(range(len(REGISTRY)))
    for entry in entries:
        code = REGISTRY[entry["id"]]
        assert entry == {"id": code.id, "name": code.name, "family": code.family.value,
                         "severity": code.severity.value, "precedence": code.precedence,
                         "meaning": code.meaning}
    # the architecture's order: kill switch first, families in turn, and the gate's rule
    # table (its own order of evaluation) agrees with the printed one
    assert entries[0]["id"] == "KIL-001"
    families = [entry["family"] for entry in entries]
    assert [family.value for family in FAMILY_ORDER] == list(dict.fromkeys(families))
    printed = [entry["id"] for entry in entries]
    gate_order = list(dict.fromkeys(rule.code for rule in RULES))
    assert gate_order == [code for code in printed if code in gate_order]
