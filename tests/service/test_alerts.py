"""Alerts reach a real webhook on loopback within 5 s, retried when the receiver fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest

from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Alert, AlertSeverity, ModeChanged, ModeReason
from ordergate.model.modes import Mode
from ordergate.service.alerts import AlertNotice, AlertRouter, LogSink, WebhookSink

TS = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


class _Receiver:
    """A webhook endpoint on 127.0.0.1 that fails the first `failures` posts with 503."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, object]] = []
        self.arrived: list[float] = []
        self.attempts = 0
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                receiver.attempts += 1
                if receiver.attempts <= receiver.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(msgspec.json.decode(body))
                receiver.arrived.append(time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver(failures=2)
    yield r
    r.close()


def test_mode_change_alert_is_delivered_to_webhook_within_5_seconds(
        receiver: _Receiver) -> None:
    sink = WebhookSink(receiver.url, first_backoff_s=0.05)
    router = AlertRouter([LogSink(), sink], run_id="run-1")
    raised_at = time.monotonic()
    router.observe([ModeChanged(ts=TS, mode=Mode.HALTED, previous=Mode.ACTIVE, actor="ops-1",
                                reasons=(ModeReason(code="KIL-002", actor="ops-1"),))],
                   accounts={}, ts=TS)
    receiver.wait_for(1, timeout=5.0)
    sink.close()
    assert receiver.attempts == 3  # two 503s, then delivered
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["kind"] == "mode_change" and body["mode"] == "HALTED"
    assert body["run_id"] == "run-1" and "ops-1" in str(body["message"])
    assert receiver.arrived[0] - raised_at < 5.0


def test_breaker_and_reconciliation_reasons_raise_their_own_alerts() -> None:
    router = AlertRouter([], run_id="r")
    notices = router.observe([
        ModeChanged(ts=TS, mode=Mode.REDUCE_ONLY, previous=Mode.ACTIVE,
                    reasons=(ModeReason(code="SYS-007", detail="broker_submit"),
                             ModeReason(code="SYS-009"))),
        Alert(ts=TS, severity=AlertSeverity.CRITICAL, code="SYS-007", message="breaker open"),
    ], accounts={}, ts=TS)
    kinds = [notice.kind for notice in notices]
    assert kinds == ["mode_change", "breaker_open", "reconciliation_mismatch", "breaker_open"]
    assert notices[0].severity == "warning"


def test_repeated_rejects_alert_once_per_window() -> None:
    now = [0.0]
    router = AlertRouter([], reject_threshold=3, reject_window_s=10, clock=lambda: now[0])
    deny = Decision(intent_id="i", decision=DecisionKind.DENY, blocking="EXP-003")
    raised: list[AlertNotice] = []
    for step in range(8):
        now[0] = step * 0.5
        raised += router.observe([deny], accounts={"i": "ACC-1"}, ts=TS)
    assert len(raised) == 1
    assert raised[0].kind == "repeated_rejects" and raised[0].account == "ACC-1"
    assert "EXP-003" in raised[0].message


def test_undeliverable_webhook_gives_up_by_the_deadline() -> None:
    sink = WebhookSink("http://127.0.0.1:9/unreachable", deadline_s=0.5, first_backoff_s=0.05)
    started = time.monotonic()
    sink.send(AlertNotice(kind="engine", severity="info", code="", message="m", ts=TS))
    deadline = started + 3.0
    while sink.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.close()
    assert sink.dropped == 1 and sink.delivered == 0
