"""What-if under a tighter policy reports exactly the decisions a direct run would change."""

from __future__ import annotations

import json
from pathlib import Path

from tests.evidence.support import invoke, read, tighter_policy

from ordergate.analytics.whatif import diff_outcomes, journal_outcomes, what_if
from ordergate.policy.loader import load_policy


def _changes(items: list) -> set[tuple[str, str, str, str, str]]:  # type: ignore[type-arg]
    return {(item.account, item.strategy, item.intent_id, item.before.label,
             item.after.label) for item in items}


def test_whatif_changes_exactly_what_a_direct_run_changes(tmp_path: Path,
                                                          demo_day: Path) -> None:
    tight = tighter_policy(demo_day / "policy.yaml", tmp_path / "tight.yaml")
    direct_journal = tmp_path / "direct.db"
    ran = invoke("run", "--quiet", "--policy", str(tight), "--journal", str(direct_journal),
                 str(demo_day / "events.jsonl"))
    assert ran.code == 0, ran.output
    original, direct = read(demo_day / "journal.db"), read(direct_journal)
    try:
        expected = diff_outcomes(journal_outcomes(original), journal_outcomes(direct), {})
        report = what_if(original, load_policy(tight), workdir=tmp_path)
    finally:
        original.close()
        direct.close()
    assert expected, "the tighter policy must change some decisions"
    assert _changes(report.changed) == _changes(expected)
    assert sum(report.by_change.values()) == len(expected)
    assert sum(report.by_reason.values()) == len(expected)
    assert report.path is not None
    assert report.path.max_gross_after < report.path.max_gross_before


def test_whatif_under_the_same_policy_changes_nothing(tmp_path: Path, demo_day: Path) -> None:
    original = read(demo_day / "journal.db")
    try:
        report = what_if(original, load_policy(demo_day / "policy.yaml"), workdir=tmp_path)
    finally:
        original.close()
    assert report.changed == []
    assert report.transitions_appeared == report.transitions_vanished == []
    assert report.path is not None and report.path.max_equity_gap == 0


def test_whatif_cli_writes_json_and_html(tmp_path: Path, demo_day: Path) -> None:
    tight = tighter_policy(demo_day / "policy.yaml", tmp_path / "tight.yaml")
    result = invoke("replay", "whatif", "--journal", str(demo_day / "journal.db"), "--policy",
                    str(tight), "--json", str(tmp_path / "w.json"), "--html",
                    str(tmp_path / "w.html"))
    assert result.code == 0, result.output
    data = json.loads((tmp_path / "w.json").read_text())
    assert data["changed"] and data["by_reason"]
    page = (tmp_path / "w.html").read_text()
    for element in ('id="chart-equity"', 'id="chart-exposure"', 'id="table-changed"', "<svg"):
        assert element in page
