"""Exports: filtered decisions as JSON Lines, CSV and Parquet with exact decimals."""

from __future__ import annotations

import csv
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
from tests.evidence.support import invoke


def _export(demo_day: Path, out: Path, fmt: str, *filters: str) -> None:
    result = invoke("journal", "export", "--journal", str(demo_day / "journal.db"),
                    "--format", fmt, "--out", str(out), *filters)
    assert result.code == 0, result.output


def test_exports_agree_across_formats_and_apply_filters(tmp_path: Path, demo_day: Path) -> None:
    filters = ("--decision", "DENY", "--symbol", "MSFT", "--since", "2026-03-02T15:00:00Z")
    for fmt in ("jsonl", "csv", "parquet"):
        _export(demo_day, tmp_path / f"d.{fmt}", fmt, *filters)
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    with (tmp_path / "d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    table = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert lines and len(lines) == len(rows) == len(table)
    for line, row, record in zip(lines, rows, table, strict=True):
        assert line["decision"] == row["decision"] == record["decision"] == "DENY"
        assert line["symbol"] == row["symbol"] == record["symbol"] == "MSFT"
        assert line["ts"] >= "2026-03-02T15:00:00"
        assert Decimal(line["qty"]) == Decimal(row["qty"]) == Decimal(record["qty"])
        assert line["intent_id"] == row["intent_id"] == record["intent_id"]


def test_reason_filter_matches_blocking_or_any_violation(tmp_path: Path,
                                                         demo_day: Path) -> None:
    _export(demo_day, tmp_path / "r.jsonl", "jsonl", "--reason", "ORD-009")
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert lines
    assert all("ORD-009" in line["violations"].split(",") for line in lines)


def test_bad_timestamp_and_format_are_user_errors(tmp_path: Path, demo_day: Path) -> None:
    bad_time = invoke("journal", "export", "--journal", str(demo_day / "journal.db"),
                      "--format", "csv", "--out", str(tmp_path / "x.csv"), "--since", "noon")
    assert bad_time.code == 1 and "--since" in bad_time.output
    bad_format = invoke("journal", "export", "--journal", str(demo_day / "journal.db"),
                        "--format", "xlsx", "--out", str(tmp_path / "x.xlsx"))
    assert bad_format.code == 1 and "--format" in bad_format.output


def test_an_out_that_is_the_journal_or_one_of_its_files_is_refused_untouched(
        tmp_path: Path, demo_day: Path) -> None:
    """However --out names the journal (a `..`, a symbolic link, a hard link) or one of the
    files beside it, the export refuses it before writing anything."""
    folder = tmp_path / "o3"
    folder.mkdir()
    journal = folder / "journal.db"
    shutil.copy(demo_day / "journal.db", journal)
    before = journal.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(journal)
    os.link(journal, tmp_path / "hard.csv")
    outs = [(str(journal), "parquet"), (f"{folder}/../o3/journal.db", "jsonl"),
            (str(tmp_path / "link.jsonl"), "jsonl"), (str(tmp_path / "hard.csv"), "csv"),
            (f"{journal}-wal", "jsonl"), (f"{journal}.head", "jsonl"),
            (f"{journal}.lock", "csv"), (f"{journal}.snapshots/x.jsonl", "jsonl")]
    for out, fmt in outs:
        result = invoke("journal", "export", "--journal", str(journal), "--format", fmt,
                        "--out", out)
        said = " ".join(result.output.split())
        assert result.code == 1, (out, said)
        assert f"--out {out}: is " in said and "choose another file" in said
        assert journal.read_bytes() == before
    assert sorted(path.name for path in folder.iterdir()) == ["journal.db"]
