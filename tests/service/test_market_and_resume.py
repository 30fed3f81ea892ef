"""POST /v1/market feeds market data through the journal; a drawdown driven that way halts
trading, and when the policy says so, resuming needs two different operators."""

from __future__ import annotations

from pathlib import Path

import httpx

from ordergate.journal import RecordKind, open_journal
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import decode_input
from service.support import (
    FEEDER,
    OPERATOR,
    OPERATOR_2,
    POLICY,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    quote,
    start,
)

DRAWDOWN_POLICY = POLICY.replace("  max_order_qty: 1000\n", "  max_order_qty: 1000\n"
                                 "  max_drawdown_pct: 5\n  drawdown_kill: true\n")


def _mode(client: httpx.Client) -> str:
    mode: str = client.get("/v1/status", headers=auth(VIEWER)).json()["mode"]
    return mode


def _resume(client: httpx.Client, token: str, reason: str) -> dict[str, object]:
    response = client.post("/v1/mode/resume", json={"reason": reason}, headers=auth(token))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_resume_after_a_drawdown_halt_needs_two_different_operators(tmp_path: Path) -> None:
    served = start(tmp_path, policy=parse_policy(DRAWDOWN_POLICY))
    try:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            bought = client.post("/v1/intents", json=intent("dd-buy", qty="1000"),
                                 headers=auth(TRADER)).json()
            assert bought["decision"]["decision"] == "ALLOW"
            # AAPL falls from 100 to 40: 60,000 lost on 1,000,000 of equity, more than 5%.
            crash = client.post("/v1/market", json=quote("AAPL", "40.00", seconds=2),
                                headers=auth(FEEDER))
            assert crash.status_code == 200, crash.text
            assert crash.json()["mode"] == "HALTED" and crash.json()["accepted"] == 1
            assert any(output["type"] == "mode" and output["reasons"][0]["code"] == "LOS-003"
                       for output in crash.json()["outputs"])
            assert _mode(client) == "HALTED"

            first = _resume(client, OPERATOR, "loss reviewed")
            assert first["mode"] == "HALTED" and "second operator" in str(first["message"])
            again = _resume(client, OPERATOR, "loss reviewed, really")
            assert again["mode"] == "HALTED" and _mode(client) == "HALTED"
            denied = client.post("/v1/intents", json=intent("dd-halted", seconds=3),
                                 headers=auth(TRADER)).json()["decision"]
            assert denied["decision"] == "DENY" and denied["blocking"] == "MOD-001"

            second = _resume(client, OPERATOR_2, "second approval")
            assert second["mode"] == "ACTIVE" and second["operator"] == "ops-bob"
            assert _mode(client) == "ACTIVE"
            timeline = client.get("/v1/status", headers=auth(VIEWER)).json()["timeline"]
            assert [entry["mode"] for entry in timeline[-2:]] == ["HALTED", "ACTIVE"]
    finally:
        served.stop()


def test_market_snapshots_are_journaled_in_order_before_they_count(
        served: Served, client: httpx.Client) -> None:
    batch = {"snapshots": [quote("MSFT", "201.00", seconds=2), quote("MSFT", "202.00",
                                                                     seconds=3)]}
    response = client.post("/v1/market", json=batch, headers=auth(OPERATOR))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2 and response.json()["mode"] == "ACTIVE"
    served.stop()
    journal = open_journal(served.journal_url, create=False)
    try:
        snapshots = [event for record in journal.read(1) if record.kind is RecordKind.INPUT
                     for event in [decode_input(record.payload)]
                     if isinstance(event, MarketSnapshot) and event.symbol == "MSFT"]
    finally:
        journal.close()
    assert [str(snapshot.last) for snapshot in snapshots][-2:] == ["201.00", "202.00"]


def test_only_a_feeder_or_an_operator_may_post_market_data(
        served: Served, client: httpx.Client) -> None:
    for token in (TRADER, VIEWER):
        response = client.post("/v1/market", json=quote("AAPL", "1.00"), headers=auth(token))
        assert response.status_code == 403 and "feeder" in response.json()["detail"]
    assert client.post("/v1/market", json=quote("AAPL", "1.00")).status_code == 401
    # A feeder has no other power.
    assert client.post("/v1/intents", json=intent("f-1"), headers=auth(FEEDER)).status_code == 403
    assert client.post("/v1/mode/halt", json={"reason": "x"},
                       headers=auth(FEEDER)).status_code == 403
    assert client.get("/v1/status", headers=auth(FEEDER)).status_code == 403
    assert client.get("/v1/decisions/anything", headers=auth(FEEDER)).status_code == 403
    assert _mode(client) == "ACTIVE"


def test_a_malformed_snapshot_is_refused_naming_the_field(client: httpx.Client) -> None:
    unknown = client.post("/v1/market", json={**quote("AAPL", "100.00"), "spread": "1"},
                          headers=auth(FEEDER))
    assert unknown.status_code == 422 and "spread" in unknown.json()["detail"]
    naive = client.post("/v1/market", json={**quote("AAPL", "100.00"),
                                            "ts": "2026-03-02T14:30:05"}, headers=auth(FEEDER))
    assert naive.status_code == 422 and "ts" in naive.json()["detail"]
    batch = client.post("/v1/market", json={"snapshots": [quote("AAPL", "100.00"), {}]},
                        headers=auth(FEEDER))
    assert batch.status_code == 422 and "$.snapshots[1]" in batch.json()["detail"]


def test_bad_market_data_fails_closed_through_the_feed(client: httpx.Client) -> None:
    broken = {**quote("AAPL", "100.00", seconds=2), "bid": "-1"}
    response = client.post("/v1/market", json=broken, headers=auth(FEEDER))
    assert response.status_code == 200, response.text
    assert any(output["type"] == "mode" for output in response.json()["outputs"])
    assert response.json()["mode"] != "ACTIVE"
    decision = client.post("/v1/intents", json=intent("bad-data", seconds=3),
                           headers=auth(TRADER)).json()["decision"]
    assert decision["decision"] == "DENY"
    assert "SYS-003" in {violation["code"] for violation in decision["violations"]}
