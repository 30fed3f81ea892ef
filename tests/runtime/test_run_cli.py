"""`ordergate run` on files with a malformed line: the error names the line and the field,
nothing before the line is lost, and re-running after the fix continues where it stopped
(the result equals a clean run); with --skip-bad-lines the bad line is reported and skipped."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from tests.runtime import harness
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.cli.errors import UserError
from ordergate.cli.main import app
from ordergate.runtime.loop import encode
from ordergate.runtime.sources import decode_event

BAD_LINE = 40


def _args(events: Path, directory: Path, *extra: str) -> list[str]:
    return ["run", "--quiet", "--policy", str(demo_policy_path()),
            "--journal", str(directory / "journal.db"), *extra, str(events)]


def _break_line(events: Path) -> tuple[Path, bytes]:
    lines = events.read_bytes().splitlines(keepends=True)
    original = lines[BAD_LINE - 1]
    assert b'"type":"intent"' in original or b'"type":"market"' in original
    lines[BAD_LINE - 1] = b'{"type":"market","symbol":"AAPL","ts":"2026-03-02T15:00:13Z",' \
                          b'"bid":"not-a-price"}\n'
    broken = events.with_name("broken.jsonl")
    broken.write_bytes(b"".join(lines))
    return broken, original


def test_bad_line_names_line_and_field_and_a_rerun_after_the_fix_completes(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    clean = tmp_path / "clean"
    clean.mkdir()
    app(args=_args(events, clean), standalone_mode=False)

    broken, original = _break_line(events)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UserError) as failure:
        app(args=_args(broken, work), standalone_mode=False)
    message = str(failure.value)
    assert f"line {BAD_LINE}" in message and "bid" in message
    before = harness.dispatched_ids(work / "journal.db")
    assert before  # what came before the bad line was journaled and dispatched

    fixed = broken.read_bytes().splitlines(keepends=True)
    fixed[BAD_LINE - 1] = original
    broken.write_bytes(b"".join(fixed))
    app(args=_args(broken, work), standalone_mode=False)
    assert harness.dispatched_ids(work / "journal.db") == harness.dispatched_ids(
        clean / "journal.db")
    assert harness.verify(work / "journal.db")[0]


def test_skip_bad_lines_reports_and_goes_on(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    broken, _ = _break_line(events)
    app(args=_args(broken, tmp_path, "--skip-bad-lines"), standalone_mode=False)
    assert f"line {BAD_LINE}: field bid" in capsys.readouterr().err
    journaled = set(harness.input_payloads(tmp_path / "journal.db"))
    lines = broken.read_bytes().splitlines()
    for number, raw in enumerate(lines, start=1):
        if number == BAD_LINE:
            continue
        assert encode(decode_event(raw)) in journaled, f"line {number} was not journaled"


def test_status_rebuilds_mode_positions_and_pnl_from_the_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    app(args=_args(events, tmp_path), standalone_mode=False)
    capsys.readouterr()
    journal = str(tmp_path / "journal.db")

    app(args=["status", "--journal", journal, "--json"], standalone_mode=False)
    status = json.loads(capsys.readouterr().out)
    assert status["mode"] == "ACTIVE"
    assert any(Decimal(p["qty"]) != 0 for p in status["positions"])
    assert status["accounts"][0]["account"] == "DEMO-1"

    app(args=["status", "--journal", journal], standalone_mode=False)
    text = capsys.readouterr().out
    assert "ACTIVE" in text and "Trading normally" in text
    assert "AAPL" in text and "equity" in text

    with pytest.raises(UserError, match=r"nothing\.db"):
        app(args=["status", "--journal", str(tmp_path / "nothing.db")], standalone_mode=False)
