"""`--journal` means the same to every command (`journal.urls.parse_journal_url`): a path ending
in '.db', sqlite:///... or postgresql://... `run` made a journal at any path (`mj`) that
`journal verify`, `replay`, `decisions` then refused as an unknown scheme; it is refused by
`run` and `status` too now, before anything is made, and sqlite:///mj works for all of them.

`run` refuses an existing file that is not an SQLite database (an events file given as the
journal) before it opens it: the file is left as it was and no lock file is made beside it.
An empty file is a new journal (as `mktemp` makes one). A journal damaged from its first
bytes, its own files beside it, is still a journal: a safety stop saying it is damaged.

`--broker-state` that cannot hold the simulator's state (a directory) is one error naming the
option, not a stack trace, and the journal's own file (or any of its files) is refused as the
simulator's state, before either file is touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.runtime.harness import cli, dispatched_ids
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.cli.errors import UserError
from ordergate.cli.run_cmd import journal_url
from ordergate.journal import JournalError
from ordergate.journal.urls import parse_journal_url, resolved_journal_url


def _run(events: Path, journal: str, *extra: str) -> list[str]:
    return ["run", "--quiet", "--policy", str(demo_policy_path()), "--journal", journal,
            *extra, str(events)]


def test_a_journal_path_without_db_is_refused_by_run_and_status_as_by_the_readers(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    plain_path = str(tmp_path / "mj")
    for args in (_run(events, plain_path), ["status", "--journal", plain_path],
                 ["journal", "verify", "--journal", plain_path]):
        refused = cli(*args, columns=400)
        assert refused.returncode == 1, (args, refused.stderr)
        assert "a plain path must end in '.db'" in refused.stderr, refused.stderr
        assert f"'sqlite:///{plain_path}'" in refused.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.jsonl"]

    # the name is kept by writing it as a URL, which every command then reads
    url = f"sqlite:///{plain_path}"
    assert cli(*_run(events, url)).returncode == 0
    assert dispatched_ids(Path(plain_path))
    for args in (["status", "--journal", url], ["journal", "verify", "--journal", url],
                 ["decisions", "--journal", url]):
        read = cli(*args)
        assert read.returncode == 0, (args, read.stderr)


def test_one_rule_for_every_command() -> None:
    assert resolved_journal_url("j.db") == f"sqlite:///{Path('j.db').resolve()}"
    assert journal_url("sqlite:///x/j") == "sqlite:///x/j"
    assert resolved_journal_url("postgresql://h/db?stream=a") == "postgresql://h/db?stream=a"
    for value in ("mj", "events.jsonl", "mysql://h/db"):
        with pytest.raises(JournalError):
            parse_journal_url(value)
        with pytest.raises(UserError):
            journal_url(value)


def test_an_existing_file_that_is_no_journal_is_refused_and_left_alone(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    journal = tmp_path / "copy.db"
    journal.write_bytes(events.read_bytes())
    refused = cli(*_run(events, str(journal)), columns=400)
    assert refused.returncode == 1, refused.stderr
    assert "this file is not an ordergate journal (not an SQLite database" in refused.stderr
    assert journal.read_bytes() == events.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.db", "events.jsonl"]


def test_an_empty_file_is_taken_as_a_new_journal(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    journal = tmp_path / "made-by-mktemp.db"
    journal.touch()
    assert cli(*_run(events, str(journal))).returncode == 0
    assert dispatched_ids(journal)


def test_a_broker_state_directory_is_one_error_naming_the_option(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    (tmp_path / "adir").mkdir()
    refused = cli(*_run(events, str(tmp_path / "j.db"), "--broker-state",
                        str(tmp_path / "adir")), columns=400)  # cli() asserts no traceback
    assert refused.returncode == 1, refused.stderr
    assert f"--broker-state: {tmp_path / 'adir'}: cannot hold the simulated broker's state: " \
           "it is a directory" in refused.stderr


@pytest.mark.parametrize("existing", [False, True])
def test_the_journal_is_refused_as_the_broker_state(tmp_path: Path, existing: bool) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    journal = tmp_path / "j.db"
    if existing:
        assert cli(*_run(events, str(journal))).returncode == 0
    before = sorted(path.name for path in tmp_path.iterdir())
    for state in (journal, Path(f"{journal}-wal"), tmp_path / "." / "j.db"):
        refused = cli(*_run(events, str(journal), "--broker-state", str(state)), columns=400)
        assert refused.returncode == 1, refused.stderr
        assert f"--broker-state {state}: is the journal" in refused.stderr
        assert "the simulated broker needs a file of its own" in refused.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    if existing:
        with sqlite3.connect(journal) as conn:
            tables = [name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert not [name for name in tables if name.startswith("sim_")]


def test_a_journal_damaged_at_its_start_is_a_safety_stop_not_taken_for_another_file(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=5)
    journal = tmp_path / "j.db"
    assert cli(*_run(events, str(journal))).returncode == 0
    with journal.open("r+b") as handle:  # the SQLite header overwritten; its head file beside
        handle.write(b"X" * 16)
    damaged = journal.read_bytes()
    started = cli(*_run(events, str(journal)), columns=400)
    assert started.returncode == 3, started.stderr
    assert "SAFETY STOP" in started.stderr and "the file is damaged" in started.stderr
    assert "not an ordergate journal" not in started.stderr
    assert journal.read_bytes() == damaged
