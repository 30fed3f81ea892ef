"""`GET /v1/status` reports the journal's snapshot as the runtime knows it: the newest one it
loaded or stored, the moment it is stored, without scanning and hashing the snapshots on the
engine thread (which held every intent up for a fraction of a second each time, and longer
as the day's snapshots grew)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from tests.service.support import VIEWER, auth, start


def _journal(url: str) -> dict[str, int]:
    body = httpx.get(f"{url}/v1/status", headers=auth(VIEWER)).json()
    return body["journal"]


def test_a_snapshot_shows_at_once_and_a_restart_reports_the_one_it_loaded(
        tmp_path: Path) -> None:
    served = start(tmp_path)
    try:
        before = _journal(served.url)
        assert before["snapshot_seq"] == 0 and before["lag"] == before["last_seq"]
        runtime = served.gateway.runtime
        asyncio.run(served.gateway.bridge.call(runtime.snapshot))
        latest = runtime.journal.latest_snapshot()  # the scan the status no longer makes
        assert latest is not None
        stored = latest.seq
        after = _journal(served.url)  # asked again at once: never a cached, older answer
        assert after["snapshot_seq"] == stored == runtime.snapshot_seq
        assert after["lag"] == after["last_seq"] - stored
    finally:
        served.stop()
    restarted = start(tmp_path)
    try:
        reopened = _journal(restarted.url)
        assert reopened["snapshot_seq"] == stored
        assert restarted.gateway.runtime.snapshot_seq == stored
    finally:
        restarted.stop()
