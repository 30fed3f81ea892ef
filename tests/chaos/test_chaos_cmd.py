"""`ordergate chaos run` prints a pass/fail table and writes evidence per scenario; an unknown
scenario is a user error naming the known ones."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ordergate.cli.main import app


def test_chaos_run_prints_the_table_and_writes_evidence(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["chaos", "run", "--scenario", "exchange_maintenance",
                                      "--scenario", "auth_failure", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "exchange_maintenance" in result.output and "PASS" in result.output
    for name in ("exchange_maintenance", "auth_failure"):
        evidence = json.loads((tmp_path / name / "evidence.json").read_text())
        assert evidence["passed"] is True and evidence["duration_s"] >= 0
        assert (tmp_path / name / "evidence.md").read_text().startswith("# Chaos scenario")


def test_an_unknown_scenario_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["chaos", "run", "--scenario", "volcano",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "volcano" in str(result.exception) and "clock_drift" in str(result.exception)
