"""What /v1/status (and `ordergate status --url`) says of alerts and of a stop.

* A critical or warning alert that changes no mode (a fill past its limit, a cancel the broker
  refused, a broker answer about an order the gateway does not know) showed nowhere but on the
  webhook: `recent_alerts` lists the latest ones the engine journaled (code, plain words, the
  alert's own words, time), from the journal at start-up and from each batch served.
* Once the journal could not be written the gateway takes nothing, risk-reducing orders and
  operator commands included: `mode` reads STOPPED (not the REDUCE_ONLY the engine tightened
  to), the timeline ends with the stop marked as not in the journal, and the webhook's alerts
  for it say STOPPED too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import Alert, AlertSeverity, CancelRefused
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.service.status import RECENT_ALERTS, ModeTimeline
from service.support import (
    OPERATOR,
    POLICY,
    T0,
    TRADER,
    VIEWER,
    Served,
    auth,
    feed,
    intent,
    start,
    status_cli_words,
)
from service.test_journal_failure_answers import Recorded, _refuse_writes


def _journal_with_an_unknown_order_alert(tmp_path: Path) -> None:
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'journal.db'}", parse_policy(POLICY),
                           SimBroker(SimConfig()))
    try:
        runtime.process(feed())
        runtime.process([CancelRefused(ts=T0 + timedelta(seconds=1), client_order_id="og-gone",
                                       reason="order is not cancelable")])
    finally:
        runtime.close()


@pytest.fixture
def served_with_alert(tmp_path: Path) -> Iterator[Served]:
    _journal_with_an_unknown_order_alert(tmp_path)
    served = start(tmp_path)
    try:
        yield served
    finally:
        served.stop()


def test_status_lists_the_journals_warning_alerts_with_their_meaning(
        served_with_alert: Served) -> None:
    status = httpx.get(f"{served_with_alert.url}/v1/status", headers=auth(VIEWER),
                       timeout=10.0).json()
    [alert] = status["recent_alerts"]
    assert (alert["severity"], alert["code"]) == ("warning", "ORDER_UNKNOWN"), alert
    assert alert["meaning"].startswith("the broker reported on, or a cancel named, an order"), alert
    assert "og-gone" in alert["message"] and "order is not cancelable" in alert["message"]
    assert alert["ts"] == "2026-03-02T14:30:01Z", alert
    words = status_cli_words(served_with_alert)
    assert "Recent alerts (critical and warning, newest last)" in words, words
    assert "ORDER_UNKNOWN" in words and "og-gone" in words, words


def test_the_timeline_keeps_the_latest_critical_and_warning_alerts_but_no_command_note() -> None:
    timeline = ModeTimeline()
    alerts = [Alert(ts=T0 + timedelta(seconds=n), severity=AlertSeverity.CRITICAL,
                    code="FILL_PRICE", message=f"fill {n} past its limit")
              for n in range(RECENT_ALERTS + 5)]
    timeline.observe([], [
        Alert(ts=T0, severity=AlertSeverity.WARNING, code="COMMAND",
              message="resume by ops: fixed"),
        Alert(ts=T0, severity=AlertSeverity.INFO, code="POLICY_ACTIVATED", message="active"),
        *alerts])
    kept = timeline.alerts()
    assert [view.message for view in kept] == [alert.message for alert in
                                               alerts[-RECENT_ALERTS:]]
    assert kept[0].meaning.startswith("a fill past its order's limit price"), kept[0]


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[Served, Recorded]]:
    alerts = Recorded()
    served = start(tmp_path, alert_sinks=[alerts])
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            assert client.post("/v1/intents", json=intent("before"),
                               headers=auth(TRADER)).status_code == 200
            _refuse_writes(served.journal_url)
            failed = client.post("/v1/intents", json=intent("during", seconds=1.5),
                                 headers=auth(TRADER))
            assert failed.status_code == 503, failed.text
        yield served, alerts
    finally:
        served.stop()


def test_a_stopped_gateway_reads_stopped_and_its_timeline_ends_with_the_unjournaled_stop(
        stopped: tuple[Served, Recorded]) -> None:
    served, _ = stopped
    status: dict[str, Any] = httpx.get(f"{served.url}/v1/status", headers=auth(VIEWER),
                                       timeout=10.0).json()
    assert status["mode"] == "STOPPED", status["mode"]
    *journaled, stop = status["timeline"]
    assert journaled == [], journaled  # the journal holds no mode change
    assert (stop["mode"], stop["previous"], stop["reasons"], stop["journaled"]) == (
        "STOPPED", "ACTIVE", ["SYS-006"], False), stop
    # the engine's time at the failure: the first intent's or the failed one's
    assert stop["ts"] in ("2026-03-02T14:30:01Z", "2026-03-02T14:30:01.500000Z"), stop
    assert stop["note"].startswith("not in the journal"), stop
    words = status_cli_words(served)
    assert "STOPPED ACTIVE system SYS-006 — not in the journal" in words, words
    # a resume is refused as everything else is: STOPPED is what applies
    resume = httpx.post(f"{served.url}/v1/mode/resume", json={"reason": "try"},
                        headers=auth(OPERATOR), timeout=10.0)
    assert resume.status_code == 503, resume.text
    metrics = httpx.get(f"{served.url}/metrics", headers=auth(VIEWER), timeout=10.0).text
    assert 'ordergate_mode{mode="REDUCE_ONLY"} 1.0' in metrics, metrics


def test_the_webhook_says_stopped_not_reduce_only(stopped: tuple[Served, Recorded]) -> None:
    _, alerts = stopped
    said = [(notice.kind, notice.mode, notice.severity) for notice in alerts.notices
            if notice.code == "SYS-006"]
    assert said == [("journal_failed", "STOPPED", "critical"),
                    ("mode_change", "STOPPED", "critical")], alerts.notices
    change = next(notice for notice in alerts.notices if notice.kind == "mode_change"
                  and notice.code == "SYS-006")
    assert change.message.startswith("gateway STOPPED (the engine's mode ACTIVE -> REDUCE_ONLY"), \
        change.message
    assert "risk-reducing ones too" in change.message and "not journaled" in change.message
