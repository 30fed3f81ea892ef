"""`ordergate chaos run` can be run again into the same --out, never deletes files it did not
write, reports a scenario's error as that scenario failing (the others still run), refuses an
--out it cannot write into as a user error, and inspects journals only as a reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ordergate.chaos import runner, scenarios
from ordergate.chaos.scenarios import BY_NAME, Scenario, Stage
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.cli.main import app
from ordergate.journal import JournalError


def _chaos(*args: str) -> Any:
    return CliRunner().invoke(app, ["chaos", "run", *args])


def test_a_second_run_into_the_same_out_passes_again(tmp_path: Path) -> None:
    for attempt in (1, 2):
        result = _chaos("--scenario", "corrupted_state", "--out", str(tmp_path))
        assert result.exit_code == 0, (attempt, result.output, result.exception)
        evidence = json.loads((tmp_path / "corrupted_state" / "evidence.json").read_text())
        assert evidence["passed"] is True


def test_chaos_never_touches_a_directory_it_did_not_create(tmp_path: Path) -> None:
    mine = tmp_path / "partial_group"
    mine.mkdir()
    (mine / "precious.db").write_bytes(b"my own database")
    (mine / "notes.dbx").write_text("keep")
    result = _chaos("--scenario", "partial_group", "--scenario", "exchange_maintenance",
                    "--out", str(tmp_path))
    # SafetyStop: `ordergate` exits 3 (CliRunner shows the exception, not main's exit code)
    assert isinstance(result.exception, SafetyStop), result.output
    assert "partial_group" in str(result.exception)
    assert "no .ordergate-chaos marker" in result.output
    assert sorted(path.name for path in mine.iterdir()) == ["notes.dbx", "precious.db"]
    assert (mine / "precious.db").read_bytes() == b"my own database"
    other = json.loads((tmp_path / "exchange_maintenance" / "evidence.json").read_text())
    assert other["passed"] is True


def test_a_rerun_deletes_only_the_files_the_scenario_wrote(tmp_path: Path) -> None:
    assert _chaos("--scenario", "partial_group", "--out", str(tmp_path)).exit_code == 0
    directory = tmp_path / "partial_group"
    (directory / "precious.db").write_bytes(b"dropped in later")
    (directory / "journal.db.snapshots").mkdir()  # a journal sidecar that is a directory
    result = _chaos("--scenario", "partial_group", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (directory / "precious.db").read_bytes() == b"dropped in later"
    assert not (directory / "journal.db.snapshots").exists()
    assert json.loads((directory / "evidence.json").read_text())["passed"] is True


def test_a_scenario_that_raises_fails_alone_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(stage: Stage) -> scenarios.Played:
        raise JournalError(f"{stage.directory}/journal.db: cannot open the journal")

    patched = dict(BY_NAME)
    original = BY_NAME["exchange_maintenance"]
    patched["exchange_maintenance"] = Scenario(
        name=original.name, title=original.title, expected_mode=original.expected_mode,
        deadline_s=original.deadline_s, play=broken)
    monkeypatch.setattr(runner, "BY_NAME", patched)
    result = _chaos("--scenario", "exchange_maintenance", "--scenario", "auth_failure",
                    "--out", str(tmp_path))
    # SafetyStop: `ordergate` exits 3 (CliRunner shows the exception, not main's exit code)
    assert isinstance(result.exception, SafetyStop), result.output
    assert "exchange_maintenance" in str(result.exception)
    assert "auth_failure" not in str(result.exception)
    assert "the scenario runs to the end" in result.output
    assert "cannot open the journal" in result.output
    failed = json.loads((tmp_path / "exchange_maintenance" / "evidence.json").read_text())
    assert failed["passed"] is False and failed["final_mode"] == "unknown"
    assert json.loads((tmp_path / "auth_failure" / "evidence.json").read_text())["passed"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_an_unwritable_out_is_a_user_error_before_any_scenario() -> None:
    result = _chaos("--scenario", "partial_group", "--out", "/proc")
    assert result.exit_code == 1
    assert isinstance(result.exception, UserError), result.exception
    assert "--out /proc: cannot write into the directory" in str(result.exception)
    assert "partial_group" not in result.output


def test_help_says_what_a_rerun_deletes() -> None:
    result = CliRunner().invoke(app, ["chaos", "run", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "deletes only the files the scenario wrote" in result.output
    assert "never used or touched" in result.output


def test_corrupted_state_inspects_the_closed_journal_as_a_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict[str, Any]] = []
    real = scenarios.open_journal

    def recording(url: str, **options: Any) -> Any:
        opened.append(options)
        return real(url, **options)

    monkeypatch.setattr(scenarios, "open_journal", recording)
    result = _chaos("--scenario", "corrupted_state", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert opened and all(options.get("reader") is True for options in opened)
