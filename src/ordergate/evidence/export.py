"""Exports for analysis: decision rows as JSON Lines, CSV or Parquet. The journal stays the
source of truth; an export is a filtered, flat copy.

Money and quantities are written as exact decimal strings in every format (Parquet columns
of type string), so nothing is rounded on the way out. Timestamps are RFC 3339 UTC.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from ordergate.evidence.decisions import DecisionRow

FIELDS = tuple(field.name for field in msgspec.structs.fields(DecisionRow))


class ExportFormat(enum.StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


def _flat(row: DecisionRow) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(row)
    return {name: ("" if data[name] is None else data[name]) if name != "latency_ns"
            else data[name] for name in FIELDS}


def export_rows(rows: Iterable[DecisionRow], fmt: ExportFormat | str, out: Path) -> int:
    """Write `rows` to `out`; returns how many were written."""
    fmt = ExportFormat(fmt)
    count = 0
    if fmt is ExportFormat.JSONL:
        encoder = msgspec.json.Encoder()
        with out.open("wb") as handle:
            for row in rows:
                handle.write(encoder.encode(row) + b"\n")
                count += 1
        return count
    if fmt is ExportFormat.CSV:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow(_flat(row))
                count += 1
        return count
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in FIELDS}
    for row in rows:
        for name, value in _flat(row).items():
            columns[name].append(value)
        count += 1
    types = {"seq": pa.int64(), "latency_ns": pa.int64(), "risk_reducing": pa.bool_(),
             "monitor": pa.bool_()}
    table = pa.table({name: pa.array(values, type=types.get(name, pa.string()))
                      for name, values in columns.items()})
    pq.write_table(table, out)
    return count
