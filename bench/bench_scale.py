"""Running many gateways: `python -m bench.bench_scale [--quick]`.

Measures, with the real servers (PostgreSQL: ORDERGATE_BENCH_PG_URL, default the local
`test` database in a scratch schema dropped afterwards):

* throughput through the whole runtime (journal, engine, simulated broker), BATCH durability,
  one commit per batch of 256 events: the embedded SQLite journal (`Runtime` + `run_file`)
  next to a PostgreSQL shard served by `ShardGateway` (lease, epoch-fenced journal,
  heartbeats). Reported as intents/s and events/s (events include quotes and funding; broker
  answers are journaled on top);
* failover: an owner gateway process and a standby on the same shard; the owner is SIGKILLed
  after journaling `--failover-events` events; we time (a) kill -> the standby holds the
  lease (epoch granted), (b) kill -> the standby has replayed the shard and written its first
  record, (c) kill -> the standby has decided an intent appended right after the kill
  ("accepting"). Median of the repetitions.

Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import structlog

from ordergate.brokers.sim import SimBroker
from ordergate.journal import Durability
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import Runtime
from ordergate.runtime.runfile import run_file
from ordergate.runtime.shard import ShardConfig, ShardGateway

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
PG_BASE = os.environ.get("ORDERGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = utc(2026, 3, 2, 15, 0)
ACCOUNT = "BENCH-1"
BATCH = 256
_encoder = msgspec.json.Encoder(order="deterministic")


def policy_path() -> Path:
    return Path(str(resources.files("ordergate") / "data" / "demo_policy.yaml"))


def events(intents: int, first: int = 0) -> list[InputEvent]:
    """Quotes and intents inside the demo policy's limits: 16 intents/s of event time, a
    quote before every fourth, buys and sells alternating so the position stays small."""
    out: list[InputEvent] = []
    if first == 0:
        out.append(AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(10_000_000)))
    for number in range(first, first + intents):
        ts = START + timedelta(milliseconds=60 * (number + 1))
        if number % 4 == 0:
            mid = Decimal("190.00") + Decimal(number % 7) / 100
            out.append(MarketSnapshot(symbol="AAPL", ts=ts, bid=mid - Decimal("0.05"),
                                      ask=mid + Decimal("0.05"), last=mid,
                                      volume=Decimal(100_000)))
        out.append(OrderIntent(
            intent_id=f"b-{number:07d}", ts=ts + timedelta(milliseconds=1), account=ACCOUNT,
            strategy="bench", symbol="AAPL", side=Side.BUY if number % 2 == 0 else Side.SELL,
            qty=Decimal(1 + number % 9)))
    return out


def write_events(path: Path, items: list[InputEvent]) -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(_encoder.encode(item) + b"\n" for item in items))


@contextmanager
def scratch_schema() -> Iterator[str]:
    schema = f"og_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ---------------------------------------------------------------- throughput


def throughput_sqlite(workdir: Path, source: Path, intents: int) -> dict[str, Any]:
    policy = load_policy(policy_path())
    broker = SimBroker()
    started = time.perf_counter()
    runtime = Runtime.open(f"sqlite:///{workdir / 'bench.db'}", policy, broker,
                           Durability.BATCH, source=source)
    try:
        run_file(runtime, source, batch_size=BATCH)
        records = runtime.journal.last_seq()
    finally:
        runtime.close()
    return _rates(time.perf_counter() - started, intents, source, records)


def throughput_postgres(url: str, source: Path, intents: int) -> dict[str, Any]:
    config = ShardConfig(journal_url=url, shard="bench", events=source, batch_size=BATCH,
                         durability=Durability.BATCH)
    gateway = ShardGateway(config, load_policy(policy_path()), SimBroker)
    started = time.perf_counter()
    stats = gateway.run()
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT max(seq) FROM journal_records WHERE stream = 'bench'") \
            .fetchone()
    result = _rates(elapsed, intents, source, int(row[0]) if row and row[0] else 0)
    result["heartbeats"] = stats.heartbeats
    return result


def _rates(elapsed: float, intents: int, source: Path, records: int) -> dict[str, Any]:
    lines = sum(1 for _ in source.open("rb"))
    return {"intents": intents, "source_events": lines, "journal_records": records,
            "seconds": round(elapsed, 3), "intents_per_s": round(intents / elapsed),
            "events_per_s": round(lines / elapsed),
            "records_per_s": round(records / elapsed)}


# ---------------------------------------------------------------- failover


def _epoch(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT epoch FROM journal_stream_epochs WHERE stream = 'fo'") \
                .fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return 0 if row is None else int(row[0])


def _query(url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            row = conn.execute(sql, args).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else row[0]


def _wait(condition: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)
    return time.monotonic()


def failover_once(url: str, workdir: Path, prior: int, lease_ttl: float) -> dict[str, float]:
    source = workdir / f"fo-{uuid.uuid4().hex[:6]}.jsonl"
    write_events(source, events(prior))
    args = [sys.executable, "-m", "ordergate.cli.main", "gateway", str(source), "--policy",
            str(policy_path()), "--journal", url, "--shard", "fo", "--follow", "--quiet",
            "--lease-ttl", str(lease_ttl), "--broker-state", str(workdir / f"{source.stem}.db")]
    base_epoch = _epoch(url)
    owner = subprocess.Popen([*args, "--run-id", "owner"], stderr=subprocess.DEVNULL)
    standby: subprocess.Popen[bytes] | None = None
    try:
        last = f"b-{prior - 1:07d}"
        _wait(lambda: _query(url, "SELECT count(*) FROM journal_records WHERE stream = 'fo' "
                                  "AND position(%s in convert_from(payload, 'UTF8')) > 0 "
                                  "AND kind = 'out'", f'"intent_id":"{last}"'),
              300, "the owner to decide the prior events")
        standby_log = workdir / f"{source.stem}.standby.log"
        with standby_log.open("wb") as log:
            standby = subprocess.Popen([*args, "--run-id", "standby", "--verbose"], stderr=log)
        _wait(lambda: b"shard.standby" in standby_log.read_bytes(), 120,
              "the standby to poll for the lease")
        records_before = int(_query(url, "SELECT max(seq) FROM journal_records "
                                         "WHERE stream = 'fo'") or 0)
        owner.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        write_events(source, events(1, first=prior))
        probe = f'"intent_id":"b-{prior:07d}"'
        leased = _wait(lambda: _epoch(url) > base_epoch + 1, 60, "the standby's lease")
        replayed = _wait(lambda: _query(url, "SELECT count(*) FROM journal_records WHERE "
                                             "stream = 'fo' AND epoch = %s",
                                        base_epoch + 2), 60, "the standby's first record")
        accepting = _wait(lambda: _query(
            url, "SELECT count(*) FROM journal_records WHERE stream = 'fo' AND kind = 'out' "
                 "AND position(%s in convert_from(payload, 'UTF8')) > 0", probe),
            60, "the standby's first decision")
        standby.send_signal(signal.SIGTERM)
        standby.wait(timeout=30)
    finally:
        for process in (owner, standby):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    return {"journal_records_replayed": records_before,
            "lease_s": round(leased - killed, 3), "replayed_s": round(replayed - killed, 3),
            "accepting_s": round(accepting - killed, 3)}


def failover(url: str, workdir: Path, prior: int, repeats: int,
             lease_ttl: float) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                conn.execute("DELETE FROM journal_records WHERE stream = 'fo'")
                conn.execute("DELETE FROM journal_snapshots WHERE stream = 'fo'")
            except psycopg.errors.UndefinedTable:
                pass
        runs.append(failover_once(url, workdir, prior, lease_ttl))
    return {
        "runs": runs,
        "median_lease_s": statistics.median(run["lease_s"] for run in runs),
        "median_replayed_s": statistics.median(run["replayed_s"] for run in runs),
        "median_accepting_s": statistics.median(run["accepting_s"] for run in runs),
        "lease_ttl_s": lease_ttl,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    intents = 2_000 if args.quick else 20_000
    prior = 300 if args.quick else 5_000
    repeats = 1 if args.quick else 3
    results: dict[str, Any] = {
        "bench": "scale", "quick": args.quick, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "batch_size": BATCH,
        "durability": "batch",
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = workdir / "throughput.jsonl"
        write_events(source, events(intents))
        results["throughput_sqlite"] = throughput_sqlite(workdir, source, intents)
        print("sqlite", results["throughput_sqlite"], file=sys.stderr)
        with scratch_schema() as url:
            results["throughput_postgres_shard"] = throughput_postgres(url, source, intents)
            print("postgres", results["throughput_postgres_shard"], file=sys.stderr)
            results["failover"] = failover(url, workdir, prior, repeats, lease_ttl=3.0)
            print("failover", results["failover"], file=sys.stderr)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
