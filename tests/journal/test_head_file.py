"""A SQLite journal's head file (`<journal>.head`, `journal.headfile`): written at a clean close,
it catches what the chain and its snapshots cannot, records cut from the end and an older copy
of the journal restored over it, in `journal verify`, `replay verify` and at start-up, with no
head to pass by hand. It only ever lags the journal, and a head file that is not this
journal's, or not a head at all, is set aside with a note instead of refusing a good journal."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import msgspec
import structlog
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.journal import RecordKind, open_journal
from ordergate.journal.headfile import file_heads, head_path
from ordergate.model.events import ClockTick
from ordergate.model.values import utc


def ordergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr as one line (rich wraps long messages); never a stack trace."""
    text = " ".join((result.stdout + result.stderr).split())
    assert "Traceback" not in text
    return text


def write_records(path: Path, count: int, *, close: bool = True) -> None:
    journal = open_journal(f"sqlite:///{path}")
    for index in range(count):  # clock ticks: inputs `replay verify` can replay
        tick = ClockTick(ts=utc(2026, 3, 2, 14, 30) + timedelta(seconds=index))
        journal.append(RecordKind.INPUT, msgspec.json.encode(tick))
    journal.flush()
    if close:
        journal.close()


def cut_from_end(path: Path, keep: int) -> None:
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next(name for name in tables if "record" in name)
        db.execute(f"DELETE FROM {table} WHERE seq > ?", (keep,))


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return ordergate("journal", "verify", "--journal", str(path))


def test_a_closed_journal_keeps_its_head_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    write_records(path, 7)
    head_file = Path(str(path) + ".head")
    assert head_path(f"sqlite:///{path}") == head_file
    kept = json.loads(head_file.read_text())
    shown = json.loads(ordergate("journal", "head", "--journal", str(path), "--json").stdout)
    assert kept["seq"] == 7 and kept["hash"] == shown["hash"]
    reader = open_journal(f"sqlite:///{path}", create=False)
    try:
        first = next(reader.read(1, 1)).hash
        assert kept["first"] == f"sha256:{first}"
        assert file_heads(reader) == ([(7, shown["hash"].removeprefix("sha256:"))], "")
    finally:
        reader.close()
    checked = verify(path)
    assert checked.returncode == 0 and "7 records checked, chain OK" in said(checked)


def test_records_cut_from_the_end_are_caught_without_a_head_given(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    write_records(path, 12)  # no snapshot: before the head file nothing could see the cut
    cut_from_end(path, 9)

    checked = verify(path)
    assert checked.returncode == 3
    message = said(checked)
    assert "failed at seq 10" in message and "journal.db.head" in message
    assert "records 10 to 12 at least were written and are gone" in message

    replayed = ordergate("replay", "verify", "--journal", str(path))
    assert replayed.returncode == 3
    assert "failed at seq 10" in said(replayed)


def test_an_older_copy_restored_over_the_journal_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    write_records(path, 5)
    shutil.copy(path, tmp_path / "backup.db")
    journal = open_journal(f"sqlite:///{path}", create=False)
    journal.append(RecordKind.INPUT, b'{"type":"clock","n":"later"}')
    journal.close()
    shutil.copy(tmp_path / "backup.db", path)  # the head file stays at record 6

    checked = verify(path)
    assert checked.returncode == 3
    assert "failed at seq 6" in said(checked)


def test_a_run_refuses_to_start_on_a_journal_cut_after_its_close(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=10)
    path = tmp_path / "journal.db"
    first = ordergate("run", "--policy", str(demo_policy_path()), "--journal", str(path),
                      "--quiet", str(events))
    assert first.returncode == 0, first.stderr
    kept = json.loads(Path(str(path) + ".head").read_text())
    cut_from_end(path, kept["seq"] - 3)

    again = ordergate("run", "--policy", str(demo_policy_path()), "--journal", str(path),
                      "--quiet", str(events))
    assert again.returncode == 3
    message = said(again)
    assert f"failed at seq {kept['seq'] - 2}" in message and "head file" in message


def test_a_journal_that_wrote_on_after_its_head_file_is_intact(tmp_path: Path) -> None:
    """A crash leaves the previous close's head file: it lags, and a lagging head is kept."""
    path = tmp_path / "journal.db"
    write_records(path, 4)
    write_records(path, 3, close=False)  # flushed, never closed: the head file says 4
    assert json.loads(Path(str(path) + ".head").read_text())["seq"] == 4
    checked = verify(path)
    assert checked.returncode == 0 and "7 records checked, chain OK" in said(checked)


def test_the_head_file_of_another_journal_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    write_records(path, 9)
    other = tmp_path / "other" / "journal.db"
    write_records(other, 3)
    for name in ("journal.db", "journal.db-wal", "journal.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    shutil.copyfile(other, path)  # another, shorter journal put in its place; the head stays

    checked = verify(path)
    assert checked.returncode == 0
    message = said(checked)
    assert "3 records checked, chain OK" in message
    assert "belongs to another journal" in message


def test_a_head_file_that_is_not_a_head_is_set_aside_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    write_records(path, 3)
    head_file = Path(str(path) + ".head")
    for junk in (b"\x00\xffnot json", b'{"first":"x","seq":3,"hash":"y"}', b"[]",
                 b'{"first":"sha256:' + b"a" * 64 + b'","seq":-1,"hash":"sha256:'
                 + b"b" * 64 + b'"}'):
        head_file.write_bytes(junk)
        checked = verify(path)
        assert checked.returncode == 0, junk
        message = said(checked)
        assert "3 records checked, chain OK" in message
        assert "is not a head" in message, junk


def test_a_head_file_that_cannot_be_written_does_not_fail_the_close(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Path(str(path) + ".head").mkdir()  # where the file would go
    with structlog.testing.capture_logs() as logs:
        write_records(path, 2)
    assert any(entry["event"] == "journal.head_file_not_written" for entry in logs)
    checked = verify(path)
    assert checked.returncode == 0
    message = said(checked)
    assert "2 records checked, chain OK" in message and "not read" in message


def test_a_database_journal_has_no_head_file() -> None:
    assert head_path("postgresql://127.0.0.1/test?stream=x") is None
