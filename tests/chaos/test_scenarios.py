"""Every chaos scenario passes against the real runtime, and each one is judged on the
properties every fault owes (mode within its deadline, nothing sent while unsafe, no
exposure growth while unsafe, journal and replay verify), not merely on finishing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ordergate.brokers.sim import SubmissionAttempt, SubmitOutcome
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.runner import run_scenario, select
from ordergate.chaos.scenarios import SCENARIOS, Scenario
from ordergate.model.modes import Mode

COMMON_CHECKS = (
    "zero orders sent while the mode forbade them",
    "zero broker submits while the broker_submit circuit was open",
    "exposure never grows while unsafe",
    "journal.verify() is clean",
    "replay verifies",
)


def test_there_are_at_least_twelve_scenarios_with_distinct_names() -> None:
    names = [scenario.name for scenario in SCENARIOS]
    assert len(names) >= 12
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_scenario_contains_the_fault_and_proves_it(scenario: Scenario, tmp_path: Path) -> None:
    result = run_scenario(scenario, tmp_path)
    failed = [f"{c.name}: expected {c.expected}, observed {c.observed}"
              for c in result.failed_checks]
    assert result.passed, "\n".join(failed)
    names = [check.name for check in result.checks]
    for common in COMMON_CHECKS:
        assert common in names
    assert any(name.startswith(("the mode stays ACTIVE", f"{result.expected_mode} within"))
               for name in names)
    # Beyond the common checks, each scenario proves something of its own.
    assert len(names) > len(COMMON_CHECKS) + 1
    if scenario.expected_mode is not Mode.ACTIVE:
        assert scenario.expected_mode.value in [mode for _, mode in result.mode_timeline]
    evidence = json.loads((tmp_path / scenario.name / "evidence.json").read_text())
    assert evidence["name"] == scenario.name and evidence["passed"] is True
    markdown = (tmp_path / scenario.name / "evidence.md").read_text()
    assert "**PASS**" in markdown and "| # | check |" in markdown


def test_the_checker_catches_an_order_sent_while_reduce_only(tmp_path: Path) -> None:
    # The journal of a real scenario, judged against a broker log that claims one more order:
    # first one the journal never dispatched, then one that was decided while unsafe.
    result = run_scenario(select(["stale_market_data"])[0], tmp_path)
    facts = JournalFacts.read(Path(result.journal))
    ts = next(iter(facts.dispatches.values())).ts
    stranger = SubmissionAttempt(client_order_id="og-never-dispatched", ts=ts,
                                 outcome=SubmitOutcome.ACCEPTED)
    assert facts.unsafe_submissions([stranger]) == [
        "og-never-dispatched: reached the broker without a journaled dispatch"]
    [(cid, fact)] = [(cid, fact) for cid, fact in facts.dispatches.items()
                     if fact.mode is Mode.REDUCE_ONLY]
    assert fact.risk_reducing  # the scenario's own order reduced risk: allowed
    facts.dispatches[cid] = type(fact)(seq=fact.seq, ts=fact.ts, order=fact.order,
                                       mode=fact.mode, risk_reducing=False)
    attempt = SubmissionAttempt(client_order_id=cid, ts=ts, outcome=SubmitOutcome.ACCEPTED)
    assert facts.unsafe_submissions([attempt]) == [
        f"{cid}: dispatched while REDUCE_ONLY (risk_reducing=False)"]
