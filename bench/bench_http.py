"""HTTP load benchmark of POST /v1/intents with batch durability.

Starts `ordergate serve` as a SECOND process (SQLite journal, batched durability, SimBroker,
a permissive bench policy and a market feed so intents are allowed and dispatched) and drives
it from this process. Every request carries fresh intent ids, so each one is journaled,
evaluated, made durable and answered.

The load generator is as light as we could make it in Python, because on a two-core machine it
competes with the server for CPU: each connection is an asyncio Protocol in a closed loop (the
next request is written from the callback that completes the previous answer; no task, future
or stream per request), and the requests (head and body) are built before the clock starts.

Scenarios: single-intent requests at concurrency 1, 8, 16, 32 and 64, and batches of 100
intents at concurrency 1, 4 and 8. Reports throughput (intents/s), request latency
p50/p99/p99.9, and CPU microseconds per intent of the client and (when this script started
it) the server, a figure that a busy machine distorts less than the wall clock. Writes
bench/results/http.json. `--quick` runs short scenarios for a smoke check on a busy machine.

    .venv/bin/python bench/bench_http.py [--quick] [--url http://127.0.0.1:8080 --token T]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, cast
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "http.json"
ACCOUNT = "BENCH-1"
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
TARGETS = {"single_intents_per_s": 3000, "single_p99_ms": 10.0, "batch_intents_per_s": 20000}

BENCH_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: bench
defaults:
  max_market_data_age: 1d
  max_order_qty: 1000000
  max_order_value: 1000000000
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def market_feed(path: Path, ts: datetime) -> None:
    """A market snapshot per symbol and the account's funding, as JSON Lines."""
    lines = [json.dumps({"type": "account", "ts": ts.isoformat().replace("+00:00", "Z"),
                         "account": ACCOUNT, "cash": "1000000000"})]
    for symbol in SYMBOLS:
        lines.append(json.dumps({"type": "market", "symbol": symbol,
                                 "ts": ts.isoformat().replace("+00:00", "Z"),
                                 "bid": "99.99", "ask": "100.01", "last": "100.00"}))
    path.write_text("\n".join(lines) + "\n")


class IntentFactory:
    """Unique, small, alternating buy/sell intents so positions stay near flat, as complete
    HTTP/1.1 requests (headers included) ready to write to a socket."""

    def __init__(self, run: str, ts: datetime, host: str, token: str) -> None:
        self._run = run
        self._n = 0
        self._ts = (ts + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        self._head = (f"POST /v1/intents HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: ").encode()

    def one(self) -> bytes:
        self._n += 1
        n = self._n
        side = "buy" if n % 2 else "sell"
        return (
            f'{{"type":"intent","intent_id":"{self._run}-{n}","ts":"{self._ts}",'
            f'"account":"{ACCOUNT}","strategy":"s{n % 7}","symbol":"{SYMBOLS[n % len(SYMBOLS)]}",'
            f'"side":"{side}","qty":"1","order_type":"limit","limit_price":"100.00"}}'
        ).encode()

    def batch(self, size: int) -> bytes:
        return b'{"intents":[' + b",".join(self.one() for _ in range(size)) + b"]}"

    def request(self, size: int) -> bytes:
        body = self.batch(size) if size > 1 else self.one()
        return self._head + str(len(body)).encode() + b"\r\n\r\n" + body

    def requests(self, size: int, prebuilt: int) -> Iterator[bytes]:
        """`prebuilt` requests made now, before the clock starts, then more made on demand."""
        ready = [self.request(size) for _ in range(prebuilt)]
        return itertools.chain(ready, iter(functools.partial(self.request, size), b""))


class Tally:
    """What one scenario's responses were: latencies of the measured window, statuses,
    decisions."""

    def __init__(self, measure_from: float, stop_at: float) -> None:
        self.measure_from = measure_from
        self.stop_at = stop_at
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.decisions: Counter[str] = Counter()

    def record(self, sent: float, done: float, status: int, payload: bytes) -> None:
        if sent < self.measure_from:
            return
        self.latencies.append(done - sent)
        self.statuses[status] += 1
        if status == 200:
            for kind in ("ALLOW", "DENY", "MODIFY"):
                self.decisions[kind] += payload.count(b'"decision":"' + kind.encode() + b'"')


class ClosedLoop(asyncio.Protocol):
    """One keep-alive connection that sends its next request as soon as the previous answer
    is complete: callbacks only, no task, future or stream per request, so the load
    generator takes as little of the machine's CPU as it can (the server runs on the same
    two cores)."""

    def __init__(self, requests: Iterator[bytes], tally: Tally, finished: asyncio.Future[None]):
        self._requests = requests
        self._tally = tally
        self._finished = finished
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = b""
        self._need = -1  # bytes of the current answer (head + body), once its head is in
        self._sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's ABCs, but they have this interface.
        self._transport = cast(asyncio.WriteTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self) -> None:
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent = time.perf_counter()
        if self._sent >= self._tally.stop_at:
            self._transport.close()
            return
        self._transport.write(next(self._requests))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if self._need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            head = buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17:stop if stop >= 0 else len(head)])
            self._need = end + 4 + length
        if len(buffer) < self._need:
            self._buffer = buffer
            return
        done = time.perf_counter()
        status = int(buffer[9:12])
        payload = buffer[buffer.find(b"\r\n\r\n") + 4:self._need]
        self._buffer = buffer[self._need:]
        self._need = -1
        self._tally.record(self._sent, done, status, payload)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished.done():
            self._finished.set_result(None)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# Requests built ahead per second of a scenario (more are built on demand): above what the
# server can answer, so building them stays out of the measured window.
PREBUILT_PER_S = {1: 6000, 100: 250}


async def scenario(host: str, port: int, factory: IntentFactory, *, concurrency: int,
                   batch: int, seconds: float, warmup: float,
                   server_cpu: Callable[[], float] | None = None) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    prebuilt = int(PREBUILT_PER_S.get(batch, 250) * (seconds + warmup))
    requests = factory.requests(batch, prebuilt)
    connections: list[ClosedLoop] = []
    finished: list[asyncio.Future[None]] = []
    tally = Tally(0.0, 0.0)
    for _ in range(concurrency):
        future: asyncio.Future[None] = loop.create_future()
        _, protocol = await loop.create_connection(
            lambda f=future: ClosedLoop(requests, tally, f), host, port)  # type: ignore[misc]
        connections.append(protocol)
        finished.append(future)
    started = time.perf_counter()
    tally.measure_from = started + warmup
    tally.stop_at = tally.measure_from + seconds
    cpu_at_start = server_cpu() if server_cpu else 0.0
    client_at_start = time.process_time()
    for connection in connections:
        connection.start()
    await asyncio.wait_for(asyncio.gather(*finished), timeout=warmup + seconds + 60)
    elapsed = time.perf_counter() - tally.measure_from
    total_s = time.perf_counter() - started
    client_cpu = time.process_time() - client_at_start
    latencies = sorted(tally.latencies)
    intents_done = tally.statuses.get(200, 0) * batch
    ms = 1000.0
    result: dict[str, object] = {
        "name": f"{'batch' + str(batch) if batch > 1 else 'single'}_c{concurrency}",
        "concurrency": concurrency, "intents_per_request": batch,
        "requests": len(latencies), "intents": intents_done, "seconds": round(elapsed, 3),
        "intents_per_s": round(intents_done / elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * ms, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * ms, 3),
        "p999_ms": round(_percentile(latencies, 0.999) * ms, 3),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * ms, 3),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "decisions": dict(tally.decisions),
    }
    # CPU seconds per intent over the whole run (warm-up included, as the CPU counters
    # cannot tell them apart): a figure that a busy machine distorts less than the wall clock.
    answered = max(1, round(intents_done * total_s / elapsed))
    result["client_cpu_us_per_intent"] = round(client_cpu / answered * 1e6, 1)
    if server_cpu is not None:
        result["server_cpu_us_per_intent"] = round(
            (server_cpu() - cpu_at_start) / answered * 1e6, 1)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served(NamedTuple):
    """A gateway `serve` started: where it listens, its trader and operator tokens, and a
    reader of its CPU seconds."""

    host: str
    port: int
    token: str
    server_cpu: Callable[[], float]
    operator: str


@contextlib.contextmanager
def serve(workdir: Path, ts: datetime, *, webhook: str | None = None) -> Iterator[Served]:
    """Start `ordergate serve` in a child process, with alerts POSTed to `webhook` if given."""
    sys.path.insert(0, str(ROOT / "src"))
    from ordergate.service.auth import hash_token, new_token

    token, viewer, operator = new_token(), new_token(), new_token()
    tokens = workdir / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - {{name: bench, role: trader, accounts: [{ACCOUNT}], hash: '{hash_token(token)}',"
        " requests_per_second: 1000000, burst: 1000000}\n"
        f"  - {{name: bench-viewer, role: viewer, hash: '{hash_token(viewer)}'}}\n"
        f"  - {{name: bench-operator, role: operator, hash: '{hash_token(operator)}'}}\n")
    policy = workdir / "policy.yaml"
    policy.write_text(BENCH_POLICY)
    feed = workdir / "feed.jsonl"
    market_feed(feed, ts)
    port = _free_port()
    exe = shutil.which("ordergate", path=str(Path(sys.executable).parent)) or "ordergate"
    command = [exe, "serve", "--policy", str(policy),
               "--journal", f"sqlite:///{workdir / 'journal.db'}", "--tokens", str(tokens),
               "--feed", str(feed), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"] + (["--webhook", webhook] if webhook else [])
    log = (workdir / "server.log").open("wb")
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise SystemExit(f"server exited early:\n{(workdir / 'server.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start listening within 30 s")
        yield Served("127.0.0.1", port, token, functools.partial(_cpu_seconds, child.pid),
                     operator)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_all(host: str, port: int, token: str, quick: bool, ts: datetime,
                  server_cpu: Callable[[], float] | None = None) -> list[dict[str, object]]:
    seconds, warmup = (1.5, 0.3) if quick else (5.0, 1.0)
    factory = IntentFactory(f"b{os.getpid()}-{int(time.time())}", ts, host, token)
    plan = [(1, concurrency) for concurrency in (1, 8, 16, 32, 64)]
    plan += [(100, concurrency) for concurrency in (1, 4, 8)]
    results = []
    for batch, concurrency in plan:
        results.append(await scenario(host, port, factory, concurrency=concurrency, batch=batch,
                                      seconds=seconds, warmup=warmup, server_cpu=server_cpu))
        print(json.dumps(results[-1]), flush=True)
    return results


def _server_stack() -> str:
    """The event loop and HTTP parser uvicorn's "auto" picks in this environment (the served
    process runs from the same one)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop}+{http}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short scenarios (smoke check)")
    parser.add_argument("--url", help="bench an already running gateway instead")
    parser.add_argument("--token", help="trader token for --url (account BENCH-1)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    ts = _now()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.url:
        parts = urlsplit(args.url)
        results = asyncio.run(run_all(parts.hostname or "127.0.0.1", parts.port or 80,
                                      args.token or "", args.quick, ts))
    else:
        with tempfile.TemporaryDirectory(prefix="og-bench-") as tmp, \
                serve(Path(tmp), ts) as served:
            results = asyncio.run(run_all(served.host, served.port, served.token, args.quick,
                                          ts, served.server_cpu))
    singles = [r for r in results if r["intents_per_request"] == 1]
    batches = [r for r in results if r["intents_per_request"] != 1]
    best_single = max(singles, key=lambda r: float(r["intents_per_s"]))  # type: ignore[arg-type]
    summary = {
        "best_single": {k: best_single[k] for k in ("name", "intents_per_s", "p99_ms")},
        "single_meets_target": any(
            float(r["intents_per_s"]) >= TARGETS["single_intents_per_s"]  # type: ignore[arg-type]
            and float(r["p99_ms"]) <= TARGETS["single_p99_ms"] for r in singles),  # type: ignore[arg-type]
        "best_batch_intents_per_s": max(float(r["intents_per_s"]) for r in batches),  # type: ignore[arg-type]
    }
    report = {
        "benchmark": "http_intents",
        "quick": args.quick,
        "when": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "server": f"ordergate serve, uvicorn ({_server_stack()}), SQLite journal with batch "
                  "durability, SimBroker",
        "targets": TARGETS,
        "summary": summary,
        "scenarios": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(out)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
