"""A journal write interrupted by Ctrl-C (KeyboardInterrupt) or SystemExit: its transaction is
rolled back, or, if it committed, its records leave the buffer; the close (or the next flush)
writes what is not stored, once. It used to be written again at the close: a false safety
stop ("UNIQUE constraint failed", "cannot start a transaction within a transaction") on a
journal that was intact.

The interruption is a real signal delivered by SQLite itself: a progress handler on the
journal's own connection raises it (through libc, running no Python code) while the statement
named runs, and Python raises KeyboardInterrupt as that statement returns, where a Ctrl-C that
arrives while SQLite works is raised. No timing is involved.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from tests.runtime import harness
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.journal.chain import check_kept_heads
from ordergate.journal.sqlite import SqliteJournal

_raise_signal = getattr(ctypes.CDLL(None, use_errno=True), "raise")
_raise_signal.argtypes = [ctypes.c_int]

BEGIN = "BEGIN IMMEDIATE"
INSERT = "INSERT INTO journal_records"
COMMIT = "COMMIT"
READ_BACK = "SELECT hash FROM journal_records"


@contextlib.contextmanager
def signal_during(conn: sqlite3.Connection, *statements: str,
                  signum: int = signal.SIGINT) -> Iterator[list[str]]:
    """Send `signum` to this thread while SQLite runs each of `statements` (the start of its
    SQL text) in turn, once each. Yields the statements not yet reached."""
    pending = list(statements)
    armed = ctypes.c_int(0)  # the signal the progress handler raises: 0 sends nothing

    def trace(sql: str) -> None:
        if pending and sql.startswith(pending[0]):
            pending.pop(0)
            armed.value = signum
        else:
            armed.value = 0

    conn.set_trace_callback(trace)
    conn.set_progress_handler(functools.partial(_raise_signal, armed), 1)
    try:
        yield pending
    finally:
        conn.set_trace_callback(None)
        conn.set_progress_handler(None, 1)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def interruption(kind: type[BaseException]) -> Iterator[int]:
    """The signal that raises `kind`: SIGINT's own KeyboardInterrupt, or SIGUSR1 handled as a
    SIGTERM handler that exits would be."""
    if kind is KeyboardInterrupt:
        yield signal.SIGINT
        return
    previous = signal.signal(signal.SIGUSR1, _exit_on_signal)
    try:
        yield signal.SIGUSR1
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _payload(index: int) -> bytes:
    return f'{{"n":{index}}}'.encode()


def _writer(path: Path, durability: Durability = Durability.BATCH) -> SqliteJournal:
    journal = open_journal(f"sqlite:///{path}", durability=durability)
    assert isinstance(journal, SqliteJournal)
    return journal


def _stored_once(path: Path, expected: list[bytes]) -> None:
    """The journal at `path` verifies (chain, snapshots, head file) and holds `expected` as
    records 1..n, each once, in order."""
    reader = open_journal(f"sqlite:///{path}", create=False, reader=True)
    try:
        report, note = check_kept_heads(reader, reader.verify())
        assert report.ok, report.message
        assert note == ""
        records = [(record.seq, record.payload) for record in reader.read()
                   if record.kind is RecordKind.INPUT]
        assert records == list(enumerate(expected, start=1))
        assert reader.last_seq() == len(expected)
    finally:
        reader.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) "
                            "FROM journal_records").fetchone() == \
            (len(expected), len(expected), 1, len(expected))


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("statement", [BEGIN, INSERT, COMMIT])
def test_an_interrupted_write_is_stored_once_and_the_journal_goes_on(
        tmp_path: Path, statement: str, kind: type[BaseException]) -> None:
    path = tmp_path / "journal.db"
    expected = [_payload(index) for index in range(1, 309)]
    journal = _writer(path)
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[:5]])
    journal.flush()
    # 300 records: three INSERT statements in the write, the first one interrupted
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[5:305]])
    with interruption(kind) as signum, signal_during(
            journal._conn, statement, signum=signum) as pending, pytest.raises(kind):
        journal.flush()
    assert pending == []
    journal.check_writable()  # no transaction is left open
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[305:]])
    journal.close()
    _stored_once(path, expected)


def test_a_write_interrupted_again_while_read_back_is_settled_by_the_close(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    expected = [_payload(index) for index in range(1, 41)]
    journal = _writer(path)
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[:30]])
    # Ctrl-C as the commit returns, and again while the journal reads back what it stored
    with signal_during(journal._conn, COMMIT, READ_BACK) as pending, \
            pytest.raises(KeyboardInterrupt):
        journal.flush()
    assert pending == []
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[30:]])
    journal.close()
    _stored_once(path, expected)


@pytest.mark.parametrize("statement", [BEGIN, COMMIT])
def test_an_interrupted_append_under_always_durability_is_stored_once(
        tmp_path: Path, statement: str) -> None:
    path = tmp_path / "journal.db"
    expected = [_payload(index) for index in range(1, 5)]
    journal = _writer(path, Durability.ALWAYS)
    journal.append(RecordKind.INPUT, expected[0])
    with signal_during(journal._conn, statement), pytest.raises(KeyboardInterrupt):
        journal.append(RecordKind.INPUT, expected[1])
    for payload in expected[2:]:
        journal.append(RecordKind.INPUT, payload)
    journal.close()
    _stored_once(path, expected)


def test_an_interrupted_snapshot_write_leaves_no_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    expected = [_payload(index) for index in range(1, 7)]
    journal = _writer(path)
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[:3]])
    journal.flush()
    with signal_during(journal._conn, "INSERT INTO journal_snapshots"), \
            pytest.raises(KeyboardInterrupt):
        journal.save_snapshot(3, b"state")
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[3:]])
    journal.flush()
    journal.close()
    _stored_once(path, expected)


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["_check_epoch", "_write"])
def test_an_interrupted_postgres_write_is_stored_once(postgres_url: str, where: str) -> None:
    """Interrupted inside its transaction block (after the epoch check), the write is rolled
    back by the block; after its commit, before the buffer learns of it, it was written again
    at the close and refused as another writer's records."""
    url = f"{postgres_url}&stream=intr-{uuid.uuid4().hex[:6]}"
    expected = [_payload(index) for index in range(1, 26)]
    journal: Any = open_journal(url, durability=Durability.BATCH)
    step: Callable[..., None] = getattr(journal, where)

    def step_then_interrupted(*args: Any) -> None:
        step(*args)
        raise KeyboardInterrupt

    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[:20]])
    setattr(journal, where, step_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        journal.flush()
    delattr(journal, where)
    journal.check_writable()
    journal.append_many([(RecordKind.INPUT, payload) for payload in expected[20:]])
    journal.close()
    reader = open_journal(url, create=False, reader=True)
    try:
        assert reader.verify().ok
        assert [(record.seq, record.payload) for record in reader.read()] == \
            list(enumerate(expected, start=1))
    finally:
        reader.close()


# `ordergate run` in its own interpreter, with SIGINT sent while the journal's writer runs
# the n-th `statement` of the run. A run that handles Ctrl-C itself asks to stop at the first
# one and stops at once at the second: the first is sent just before that statement, so
# the one that lands in the write is always the Ctrl-C that stops the run at once.
_CTRL_C_RUN = """
import ctypes, functools, os, signal, sys
from ordergate.journal import sqlite as journal_sqlite
from ordergate.cli.main import main

raise_signal = getattr(ctypes.CDLL(None, use_errno=True), "raise")
raise_signal.argtypes = [ctypes.c_int]
statement, nth = os.environ["TEST_CTRL_C_AT"].rsplit(":", 1)
seen = [0]
armed = ctypes.c_int(0)


def trace(sql):
    armed.value = 0
    if not sql.startswith(statement):
        return
    seen[0] += 1
    if seen[0] != int(nth):
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.raise_signal(signal.SIGINT)
    armed.value = signal.SIGINT


opened = journal_sqlite.SqliteJournal.__init__


def hooked(self, *args, **kwargs):
    opened(self, *args, **kwargs)
    if not kwargs.get("reader"):
        self._conn.set_trace_callback(trace)
        self._conn.set_progress_handler(functools.partial(raise_signal, armed), 1)


journal_sqlite.SqliteJournal.__init__ = hooked
sys.argv[0] = "ordergate"
main()
"""


@pytest.mark.parametrize("statement", [INSERT, COMMIT])
def test_ctrl_c_inside_a_journal_write_of_a_run_is_no_safety_stop(
        tmp_path: Path, statement: str) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=30)
    policy = demo_policy_path()
    reference = tmp_path / "reference"
    reference.mkdir()
    assert harness.cli(*harness.run_args(events, policy, reference / "journal.db",
                                         reference / "broker.db")).returncode == 0
    journal, broker = tmp_path / "journal.db", tmp_path / "broker.db"
    args = harness.run_args(events, policy, journal, broker)
    interrupted = subprocess.run(
        [sys.executable, "-c", _CTRL_C_RUN, *args], capture_output=True, text=True,
        check=False, env={**os.environ, "TEST_CTRL_C_AT": f"{statement}:12"})
    said = interrupted.stdout + interrupted.stderr
    assert interrupted.returncode not in (0, 3), said
    assert "SAFETY STOP" not in said
    assert "Traceback" not in said
    assert harness.verify(journal)[0]
    resumed = harness.cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert harness.verify(journal)[0]
    assert harness.source_payloads(journal) == harness.source_payloads(reference / "journal.db")
    assert harness.dispatched_ids(journal) == harness.dispatched_ids(reference / "journal.db")
    assert harness.submissions(broker) == harness.dispatched_ids(journal)
    assert harness.final_state(journal) == harness.final_state(reference / "journal.db")


def test_the_signal_hook_interrupts_right_after_the_statement_named() -> None:
    """The test's own hook: the signal is raised as the statement named returns, not before
    it ran nor later."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    reached = []
    with signal_during(conn, "INSERT INTO t"), pytest.raises(KeyboardInterrupt):
        conn.execute("BEGIN")
        reached.append("begun")
        conn.execute("INSERT INTO t VALUES (1)")
        reached.append("inserted")
    assert reached == ["begun"]
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    conn.close()

