"""Replay-verify throughput: `python -m bench.bench_replay [--quick] [--events N]`.

Builds a journal of N input events (1,000,000; 100,000 with --quick) by running the real
engine and appending its real outputs, in the runtime's shape (policy document and
activation first, then market data for five symbols, intents from two strategies, the
broker's ack and fill for every dispatch, clock ticks), then measures:

* `verify_journal` end to end (hash chain + replay + byte comparison), events/s, as
  `ordergate replay verify` runs it on a large journal (the chain checked in a second
  process while this one replays), and the same with the two passes one after the other;
* the replay alone (chain check skipped), events/s;
* a cProfile of the replay-only pass on the first 100,000 records: where the time goes.

Target: >= 100,000 events/s. Writes bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from ordergate.engine.core import Engine
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, Journal, RecordKind, open_journal
from ordergate.model.events import (
    AccountFunding,
    ClockTick,
    Command,
    CommandAction,
    Dispatch,
    EngineUpgrade,
    Fill,
    InputEvent,
    OrderAck,
    OutputEvent,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"
TARGET = 100_000
SYMBOLS = {"AAPL": Decimal("190.00"), "MSFT": Decimal("410.00"), "TSLA": Decimal("250.00"),
           "BTC-USD": Decimal("64000.00"), "GME": Decimal("24.00")}
STEP = timedelta(milliseconds=250)
_encode = msgspec.json.Encoder(order="deterministic").encode


def _events(count: int) -> Iterator[InputEvent]:
    """Market data most of the time, an intent every 12th event, a clock tick every 40th."""
    now = utc(2026, 3, 2, 14, 30)
    yield AccountFunding(ts=now, account="BENCH-1", cash=Decimal(10_000_000))
    tick = 0
    symbols = list(SYMBOLS)
    prices = dict(SYMBOLS)
    for index in range(count):
        now += STEP
        symbol = symbols[index % len(symbols)]
        if index % 40 == 39:
            yield ClockTick(ts=now)
        elif index % 12 == 11:
            tick += 1
            side = Side.BUY if tick % 2 else Side.SELL
            strategy = "trend" if tick % 3 else "burst"
            yield OrderIntent(intent_id=f"i-{tick:08d}", ts=now, account="BENCH-1",
                              strategy=strategy, symbol=symbols[tick % 4], side=side,
                              qty=Decimal(1 if symbols[tick % 4] == "BTC-USD" else 10),
                              order_type=OrderType.MARKET)
        else:
            step = Decimal((index * 7919) % 11 - 5) / Decimal(100)
            mid = max(Decimal("1.00"), prices[symbol] + step)
            prices[symbol] = mid
            yield MarketSnapshot(symbol=symbol, ts=now, bid=mid - Decimal("0.01"),
                                 ask=mid + Decimal("0.01"), last=mid, volume=Decimal(1000))


def build_journal(path: Path, count: int) -> int:
    """Write `count` source events (plus the broker answers they cause) through a real engine;
    returns the number of input records."""
    policy = parse_policy(
        (resources.files("ordergate") / "data" / "demo_policy.yaml").read_text(), "demo")
    journal = open_journal(f"sqlite:///{path}", durability=Durability.NONE)
    engine = Engine()
    inputs = 0
    fills = 0
    try:
        start = utc(2026, 3, 2, 14, 30)
        boot: list[InputEvent] = [
            EngineUpgrade(ts=start, behaviour=ENGINE_BEHAVIOUR),  # as a new journal starts
            PolicyDocument(ts=start, policy_hash=policy.hash, document=policy.document),
            Command(ts=start, action=CommandAction.ACTIVATE_POLICY, policy_hash=policy.hash,
                    operator="bench", reason="bench"),
        ]
        for event in (*boot, *_events(count)):
            queue: list[InputEvent] = [event]
            while queue:
                item = queue.pop(0)
                inputs += 1
                for output in _append(journal, engine, item):
                    if isinstance(output, Dispatch):
                        # the broker's answers, as the runtime's feedback batch journals them
                        fills += 1
                        queue.append(OrderAck(ts=item.ts, client_order_id=output.client_order_id,
                                              broker_order_id=f"b-{fills}"))
                        queue.append(Fill(ts=item.ts, client_order_id=output.client_order_id,
                                          fill_id=f"f-{fills}", qty=output.qty,
                                          price=SYMBOLS[output.symbol]))
        journal.flush()
    finally:
        journal.close()
    return inputs


def _append(journal: Journal, engine: Engine, event: InputEvent) -> list[OutputEvent]:
    journal.append(RecordKind.INPUT, _encode(event))
    outputs = engine.handle(event)
    for output in outputs:
        journal.append(RecordKind.OUTPUT, _encode(output))
    return outputs


def _timed(path: Path, check_chain: bool, parallel: bool = False) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, report): the CPU figure is what the
    replay costs on an idle core when the machine is shared. `parallel` checks the chain in
    a second process, as `ordergate replay verify` does on large journals."""
    url = f"sqlite:///{path}"
    journal = open_journal(url, durability=Durability.NONE, create=False)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        report = verify_journal(journal, check_chain=check_chain,
                                chain_url=url if parallel else None)
        return time.perf_counter() - started, time.process_time() - cpu, report
    finally:
        journal.close()


def _profile(path: Path, records: int) -> list[dict[str, Any]]:
    journal = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False)

    class Prefix:
        """The journal's first `records` records only."""

        def read(self, start_seq: int = 1, end_seq: int | None = None) -> Any:
            return journal.read(1, records)

        def verify(self) -> Any:
            return journal.verify()

    profiler = cProfile.Profile()
    try:
        profiler.enable()
        verify_journal(Prefix(), check_chain=False)  # type: ignore[arg-type]
        profiler.disable()
    finally:
        journal.close()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][3],  # type: ignore[attr-defined]
                  reverse=True)
    top = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in rows[:25]:
        top.append({"function": f"{Path(filename).name}:{line}:{name}", "calls": calls,
                    "cumulative_s": round(cumtime, 3), "own_s": round(tottime, 3),
                    "share_of_total": round(cumtime / total, 3) if total else 0})
    return top


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.events or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as scratch:
        path = Path(scratch) / "replay.db"
        started = time.perf_counter()
        inputs = build_journal(path, count)
        built = time.perf_counter() - started
        full_s, _, report = _timed(path, check_chain=True, parallel=True)
        serial_s, _, serial_report = _timed(path, check_chain=True)
        replay_s, replay_cpu, replay_report = _timed(path, check_chain=False)
        assert report.ok and serial_report.ok and replay_report.ok, report.message
        profile = _profile(path, min(report.records, 100_000))
    result = {
        "benchmark": "replay",
        "command": "python -m bench.bench_replay" + (" --quick" if args.quick else ""),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "source_events": count,
        "input_records": inputs,
        "records": report.records,
        "outputs": report.outputs,
        "decisions": report.decisions,
        "build_s": round(built, 2),
        "verify_s": round(full_s, 2),
        "verify_events_per_s": round(inputs / full_s),
        "verify_records_per_s": round(report.records / full_s),
        "verify_serial_s": round(serial_s, 2),
        "verify_serial_events_per_s": round(inputs / serial_s),
        "replay_only_s": round(replay_s, 2),
        "replay_only_events_per_s": round(inputs / replay_s),
        "replay_only_events_per_cpu_s": round(inputs / replay_cpu),
        "target_events_per_s": TARGET,
        "meets_target": inputs / full_s >= TARGET,
        "profile_replay_only_top": profile,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items()
                      if key != "profile_replay_only_top"}, indent=2))


if __name__ == "__main__":
    main()
