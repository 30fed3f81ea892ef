"""`ordergate run` stopped and started again on the same journal.

* SIGTERM stops it as Ctrl-C does: once the batch in progress is journaled, acted on and shown,
  with the summary, exit 143 (130 for Ctrl-C) and "run the same command again to resume"; it
  was killed by the signal (exit -15), with no summary, the batch it was in never shown. A
  second signal stops it at once, and the restart finishes the batch from the journal.
* Every dispatch the journal holds is shown once across the stopped run and its restart.
* A run killed between journaling a batch and showing it leaves that batch on no stdout, and
  no later run can tell whether it was shown: the restart says on stderr which batch the
  journal ended with (its lines, decisions, orders, fills) and gives the `ordergate decisions`
  command that lists exactly its decisions.

The signal is sent by the process to itself at a named crash point of the runtime (as the
fault plan's kills are), so the stop lands in the middle of a batch on every run."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, dispatched_ids, journaled_outputs
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.journal import Durability, open_journal
from ordergate.model.decision import Decision
from ordergate.runtime import faults

# Sends `signum` to this process at the n-th crossing of each listed point, then runs the CLI.
_SIGNAL_AT = """
import os, signal, sys
from ordergate.runtime import faults
plan = {plan!r}
seen = {{}}
def crossing(point):
    seen[point] = seen.get(point, 0) + 1
    for at, nth, signum in plan:
        if at == point and seen[point] == nth:
            os.kill(os.getpid(), signum)
faults.crossing = crossing
sys.argv = ["ordergate", *{args!r}]
from ordergate.cli.main import main
main()
"""


def _run_args(tmp_path: Path, events: Path, journal: str = "journal.db") -> list[str]:
    return ["run", "--policy", str(demo_policy_path()), "--journal", str(tmp_path / journal),
            "--broker-state", str(tmp_path / (journal + ".broker")), "--batch-size", "16",
            str(events)]


def _signalled(args: list[str],
               plan: list[tuple[str, int, int]]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != faults.ENV_VAR}
    plain = [(point, nth, int(signum)) for point, nth, signum in plan]
    return subprocess.run([sys.executable, "-c", _SIGNAL_AT.format(plan=plain, args=args)],
                          capture_output=True, text=True, check=False, env=env)


def _shown(stdout: str, kind: str, key: str) -> list[Any]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line[key] for line in lines if line["type"] == kind]


def journal_head(journal: Path) -> int:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        return handle.last_seq()
    finally:
        handle.close()


def _clean_run(tmp_path: Path, events: Path) -> subprocess.CompletedProcess[str]:
    clean = cli(*_run_args(tmp_path, events, "clean.db"))
    assert clean.returncode == 0, clean.stderr
    return clean


def test_sigterm_stops_after_the_batch_in_progress_with_the_summary_and_exit_143(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    clean = _clean_run(tmp_path, events)
    journal = tmp_path / "journal.db"

    stopped = _signalled(_run_args(tmp_path, events),
                         [("after_feedback_flush", 3, signal.SIGTERM)])
    assert stopped.returncode == 143, stopped.stderr
    assert "SIGTERM: stopping once the batch in progress is journaled" in stopped.stderr
    assert "ordergate run summary" in stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    held = dispatched_ids(journal)
    assert 0 < len(held) < len(dispatched_ids(tmp_path / "clean.db"))
    # the batch it was in was finished and shown: every order the journal holds is on stdout
    assert _shown(stopped.stdout, "dispatch", "client_order_id") == held

    restarted = cli(*_run_args(tmp_path, events))
    assert restarted.returncode == 0, restarted.stderr
    both = stopped.stdout + restarted.stdout
    assert _shown(both, "dispatch", "client_order_id") == _shown(clean.stdout, "dispatch",
                                                                 "client_order_id")
    assert _shown(both, "decision", "intent_id") == _shown(clean.stdout, "decision",
                                                           "intent_id")
    assert dispatched_ids(journal) == dispatched_ids(tmp_path / "clean.db")


def test_ctrl_c_stops_the_same_way_with_exit_130(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    stopped = _signalled(_run_args(tmp_path, events),
                         [("after_feedback_flush", 2, signal.SIGINT)])
    assert stopped.returncode == 130, stopped.stderr
    assert "ordergate run summary" in stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    assert _shown(stopped.stdout, "dispatch", "client_order_id") == dispatched_ids(
        tmp_path / "journal.db")


def test_a_second_signal_stops_at_once_and_the_restart_finishes_the_batch(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    _clean_run(tmp_path, events)
    stopped = _signalled(_run_args(tmp_path, events),
                         [("after_flush", 2, signal.SIGTERM), ("after_flush", 3, signal.SIGTERM)])
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped at once (SIGTERM)" in stopped.stderr
    assert "Traceback" not in stopped.stderr

    restarted = cli(*_run_args(tmp_path, events))
    assert restarted.returncode == 0, restarted.stderr
    assert dispatched_ids(tmp_path / "journal.db") == dispatched_ids(tmp_path / "clean.db")


def test_a_restart_after_a_kill_names_the_batch_no_stdout_may_show_and_how_to_list_it(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    clean = _clean_run(tmp_path, events)
    journal = tmp_path / "journal.db"
    # Killed once the batch's broker answers are durable, before the batch is shown.
    killed = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", *_run_args(tmp_path, events)],
        env={**os.environ, faults.ENV_VAR: "after_feedback_flush:7"}, capture_output=True,
        text=True, check=False)
    assert killed.returncode == -9, killed.stderr
    restarted = cli(*_run_args(tmp_path, events), columns=1000)
    assert restarted.returncode == 0, restarted.stderr

    both = killed.stdout + restarted.stdout
    unseen = [intent for intent in _shown(clean.stdout, "decision", "intent_id")
              if intent not in _shown(both, "decision", "intent_id")]
    assert unseen  # the killed run's last batch: journaled, shown by neither run
    assert {d.intent_id for d in journaled_outputs(journal, Decision)} >= set(unseen)

    notice = next(line for line in restarted.stderr.splitlines()
                  if line.startswith(f"journal {journal} already holds"))
    assert "stdout shows only what this run adds" in notice
    assert f"({len(unseen)} decisions," in notice
    assert "unless that run was killed before showing it" in notice
    assert re.search(r"Its last batch, lines \d+-\d+ of events\.jsonl", notice)
    command = re.search(r"`ordergate (decisions [^`]+)`", notice)
    assert command is not None, notice
    listed = cli(*shlex.split(command.group(1)), columns=400)
    assert listed.returncode == 0, listed.stderr
    rows = re.findall(r"│ ([tb]-\d{4}) +│", listed.stdout)  # the scenario's intent ids
    assert rows == unseen, listed.stdout


def test_a_run_on_a_new_journal_says_nothing_of_earlier_runs(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    first = cli(*_run_args(tmp_path, events))
    assert first.returncode == 0, first.stderr
    assert "already holds" not in first.stderr


def test_a_stop_asked_while_the_journal_replays_comes_before_anything_is_appended(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    journal = tmp_path / "journal.db"
    killed = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", *_run_args(tmp_path, events)],
        env={**os.environ, faults.ENV_VAR: "after_feedback_flush:7"}, capture_output=True,
        text=True, check=False)
    assert killed.returncode == -9, killed.stderr
    before = journal_head(journal)

    stopped = _signalled(_run_args(tmp_path, events),
                         [("after_recovery_replay", 1, signal.SIGTERM)])
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped (SIGTERM) while starting, before anything was journaled" in stopped.stderr
    assert stopped.stdout == ""
    assert journal_head(journal) == before

    finished = cli(*_run_args(tmp_path, events))
    assert finished.returncode == 0, finished.stderr
    assert journal_head(journal) != before
