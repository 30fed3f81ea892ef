"""The HTTP gateway runs through the guard: rate-limited submits open the broker_submit
circuit, `GET /v1/status` lists every breaker (name, state, opened_until, failures) and
`/metrics` exports one `ordergate_circuit_state` gauge per dependency (0 closed, 1 half-open,
2 open); after the open period (injected clock) a probe closes it and both say so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.support import (
    FEEDER,
    POLICY,
    T0,
    TRADER,
    VIEWER,
    auth,
    feed,
    intent,
    quote,
    tokens,
)

from ordergate.brokers.sim import SimBroker, SimConfig, SimFaults, SubmitFault
from ordergate.policy.loader import parse_policy
from ordergate.resilience.clock import ManualClock
from ordergate.runtime.loop import Runtime
from ordergate.service.server import Gateway, ServerThread


class Stage:
    def __init__(self, directory: Path) -> None:
        self.clock = ManualClock(start=T0)
        self.broker = SimBroker(SimConfig())
        journal_url = f"sqlite:///{directory / 'journal.db'}"
        runtime = Runtime.open(journal_url, parse_policy(POLICY), self.broker)
        runtime.process(feed())
        gateway = Gateway(runtime, tokens(), journal_url=journal_url, tick_interval_s=None,
                          wall_clock=lambda: T0 + timedelta(seconds=1), guard_clock=self.clock)
        self.server = ServerThread(gateway).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def breakers(self) -> dict[str, dict[str, Any]]:
        response = self.http.get("/v1/status", headers=auth(VIEWER))
        assert response.status_code == 200
        return {row["name"]: row for row in response.json()["breakers"]}

    def circuit_gauges(self) -> dict[str, float]:
        text = self.http.get("/metrics", headers=auth(VIEWER)).text
        return {name: float(value) for name, value in re.findall(
            r'^ordergate_circuit_state\{dependency="([^"]+)"\} (\S+)$', text, re.MULTILINE)}

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    stage = Stage(tmp_path)
    try:
        yield stage
    finally:
        stage.close()


def test_status_and_metrics_show_the_submit_circuit_open_then_closed(stage: Stage) -> None:
    healthy = stage.breakers()
    assert {"broker_submit", "broker_reads", "clock"} <= set(healthy)
    assert healthy["broker_submit"] == {"name": "broker_submit", "state": "CLOSED",
                                        "opened_until": None, "failures": 0}

    stage.broker.faults = SimFaults(fail_next_submits=3, submit_fault=SubmitFault.RATE_LIMITED)
    # three orders in one batch, decided before the first 429 is seen: each submit is
    # refused once (rejected "not placed", never resent), and the third opens the circuit
    batch = {"intents": [intent(f"i-storm-{n}", qty=str(n + 1)) for n in range(3)]}
    response = stage.http.post("/v1/intents", json=batch, headers=auth(TRADER))
    assert response.status_code == 200
    opened = stage.breakers()["broker_submit"]
    assert opened["state"] == "OPEN" and opened["failures"] == 3
    assert opened["opened_until"] == (T0 + timedelta(seconds=60)).isoformat().replace(
        "+00:00", "Z")
    assert stage.circuit_gauges()["broker_submit"] == 2
    status = stage.http.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["mode"] == "REDUCE_ONLY"
    assert "SYS-007" in {reason["code"] for reason in status["reasons"]}

    stage.clock.advance(60)
    assert stage.breakers()["broker_submit"]["state"] == "HALF_OPEN"
    assert stage.circuit_gauges()["broker_submit"] == 1
    posted = stage.http.post("/v1/market", json=quote("AAPL", "100.00", seconds=2),
                             headers=auth(FEEDER))
    assert posted.status_code in (200, 202), posted.text
    assert stage.breakers()["broker_submit"]["state"] == "CLOSED"
    assert stage.circuit_gauges()["broker_submit"] == 0
    # Its reasons cleared with the broker's answer; the mode stays, and the banner says why
    # instead of "No reason recorded".
    held = stage.http.get("/v1/status", headers=auth(VIEWER)).json()
    assert held["mode"] == "REDUCE_ONLY" and held["reasons"] == []
    assert "No reason recorded" not in held["headline"]
    assert "REDUCE_ONLY since SYS-0" in held["headline"]
    assert "stays REDUCE_ONLY until an operator resumes" in held["headline"]
