"""`ordergate drill break-glass`: an --out it cannot write into is a user error found before
any step runs (not a failed step), the drill verifies its journal as a reader, and its help
says it runs under its own policy, not the user's."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ordergate.journal
from ordergate.cli.errors import UserError
from ordergate.cli.main import app


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_an_unwritable_out_is_a_user_error_before_any_step() -> None:
    result = CliRunner().invoke(app, ["drill", "break-glass", "--out", "/proc"])
    assert result.exit_code == 1
    assert isinstance(result.exception, UserError), result.exception
    assert "--out /proc: cannot write into the directory" in str(result.exception)
    assert "runaway strategy" not in result.output


def test_the_drill_verifies_its_journal_as_a_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reopened: list[dict[str, Any]] = []
    real = ordergate.journal.open_journal

    def recording(url: str, **options: Any) -> Any:
        if options.get("create") is False:
            reopened.append(options)
        return real(url, **options)

    monkeypatch.setattr(ordergate.journal, "open_journal", recording)
    result = CliRunner().invoke(app, ["drill", "break-glass", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert reopened and all(options.get("reader") is True for options in reopened)


def test_help_says_the_drill_runs_under_its_own_policy() -> None:
    result = CliRunner().invoke(app, ["drill", "break-glass", "--help"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "built-in policy (break-glass-drill), not yours" in result.output
