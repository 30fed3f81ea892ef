"""A process killed right after journaling the start-up policy document (its activation not
journaled yet, under --durability always) leaves the document in the journal: the restart
activates that document instead of journaling it a second time."""

from __future__ import annotations

from pathlib import Path

from tests.runtime import harness
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, open_journal
from ordergate.model.events import Command, CommandAction, InputEvent, PolicyDocument
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import decode_input, rebuild

# The new journal's first input is the engine upgrade, its second the policy document.
AFTER_THE_DOCUMENT = "after_input_append:2"


def _run(events: Path, journal: Path, fault: str | None) -> int:
    args = harness.run_args(events, demo_policy_path(), journal, journal.with_suffix(".sim"),
                            "--durability", "always")
    return harness.wait_exit(harness.fork_run(args, fault))


def _inputs(journal: Path) -> list[InputEvent]:
    return [decode_input(payload) for payload in harness.input_payloads(journal)]


def test_a_restart_reuses_the_policy_document_a_killed_start_up_journaled(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    journal = tmp_path / "journal.db"
    assert _run(events, journal, AFTER_THE_DOCUMENT) == harness.KILLED
    documents = [event for event in _inputs(journal) if isinstance(event, PolicyDocument)]
    assert len(documents) == 1
    # the first restart is killed at the same point, the second runs to the end
    assert _run(events, journal, AFTER_THE_DOCUMENT) == harness.KILLED
    assert _run(events, journal, None) == 0

    inputs = _inputs(journal)
    policy = load_policy(demo_policy_path())
    assert [event.policy_hash for event in inputs if isinstance(event, PolicyDocument)] == [
        policy.hash]
    activations = [event for event in inputs if isinstance(event, Command)
                   and event.action is CommandAction.ACTIVATE_POLICY]
    assert [event.policy_hash for event in activations] == [policy.hash]
    assert rebuild(f"sqlite:///{journal}").status().policy_hash == policy.hash
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report
