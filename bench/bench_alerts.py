"""Event-to-alert latency: how long after an event its alert reaches a webhook.

RTS 6 Art. 16(5) wants alerts within 5 seconds of the event. This bench starts `ordergate
serve` as a second process (SQLite journal, batch durability, SimBroker) with `--webhook`
pointing at a receiver in this process, and makes events whose alerts it can wait for: an
operator halts trading, then resumes it, each a mode change that raises a `mode_change`
alert. The latency of one alert is from just before the operator's request is written to
the moment its webhook POST has arrived here: the request, the journal flush, the engine,
the alert router, the webhook thread and its HTTP round trip.

Two scenarios: an idle gateway, and one under load (single-intent requests from 8
connections, as `bench_http`'s, running all the while; halted, those intents are denied,
which also raises `repeated_rejects` alerts, counted). The receiver and the load share this
process's event loop, so a busy loop adds to the figures: they are upper bounds. Reports
p50/p99/max in ms and how many alerts missed the 5-second deadline. Writes
bench/results/alerts.json.

    python -m bench.bench_alerts [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.bench_http import IntentFactory, Served, _now, _percentile, scenario, serve

RESULTS = Path(__file__).resolve().parent / "results" / "alerts.json"
DEADLINE_MS = 5000.0
ALERT_WAIT_S = 10.0  # give up on one alert after this long (counted as missed)


class Receiver:
    """A webhook endpoint: every POST body is parsed and kept with its arrival time."""

    def __init__(self) -> None:
        self.arrivals: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.kinds: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                arrived = time.perf_counter()
                notice = json.loads(body)
                self.kinds[str(notice.get("kind", ""))] += 1
                self.arrivals.put_nowait((arrived, notice))
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def mode_change(self, mode: str) -> float | None:
        """Arrival time of the next `mode_change` alert into `mode`; None if none came."""
        deadline = time.perf_counter() + ALERT_WAIT_S
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            try:
                arrived, notice = await asyncio.wait_for(self.arrivals.get(), left)
            except TimeoutError:
                return None
            if notice.get("kind") == "mode_change" and notice.get("mode") == mode:
                return arrived


async def cycles(served: Served, receiver: Receiver, count: int) -> dict[str, Any]:
    """`count` halts and resumes, one at a time; the latency of each one's alert."""
    latencies: list[float] = []
    after_answer: list[float] = []
    missed = 0
    url = f"http://{served.host}:{served.port}"
    headers = {"Authorization": f"Bearer {served.operator}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for number in range(count):
            for path, mode in (("/v1/mode/halt", "HALTED"), ("/v1/mode/resume", "ACTIVE")):
                sent = time.perf_counter()
                response = await client.post(path, json={"reason": f"bench cycle {number}"})
                answered = time.perf_counter()
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code} {response.text}")
                arrived = await receiver.mode_change(mode)
                if arrived is None:
                    missed += 1
                    continue
                latencies.append(arrived - sent)
                after_answer.append(arrived - answered)
    latencies.sort()
    after_answer.sort()
    ms = 1000.0
    return {
        "alerts": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.50) * ms, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * ms, 2),
        "max_ms": round(latencies[-1] * ms, 2) if latencies else None,
        # from the operator's answer to the alert; negative: the alert came first
        "answer_to_alert_p50_ms": round(_percentile(after_answer, 0.50) * ms, 2),
        "over_deadline": sum(1 for value in latencies if value * ms > DEADLINE_MS) + missed,
        "missing": missed,
    }


async def measure(served: Served, receiver: Receiver, quick: bool,
                  ts: datetime) -> list[dict[str, Any]]:
    count = 10 if quick else 50
    results = [{"name": "idle", **await cycles(served, receiver, count)}]
    print(json.dumps(results[-1]), flush=True)
    factory = IntentFactory(f"a{os.getpid()}-{int(time.time())}", ts, served.host,
                            served.token)
    load_seconds = 3.0 if quick else 15.0
    load = asyncio.create_task(scenario(
        served.host, served.port, factory, concurrency=8, batch=1, seconds=load_seconds,
        warmup=0.5))
    await asyncio.sleep(1.0)  # the load is running
    loaded = await cycles(served, receiver, count)
    covered = not load.done()  # the load ran through every cycle
    load_result = await load
    results.append({
        "name": "under_load", **loaded,
        "load": {key: load_result[key] for key in ("name", "intents_per_s", "p99_ms")},
        "load_ran_throughout": covered,
    })
    print(json.dumps(results[-1]), flush=True)
    return results


async def main_async(quick: bool) -> dict[str, Any]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ts = _now()
    try:
        with tempfile.TemporaryDirectory(prefix="og-bench-alerts-") as tmp, \
                serve(Path(tmp), ts, webhook=f"http://127.0.0.1:{port}/alerts") as served:
            scenarios = await measure(served, receiver, quick, ts)
    finally:
        server.close()
    return {
        "benchmark": "alerts",
        "command": "python -m bench.bench_alerts" + (" --quick" if quick else ""),
        "when": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "event": "operator halt or resume (POST /v1/mode/...) until its mode_change alert "
                 "arrives at the webhook",
        "deadline_ms": DEADLINE_MS,
        "alerts_received": dict(receiver.kinds),
        "scenarios": scenarios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles, a shorter load")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    report = asyncio.run(main_async(args.quick))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))  # the bench's report is its output


if __name__ == "__main__":
    main()
