"""Journal throughput: `python -m bench.bench_journal [--quick]`.

Measures, on SQLite and on PostgreSQL (ORDERGATE_BENCH_PG_URL, default the local `test`
database, in a scratch schema that is dropped afterwards):

* appends/s of ~300-byte payloads at each durability (BATCH flushes every `batch` records);
* cost per append (BATCH; median of 3 interleaved runs after a warm-up) when the journal
  already holds a small vs a large number of records: appends must stay O(1), so the
  figures should match;
* full read and full verify speed (records/s) over the large journal.

Writes bench/results/journal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ordergate.journal import Durability, RecordKind, open_journal

PAYLOAD = (b'{"type":"intent","intent_id":"i-000000000001","account":"acct-1","strategy":"mom",'
           b'"symbol":"AAPL","side":"buy","qty":"100","order_type":"limit","limit_price":"187.25",'
           b'"tif":"day","ts":"2026-01-02T14:30:00.000000Z","tags":{"confidence":"0.71"},'
           b'"client_order_id":"c-0123456789abcdef0123456789abcdef","reduce_only":false}')
RESULTS = Path(__file__).resolve().parent / "results" / "journal.json"


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def appends_per_second(url: str, durability: Durability, count: int, batch: int) -> float:
    journal = open_journal(url, durability=durability)
    try:
        start = time.perf_counter()
        for index in range(count):
            journal.append(RecordKind.INPUT, PAYLOAD)
            if durability is not Durability.ALWAYS and (index + 1) % batch == 0:
                journal.flush()
        journal.flush()
        elapsed = time.perf_counter() - start
    finally:
        journal.close()
    return _rate(count, elapsed)


def fill(url: str, count: int) -> None:
    # BATCH, not NONE: an unsynced fill would leave the OS hundreds of MB of dirty pages to
    # flush during the first timed fsync, and the cost would be the fill's, not the append's.
    journal = open_journal(url, durability=Durability.BATCH)
    try:
        for index in range(count):
            journal.append(RecordKind.INPUT, PAYLOAD)
            if (index + 1) % 5000 == 0:
                journal.flush()
    finally:
        journal.close()


def append_cost_us(url: str, count: int, batch: int) -> float:
    journal = open_journal(url, durability=Durability.BATCH)
    try:
        start = time.perf_counter()
        for index in range(count):
            journal.append(RecordKind.INPUT, PAYLOAD)
            if (index + 1) % batch == 0:
                journal.flush()
        journal.flush()
        elapsed = time.perf_counter() - start
    finally:
        journal.close()
    return round(elapsed / count * 1e6, 2)


def read_and_verify(url: str) -> dict[str, Any]:
    journal = open_journal(url, create=False)
    try:
        start = time.perf_counter()
        read = sum(1 for _ in journal.read())
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        report = journal.verify()
        verify_s = time.perf_counter() - start
    finally:
        journal.close()
    if not report.ok:
        raise SystemExit(f"benchmark journal failed verification: {report.message}")
    return {"records": read, "read_records_per_s": _rate(read, read_s),
            "verify_records_per_s": _rate(report.records, verify_s)}


def run_backend(make_url: Callable[[str], str], sizes: dict[str, int], batch: int,
                log: Callable[[str], None]) -> dict[str, Any]:
    result: dict[str, Any] = {"appends_per_s": {}, "append_cost_us": {}}
    for durability, count in ((Durability.ALWAYS, sizes["always"]),
                              (Durability.BATCH, sizes["batch"]),
                              (Durability.NONE, sizes["batch"])):
        rate = appends_per_second(make_url(f"rate_{durability.value}"), durability, count, batch)
        result["appends_per_s"][durability.value] = rate
        log(f"  {durability.value:>6}: {rate:>10.0f} appends/s ({count} records)")
    # Interleave the small and large probes so that load from elsewhere on the machine
    # weighs on both alike.
    urls = {size: make_url(f"size_{size}") for size in (sizes["small"], sizes["large"])}
    for size, url in urls.items():
        fill(url, size)
        append_cost_us(url, batch * 4, batch)  # warm-up: cache the tail pages
    runs: dict[int, list[float]] = {size: [] for size in urls}
    for _ in range(3):
        for size, url in urls.items():
            runs[size].append(append_cost_us(url, sizes["probe"], batch))
    for size, costs in runs.items():
        result["append_cost_us"][f"at_{size}_records"] = statistics.median(costs)
        log(f"  append cost with {size} records already stored: median {statistics.median(costs)}"
            f" us of {costs}")
    result["read_verify"] = read_and_verify(urls[sizes["large"]])
    log(f"  read+verify over {result['read_verify']['records']} records: "
        f"{result['read_verify']}")
    return result


@contextmanager
def postgres_schema(base: str) -> Iterator[str | None]:
    try:
        import psycopg
    except ImportError:
        yield None
        return
    schema = f"og_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error:
        yield None
        return
    try:
        yield schema
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--batch", type=int, default=256, help="records per BATCH flush")
    args = parser.parse_args(argv)
    sizes = ({"always": 300, "batch": 20_000, "small": 10_000, "large": 100_000, "probe": 10_000}
             if args.quick else
             {"always": 2_000, "batch": 100_000, "small": 10_000, "large": 1_000_000,
              "probe": 20_000})

    def log(line: str) -> None:
        sys.stderr.write(line + "\n")

    results: dict[str, Any] = {
        "benchmark": "journal", "quick": args.quick, "batch": args.batch,
        "payload_bytes": len(PAYLOAD), "sizes": sizes, "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="og-bench-") as directory:
        log("sqlite:")
        results["sqlite_results"] = run_backend(
            lambda name: f"sqlite:///{directory}/{name}.db", sizes, args.batch, log)
    base = os.environ.get("ORDERGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with postgres_schema(base) as schema:
        if schema is None:
            log("postgres: not reachable, skipped")
            results["postgres_results"] = None
        else:
            log("postgres:")
            results["postgres_results"] = run_backend(
                lambda name: f"{base}?options=-csearch_path%3D{schema}&stream={name}",
                sizes, args.batch, log)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
