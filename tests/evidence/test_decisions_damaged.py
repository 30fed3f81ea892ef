"""A damaged journal stops the readers of decisions with a message naming the record, exit 3,
never a stack trace; and `replay verify` never calls a chain intact that a kept head refutes."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.evidence.decisions import (
    find_decisions,
    iter_decisions,
    journaled_as,
    journaled_output,
)
from ordergate.journal import JournalError
from ordergate.model.decision import Decision
from ordergate.model.events import Alert, AlertSeverity


def _copy(demo_day: Path, out: Path) -> Path:
    for path in demo_day.glob("journal.db*"):
        if path.is_file():
            shutil.copy(path, out / path.name)
    return out / "journal.db"


def _first(journal: Path, prefix: str) -> tuple[int, str]:
    """The seq and text of the first record whose payload starts with `prefix`."""
    with sqlite3.connect(journal) as db:
        seq, text = db.execute(
            "select seq, cast(payload as text) from journal_records where "
            "substr(cast(payload as text), 1, ?) = ? order by seq limit 1",
            (len(prefix), prefix)).fetchone()
    return seq, text


def _edit(journal: Path, seq: int, payload: str) -> None:
    with sqlite3.connect(journal) as db:
        db.execute("update journal_records set payload = ? where seq = ?",
                   (payload.encode(), seq))


def _allowed_decision(journal: Path) -> tuple[int, str, str]:
    seq, text = _first(journal, '{"type":"decision","intent_id":')
    assert '"ALLOW"' in text
    intent_id = text.split('"intent_id":"', 1)[1].split('"', 1)[0]
    return seq, text, intent_id


@pytest.fixture
def edited_decision(demo_day: Path, tmp_path: Path) -> tuple[Path, int, str]:
    """A copy of the demo journal whose first decision says DENY_ (no such outcome)."""
    journal = _copy(demo_day, tmp_path)
    seq, text, intent_id = _allowed_decision(journal)
    _edit(journal, seq, text.replace('"ALLOW"', '"DENY_"'))
    return journal, seq, intent_id


@pytest.mark.parametrize("command", [("decisions",), ("decisions", "--show", "INTENT"),
                                     ("journal", "export", "--format", "csv")])
def test_an_edited_decision_stops_the_command_naming_its_record(
        edited_decision: tuple[Path, int, str], tmp_path: Path,
        command: tuple[str, ...]) -> None:
    journal, seq, intent_id = edited_decision
    args = [intent_id if word == "INTENT" else word for word in command]
    out = ["--out", str(tmp_path / "x.csv")] if "export" in command else []
    result = invoke(*args, "--journal", str(journal), *out)
    assert result.code == 3, result.output
    assert f"record {seq} (an output) cannot be read" in result.output
    assert "DENY_" in result.output and "$.decision" in result.output
    assert "ordergate journal verify" in result.output
    if out:
        assert "x.csv: it holds only the decisions before that record" in result.output


def test_an_undecodable_decision_record_raises_a_journal_error(demo_day: Path,
                                                               tmp_path: Path) -> None:
    journal_path = _copy(demo_day, tmp_path)
    seq, text = _first(journal_path, '{"type":"decision_record",')
    intent_id = text.split('"intent_id":"', 1)[1].split('"', 1)[0]
    _edit(journal_path, seq, '{"type":"decision_record", not json')
    journal = read(journal_path)
    try:
        with pytest.raises(JournalError, match=rf"^record {seq} \(an output\) cannot be read "
                                               r".*not an output event"):
            list(iter_decisions(journal))
        with pytest.raises(JournalError, match=rf"^record {seq} \(an output\)"):
            find_decisions(journal, intent_id)
    finally:
        journal.close()


def test_an_undecodable_latency_note_raises_a_journal_error(demo_day: Path,
                                                            tmp_path: Path) -> None:
    journal_path = _copy(demo_day, tmp_path)
    seq, _ = _first(journal_path, '{"type":"evidence.latency"')
    _edit(journal_path, seq, '{"type":"evidence.latency", not json')
    result = invoke("decisions", "--journal", str(journal_path))
    assert result.code == 3, result.output
    assert f"record {seq} (a latency note) cannot be read" in result.output


def test_a_record_of_another_type_than_announced_is_a_journal_error() -> None:
    alert = Alert(ts=datetime(2026, 3, 2, tzinfo=UTC), severity=AlertSeverity.INFO, code="X",
                  message="m")
    with pytest.raises(JournalError, match=r"^record 7 \(an output\) cannot be read .*"
                                           r"expected a decision, got Alert"):
        journaled_as(7, alert, Decision)
    with pytest.raises(JournalError, match=r"^record 8 \(an output\)"):
        journaled_output(8, b'{"type":"decision","intent_id":"a","decision":"NOPE"}')


def test_replay_verify_does_not_call_the_chain_intact_when_the_head_file_refutes_it(
        demo_day: Path, tmp_path: Path) -> None:
    journal = _copy(demo_day, tmp_path)
    assert (tmp_path / "journal.db.head").exists()
    with sqlite3.connect(journal) as db:
        last = db.execute("select max(seq) from journal_records").fetchone()[0]
        db.execute("delete from journal_records where seq > ?", (last - 100,))
    result = invoke("replay", "verify", "--journal", str(journal))
    assert result.code == 3, result.output
    assert "intact" not in result.output
    assert f"broken at seq {last - 99}" in result.output


@pytest.mark.parametrize("size", [7_000_000, 50])
@pytest.mark.parametrize("command", [("journal", "verify"), ("journal", "head"),
                                     ("journal", "export", "--format", "csv")])
def test_a_corrupted_journal_file_is_damage_found_not_a_wrong_path(
        demo_day: Path, tmp_path: Path, command: tuple[str, ...], size: int) -> None:
    journal = _copy(demo_day, tmp_path)
    with journal.open("r+b") as handle:
        handle.truncate(size)
    out = ["--out", str(tmp_path / "x.csv")] if "export" in command else []
    result = invoke(*command, "--journal", str(journal), *out)
    said = " ".join(result.output.split())
    assert result.code == 3, said
    assert "the journal file is damaged" in said and "malformed" in said
    assert not (tmp_path / "x.csv").exists()
