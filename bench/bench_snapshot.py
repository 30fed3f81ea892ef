"""What a periodic snapshot costs the order path: `python -m bench.bench_snapshot [--quick]`.

The `run` bench's day (bench/bench_run.py: every intent decided, dispatched, acked and filled
by the simulator) runs on the SQLite and the PostgreSQL journal, each twice: with snapshots
taken in line (the engine encodes and stores its state inside the batch that is due) and
with snapshots stored by a forked child (`Runtime.background_snapshots`, the default). The
wall time of every 256-line batch is recorded; the batches that took a snapshot are the
slowest ones of an in-line run, so the report gives the median batch, the 99th percentile and
the five slowest batches of each run. 100,000 intents (20,000 with --quick); the state, and so
an in-line snapshot's cost, grows through the day.

PostgreSQL: `ORDERGATE_BENCH_PG_URL` (default postgresql://postgres@127.0.0.1:5432/test), a
fresh stream per run. Writes bench/results/snapshot.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import structlog

from bench.bench_gate import call_overhead_ns
from bench.bench_run import BATCH, POLICY, SNAPSHOT_EVERY, _write
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.journal import Durability
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.runtime.runfile import run_file

RESULTS = Path(__file__).resolve().parent / "results" / "snapshot.json"
PG_BASE = os.environ.get("ORDERGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def batch_times(url: str, events: Path, *, detached: bool) -> dict[str, Any]:
    """Run the day on `url`, snapshots in line or detached; the batches' wall times."""
    runtime = Runtime.open(url, parse_policy(POLICY, "bench-policy.yaml"),
                           SimBroker(SimConfig()), Durability.BATCH,
                           snapshot_every=SNAPSHOT_EVERY, market_to_broker=False)
    runtime.background_snapshots = detached
    times: list[float] = []
    last = time.perf_counter()

    def on_report(_report: object) -> None:
        nonlocal last
        now = time.perf_counter()
        times.append(now - last)
        last = now

    started = last
    run_file(runtime, events, batch_size=BATCH, on_report=on_report, start_line=1)
    elapsed = time.perf_counter() - started
    runtime.close()
    ordered = sorted(times)
    return {
        "snapshots": "detached" if detached else "in line",
        "batches": len(times),
        "seconds": round(elapsed, 2),
        "batch_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "batch_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
        "slowest_batches_ms": [round(value * 1000, 1) for value in ordered[-5:][::-1]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 intents instead of 100,000")
    args = parser.parse_args()
    # the runtime's info lines (one per snapshot) would interleave with the report
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    intents = 20_000 if args.quick else 100_000
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="og-bench-snapshot-") as scratch:
        directory = Path(scratch)
        events = directory / "events.jsonl"
        _write(events, intents)
        for backend in ("sqlite", "postgres"):
            runs[backend] = []
            for detached in (False, True):
                if backend == "sqlite":
                    url = f"sqlite:///{directory / f'journal-{int(detached)}.db'}"
                else:
                    url = f"{PG_BASE}?stream=bench-snapshot-{uuid.uuid4().hex[:8]}"
                result = batch_times(url, events, detached=detached)
                print(backend, json.dumps(result), flush=True)
                runs[backend].append(result)
    report = {
        "benchmark": "snapshot",
        "command": "python -m bench.bench_snapshot" + (" --quick" if args.quick else ""),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "empty_call_ns": call_overhead_ns(),
        "intents": intents,
        "batch_lines": BATCH,
        "snapshot_every": SNAPSHOT_EVERY,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
