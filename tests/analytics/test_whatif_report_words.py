"""What `replay whatif` says: a changed quantity reads as a change, a policy the engine refused
is warned about in the terminal, the JSON and the HTML, outputs that cannot be written are
refused before the what-if runs, the JSON and HTML are the same bytes on every run, and the HTML
says so when there is nothing to chart or tabulate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, SMALL_POLICY, invoke, read, small_journal

from ordergate.analytics.whatif import Outcome, Transition, what_if
from ordergate.analytics.whatif_html import render_html
from ordergate.policy.loader import load_policy


def _said(output: str) -> str:
    return " ".join(output.split())


def test_a_modified_quantity_that_changes_reads_as_a_change() -> None:
    before = Outcome(decision="MODIFY", blocking="EXP-001", modified_qty=Decimal(250))
    after = Outcome(decision="MODIFY", blocking="EXP-001", modified_qty=Decimal(230))

    assert before.label == "MODIFY EXP-001 qty 250"
    assert after.label == "MODIFY EXP-001 qty 230"
    assert Outcome(decision="DENY", blocking="EXP-001").label == "DENY EXP-001"


def test_a_mode_change_without_a_reason_code_names_the_operator() -> None:
    ts = datetime(2026, 3, 2, 15, 55, tzinfo=UTC)
    resumed = Transition(ts=ts, previous="REDUCE_ONLY", mode="ACTIVE", reasons="",
                         actor="desk-lead")
    tripped = Transition(ts=ts, previous="ACTIVE", mode="HALTED", reasons="LOS-003")

    assert resumed.why == "by operator desk-lead"
    assert tripped.why == "LOS-003"


def _future_policy(directory: Path) -> Path:
    # in effect from between the account funding (14:00) and the intent (14:31)
    path = directory / "future.yaml"
    path.write_text(SMALL_POLICY.replace("  name: small\n", "  name: future\n"
                                         '  effective_from: "2026-03-02T14:30:30Z"\n'))
    return path


def test_a_policy_not_in_effect_at_the_journal_start_is_warned_about_everywhere(
        tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    future = _future_policy(tmp_path)

    result = invoke("replay", "whatif", "--journal", str(journal), "--policy", str(future),
                    "--json", str(tmp_path / "w.json"), "--html", str(tmp_path / "w.html"))

    assert result.code == 0, result.output
    said = _said(result.output)
    assert "warning:" in said and "takes effect at 2026-03-02T14:30:30Z" in said
    data = json.loads((tmp_path / "w.json").read_text())
    assert len(data["warnings"]) == 1
    assert "denied SYS-005" in data["warnings"][0]
    assert "takes effect at 2026-03-02T14:30:30Z" in (tmp_path / "w.html").read_text()
    # The engine activates a policy only when told to: the intent at 14:31, after the
    # policy took effect, is still denied for want of a policy.
    [changed] = data["changed"]
    assert changed["after"] == {"decision": "DENY", "blocking": "SYS-005",
                                "modified_qty": None}


def test_an_output_in_a_missing_directory_is_refused_before_the_whatif_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the what-if ran")

    monkeypatch.setattr("ordergate.analytics.whatif.what_if", never)
    missing = tmp_path / "nowhere" / "w.json"
    result = invoke("replay", "whatif", "--journal", str(journal), "--policy",
                    str(tmp_path / "policy.yaml"), "--json", str(missing))

    assert result.code == 1
    assert (f"--json {missing}: cannot write: the directory {missing.parent} does not exist"
            in _said(result.output))


def test_json_and_html_are_the_same_bytes_on_every_run(tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    outputs = []
    for seed in ("1", "2", "3"):  # set order follows the string hash seed of the process
        json_out, html_out = tmp_path / f"w{seed}.json", tmp_path / f"w{seed}.html"
        ran = subprocess.run(
            [sys.executable, "-m", "ordergate.cli.main", "replay", "whatif", "--journal",
             str(journal), "--policy", str(tmp_path / "policy.yaml"), "--json",
             str(json_out), "--html", str(html_out)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
            check=False)
        assert ran.returncode == 0, ran.stderr
        outputs.append((json_out.read_bytes(), html_out.read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]
    assert '\\"order_types\\":[\\"limit\\",\\"market\\",\\"stop\\",\\"stop_limit\\"]' in (
        outputs[0][0].decode())


def test_html_with_nothing_changed_says_so_and_carries_the_state_table(
        tmp_path: Path) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    opened = read(journal)
    try:
        report = what_if(opened, load_policy(tmp_path / "policy.yaml"), workdir=tmp_path)
    finally:
        opened.close()

    page = render_html(report)

    assert "Nothing changed" in page and "no decision changed" in page
    assert 'id="chart-reasons"' not in page and 'id="table-changed"' not in page
    assert 'id="table-state"' in page and "final equity" in page
    assert report.original_policies and report.original_policies[0] in page


def test_html_of_a_journal_without_batches_has_no_empty_charts(tmp_path: Path) -> None:
    journal = small_journal(tmp_path, [])
    opened = read(journal)
    try:
        report = what_if(opened, load_policy(tmp_path / "policy.yaml"), workdir=tmp_path)
    finally:
        opened.close()

    page = render_html(report)

    assert "final mode  →" not in page and "1970" not in page
    assert "<svg" not in page
    assert "No state path" in page and "holds no decision" in page
