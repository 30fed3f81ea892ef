"""Helpers for the scale tests: gateway processes, reading a shard's journal, event files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from ordergate.journal import RecordKind
from ordergate.model.events import InputEvent, OutputEvent
from ordergate.runtime.loop import decode_input, decode_output

_encoder = msgspec.json.Encoder(order="deterministic")


def demo_policy_path() -> Path:
    return Path(str(resources.files("ordergate") / "data" / "demo_policy.yaml"))


def event_lines(events: Iterable[InputEvent]) -> list[bytes]:
    return [_encoder.encode(event) + b"\n" for event in events]


def append_lines(path: Path, lines: Sequence[bytes]) -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(lines))
        handle.flush()


def gateway_args(events: Path, journal: str, shard: str, *extra: str,
                 policy: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "ordergate.cli.main", "gateway", str(events),
            "--policy", str(policy or demo_policy_path()), "--journal", journal,
            "--shard", shard, "--quiet", *extra]


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=handle,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        handle.close()


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Row:
    seq: int
    kind: RecordKind
    epoch: int
    run_id: str
    payload: bytes

    @property
    def event(self) -> InputEvent | OutputEvent:
        return decode_input(self.payload) if self.kind is RecordKind.INPUT \
            else decode_output(self.payload)


def rows(postgres_url: str, shard: str, *, after: int = 0) -> list[Row]:
    """The shard's journal records straight from the table (read-only; no writer opened)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT to_regclass('journal_records') IS NOT NULL").fetchone()
        if found is None or not found[0]:
            return []
        result = conn.execute(
            "SELECT seq, kind, epoch, run_id, payload FROM journal_records "
            "WHERE stream = %s AND seq > %s ORDER BY seq", (shard, after)).fetchall()
    return [Row(seq=int(seq), kind=RecordKind(kind), epoch=int(epoch), run_id=str(run),
                payload=bytes(payload)) for seq, kind, epoch, run, payload in result]


def events_of(records: Iterable[Row], kind: type[Any]) -> list[Any]:
    out: list[Any] = []
    for row in records:
        if row.kind is RecordKind.META:
            continue
        event = row.event
        if isinstance(event, kind):
            out.append(event)
    return out


def granted_epoch(postgres_url: str, shard: str) -> int:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass('journal_stream_epochs') IS NOT NULL").fetchone()
        if found is None or not found[0]:
            return 0
        row = conn.execute("SELECT epoch FROM journal_stream_epochs WHERE stream = %s",
                           (shard,)).fetchone()
    return 0 if row is None else int(row[0])


def money(value: str) -> Decimal:
    return Decimal(value)
