"""Replay verification: journals the system wrote reproduce byte for byte; a changed rule or
a tampered record is caught and named."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from tests.evidence.support import invoke, read

from ordergate.evidence.replay import verify_journal
from ordergate.policy.limits import RateLimit, ResolvedLimits
from ordergate.policy.loader import Policy
from ordergate.runtime import faults
from ordergate.runtime.demo_data import DayPlan, demo_events, write_events


def test_demo_journal_replays_every_decision_byte_for_byte(demo_day: Path) -> None:
    journal = read(demo_day / "journal.db")
    try:
        report = verify_journal(journal)
    finally:
        journal.close()
    assert report.ok, report.first_divergence
    assert report.decisions > 500
    assert report.decisions_reproduced == report.decisions
    assert report.outputs_matched == report.outputs
    assert report.coverage == 1.0
    assert len(report.policies) == 1


def test_run_journal_replays_and_cli_reports_coverage(tmp_path: Path, demo_day: Path) -> None:
    journal = tmp_path / "run.db"
    ran = invoke("run", "--quiet", "--policy", str(demo_day / "policy.yaml"), "--journal",
                 str(journal), "--batch-size", "64", str(demo_day / "events.jsonl"))
    assert ran.code == 0, ran.output
    result = invoke("replay", "verify", "--journal", str(journal))
    assert result.code == 0, result.output
    assert "100.00%" in result.output


def _first_throttled_intent(path: Path) -> str:
    """The first intent the journal shows as blocked by a strategy throttle."""
    from ordergate.evidence.decisions import DecisionFilter, iter_decisions

    journal = read(path)
    try:
        rows = iter_decisions(journal, DecisionFilter(reason="THR-003"))
        return next(row.intent_id for row in rows)
    finally:
        journal.close()


def test_a_changed_rule_fails_replay_and_names_the_first_divergent_decision(
        demo_day: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _first_throttled_intent(demo_day / "journal.db")
    # The engine now resolves a looser strategy throttle than the journaled policy says: the
    # first intent the journal shows denied by THR-003 is decided differently on replay.
    resolve = Policy.limits_for
    loosened: dict[tuple[str, str, str], ResolvedLimits] = {}

    def limits_for(self: Policy, account: str, strategy: str, symbol: str) -> ResolvedLimits:
        key = (account, strategy, symbol)
        if key not in loosened:
            limits = resolve(self, account, strategy, symbol)
            if limits.rate_strategy is not None:
                limits = msgspec.structs.replace(limits, rate_strategy=RateLimit(
                    max_count=10_000, window=limits.rate_strategy.window))
            loosened[key] = limits
        return loosened[key]

    monkeypatch.setattr(Policy, "limits_for", limits_for)
    journal = read(demo_day / "journal.db")
    try:
        report = verify_journal(journal)
    finally:
        journal.close()
    assert not report.ok
    divergence = report.first_decision_divergence
    assert divergence is not None
    assert divergence.intent_id == expected
    assert '"THR-003"' in divergence.journaled
    assert '"THR-003"' not in divergence.replayed
    result = invoke("replay", "verify", "--journal", str(demo_day / "journal.db"))
    assert result.code == 3
    assert expected in result.output


def test_a_tampered_record_stops_before_replay(tmp_path: Path, demo_day: Path) -> None:
    copy = tmp_path / "tampered.db"
    shutil.copy(demo_day / "journal.db", copy)
    with sqlite3.connect(copy) as db:
        db.execute(
            "UPDATE journal_records SET payload = CAST(replace(CAST(payload AS TEXT), "
            "'\"DENY\"', '\"ALLOW\"') AS BLOB) WHERE seq = (SELECT min(seq) FROM "
            "journal_records WHERE CAST(payload AS TEXT) LIKE '%\"DENY\"%')")
        assert db.total_changes == 1
    result = invoke("replay", "verify", "--journal", str(copy))
    assert result.code == 3
    assert "chain" in result.output


def test_chain_checked_in_a_second_process_gives_the_same_report(demo_day: Path) -> None:
    url = f"sqlite:///{demo_day / 'journal.db'}"
    journal = read(demo_day / "journal.db")
    try:
        serial = verify_journal(journal)
        parallel = verify_journal(journal, chain_url=url)
    finally:
        journal.close()
    assert parallel.ok
    assert parallel.chain == serial.chain
    assert parallel.chain.records == serial.records > 0
    assert msgspec.json.encode(parallel) == msgspec.json.encode(serial)


def test_chain_checked_in_a_second_process_still_catches_tampering(
        tmp_path: Path, demo_day: Path) -> None:
    copy = tmp_path / "tampered.db"
    shutil.copy(demo_day / "journal.db", copy)
    with sqlite3.connect(copy) as db:
        # an edit that also breaks the replay (the payload is no longer an event): the chain's
        # verdict is what the report gives
        db.execute("UPDATE journal_records SET payload = CAST('{not json' AS BLOB) "
                   "WHERE seq = (SELECT min(seq) FROM journal_records WHERE kind = 'in' "
                   "AND seq > 10)")
        assert db.total_changes == 1
    journal = read(copy)
    try:
        report = verify_journal(journal, chain_url=f"sqlite:///{copy}")
    finally:
        journal.close()
    assert not report.ok
    assert not report.chain.ok
    assert report.chain.first_bad_seq is not None and report.chain.first_bad_seq > 10


def _kill_run(args: list[str], point: str | None) -> int:
    env = {**os.environ}
    env.pop(faults.ENV_VAR, None)
    if point is not None:
        env[faults.ENV_VAR] = point
    command = [sys.executable, "-c", "from ordergate.cli.main import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=240).returncode


@pytest.mark.slow
def test_journal_after_crash_restarts_replays_clean(tmp_path: Path, demo_day: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, demo_events(DayPlan(session_minutes=80, stale_start_min=30,
                                             stale_minutes=3, crash_start_min=50,
                                             crash_minutes=20)))
    journal = tmp_path / "crash.db"
    args = ["run", "--quiet", "--policy", str(demo_day / "policy.yaml"), "--journal",
            str(journal), "--broker-state", str(tmp_path / "broker.db"), "--durability",
            "always", "--batch-size", "16", "--snapshot-every", "400", str(events)]
    killed = 0
    for point in ("after_input_append:40", "after_submit:12", "mid_batch:30"):
        code = _kill_run(args, point)
        killed += code == -9
    assert killed == 3, "the fault plan must actually kill the run"
    assert _kill_run(args, None) == 0
    result = invoke("replay", "verify", "--journal", str(journal))
    assert result.code == 0, result.output
    assert "100.00%" in result.output
