"""End-to-end `run` throughput: `python -m bench.bench_run [--quick] [--million]`.

The full pipeline on the embedded SQLite journal with the simulated broker: JSON Lines
parsing, journal appends (INPUT and OUTPUT records, hash chain), the engine and the gate,
one flush per batch, the Dispatcher submitting every allowed order, and the broker's acks
and fills fed back through the same path. Measures:

* intents/s at each durability (ALWAYS commits every record, so it runs on fewer intents);
* cost per intent (µs) over the last window of runs of 10k, 145k (and with --million 1M)
  intents: it must stay flat as the journal and the engine's history grow;
* restart time (`Runtime.open`: latest snapshot + tail replay + broker reconciliation) of
  the largest journal written, with snapshots every 20k source events or more (the runtime
  waits longer once the state is large). The 145k run is sized so that its journal passes
  one million records (about seven per intent): the issue's restart scenario is a journal
  of 1M events.

Those three drive a `Runtime` in this process, without the command's layers: no guard, no
market data shown to the simulator, no JSON Lines out. What a user gets is measured under
`cli`: the real `ordergate run --policy P --journal J EVENTS > out.jsonl` as a subprocess on
the same events files (durability batch), timed end to end and less the command's fixed cost
(the same command on an empty events file and a new journal: interpreter, imports, policy,
journal creation, summary), then the same command again on the largest journal (the CLI's
own restart: hash-chain check of the whole journal, snapshot + tail replay, the resume check
of the events file, nothing new to read), and `ordergate journal verify` on that journal (the
chain check alone, which the restart pays first and which grows with the journal).

Intents are limit orders at the touch (a buy at the ask, a sell at the bid), marketable, so the
simulator fills them at their limit on receipt (with or without the quotes shown to it).
Every intent is allowed and dispatched (alternating sides keeps positions inside the caps),
so each one costs a decision, a dispatch, a submit, an ack and a fill (sizes vary so the
duplicate-order rule, which is on, never fires). Four intents per market snapshot.
Writes bench/results/run.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.journal import Durability, open_journal
from ordergate.model.events import AccountFunding, ClockTick
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.runtime.runfile import run_file

RESULTS = Path(__file__).resolve().parent / "results" / "run.json"
SYMBOLS = ("AAPL", "MSFT", "TSLA", "AMZN")
INTENTS_PER_QUOTE = 4
SNAPSHOT_EVERY = 20_000
BATCH = 256
WINDOW = 5_000
RESTART_SIZE = 145_000  # intents whose journal holds just over 1M records

POLICY = """
apiVersion: ordergate/v1
kind: Policy
metadata: {name: bench-run, effective_from: "2026-01-01T00:00:00Z"}
engine: {on_drawdown: HALTED}
defaults:
  max_market_data_age: 1h
  max_daily_loss: 100000000
  max_drawdown_pct: 50
  duplicate_window: 1s
  allowed_order_types: [market, limit]
  max_order_qty: 1000
  max_order_value: 1000000
  price_collar_pct: 5
  rate_global: {max: 100000, window: 1s}
  rate_account: {max: 100000, window: 1s}
  rate_strategy: {max: 100000, window: 1s}
  rate_symbol: {max: 100000, window: 1s}
  max_position_qty: 100000
  max_position_value: 100000000
  max_gross_exposure: 1000000000
  max_net_exposure: 1000000000
"""


def _events(intents: int) -> Iterator[bytes]:
    """JSON Lines of the bench day: funding, then quotes and intents, a clock tick each
    thousand intents. Event time advances 1 ms per event."""
    encoder = msgspec.json.Encoder()
    ts = utc(2026, 3, 2, 14, 30)
    step = timedelta(milliseconds=1)
    yield encoder.encode(AccountFunding(ts=ts, account="BENCH", cash=Decimal(10_000_000)))
    price = Decimal("100.00")
    for number in range(intents):
        symbol = SYMBOLS[number % len(SYMBOLS)]
        if number % INTENTS_PER_QUOTE == 0:
            ts += step
            for quote_symbol in SYMBOLS:
                yield encoder.encode(MarketSnapshot(
                    symbol=quote_symbol, ts=ts, bid=price - Decimal("0.01"),
                    ask=price + Decimal("0.01"), last=price, volume=Decimal(1_000_000)))
        ts += step
        side = Side.BUY if (number // len(SYMBOLS)) % 2 == 0 else Side.SELL
        yield encoder.encode(OrderIntent(
            intent_id=f"i{number:09d}", ts=ts, account="BENCH", strategy="bench",
            symbol=symbol, side=side, qty=Decimal(1 + number % 500), order_type=OrderType.LIMIT,
            limit_price=price + side.sign * Decimal("0.01")))
        if number % 1000 == 999:
            yield encoder.encode(ClockTick(ts=ts))


def _write(path: Path, intents: int) -> None:
    with path.open("wb") as handle:
        for line in _events(intents):
            handle.write(line)
            handle.write(b"\n")


def run_once(directory: Path, intents: int, durability: Durability) -> dict[str, Any]:
    events = directory / f"events-{intents}.jsonl"
    if not events.exists():
        _write(events, intents)
    journal = directory / f"journal-{intents}-{durability.value}-{time.monotonic_ns()}.db"
    broker = SimBroker(SimConfig())
    policy = parse_policy(POLICY, "bench-policy.yaml")
    runtime = Runtime.open(f"sqlite:///{journal}", policy, broker, durability,
                           snapshot_every=SNAPSHOT_EVERY, market_to_broker=False)
    marks: list[tuple[int, float]] = []
    counted = {"intents": 0, "dispatched": 0}
    started = time.perf_counter()

    def on_report(report: Any) -> None:
        for item in report.emitted:
            kind = type(item).__name__
            if kind == "Decision":
                counted["intents"] += 1
                if counted["intents"] % WINDOW == 0:
                    marks.append((counted["intents"], time.perf_counter()))
            elif kind == "Dispatch":
                counted["dispatched"] += 1

    run_file(runtime, events, batch_size=BATCH, on_report=on_report, start_line=1)
    elapsed = time.perf_counter() - started
    runtime.close()
    broker.close()
    last_window_us = None
    if len(marks) >= 2:
        (n0, t0), (n1, t1) = marks[-2], marks[-1]
        last_window_us = round((t1 - t0) / (n1 - n0) * 1e6, 2)
    return {
        "intents": counted["intents"],
        "dispatched": counted["dispatched"],
        "durability": durability.value,
        "seconds": round(elapsed, 3),
        "intents_per_s": round(counted["intents"] / elapsed, 1),
        "us_per_intent_last_window": last_window_us,
        "journal": str(journal),
    }


def restart_seconds(journal: str) -> dict[str, Any]:
    policy = parse_policy(POLICY, "bench-policy.yaml")
    broker = SimBroker(SimConfig())
    started = time.perf_counter()
    runtime = Runtime.open(f"sqlite:///{journal}", policy, broker, Durability.BATCH,
                           market_to_broker=False)
    elapsed = time.perf_counter() - started
    records = runtime.journal.last_seq()
    snapshot = runtime.journal.latest_snapshot()
    runtime.close()
    return {
        "seconds": round(elapsed, 3),
        "journal_records": records,
        "snapshot_seq": snapshot.seq if snapshot is not None else None,
        "snapshot_bytes": len(snapshot.state) if snapshot is not None else 0,
        "replayed_records": records - (snapshot.seq if snapshot is not None else 0),
    }


def ordergate_command() -> list[str]:
    """The installed `ordergate` script of this interpreter's environment, as a user runs it."""
    script = Path(sys.executable).with_name("ordergate")
    found = str(script) if script.is_file() else shutil.which("ordergate")
    if found is None:
        raise SystemExit("bench_run: the `ordergate` command is not installed next to "
                         f"{sys.executable} nor on PATH (pip install -e .)")
    return [found]


def _timed(args: list[str], stdout: Path) -> float:
    """Seconds the command took, stdout redirected to a file as a user would; stops the
    bench with the command's own message if it failed."""
    with stdout.open("wb") as out:
        started = time.perf_counter()
        done = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench_run: {' '.join(args)} exited {done.returncode}: "
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def _count_decisions(stdout: Path) -> tuple[int, int]:
    decisions = dispatches = 0
    with stdout.open("rb") as handle:
        for line in handle:
            if line.startswith(b'{"type":"decision"'):
                decisions += 1
            elif line.startswith(b'{"type":"dispatch"'):
                dispatches += 1
    return decisions, dispatches


def cli_run(directory: Path, policy: Path, events: Path, journal: Path,
            startup_s: float) -> dict[str, Any]:
    """`ordergate run` on a new journal, durability batch, stdout to a file."""
    stdout = directory / f"{journal.stem}.out.jsonl"
    elapsed = _timed([*ordergate_command(), "run", "--policy", str(policy), "--journal",
                      str(journal), str(events)], stdout)
    decisions, dispatches = _count_decisions(stdout)
    stdout.unlink()
    work = elapsed - startup_s
    return {
        "intents": decisions,
        "dispatched": dispatches,
        "durability": Durability.BATCH.value,
        "seconds": round(elapsed, 3),
        "intents_per_s": round(decisions / elapsed, 1),
        "seconds_less_startup": round(work, 3),
        "intents_per_s_less_startup": round(decisions / work, 1) if work > 0 else None,
    }


def cli_startup_seconds(directory: Path, policy: Path) -> float:
    """The command's fixed cost: `ordergate run` on an empty events file and a new journal."""
    empty = directory / "events-empty.jsonl"
    empty.write_bytes(b"")
    return _timed([*ordergate_command(), "run", "--policy", str(policy), "--journal",
                   str(directory / "journal-cli-empty.db"), str(empty)],
                  directory / "empty.out.jsonl")


def cli_restart(directory: Path, policy: Path, events: Path, journal: Path) -> dict[str, Any]:
    """The same `ordergate run` again on its finished journal (nothing new to read), and the
    chain check alone (`ordergate journal verify`)."""
    verify = _timed([*ordergate_command(), "journal", "verify", "--journal", str(journal)],
                    directory / "verify.out")
    stdout = directory / "restart.out.jsonl"
    restart = _timed([*ordergate_command(), "run", "--policy", str(policy), "--journal",
                      str(journal), str(events)], stdout)
    printed, _ = _count_decisions(stdout)
    if printed:
        raise SystemExit(f"bench_run: the restart on {journal} decided {printed} intents again")
    handle = open_journal(f"sqlite:///{journal}", create=False)
    try:
        records = handle.last_seq()
        snapshot = handle.latest_snapshot()
    finally:
        handle.close()
    return {
        "seconds": round(restart, 3),
        "verify_seconds": round(verify, 3),
        "journal_records": records,
        "snapshot_seq": snapshot.seq if snapshot is not None else None,
        "replayed_records": records - (snapshot.seq if snapshot is not None else 0),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--million", action="store_true", help="add the 1M-intent run")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    sizes = [10_000, 20_000] if args.quick else [10_000, RESTART_SIZE]
    if args.million:
        sizes.append(1_000_000)
    always_size = 500 if args.quick else 2_000
    results: dict[str, Any] = {
        "bench": "run",
        "command": "python -m bench.bench_run" + (" --quick" if args.quick else "")
                   + (" --million" if args.million else ""),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "batch_size": BATCH,
        "snapshot_every": SNAPSHOT_EVERY,
    }
    with tempfile.TemporaryDirectory(prefix="og-bench-run-") as scratch:
        directory = Path(scratch)
        by_durability = {}
        for durability in (Durability.NONE, Durability.BATCH):
            by_durability[durability.value] = run_once(directory, sizes[0], durability)
        by_durability[Durability.ALWAYS.value] = run_once(directory, always_size,
                                                          Durability.ALWAYS)
        results["throughput_by_durability"] = by_durability
        scaling = [run_once(directory, size, Durability.BATCH) for size in sizes]
        results["cost_per_intent_by_size"] = scaling
        largest = scaling[-1]
        results["restart"] = {"intents": largest["intents"],
                              **restart_seconds(largest["journal"])}
        for entry in [*by_durability.values(), *scaling]:
            entry.pop("journal", None)
        policy_file = directory / "bench-policy.yaml"
        policy_file.write_text(POLICY)
        startup = cli_startup_seconds(directory, policy_file)
        cli_runs = []
        for size in sizes:
            journal = directory / f"journal-cli-{size}.db"
            cli_runs.append(cli_run(directory, policy_file, directory / f"events-{size}.jsonl",
                                    journal, startup))
        results["cli"] = {
            "command": "ordergate run --policy P --journal J EVENTS > out.jsonl",
            "startup_seconds": round(startup, 3),
            "by_size": cli_runs,
            "restart": {"intents": cli_runs[-1]["intents"],
                        **cli_restart(directory, policy_file,
                                      directory / f"events-{sizes[-1]}.jsonl",
                                      directory / f"journal-cli-{sizes[-1]}.db")},
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
