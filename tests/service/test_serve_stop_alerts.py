"""`ordergate serve` that stops because it may no longer write its journal tells the webhook
first. Losing the stream's lease: a critical `lease_lost` alert that says it is not journaled
(this process may no longer write the journal) and names the stream, then exit 3. The journal
refusing a write of the start-up feed: a critical `journal_failed` alert (SYS-006), also not
journaled, then a safety stop (exit 3)."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
from tests.scale.support import start, stop, wait_for
from tests.service.support import serve_args

from service.alert_support import WebhookReceiver

_SERVING = re.compile(r"serving on (http://\S+)")


def _end_lease_session(postgres_url: str, stream: str) -> None:
    """The database ends the lease's session, as it does for an owner that stopped
    heartbeating: the lock is gone, so the serve no longer owns the stream."""
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        row = admin.execute("SELECT hashtextextended(current_schema() || '/' || %s, 0)",
                            (stream,)).fetchone()
        assert row is not None
        key = int(row[0]) & 0xFFFF_FFFF_FFFF_FFFF
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
            "AND objsubid = 1", (key >> 32, key & 0xFFFF_FFFF)).fetchall()
        assert ended == [(True,)]


def test_serve_that_loses_its_lease_alerts_the_webhook_before_it_stops(
        postgres_url: str, tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    log = tmp_path / "serve.log"
    served = start([*serve_args(tmp_path, f"{postgres_url}&stream=desk-l"), "--webhook",
                    receiver.url], log)
    try:
        wait_for(lambda: _SERVING.search(log.read_text()) if log.exists() else None, 60,
                 "serve to start")
        _end_lease_session(postgres_url, "desk-l")
        assert served.wait(timeout=60) == 3, log.read_text()
        # The serve closes its webhook sink (delivering what is pending) before it exits.
        lost = [body for body in receiver.bodies if body["kind"] == "lease_lost"]
        assert len(lost) == 1, receiver.bodies
        alert = lost[0]
        assert alert["severity"] == "critical" and alert["code"] == "SYS-006", alert
        assert "stream=desk-l" in alert["message"], alert
        assert "lost the lease" in alert["message"], alert
        assert "stops serving" in alert["message"], alert
        assert "not journaled" in alert["message"], alert
    finally:
        stop(served)
        receiver.close()


def test_serve_whose_journal_refuses_the_start_up_feed_alerts_the_webhook(
        tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    journal = tmp_path / "journal.db"
    try:
        assert subprocess.run([sys.executable, "-m", "ordergate.cli.main", "db", "upgrade",
                               "--journal", f"sqlite:///{journal}"], check=False,
                              capture_output=True).returncode == 0
        with contextlib.closing(sqlite3.connect(journal)) as conn:  # the feed's quote
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON journal_records "
                         "WHEN CAST(NEW.payload AS TEXT) LIKE '{\"type\":\"market\"%' "
                         "BEGIN SELECT RAISE(ABORT, 'disk refused the write'); END")
            conn.commit()
        served = subprocess.run([*serve_args(tmp_path, f"sqlite:///{journal}"), "--webhook",
                                 receiver.url], capture_output=True, text=True, timeout=120,
                                check=False)
        assert served.returncode == 3, served.stderr
        assert "journal could not be written" in served.stderr
        failed = [body for body in receiver.bodies if body["kind"] == "journal_failed"]
        assert len(failed) == 1, receiver.bodies
        assert failed[0]["code"] == "SYS-006" and failed[0]["severity"] == "critical"
        assert "disk refused the write" in failed[0]["message"], failed
        assert "not journaled" in failed[0]["message"], failed
        # What the feed's batch made durable before the failure is alerted too.
        assert [body["code"] for body in receiver.bodies if body["kind"] == "engine"] == [
            "POLICY_ACTIVATED"], receiver.bodies
    finally:
        receiver.close()
