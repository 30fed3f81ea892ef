"""`ordergate serve` on a PostgreSQL journal owns its stream through the stream's lease, like a
shard of `ordergate gateway`: a second serve on the same stream waits as standby (it neither
serves nor writes, so the owner goes on answering), and takes over once the owner stops."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from tests.scale.support import start, stop, wait_for
from tests.service.support import TRADER, VIEWER, auth, serve_args

_SERVING = re.compile(r"serving on (http://\S+)")
_STANDBY = "waiting for its lease (standby)"


def _said(log: Path) -> tuple[str, bool] | None:
    """(the URL it serves on, or ''; whether it waits as standby), once it said either."""
    text = log.read_text() if log.exists() else ""
    serving = _SERVING.search(text)
    if serving is None and _STANDBY not in text:
        return None
    return (serving.group(1) if serving else "", _STANDBY in text)


def _intent(intent_id: str) -> dict[str, str]:
    return {"type": "intent", "intent_id": intent_id,
            "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "account": "ACC-1",
            "strategy": "momo", "symbol": "AAPL", "side": "buy", "qty": "10"}


def _answers(url: str, intent_id: str) -> None:
    """The gateway at `url` is healthy and decides an intent (healthy still afterwards)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/v1/health", headers=auth(VIEWER)).status_code == 200
        decided = client.post("/v1/intents", json=_intent(intent_id), headers=auth(TRADER))
        assert decided.status_code == 200, decided.text
        assert decided.json()["intent_id"] == intent_id
        assert client.get("/v1/health", headers=auth(VIEWER)).status_code == 200


def test_second_serve_on_a_postgres_stream_waits_as_standby_and_takes_over(
        postgres_url: str, tmp_path: Path) -> None:
    args = serve_args(tmp_path, f"{postgres_url}&stream=desk-a")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start(args, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        url, _ = wait_for(lambda: _said(first_log), 60, "the first serve to start")
        assert url, first_log.read_text()
        second = start(args, second_log)
        taken, standby = wait_for(lambda: _said(second_log), 60, "the second serve to start")
        assert standby and not taken, second_log.read_text()

        _answers(url, "while-standby-waits")

        stop(first)  # SIGTERM, as an operator stops it
        taken = wait_for(lambda: (_said(second_log) or ("", True))[0], 60,
                         "the standby to take over")
        _answers(taken, "after-takeover")
    finally:
        if second is not None:
            stop(second)
        stop(first)


def test_serve_that_loses_its_streams_lease_stops_serving(postgres_url: str,
                                                           tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    served = start(serve_args(tmp_path, f"{postgres_url}&stream=desk-b"), log)
    try:
        wait_for(lambda: _said(log), 60, "serve to start")
        # The database ends the lease's session, as it does for an owner that stopped
        # heartbeating: the lock is gone, so this process no longer owns the stream.
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            row = admin.execute("SELECT hashtextextended(current_schema() || '/desk-b', 0)"
                                ).fetchone()
            assert row is not None
            key = int(row[0]) & 0xFFFF_FFFF_FFFF_FFFF
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
                "AND objsubid = 1", (key >> 32, key & 0xFFFF_FFFF)).fetchall()
            assert ended == [(True,)]
        assert served.wait(timeout=60) == 3, log.read_text()
        assert "lease lost" in log.read_text()
    finally:
        stop(served)
