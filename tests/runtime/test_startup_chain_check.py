"""`ordergate run` on an existing journal proves the hash chain before it acts, and on a large
journal it does so in a second process while the snapshot and tail replay rebuild the state
(`runtime.health.StartupCheck`, `journal.checker`). Nothing is appended or sent before the
verdict; a broken chain refuses the start with the chain's own message, also when the replay
meets the damaged record first; a check process that dies is replaced by a check in the
command's own process, never taken for a pass."""

from __future__ import annotations

import errno
import inspect
import os
import sqlite3
from pathlib import Path
from typing import ClassVar

import pytest
from tests.evidence.support import invoke
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.gateway import Gateway
from ordergate.journal import ChainCheckProcess, Verdict
from ordergate.runtime import health

SAFETY_STOP = 3


class _Recorded(ChainCheckProcess):
    """The real check process, remembered so the test can ask what it did."""

    started: ClassVar[list[_Recorded]] = []

    def __init__(self, url: str, epoch: int | None = None) -> None:
        super().__init__(url, epoch)
        self.awaited_from: list[str] = []
        _Recorded.started.append(self)

    def result(self) -> Verdict | None:
        if not self.awaited_from:  # who waited first for the verdict
            self.awaited_from = [frame.function for frame in inspect.stack()]
        return super().result()


class _Killed(_Recorded):
    """The real check process, killed as soon as it has started (as the OOM killer would)."""

    def __init__(self, url: str, epoch: int | None = None) -> None:
        super().__init__(url, epoch)
        self._process.kill()
        self._process.join()


@pytest.fixture()
def every_journal_checked_in_a_second_process(monkeypatch: pytest.MonkeyPatch) -> None:
    _Recorded.started.clear()
    monkeypatch.setattr(health, "PARALLEL_CHECK_MIN_RECORDS", 1)
    monkeypatch.setattr(health, "ChainCheckProcess", _Recorded)


def _run(journal: Path, events: Path) -> tuple[int, str]:
    done = invoke("run", "--quiet", "--policy", str(demo_policy_path()), "--journal",
                  str(journal), str(events))
    return done.code, " ".join(done.output.split())


def _rows(journal: Path) -> list[tuple[int, str, bytes]]:
    with sqlite3.connect(journal) as db:
        return list(db.execute("SELECT seq, kind, payload FROM journal_records ORDER BY seq"))


def _edit(journal: Path, seq: int, payload: bytes) -> None:
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE journal_records SET payload = ? WHERE seq = ?", (payload, seq))


def _written(tmp_path: Path) -> tuple[Path, Path]:
    events = write_scenario(tmp_path / "events.jsonl", seconds=20)
    journal = tmp_path / "journal.db"
    code, said = _run(journal, events)
    assert code == 0, said
    return journal, events


@pytest.mark.usefixtures("every_journal_checked_in_a_second_process")
def test_a_restart_checks_the_chain_in_a_second_process(tmp_path: Path) -> None:
    journal, events = _written(tmp_path)
    assert _Recorded.started == []  # a new journal has no chain to check
    code, said = _run(journal, events)
    assert code == 0, said
    (check,) = _Recorded.started
    assert check._process.pid != os.getpid()
    assert check._process.exitcode == 0  # it answered and ended on its own
    # the verdict was first awaited once the replay had rebuilt the state, not before it
    assert "_recover" in check.awaited_from


@pytest.mark.usefixtures("every_journal_checked_in_a_second_process")
def test_an_edited_record_refuses_the_start_before_anything_is_appended(tmp_path: Path) -> None:
    journal, events = _written(tmp_path)
    rows = _rows(journal)
    seq, _, payload = next(row for row in rows[len(rows) // 2:]
                           if row[1] == "out" and b'"qty":"' in row[2])
    _edit(journal, seq, payload.replace(b'"qty":"', b'"qty":"9', 1))  # still valid JSON
    before = _rows(journal)

    code, said = _run(journal, events)

    assert code == SAFETY_STOP
    assert f"journal verification failed at seq {seq}" in said
    assert "Traceback" not in said
    assert _rows(journal) == before  # refused before any record was added


@pytest.mark.usefixtures("every_journal_checked_in_a_second_process")
def test_a_record_the_replay_cannot_read_is_refused_as_the_broken_chain(tmp_path: Path) -> None:
    journal, events = _written(tmp_path)
    rows = _rows(journal)
    seq = next(row[0] for row in rows if row[1] == "in" and row[2].startswith(b'{"type":"intent"'))
    _edit(journal, seq, b'{"type":"intent",')  # the replay meets it long before the check ends
    before = _rows(journal)

    code, said = _run(journal, events)

    assert code == SAFETY_STOP
    assert f"journal verification failed at seq {seq}" in said
    assert "Traceback" not in said
    assert _rows(journal) == before


def test_a_check_process_that_dies_is_replaced_by_a_check_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _Recorded.started.clear()
    monkeypatch.setattr(health, "PARALLEL_CHECK_MIN_RECORDS", 1)
    monkeypatch.setattr(health, "ChainCheckProcess", _Killed)
    journal, events = _written(tmp_path)

    code, said = _run(journal, events)  # intact: the check here passes it
    assert code == 0, said
    assert len(_Recorded.started) == 1 and _Recorded.started[0]._process.exitcode != 0

    rows = _rows(journal)
    seq, _, payload = next(row for row in rows if row[1] == "out" and b'"qty":"' in row[2])
    _edit(journal, seq, payload.replace(b'"qty":"', b'"qty":"9', 1))
    code, said = _run(journal, events)  # broken: a dead check process is no pass
    assert code == SAFETY_STOP
    assert f"journal verification failed at seq {seq}" in said
    assert len(_Recorded.started) == 2


def test_no_second_process_to_be_had_means_a_check_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(url: str, epoch: int | None = None) -> ChainCheckProcess:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(health, "PARALLEL_CHECK_MIN_RECORDS", 1)
    monkeypatch.setattr(health, "ChainCheckProcess", refused)
    journal, events = _written(tmp_path)
    code, said = _run(journal, events)
    assert code == 0, said

    rows = _rows(journal)
    seq, _, payload = next(row for row in rows if row[1] == "out" and b'"qty":"' in row[2])
    _edit(journal, seq, payload.replace(b'"qty":"', b'"qty":"9', 1))
    code, said = _run(journal, events)
    assert code == SAFETY_STOP
    assert f"journal verification failed at seq {seq}" in said
    assert "Traceback" not in said


@pytest.mark.usefixtures("every_journal_checked_in_a_second_process")
def test_the_embedded_gateway_checks_in_its_own_process(tmp_path: Path) -> None:
    """A second process imports the main module again; an embedding script need not guard
    its entry point, so the embedded gateway never starts one."""
    journal, _ = _written(tmp_path)
    with Gateway.open(demo_policy_path(), journal, SimBroker(SimConfig()),
                      clock="event") as gateway:
        assert gateway.run_id
    assert _Recorded.started == []

    rows = _rows(journal)
    seq, _, payload = next(row for row in rows if row[1] == "out" and b'"qty":"' in row[2])
    _edit(journal, seq, payload.replace(b'"qty":"', b'"qty":"9', 1))
    with pytest.raises(health.StartRefused, match=f"failed at seq {seq}"):
        Gateway.open(demo_policy_path(), journal, SimBroker(SimConfig()), clock="event")
