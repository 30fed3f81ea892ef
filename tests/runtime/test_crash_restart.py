"""Invariant 3, no duplicates ever: kill `ordergate run` with a real SIGKILL at >= 100
different (crash point, n-th crossing) combinations, restart it on the same journal and the
same broker until the events file is done, and compare with an uninterrupted run.

Each combination gets its own journal and simulated-broker state. The first restarts keep
the same fault plan (so recovery itself is also killed), later ones run clean. Two
combinations run at a time.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.runtime import harness
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.evidence.replay import verify_journal
from ordergate.journal import open_journal
from ordergate.model.decision import Decision
from ordergate.runtime import faults

# The first run dies at the point; for every other combination the first restart dies at
# the same point too (so recovery itself is interrupted); later restarts run clean.
ARMED_RUNS = (1, 2)
MAX_RUNS = 8
PARALLEL = 2
MIN_KILLED_COMBINATIONS = 100


@dataclass
class Combination:
    point: str
    nth: int
    directory: Path
    armed_runs: int = 1
    runs: int = 0
    kills: int = 0
    exits: list[int] = field(default_factory=list)
    done: bool = False

    @property
    def journal(self) -> Path:
        return self.directory / "journal.db"

    @property
    def broker_state(self) -> Path:
        return self.directory / "broker.db"


def _count_crossings(events: Path, policy: Path, directory: Path) -> Counter[str]:
    """The uninterrupted reference run, counting every crossing of every point. It runs in
    this process, which also warms the caches every forked run then starts with."""
    seen: Counter[str] = Counter()

    def count(point: str) -> None:
        seen[point] += 1

    armed = faults.crossing
    faults.crossing = count
    try:
        from ordergate.cli.main import app

        app(args=harness.run_args(events, policy, directory / "journal.db",
                                  directory / "broker.db"), standalone_mode=False)
    finally:
        faults.crossing = armed
    return seen


def _choose(counts: Counter[str]) -> list[tuple[str, int]]:
    chosen: list[tuple[str, int]] = []
    for point in faults.POINTS:
        total = counts.get(point, 0)
        if total == 0:
            continue
        picks = {1, 2, 3, 5, 8, total // 4, total // 3, total // 2, (2 * total) // 3,
                 (3 * total) // 4, total}
        chosen.extend((point, n) for n in sorted(picks) if 1 <= n <= total)
    return chosen


def _start(combo: Combination, events: Path, policy: Path) -> int:
    fault = f"{combo.point}:{combo.nth}" if combo.runs < combo.armed_runs else None
    combo.runs += 1
    return harness.fork_run(
        harness.run_args(events, policy, combo.journal, combo.broker_state), fault)


@pytest.mark.timeout(600)
def test_no_duplicate_or_lost_dispatch_after_sigkill_at_any_crash_point(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    policy = demo_policy_path()
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    counts = _count_crossings(events, policy, reference_dir)
    reference_ids = harness.dispatched_ids(reference_dir / "journal.db")
    reference_state = harness.final_state(reference_dir / "journal.db")
    reference_sources = harness.source_payloads(reference_dir / "journal.db")
    assert reference_ids, "the scenario must dispatch orders"
    assert harness.submissions(reference_dir / "broker.db") == reference_ids

    combos = []
    for index, (point, nth) in enumerate(_choose(counts)):
        directory = tmp_path / f"c{index:03d}"
        directory.mkdir()
        combos.append(Combination(point=point, nth=nth, directory=directory,
                                  armed_runs=ARMED_RUNS[index % 2]))
    queue = list(combos)
    running: dict[int, Combination] = {}
    while queue or running:
        while queue and len(running) < PARALLEL:
            combo = queue.pop(0)
            running[_start(combo, events, policy)] = combo
        pid, status = os.waitpid(-1, 0)
        combo = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        combo.exits.append(code)
        if code == harness.KILLED and combo.runs < MAX_RUNS:
            combo.kills += 1
            running[_start(combo, events, policy)] = combo
        else:
            combo.done = code == 0

    killed = [c for c in combos if c.kills > 0]
    assert len(killed) >= MIN_KILLED_COMBINATIONS, (
        f"only {len(killed)} combinations were killed; crossings: {dict(counts)}")
    failures = []
    for combo in combos:
        label = f"{combo.point}:{combo.nth} exits={combo.exits}"
        if not combo.done:
            failures.append(f"{label}: never finished")
            continue
        submitted = harness.submissions(combo.broker_state)
        duplicates = [cid for cid, n in Counter(submitted).items() if n > 1]
        if duplicates:
            failures.append(f"{label}: duplicate submissions {duplicates}")
        if sorted(set(submitted)) != sorted(reference_ids):
            missing = sorted(set(reference_ids) - set(submitted))
            extra = sorted(set(submitted) - set(reference_ids))
            failures.append(f"{label}: dispatched set differs (missing {missing}, "
                            f"extra {extra})")
        if sorted(harness.dispatched_ids(combo.journal)) != sorted(reference_ids):
            failures.append(f"{label}: journaled dispatches differ from the reference")
        if harness.source_payloads(combo.journal) != reference_sources:
            failures.append(f"{label}: the file's lines were not journaled exactly once, "
                            "in order")
        ok, message = harness.verify(combo.journal)
        if not ok:
            failures.append(f"{label}: journal verify failed: {message}")
        state = harness.final_state(combo.journal)
        if state != reference_state:
            failures.append(f"{label}: final state differs:\n  {state}\n  {reference_state}")
    assert not failures, "\n".join(failures)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["after_input_append:20", "after_engine_handle:37",
                                   "mid_batch:2", "after_input_append:45"])
def test_half_journaled_batch_is_completed_from_the_same_file(tmp_path: Path,
                                                              fault: str) -> None:
    """Under ALWAYS durability a crash leaves the first events of a batch durable: the
    restart journals the rest of that batch from the file, then acts on the whole batch."""
    events = write_scenario(tmp_path / "events.jsonl", seconds=12)
    policy = demo_policy_path()
    always = ("--durability", "always")
    reference = tmp_path / "reference"
    work = tmp_path / "work"
    for directory in (reference, work):
        directory.mkdir()
    pid = harness.fork_run(harness.run_args(events, policy, reference / "journal.db",
                                            reference / "broker.db", *always), None)
    assert harness.wait_exit(pid) == 0
    pid = harness.fork_run(harness.run_args(events, policy, work / "journal.db",
                                            work / "broker.db", *always), fault)
    assert harness.wait_exit(pid) == harness.KILLED
    pid = harness.fork_run(harness.run_args(events, policy, work / "journal.db",
                                            work / "broker.db", *always), None)
    assert harness.wait_exit(pid) == 0

    submitted = harness.submissions(work / "broker.db")
    assert len(submitted) == len(set(submitted))
    assert submitted == harness.submissions(reference / "broker.db")
    assert harness.final_state(work / "journal.db") == harness.final_state(
        reference / "journal.db")
    assert harness.verify(work / "journal.db")[0]
    # Every line of the file is journaled exactly once, in order: nothing re-read, nothing
    # skipped. (Broker answers may differ in time stamp: an answer polled but not durable
    # at the crash is recovered from the broker's order state at the current event time.)
    assert harness.source_payloads(work / "journal.db") == harness.source_payloads(
        reference / "journal.db")


def _intent_crossings(journal: Path, picks: int) -> list[int]:
    """The `after_input_append` crossings (1-based, in journal order) at which an intent was
    journaled: `picks` of them, spread over the run."""
    at = [number for number, payload in enumerate(harness.input_payloads(journal), start=1)
          if payload.startswith(b'{"type":"intent"')]
    return [at[index * (len(at) - 1) // max(picks - 1, 1)] for index in range(picks)]


@pytest.mark.timeout(300)
def test_a_crash_between_an_intent_and_its_decision_leaves_neither_lost(tmp_path: Path) -> None:
    """Under ALWAYS durability an intent commits alone: a crash right after it left the
    intent journaled and its decision and order not. The restart journals what the engine
    decided for it and sends its order, so the run ends as one never interrupted (it used
    to leave the intent without a decision and the engine holding an order never sent)."""
    events = write_scenario(tmp_path / "events.jsonl", seconds=12)
    policy = demo_policy_path()
    always = ("--durability", "always")
    reference = tmp_path / "reference"
    reference.mkdir()
    pid = harness.fork_run(harness.run_args(events, policy, reference / "journal.db",
                                            reference / "broker.db", *always), None)
    assert harness.wait_exit(pid) == 0
    decided = harness.journaled_outputs(reference / "journal.db", Decision)
    for nth in _intent_crossings(reference / "journal.db", 3):
        work = tmp_path / f"work-{nth}"
        work.mkdir()
        args = harness.run_args(events, policy, work / "journal.db", work / "broker.db",
                                *always)
        pid = harness.fork_run(args, f"after_input_append:{nth}")
        assert harness.wait_exit(pid) == harness.KILLED
        pid = harness.fork_run(args, None)
        assert harness.wait_exit(pid) == 0
        assert harness.journaled_outputs(work / "journal.db", Decision) == decided, nth
        assert harness.submissions(work / "broker.db") == harness.submissions(
            reference / "broker.db")
        assert harness.final_state(work / "journal.db") == harness.final_state(
            reference / "journal.db")
        opened = open_journal(f"sqlite:///{work / 'journal.db'}", create=False)
        try:
            replay = verify_journal(opened)
        finally:
            opened.close()
        assert replay.ok and replay.mismatches == 0 and replay.cut_short == [], nth
