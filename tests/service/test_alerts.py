"""Alerts reach a real webhook on loopback within 5 s, retried when the receiver fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Alert, AlertSeverity, ModeChanged, ModeReason
from ordergate.model.modes import Mode
from ordergate.service.alerts import AlertNotice, AlertRouter, LogSink, WebhookSink
from service.alert_support import WebhookReceiver, json_log, logged_alerts

TS = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(failures=2)
    yield r
    r.close()


def test_mode_change_alert_is_delivered_to_webhook_within_5_seconds(
        receiver: WebhookReceiver) -> None:
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


def test_log_sink_writes_the_alert_time_as_rfc3339_utc() -> None:
    notice = AlertNotice(kind="mode_change", severity="critical", code="KIL-002",
                         message="mode ACTIVE -> HALTED by ops-1",
                         ts=datetime(2026, 3, 2, 14, 30, 5, 250000, tzinfo=UTC), run_id="run-1",
                         mode="HALTED")
    with json_log() as lines:
        LogSink().send(notice)
    [entry] = logged_alerts(lines)
    assert entry["ts"] == "2026-03-02T14:30:05.250000Z"
    assert entry["kind"] == "mode_change" and entry["level"] == "error"
    assert entry["run_id"] == "run-1" and entry["code"] == "KIL-002"


def test_webhook_body_carries_the_same_rfc3339_utc_time(receiver: WebhookReceiver) -> None:
    sink = WebhookSink(receiver.url, first_backoff_s=0.05)
    sink.send(AlertNotice(kind="engine", severity="info", code="", message="m", ts=TS))
    receiver.wait_for(1, timeout=5.0)
    sink.close()
    assert [body["ts"] for body in receiver.bodies] == ["2026-03-02T14:30:00Z"]
