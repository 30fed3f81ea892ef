"""Run chaos scenarios and judge them.

Every scenario gets, besides its own checks, the ones each fault owes:

1. the expected mode is reached within the deadline (event time, from the fault), or, for a
   fault that must not change the mode, the mode never changes;
2. zero orders reached the broker while the mode forbade them (and none while the
   broker_submit circuit was open);
3. no fill of an order sent while unsafe grew a position;
4. the journal's hash chain verifies and its replay reproduces every output.

`run_scenarios` writes `<out>/<name>/evidence.json` and `evidence.md` per scenario.

`<out>/<name>/` is chaos's own: it is created with a marker file (`.ordergate-chaos`), and a
rerun deletes only the files a scenario writes (its journals, broker state, events, policy and
evidence, by exact name) before playing again. A directory without the marker that already
holds files is never used: the scenario fails saying so, and nothing in it is touched.
A scenario that raises (an unwritable directory, a journal that will not open) is reported as
that scenario failing, with the error as its failed check; the other scenarios still run.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from ordergate.brokers.base import BrokerError
from ordergate.chaos.checks import JournalFacts, verify
from ordergate.chaos.evidence import write_evidence
from ordergate.chaos.scenarios import BY_NAME, SCENARIOS, Check, Played, Scenario, Stage
from ordergate.journal import JournalError
from ordergate.model.modes import Mode
from ordergate.runtime.health import StartRefused

log = structlog.get_logger("ordergate.chaos")

MARKER = ".ordergate-chaos"
"""Written into `<out>/<scenario>/` when chaos creates it: only a marked directory is reused."""

_ARTIFACTS = ("journal.db", "broker.db", "pristine.db")
"""Stems of the SQLite files scenarios write; each comes with sidecars named `<stem>.<x>` or
`<stem>-<x>` (head, lock, manifest, snapshots, WAL)."""
_FILES = ("events.jsonl", "policy.yaml", "evidence.json", "evidence.md")
_SUBDIRECTORIES = ("gateway",)  # corrupted_state's gateway journal

SCENARIO_ERRORS = (OSError, JournalError, StartRefused, BrokerError, sqlite3.Error,
                   subprocess.SubprocessError)
"""What a scenario can raise that is its failure, not chaos's bug: reported as a failed check."""


class DirectoryRefused(Exception):
    """`<out>/<scenario>/` exists, holds files and was not created by chaos."""


def _is_artifact(name: str) -> bool:
    return name in _FILES or any(name == stem or name.startswith((f"{stem}.", f"{stem}-"))
                                 for stem in _ARTIFACTS)


def _remove_artifacts(directory: Path) -> None:
    for entry in directory.iterdir():
        if not _is_artifact(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def prepare_directory(directory: Path) -> Path:
    """Make `directory` ready for a fresh play: create and mark it, or clear what an earlier
    run wrote into it. Raises `DirectoryRefused` for a directory chaos does not own."""
    if directory.exists() and not (directory / MARKER).is_file():
        if not directory.is_dir():
            raise DirectoryRefused(f"{directory} exists and is not a directory")
        if any(directory.iterdir()):
            raise DirectoryRefused(
                f"{directory} holds files chaos did not write (no {MARKER} marker); nothing "
                "was deleted: choose another --out or empty it")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("written by `ordergate chaos run`; a rerun deletes the "
                                    "journals and evidence it wrote here\n", encoding="utf-8")
    _remove_artifacts(directory)
    for name in _SUBDIRECTORIES:
        sub = directory / name
        if sub.is_dir() and not sub.is_symlink():
            _remove_artifacts(sub)
            if not any(sub.iterdir()):
                sub.rmdir()
    return directory


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{type(exc).__name__}: {where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


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
    """Play and judge one scenario. Never raises for the scenario's own failure: a refused
    directory or an error the scenario raised is a failed check on a failed result (evidence is
    still written when the directory can take it)."""
    directory = out / scenario.name
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    stage = Stage(directory=directory)
    facts: JournalFacts | None = None
    played: Played | None = None
    ready = False
    try:
        prepare_directory(directory)
        ready = True
        played = scenario.play(stage)
        judge(scenario, played, stage)
        facts = JournalFacts.read(played.journal)
    except DirectoryRefused as exc:
        stage.check("the scenario's directory is chaos's own", f"a new directory or one "
                    f"marked {MARKER}", str(exc), False)
    except SCENARIO_ERRORS as exc:
        stage.check("the scenario runs to the end", "no error", _describe(exc), False)
    duration = time.perf_counter() - started
    result = ScenarioResult(
        name=scenario.name, title=scenario.title,
        passed=facts is not None and all(check.passed for check in stage.checks),
        duration_s=round(duration, 3),
        expected_mode=scenario.expected_mode.value, deadline_s=scenario.deadline_s,
        final_mode=facts.final_mode().value if facts is not None else "unknown",
        checks=tuple(stage.checks),
        mode_timeline=tuple((ts.isoformat(), mode.value) for _, ts, mode in facts.modes)
        if facts is not None else (),
        broker_submissions=len(played.attempts) if played is not None else 0,
        journal=str(played.journal) if played is not None else "",
        started_at=started_at)
    if ready:
        try:
            write_evidence(result, directory)
        except OSError as exc:
            unwritten = Check(name="the evidence is written", expected="evidence.json and "
                              "evidence.md", observed=_describe(exc), passed=False)
            result = replace(result, passed=False, checks=(*result.checks, unwritten))
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
