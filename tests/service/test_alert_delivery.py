"""Alerts of a running gateway reach a real webhook on 127.0.0.1 within 5 s of the event that
raised them, and the structured log (RTS 6 Art. 16(5)): an operator halt, a circuit breaker
opening (SYS-007), a reconciliation mismatch (SYS-009) and a run of rejects for one account,
each triggered through the gateway's ordinary inputs; a receiver that fails first still gets
the alert in time, through the webhook's retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.service.alerts import WebhookSink
from service.alert_support import WebhookReceiver, json_log, logged_alerts
from service.support import OPERATOR, TRADER, Served, auth, intent, start

DEADLINE_S = 5.0  # the delivery promise


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    with json_log() as lines:
        yield lines


def _serve(tmp_path: Path, receiver: WebhookReceiver, broker: SimBroker | None = None) -> Served:
    return start(tmp_path, broker=broker,
                 alert_sinks=[WebhookSink(receiver.url, first_backoff_s=0.05)])


def _arrived_in_time(receiver: WebhookReceiver, triggered: float,
                     matches: Callable[[dict[str, Any]], bool], *,
                     count: int = 1) -> list[dict[str, Any]]:
    """The delivered alerts that match, waiting no longer than the delivery deadline counted
    from `triggered`; fails the test when fewer than `count` arrived by then."""
    found = receiver.wait_until(matches, timeout=triggered + DEADLINE_S - time.monotonic(),
                                count=count)
    assert len(found) >= count, (f"{len(found)} of {count} alerts within {DEADLINE_S:g} s; "
                                 f"delivered: {receiver.bodies}, attempts: {receiver.attempts}")
    return found


def _logged(lines: list[str], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in logged_alerts(lines) if entry.get("kind") == kind]


def _post_intent(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/v1/intents", json=body, headers=auth(TRADER))
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decision"]
    return decision


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    endpoint = WebhookReceiver()
    yield endpoint
    endpoint.close()


def _halt(served: Served) -> float:
    triggered = time.monotonic()
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        halted = http.post("/v1/mode/halt", json={"reason": "desk review"},
                           headers=auth(OPERATOR))
    assert halted.status_code == 200, halted.text
    return triggered


def test_operator_halt_alert_reaches_webhook_and_log_within_5_seconds(
        tmp_path: Path, receiver: WebhookReceiver, log_lines: list[str]) -> None:
    served = _serve(tmp_path, receiver)
    try:
        triggered = _halt(served)
        [body, *_] = _arrived_in_time(receiver, triggered,
                                      lambda b: b["kind"] == "mode_change")
        run_id = served.gateway.ctx.run_id
    finally:
        served.stop()
    assert body["mode"] == "HALTED" and body["severity"] == "critical"
    assert "ops-alice" in body["message"] and "desk review" in body["message"]
    assert body["run_id"] == run_id
    assert body["ts"].endswith("Z")
    [entry] = _logged(log_lines, "mode_change")
    assert entry["mode"] == "HALTED" and entry["ts"] == body["ts"] and entry["level"] == "error"


def test_breaker_opening_alert_reaches_webhook_and_log_within_5_seconds(
        tmp_path: Path, receiver: WebhookReceiver, log_lines: list[str]) -> None:
    served = _serve(tmp_path, receiver)
    try:
        # The broker times out on every submit: the order's submit and the resubmits of an
        # order the broker never saw all fail, and three failures within 60 s open the
        # broker_submit circuit (the default breaker policy's first tier).
        served.broker.faults.fail_next_submits = 100
        triggered = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=10.0) as http:
            decision = _post_intent(http, intent("brk-1"))
        assert decision["decision"] == "ALLOW"
        [body, *_] = _arrived_in_time(receiver, triggered,
                                      lambda b: b["kind"] == "breaker_open")
    finally:
        served.stop()
    assert body["code"] == "SYS-007" and body["severity"] == "critical"
    assert "broker_submit" in body["message"]
    assert _logged(log_lines, "breaker_open")


def test_reconciliation_mismatch_alert_reaches_webhook_and_log_within_5_seconds(
        tmp_path: Path, receiver: WebhookReceiver, log_lines: list[str]) -> None:
    # A broker with a book of its own, holding a position the journal never saw: the
    # gateway reconciles with it before the first batch it serves.
    broker = SimBroker(SimConfig(state_path=str(tmp_path / "broker.db")))
    broker.set_position("ACC-1", "AAPL", Decimal("7"), Decimal("100"))
    served = _serve(tmp_path, receiver, broker)
    try:
        triggered = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=10.0) as http:
            _post_intent(http, intent("rec-1"))
        [body, *_] = _arrived_in_time(receiver, triggered,
                                      lambda b: b["kind"] == "reconciliation_mismatch")
    finally:
        served.stop()
        broker.close()
    assert body["code"] == "SYS-009" and body["severity"] == "critical"
    assert "AAPL" in body["message"]
    assert _logged(log_lines, "reconciliation_mismatch")


def test_repeated_rejects_alert_reaches_webhook_and_log_within_5_seconds(
        tmp_path: Path, receiver: WebhookReceiver, log_lines: list[str]) -> None:
    served = _serve(tmp_path, receiver)  # support.start: 3 denials for an account alert
    try:
        triggered = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=10.0) as http:
            denials = [_post_intent(http, intent(f"big-{number}", qty="5000",
                                                 seconds=1.0 + number))
                       for number in range(3)]
        [body, *_] = _arrived_in_time(receiver, triggered,
                                      lambda b: b["kind"] == "repeated_rejects")
    finally:
        served.stop()
    assert [denial["decision"] for denial in denials] == ["DENY"] * 3
    assert body["account"] == "ACC-1" and body["intent_id"] == "big-2"
    assert body["code"] == denials[-1]["blocking"] == "ORD-006"
    [entry] = _logged(log_lines, "repeated_rejects")
    assert entry["account"] == "ACC-1" and entry["level"] == "warning"


def test_alert_is_retried_through_the_gateway_when_the_receiver_fails_first(
        tmp_path: Path) -> None:
    failing_first = WebhookReceiver(failures=1)
    served = _serve(tmp_path, failing_first)
    try:
        triggered = _halt(served)
        # The halt raises two alerts, the operator's MOD-001 and the mode change; the first
        # post is answered 503, so the first of them arrives only through a retry.
        delivered = _arrived_in_time(failing_first, triggered, lambda b: True, count=2)
    finally:
        served.stop()
        failing_first.close()
    assert failing_first.attempts == 3  # 503, retried and delivered, then the second
    assert [(b["kind"], b["code"]) for b in delivered] == [("engine", "MOD-001"),
                                                           ("mode_change", "MOD-001")]
    assert delivered[1]["mode"] == "HALTED"
