"""`ordergate demo` runs the bundled day end to end and explains it: the summary names the
denials and the mode changes, and the journal it leaves verifies clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console

from ordergate.cli.demo_cmd import render, run_demo
from ordergate.journal import Durability, VerifyReport, open_journal
from ordergate.runtime.demo_data import demo_events


def test_demo_runs_the_day_and_explains_denials_and_mode_changes(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    console = Console(record=True, width=120, force_terminal=False)
    render(console, result)
    text = console.export_text()

    assert result.tally.decisions["DENY"] > 100
    assert result.tally.decisions["ALLOW"] > 100
    assert "denied" in text
    assert "restricted list" in text  # GME, in plain words
    assert "Too many orders" in text  # the burst throttle
    modes = [(change.previous, change.mode) for change in result.tally.transitions]
    assert ("ACTIVE", "REDUCE_ONLY") in modes  # the stale TSLA feed
    assert ("ACTIVE", "HALTED") in modes  # the drawdown
    assert "HALTED" in text and "drawdown" in text
    assert "ordergate journal verify --journal" in text
    assert (tmp_path / "demo" / "events.jsonl").stat().st_size > 0
    assert (tmp_path / "demo" / "policy.yaml").read_text().startswith("# The policy")

    report = _verified(Path(result.journal))
    assert report.records > len(demo_events())


def test_the_demo_runs_again_into_the_same_directory(tmp_path: Path) -> None:
    """A second `ordergate demo` replaces the first day: its journal, WAL and snapshot files
    all go, so the new journal is not taken for a cut copy of the old one."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "ordergate.cli.main", "demo", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert any((out / "journal.db.snapshots").iterdir())  # the case that used to break
    second = subprocess.run(command, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    report = _verified(out / "journal.db")
    assert report.records < 2 * len(demo_events())  # one day, not two


def _verified(path: Path) -> VerifyReport:
    journal = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False)
    try:
        report = journal.verify()
    finally:
        journal.close()
    assert report.ok, report.message
    return report
