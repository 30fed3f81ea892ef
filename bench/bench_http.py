"""HTTP load benchmark of POST /v1/intents with batch durability.

Starts `ordergate serve` as a SECOND process (SQLite journal, batched durability, SimBroker,
a permissive bench policy and a market feed so intents are allowed and dispatched) and drives
it from this process with a minimal asyncio HTTP/1.1 keep-alive client (less client overhead
than httpx, so the numbers describe the server). Every request carries fresh intent ids, so
each one is journaled, evaluated, made durable and answered.

Scenarios: single-intent requests at concurrency 1, 8, 32 and 64, and batches of 100 intents.
Reports throughput (intents/s) and request latency p50/p99/p99.9, and writes
bench/results/http.json. `--quick` runs short scenarios for a smoke check on a busy machine.

    .venv/bin/python bench/bench_http.py [--quick] [--url http://127.0.0.1:8080 --token T]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
    """Unique, small, alternating buy/sell intents so positions stay near flat."""

    def __init__(self, run: str, ts: datetime) -> None:
        self._run = run
        self._n = 0
        self._ts = (ts + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")

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


class Connection:
    """One HTTP/1.1 keep-alive connection; requests are sequential on it."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._head = (f"POST /v1/intents HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self._reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def scenario(host: str, port: int, token: str, factory: IntentFactory, *,
                   concurrency: int, batch: int, seconds: float,
                   warmup: float) -> dict[str, object]:
    connections = [Connection(host, port, token) for _ in range(concurrency)]
    for connection in connections:
        await connection.open()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    decisions: Counter[str] = Counter()
    intents_done = 0
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    async def worker(connection: Connection) -> None:
        nonlocal intents_done
        while True:
            body = factory.batch(batch) if batch > 1 else factory.one()
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            status, payload = await connection.post(body)
            done = time.perf_counter()
            if sent < measure_from:
                continue
            latencies.append(done - sent)
            statuses[status] += 1
            if status == 200:
                intents_done += batch
                for kind in ("ALLOW", "DENY", "MODIFY"):
                    decisions[kind] += payload.count(b'"decision":"' + kind.encode() + b'"')

    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - measure_from
    for connection in connections:
        connection.close()
    latencies.sort()
    ms = 1000.0
    return {
        "name": f"{'batch' + str(batch) if batch > 1 else 'single'}_c{concurrency}",
        "concurrency": concurrency, "intents_per_request": batch,
        "requests": len(latencies), "intents": intents_done, "seconds": round(elapsed, 3),
        "intents_per_s": round(intents_done / elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * ms, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * ms, 3),
        "p999_ms": round(_percentile(latencies, 0.999) * ms, 3),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * ms, 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "decisions": dict(decisions),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(workdir: Path, ts: datetime) -> Iterator[tuple[str, int, str]]:
    """Start `ordergate serve` in a child process; yield (host, port, trader token)."""
    sys.path.insert(0, str(ROOT / "src"))
    from ordergate.service.auth import hash_token, new_token

    token, viewer = new_token(), new_token()
    tokens = workdir / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - {{name: bench, role: trader, accounts: [{ACCOUNT}], hash: '{hash_token(token)}',"
        " requests_per_second: 1000000, burst: 1000000}\n"
        f"  - {{name: bench-viewer, role: viewer, hash: '{hash_token(viewer)}'}}\n")
    policy = workdir / "policy.yaml"
    policy.write_text(BENCH_POLICY)
    feed = workdir / "feed.jsonl"
    market_feed(feed, ts)
    port = _free_port()
    exe = shutil.which("ordergate", path=str(Path(sys.executable).parent)) or "ordergate"
    command = [exe, "serve", "--policy", str(policy),
               "--journal", f"sqlite:///{workdir / 'journal.db'}", "--tokens", str(tokens),
               "--feed", str(feed), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
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
        yield "127.0.0.1", port, token
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()


async def run_all(host: str, port: int, token: str, quick: bool,
                  ts: datetime) -> list[dict[str, object]]:
    seconds, warmup = (1.5, 0.3) if quick else (5.0, 1.0)
    factory = IntentFactory(f"b{os.getpid()}-{int(time.time())}", ts)
    results = []
    for concurrency in (1, 8, 32, 64):
        results.append(await scenario(host, port, token, factory, concurrency=concurrency,
                                      batch=1, seconds=seconds, warmup=warmup))
        print(json.dumps(results[-1]), flush=True)
    for concurrency in (1, 4, 8):
        results.append(await scenario(host, port, token, factory, concurrency=concurrency,
                                      batch=100, seconds=seconds, warmup=warmup))
        print(json.dumps(results[-1]), flush=True)
    return results


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
                serve(Path(tmp), ts) as (host, port, token):
            results = asyncio.run(run_all(host, port, token, args.quick, ts))
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
        "server": "ordergate serve, uvicorn (uvloop+httptools when installed), SQLite journal "
                  "with batch durability, SimBroker",
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
