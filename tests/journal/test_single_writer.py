"""A SQLite journal has one writer. A second writer, in another process or this one, is
refused when it opens, naming the journal and the process that writes it, before it replays,
recovers or calls a broker; readers (status, verify, replay) neither take nor wait for the
writer's lock; a killed writer leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordergate.journal import JournalError, open_journal

DEMO_POLICY = (Path(__file__).resolve().parents[2] / "src" / "ordergate" / "data"
               / "demo_policy.yaml")
_HOLD = """
import sys
from ordergate.journal import open_journal
journal = open_journal(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process holding the journal open for writing, until the test ends or kills it."""
    path = tmp_path / "journal.db"
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    yield path, child
    if child.poll() is None:
        child.kill()
    child.wait()


def ordergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "400"})


def test_a_second_writer_in_this_process_is_refused_and_readers_are_not(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    first = open_journal(str(path))
    try:
        with pytest.raises(JournalError, match="already has the journal open for writing") as exc:
            open_journal(str(path))
        assert str(path) in str(exc.value)
        reader = open_journal(str(path), create=False, reader=True)
        assert reader.verify().ok
        reader.close()
    finally:
        first.close()
    again = open_journal(str(path), create=False)  # closing released the lock
    again.close()


def test_a_writer_in_another_process_is_named_and_a_killed_one_leaves_no_lock(
        writer: tuple[Path, subprocess.Popen[str]]) -> None:
    path, child = writer
    with pytest.raises(JournalError, match=f"another process \\(pid {child.pid}\\) is writing"):
        open_journal(str(path), create=False)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    open_journal(str(path), create=False).close()


def test_run_on_a_journal_being_written_stops_at_start_with_one_line(
        writer: tuple[Path, subprocess.Popen[str]], tmp_path: Path) -> None:
    path, child = writer
    events = tmp_path / "events.jsonl"
    events.write_text('{"type":"account","account":"DEMO-1","cash":"1000",'
                      '"ts":"2026-03-02T14:29:00Z"}\n')
    run = ordergate("run", "-q", "--policy", str(DEMO_POLICY), "--journal", str(path),
                    str(events))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(path) in lines[0] and f"pid {child.pid}" in lines[0]
    verify = ordergate("journal", "verify", "--journal", str(path))
    assert verify.returncode == 0, verify.stderr


def test_a_second_writer_through_a_symbolic_link_is_refused_too(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    first = open_journal(f"sqlite:///{real}")
    try:
        alias = tmp_path / "alias.db"
        alias.symlink_to(real)
        elsewhere = tmp_path / "sub"
        elsewhere.mkdir()
        for name in (alias, elsewhere / ".." / "real.db"):
            with pytest.raises(JournalError, match="already has the journal open for writing"):
                open_journal(f"sqlite:///{name}", create=False)
    finally:
        first.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")) == [
        "real.db.lock"]
