"""`ordergate drill break-glass` runs the emergency sequence on a simulated broker and writes
evidence that shows every step passed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.journal import open_journal

STEPS = [
    "runaway strategy floods orders",
    "operator halts trading (kill)",
    "no further opening orders are dispatched",
    "reduce-only still lets a risk-reducing order through",
    "a drawdown breach halts trading",
    "resume needs two different operators",
    "the drill's journal verifies",
]


def test_break_glass_drill_passes_every_step_and_writes_dated_evidence(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["drill", "break-glass", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [json_path] = tmp_path.glob("break-glass-*Z.json")
    [md_path] = tmp_path.glob("break-glass-*Z.md")
    evidence = json.loads(json_path.read_text())
    assert evidence["passed"] is True
    assert [step["name"] for step in evidence["steps"]] == STEPS
    assert all(step["passed"] for step in evidence["steps"])
    assert all(step["expected"] and step["observed"] for step in evidence["steps"])
    assert json_path.stem[len("break-glass-"):] == \
        evidence["started_at"][:19].replace("-", "").replace(":", "") + "Z"
    assert "# Break-glass drill: PASSED" in md_path.read_text()
    journal = open_journal(f"sqlite:///{evidence['journal']}", create=False)
    try:
        assert journal.verify().ok
    finally:
        journal.close()
