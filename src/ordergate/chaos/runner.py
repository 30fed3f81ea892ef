"""Run chaos scenarios and judge them.

Every scenario gets, besides its own checks, the ones each fault owes:

1. the expected mode is reached within the deadline (event time, from the fault), or, for a
   fault that must not change the mode, the mode never changes;
2. zero orders reached the broker while the mode forbade them (and none while the
   broker_submit circuit was open);
3. no fill of an order sent while unsafe grew a position;
4. the journal's hash chain verifies and its replay reproduces every output.

`run_scenarios` writes `<out>/<name>/evidence.json` and `evidence.md` per scenario.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from ordergate.chaos.checks import JournalFacts, verify
from ordergate.chaos.evidence import write_evidence
from ordergate.chaos.scenarios import BY_NAME, SCENARIOS, Check, Played, Scenario, Stage
from ordergate.model.modes import Mode

log = structlog.get_logger("ordergate.chaos")


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    title: str
    passed: bool
    duration_s: float
    expected_mode: str
    deadline_s: float
    final_mode: str
    checks: tuple[Check, ...]
    mode_timeline: tuple[tuple[str, str], ...]  # (event time, mode)
    broker_submissions: int
    journal: str
    started_at: datetime

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def _mode_check(scenario: Scenario, facts: JournalFacts, played: Played, stage: Stage) -> None:
    expected = scenario.expected_mode
    if expected is Mode.ACTIVE:
        tightened = [f"{mode.value} at {ts.isoformat()}" for _, ts, mode in facts.modes
                     if mode is not Mode.ACTIVE]
        stage.check("the mode stays ACTIVE", "no mode change", ", ".join(tightened) or "none",
                    not tightened)
        return
    fault = played.fault_at
    if fault is None:
        stage.check(f"{expected.value} within {scenario.deadline_s:g} s", "a fault time",
                    "the scenario recorded no fault", False)
        return
    before = [mode for _, ts, mode in facts.modes if ts < fault and mode is not Mode.ACTIVE]
    reached = facts.first_mode_at_least(expected, fault)
    took = (reached - fault).total_seconds() if reached is not None else None
    stage.check(
        f"{expected.value} within {scenario.deadline_s:g} s of the fault",
        f"ACTIVE before the fault; {expected.value} by +{scenario.deadline_s:g} s",
        (f"{'ACTIVE' if not before else before[0].value} before; "
         + (f"{expected.value} at +{took:g} s" if took is not None else "never reached")),
        not before and took is not None and took <= scenario.deadline_s)


def judge(scenario: Scenario, played: Played, stage: Stage) -> None:
    facts = JournalFacts.read(played.journal)
    _mode_check(scenario, facts, played, stage)
    unsafe = facts.unsafe_submissions(played.attempts)
    stage.check("zero orders sent while the mode forbade them", "0",
                "; ".join(unsafe) or "0", not unsafe)
    while_open = [step for step in played.steps if step.circuit_open and step.attempts]
    stage.check("zero broker submits while the broker_submit circuit was open", "0",
                f"{sum(step.attempts for step in while_open)}", not while_open)
    grew = facts.exposure_growth_while_unsafe()
    stage.check("exposure never grows while unsafe", "no growing fill",
                "; ".join(grew) or "none", not grew)
    verdict = verify(played.journal)
    stage.check("journal.verify() is clean", "hash chain intact", verdict.chain_message,
                verdict.chain_ok)
    stage.check("replay verifies", "every output reproduced", verdict.replay_message,
                verdict.replay_ok)


def run_scenario(scenario: Scenario, out: Path) -> ScenarioResult:
    directory = out / scenario.name
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db*"):
        stale.unlink()
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    stage = Stage(directory=directory)
    played = scenario.play(stage)
    judge(scenario, played, stage)
    facts = JournalFacts.read(played.journal)
    duration = time.perf_counter() - started
    result = ScenarioResult(
        name=scenario.name, title=scenario.title,
        passed=all(check.passed for check in stage.checks), duration_s=round(duration, 3),
        expected_mode=scenario.expected_mode.value, deadline_s=scenario.deadline_s,
        final_mode=facts.final_mode().value, checks=tuple(stage.checks),
        mode_timeline=tuple((ts.isoformat(), mode.value) for _, ts, mode in facts.modes),
        broker_submissions=len(played.attempts), journal=str(played.journal),
        started_at=started_at)
    write_evidence(result, directory)
    log.info("chaos_scenario", scenario=scenario.name, passed=result.passed,
             duration_s=result.duration_s)
    return result


def select(names: Iterable[str] | None) -> list[Scenario]:
    """The scenarios by name (all when None); an unknown name raises KeyError naming it."""
    if names is None:
        return list(SCENARIOS)
    chosen = []
    for name in names:
        if name not in BY_NAME:
            raise KeyError(f"unknown scenario '{name}'; known: {', '.join(BY_NAME)}")
        chosen.append(BY_NAME[name])
    return chosen


def run_scenarios(out: Path, names: Iterable[str] | None = None) -> list[ScenarioResult]:
    return [run_scenario(scenario, out) for scenario in select(names)]
