"""`ordergate demo` runs the bundled day end to end and explains it: the summary names the
denials and the mode changes, and the journal it leaves verifies clean."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ordergate.cli.demo_cmd import render, run_demo
from ordergate.journal import Durability, open_journal
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

    journal = open_journal(f"sqlite:///{result.journal}", durability=Durability.NONE,
                           create=False)
    try:
        report = journal.verify()
    finally:
        journal.close()
    assert report.ok, report.message
    assert report.records > len(demo_events())
