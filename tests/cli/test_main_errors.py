"""The CLI's last line of defence: a journal problem no command names itself still reaches
the user as one line and exit 3 (a safety stop), never a stack trace."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ordergate.cli import demo_cmd, main
from ordergate.cli.errors import EXIT_SAFETY_STOP
from ordergate.journal import JournalError


def test_a_journal_error_no_command_expects_is_a_one_line_safety_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken(out: Path, console: object = None) -> None:
        raise JournalError(f"{out}/journal.db: the chain ends at record 0 but a snapshot "
                           "was taken at record 7")

    monkeypatch.setattr(demo_cmd, "run_demo", broken)
    monkeypatch.setattr(sys, "argv", ["ordergate", "demo", "--out", str(tmp_path / "d")])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == EXIT_SAFETY_STOP
    err = capsys.readouterr().err
    assert "SAFETY STOP" in err
    assert "snapshot was taken at record 7" in err.replace("\n", " ")
    assert "Traceback" not in err


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNREACHABLE = "postgresql://bob:s3cret@127.0.0.1:1/ledger"  # loopback, nothing listens


@pytest.mark.parametrize("command", [
    ["status", "--journal", UNREACHABLE],
    ["run", "--policy", str(EXAMPLES / "policy.yaml"), "--journal", UNREACHABLE,
     str(EXAMPLES / "intents.jsonl")],
])
def test_a_journal_that_cannot_be_opened_is_named_once_and_its_password_never_shown(
        command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["ordergate", *command])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    assert stopped.value.code == 1
    captured = capsys.readouterr()
    said = " ".join((captured.err + captured.out).split())
    assert "s3cret" not in said
    assert said.count("postgresql://bob:***@127.0.0.1:1/ledger") == 1, said
    assert "cannot connect to the journal database" in said
