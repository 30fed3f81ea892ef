"""Second-pass audit of `ordergate serve`: readiness while the broker cannot be read, the
status of a gateway whose journal failed, and the feeder role where roles are listed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.cli.main import app
from ordergate.service.status_view import STOPPED_TITLE
from service.support import (
    FEEDER,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    quote,
    start,
    status_cli_words,
)

# ---------------------------------------------------------------- readiness


def test_broker_the_start_up_reconciliation_cannot_read_is_not_ready(tmp_path: Path) -> None:
    # A broker with a book of its own (so the gateway reconciles with it before its first
    # batch) whose reads fail: its orders and positions cannot be read.
    broker = SimBroker(SimConfig(state_path=str(tmp_path / "broker.db")))
    broker.faults.fail_next_reads = 1
    served = start(tmp_path, broker=broker)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as http:
            fed = http.post("/v1/market", json=quote("AAPL", "100.00"), headers=auth(FEEDER))
            assert fed.status_code == 200, fed.text
            status = http.get("/v1/status", headers=auth(VIEWER)).json()
            assert "reconciliation:broker" in [d["name"] for d in status["dependencies"]]
            health = http.get("/v1/health")
    finally:
        served.stop()
        broker.close()
    assert health.status_code == 503, health.text
    body = health.json()
    assert body["live"] is True and body["ready"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert "reconciliation:broker" in body["checks"]["broker"]["detail"]
    assert "cannot read the broker" in body["checks"]["broker"]["detail"]
    assert body["checks"]["journal"]["ok"] is True and body["checks"]["data"]["ok"] is True


# ---------------------------------------------------------------- a journal that failed


def test_status_of_a_gateway_whose_journal_failed_says_it_takes_nothing(
        served: Served, client: httpx.Client) -> None:
    assert client.post("/v1/intents", json=intent("before"),
                       headers=auth(TRADER)).status_code == 200
    os.unlink(Path(served.journal_url.removeprefix("sqlite:///")))  # the disk goes away
    failed = client.post("/v1/intents", json=intent("during", seconds=2), headers=auth(TRADER))
    assert failed.status_code == 503, failed.text

    status: dict[str, Any] = client.get("/v1/status", headers=auth(VIEWER)).json()

    assert status["stopped"].startswith("the journal could not be written")
    headline = status["headline"]
    assert headline.startswith("STOPPED: the gateway takes no intent, market data or operator "
                               "command")
    assert "journal could not be written" in headline
    assert "shrink" not in headline  # not the REDUCE_ONLY words: nothing at all goes through
    names = [dependency["name"] for dependency in status["dependencies"]]
    assert names.count("journal") == 1, names
    [journal] = [d for d in status["dependencies"] if d["name"] == "journal"]
    assert journal["healthy"] is False and journal["state"] == "down"
    # the terminal view's banner says it in red, whatever the mode reads
    assert STOPPED_TITLE in status_cli_words(served)


def test_status_of_a_healthy_gateway_is_not_stopped(client: httpx.Client) -> None:
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["stopped"] == "" and not status["headline"].startswith("STOPPED")


# ---------------------------------------------------------------- the feeder role


def test_openapi_lists_403_for_a_decision_lookup(client: httpx.Client) -> None:
    # A feeder's token is refused there.
    refused = client.get("/v1/decisions/any", headers=auth(FEEDER))
    assert refused.status_code == 403
    document = client.get("/v1/openapi.json").json()
    assert "403" in document["paths"]["/v1/decisions/{intent_id}"]["get"]["responses"]


def test_token_new_names_the_feeder_role() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["token", "new", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "feeder" in shown.output
    refused = runner.invoke(app, ["token", "new", "--name", "x", "--role", "admin"])
    assert refused.exit_code != 0
    assert "expected trader, operator, viewer or feeder, got 'admin'" in str(refused.exception)


def test_http_reference_names_the_feeder_role() -> None:
    page = Path(__file__).parents[2] / "docs" / "reference" / "http.md"
    assert "`feeder` posts market data" in page.read_text(encoding="utf-8")
