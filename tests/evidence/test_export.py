"""Exports: filtered decisions as JSON Lines, CSV and Parquet with exact decimals."""

from __future__ import annotations

import csv
import json
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
