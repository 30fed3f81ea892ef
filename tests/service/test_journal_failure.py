"""Fail closed over HTTP: when the journal cannot be written the service answers 503 with a
clear JSON message, sends nothing to the broker, and readiness says the journal is down (not
where it is: /v1/health needs no token; /v1/status, which does, says which file failed)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from service.support import FEEDER, OPERATOR, TRADER, VIEWER, Served, auth, intent, quote


def test_journal_write_failure_is_503_dispatches_nothing_and_readiness_reports_it(
        served: Served, client: httpx.Client) -> None:
    ok = client.post("/v1/intents", json=intent("before"), headers=auth(TRADER))
    assert ok.status_code == 200 and ok.json()["decision"]["decision"] == "ALLOW"
    sent = len(served.sent())
    assert sent == 1
    assert client.get("/v1/health").json()["checks"]["journal"]["ok"] is True

    path = Path(served.journal_url.removeprefix("sqlite:///"))
    os.unlink(path)  # the disk goes away

    failed = client.post("/v1/intents", json=intent("during", seconds=2), headers=auth(TRADER))
    assert failed.status_code == 503, failed.text
    body = failed.json()
    assert body["error"] == "unavailable"
    assert "not durable, nothing was done" in body["detail"]
    assert "journal could not be written" in body["detail"]
    # Refused from now on, whoever asks and whatever for, still without reaching the broker.
    again = client.post("/v1/intents", json=intent("after", seconds=3), headers=auth(TRADER))
    assert again.status_code == 503 and "journal" in again.json()["detail"]
    market = client.post("/v1/market", json=quote("AAPL", "101.00", seconds=3),
                         headers=auth(FEEDER))
    assert market.status_code == 503 and market.json()["error"] == "unavailable"
    halt = client.post("/v1/mode/halt", json={"reason": "disk"}, headers=auth(OPERATOR))
    assert halt.status_code == 503
    assert len(served.sent()) == sent

    health = client.get("/v1/health")
    assert health.status_code == 503
    report = health.json()
    assert report["ready"] is False
    assert report["checks"]["journal"]["ok"] is False
    assert "journal could not be written" in report["checks"]["journal"]["detail"]
    assert str(path) not in health.text and path.name not in health.text, report
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert str(path) in status["stopped"] and str(path) in status["journal"]["url"]
    # The intent that failed was never decided: a retry cannot find a phantom decision.
    assert client.get("/v1/decisions/during", headers=auth(TRADER)).status_code == 404
