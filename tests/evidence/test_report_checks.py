"""The evidence pack checks the journal as `journal verify` does before it reads a record,
covers exactly the records it checked, and says what the mode was and who changed it."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.evidence.support import invoke

from ordergate.evidence.report import build_report
from ordergate.journal import (
    Durability,
    Journal,
    JournalRecord,
    RecordKind,
    VerifyReport,
    open_journal,
)

DECISION = b'{"type":"decision",'


def _copy(demo_day: Path, into: Path) -> Path:
    """The demo journal with everything kept beside it (head file, snapshots, manifest)."""
    into.mkdir()
    for item in demo_day.glob("journal.db*"):
        if item.is_dir():
            shutil.copytree(item, into / item.name)
        else:
            shutil.copy2(item, into / item.name)
    return into / "journal.db"


def _sql(journal: Path, statement: str) -> None:
    with sqlite3.connect(journal) as connection:
        connection.execute(statement)
    connection.close()


def test_report_refuses_a_journal_cut_short_behind_its_head_file(
        tmp_path: Path, demo_day: Path) -> None:
    journal = _copy(demo_day, tmp_path / "cut")
    with sqlite3.connect(journal) as connection:
        (last,) = connection.execute("select max(seq) from journal_records").fetchone()
    connection.close()
    _sql(journal, "delete from journal_records where seq > 38000")

    verify = invoke("journal", "verify", "--journal", str(journal))
    result = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"))

    assert verify.code == 3
    assert result.code == 3, result.output
    said = " ".join(result.output.split())
    assert "journal verification failed at seq 38001" in said
    assert "head file" in said and str(last) in said
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert "hash chain verified" not in said + markdown
    assert "replay reproduced" not in said + markdown
    assert "journal verification failed at seq 38001" in markdown


def test_report_checks_a_head_given_with_head_as_journal_verify_does(
        tmp_path: Path, demo_day: Path) -> None:
    journal = _copy(demo_day, tmp_path / "cut")
    (tmp_path / "cut" / "journal.db.head").unlink()  # kept elsewhere, not beside it
    with sqlite3.connect(journal) as connection:
        seq, digest = connection.execute(
            "select seq, hash from journal_records order by seq desc limit 1").fetchone()
    connection.close()
    head = f"{seq}:sha256:{digest}"
    kept = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "whole"),
                  "--head", head)
    _sql(journal, f"delete from journal_records where seq > {seq - 100}")

    cut = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"),
                 "--head", head)

    assert kept.code == 0, kept.output
    assert cut.code == 3, cut.output
    assert f"journal verification failed at seq {seq - 99}" in " ".join(cut.output.split())
    assert "hash chain verified" not in (tmp_path / "pack" / "report.md").read_text()


def test_report_of_an_edited_record_names_the_chain_failure_not_a_stack_trace(
        tmp_path: Path, demo_day: Path) -> None:
    journal = _copy(demo_day, tmp_path / "edited")
    with sqlite3.connect(journal) as connection:
        (seq,) = connection.execute(
            "select min(seq) from journal_records where cast(payload as text) like "
            "'{\"type\":\"decision\",%\"ALLOW\"%'").fetchone()
    connection.close()
    # an ALLOW that no longer decodes: the stored hash no longer matches either
    _sql(journal, "update journal_records set payload = cast(replace(cast(payload as text), "
                  f"'\"ALLOW\"', '\"DENY_\"') as blob) where seq = {seq}")

    result = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"))

    assert result.code == 3, result.output
    said = " ".join(result.output.split())
    assert f"journal verification failed at seq {seq}" in said
    assert "Traceback" not in said
    assert "hash chain verified" not in (tmp_path / "pack" / "report.md").read_text()


def _records(journal: Path, start: int, end: int) -> list[tuple[RecordKind, bytes]]:
    source = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        return [(record.kind, record.payload) for record in source.read(start, end)]
    finally:
        source.close()


def test_report_of_an_unreadable_output_names_its_record(tmp_path: Path,
                                                         demo_day: Path) -> None:
    """A record the chain vouches for (written as it is) that this version cannot decode."""
    journal = tmp_path / "journal.db"
    writer = open_journal(f"sqlite:///{journal}", durability=Durability.ALWAYS)
    writer.append_many(_records(demo_day / "journal.db", 1, 200))
    bad = writer.append(RecordKind.OUTPUT, b'{"type":"limits","limits_hash":"sha256:00",'
                                           b'"ts":"2026-03-02T15:00:00Z"}')
    writer.close()

    result = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"))

    assert result.code == 3, result.output
    said = " ".join(result.output.split())
    assert f"record {bad} (an output) cannot be read" in said
    assert "Traceback" not in said


class _WrittenMeanwhile:
    """A journal another process appends to right after its chain was checked, as a run that
    is still going does while the report reads."""

    def __init__(self, reader: Journal, writer: Journal,
                 more: list[tuple[RecordKind, bytes]]) -> None:
        self._reader, self._writer, self._more = reader, writer, more

    def verify(self) -> VerifyReport:
        report = self._reader.verify()
        self._writer.append_many(self._more)
        self._writer.flush()
        return report

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        return self._reader.read(start_seq, end_seq)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


def test_report_covers_only_the_records_its_check_covered(tmp_path: Path,
                                                          demo_day: Path) -> None:
    demo = demo_day / "journal.db"
    records = _records(demo, 1, 6000)
    # the first half ends where a batch opens, so every step in it is whole
    checked = max(index for index, (kind, payload) in enumerate(records[:3000])
                  if kind is RecordKind.META and payload.startswith(b'{"type":"og.source"'))
    first, more = records[:checked], records[checked:]
    assert any(payload.startswith(DECISION) for _, payload in more)
    journal = tmp_path / "journal.db"
    writer = open_journal(f"sqlite:///{journal}", durability=Durability.ALWAYS)
    writer.append_many(first)
    writer.flush()
    reader = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        pack = build_report(_WrittenMeanwhile(reader, writer, more),  # type: ignore[arg-type]
                            tmp_path / "pack")
        grown = writer.last_seq()
    finally:
        reader.close()
        writer.close()

    decisions = sum(1 for _, payload in first if payload.startswith(DECISION))
    rows = (tmp_path / "pack" / "decisions.csv").read_text().splitlines()[1:]
    assert grown == len(records)
    assert pack.replay.chain.records == checked
    assert pack.replay.decisions == decisions
    assert len(rows) == decisions
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert f"records 1\u2013{checked:,}" in markdown
    assert f"records from {checked + 1:,} on were written after the check" in markdown


def test_report_window_after_a_halt_starts_in_the_mode_then_in_force(
        tmp_path: Path, demo_day: Path) -> None:
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"), "--since", "2026-03-02T20:00:00Z")

    assert result.code == 0, result.output
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert "Mode when the window opens: HALTED" in markdown
    assert "the mode ended HALTED, not ACTIVE" in markdown


def test_report_mode_table_names_who_changed_the_mode_and_why(
        tmp_path: Path, demo_day: Path) -> None:
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"))

    assert result.code == 0, result.output
    timeline = (tmp_path / "pack" / "mode_timeline.csv").read_text().splitlines()
    assert timeline[0] == "ts,previous,mode,actor,reasons"
    resume = next(line for line in timeline if ",REDUCE_ONLY,ACTIVE," in line)
    assert ",desk-lead,resume: TSLA feed is back and checked against the venue" in resume
    halt = next(line for line in timeline if ",ACTIVE,HALTED," in line)
    assert ",system,LOS-003: account DEMO-1: equity" in halt
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert "| REDUCE_ONLY | ACTIVE | desk-lead | resume: TSLA feed is back" in markdown


def test_report_refuses_a_since_later_than_its_until(tmp_path: Path, demo_day: Path) -> None:
    since, until = "2026-03-02T20:00:00Z", "2026-03-02T19:00:00Z"
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"), "--since", since, "--until", until)

    assert result.code == 1, result.output
    said = " ".join(result.output.split())
    assert f"--since {since} is later than --until {until}" in said
    assert not (tmp_path / "pack").exists()
