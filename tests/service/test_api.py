"""The HTTP API against a real gateway (real Runtime, engine, SQLite journal, simulator
broker) served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import msgspec

from ordergate.journal import RecordKind, open_journal
from ordergate.model.events import Command, CommandAction
from ordergate.runtime.loop import decode_input
from ordergate.service.openapi import ROUTES
from service.support import (
    OPERATOR,
    OPERATOR_2,
    OTHER_POLICY,
    SLOW,
    TRADER,
    TRADER_B,
    VIEWER,
    Served,
    auth,
    intent,
    start,
)


def post_intent(client: httpx.Client, body: object, token: str = TRADER) -> httpx.Response:
    return client.post("/v1/intents", json=body, headers=auth(token))


# ---------------------------------------------------------------- intents and idempotency


def test_allowed_intent_is_dispatched_and_answered_with_run_id(
        served: Served, client: httpx.Client) -> None:
    response = post_intent(client, intent("i-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["intent_id"] == "i-1" and body["run_id"] == served.gateway.ctx.run_id
    assert body["decision"]["decision"] == "ALLOW" and body["replayed"] is False
    assert len(served.sent()) == 1


def test_retried_intent_returns_original_decision_and_sends_no_second_order(
        served: Served, client: httpx.Client) -> None:
    first = post_intent(client, intent("i-retry")).json()
    second = post_intent(client, intent("i-retry")).json()
    assert second["replayed"] is True
    assert second["decision"] == first["decision"]
    assert len(served.sent()) == 1


def test_concurrent_copies_of_one_intent_make_one_order(served: Served) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            return await asyncio.gather(*(
                http.post("/v1/intents", json=intent("i-race"), headers=auth(TRADER))
                for _ in range(12)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    decisions = {msgspec.json.encode(r.json()["decision"]) for r in responses}
    assert len(decisions) == 1
    assert sum(1 for r in responses if not r.json()["replayed"]) == 1
    assert len(served.sent()) == 1


def test_retry_after_restart_returns_the_journaled_decision(tmp_path: Path) -> None:
    first = start(tmp_path)
    try:
        original = httpx.post(first.url + "/v1/intents", json=intent("i-durable"),
                              headers=auth(TRADER)).json()
    finally:
        first.stop()
    second = start(tmp_path)
    try:
        again = httpx.post(second.url + "/v1/intents", json=intent("i-durable"),
                           headers=auth(TRADER)).json()
        assert again["replayed"] is True
        assert again["decision"] == original["decision"]
        assert second.sent() == []  # the new process sent nothing
    finally:
        second.stop()


def test_batch_is_decided_in_order_with_one_answer_per_intent(
        served: Served, client: httpx.Client) -> None:
    batch = {"intents": [intent(f"b-{n}", qty=str(n + 1)) for n in range(20)]}
    batch["intents"].append(intent("b-big", qty="5000"))  # over max_order_qty
    response = post_intent(client, batch)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["intent_id"] for r in results] == [i["intent_id"] for i in batch["intents"]]
    assert results[-1]["decision"]["decision"] == "DENY"
    assert results[-1]["decision"]["blocking"] == "ORD-006"
    assert results[-1]["blocking_meaning"].startswith("The order quantity exceeds")
    assert all(r["decision"]["decision"] == "ALLOW" for r in results[:-1])
    assert len(served.sent()) == 20


# ---------------------------------------------------------------- role boundaries


def test_trader_cannot_submit_for_another_account(served: Served, client: httpx.Client) -> None:
    single = post_intent(client, intent("x-1", account="ACC-2"))
    assert single.status_code == 403 and "ACC-2" in single.json()["detail"]
    batch = post_intent(client, {"intents": [intent("x-2"), intent("x-3", account="ACC-2")]})
    assert batch.status_code == 403
    assert "$.intents[1].account" in batch.json()["detail"]
    assert served.sent() == []  # nothing of the refused batch was sent
    assert post_intent(client, intent("x-4", account="ACC-2"), TRADER_B).status_code == 200


def test_viewer_and_operator_cannot_submit_intents(client: httpx.Client) -> None:
    for token in (VIEWER, OPERATOR):
        response = post_intent(client, intent("v-1"), token)
        assert response.status_code == 403
        assert "trader" in response.json()["detail"]


def test_trader_and_viewer_cannot_change_the_mode(client: httpx.Client) -> None:
    for token in (TRADER, VIEWER):
        for path in ("/v1/mode/halt", "/v1/mode/resume", "/v1/mode/reduce-only"):
            response = client.post(path, json={"reason": "x"}, headers=auth(token))
            assert response.status_code == 403, (token, path)
    assert client.post("/v1/policy", json={"document": OTHER_POLICY, "reason": "x"},
                       headers=auth(VIEWER)).status_code == 403


def test_trader_cannot_read_status(client: httpx.Client) -> None:
    assert client.get("/v1/status", headers=auth(TRADER)).status_code == 403
    assert client.get("/v1/status", headers=auth(VIEWER)).status_code == 200


def test_missing_or_invalid_token_is_401(client: httpx.Client) -> None:
    for headers in ({}, auth("nope"), {"Authorization": "Basic abc"}):
        response = client.get("/v1/status", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "nope" not in response.text


def test_per_token_rate_limit_answers_429_with_retry_after(client: httpx.Client) -> None:
    codes = [client.get("/v1/status", headers=auth(SLOW)).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    limited = client.get("/v1/status", headers=auth(SLOW))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


# ---------------------------------------------------------------- malformed requests


def test_malformed_json_is_400_naming_the_problem(client: httpx.Client) -> None:
    response = client.post("/v1/intents", content=b'{"intent_id": ', headers={
        **auth(TRADER), "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_unknown_field_is_422_with_its_path(client: httpx.Client) -> None:
    response = post_intent(client, {"intents": [intent("u-1"), {**intent("u-2"), "price": 1}]})
    assert response.status_code == 422
    assert "price" in response.json()["detail"] and "$.intents[1]" in response.json()["detail"]
    single = post_intent(client, {**intent("u-3"), "qty": "-5"})
    assert single.status_code == 422 and "qty" in single.json()["detail"]


def test_oversized_body_is_413(client: httpx.Client) -> None:
    huge = b'{"intents": [' + b" " * 1_100_000 + b"]}"
    response = client.post("/v1/intents", content=huge, headers={
        **auth(TRADER), "content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"


def test_batch_over_1000_intents_is_refused(client: httpx.Client) -> None:
    response = post_intent(client, {"intents": [intent(f"o-{n}") for n in range(1001)]})
    assert response.status_code == 413 and response.json()["error"] == "batch_too_large"


def test_wrong_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/v1/intents", content=b"a=b", headers={
        **auth(TRADER), "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


# ---------------------------------------------------------------- operator actions and status


def test_halt_is_journaled_with_the_operator_and_shown_in_status(
        served: Served, client: httpx.Client) -> None:
    halted = client.post("/v1/mode/halt", json={"reason": "desk review"}, headers=auth(OPERATOR))
    assert halted.status_code == 200, halted.text
    assert halted.json()["mode"] == "HALTED" and halted.json()["operator"] == "ops-alice"
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["mode"] == "HALTED"
    reason = status["reasons"][0]
    assert reason["actor"] == "ops-alice" and reason["meaning"]
    assert status["timeline"][-1]["mode"] == "HALTED"
    denied = post_intent(client, intent("after-halt")).json()["decision"]
    assert denied["decision"] == "DENY" and denied["blocking"] == "MOD-001"
    journal = open_journal(served.journal_url, create=False, reader=True)
    try:
        commands = [event for record in journal.read(1) if record.kind is RecordKind.INPUT
                    for event in [decode_input(record.payload)] if isinstance(event, Command)]
    finally:
        journal.close()
    halt = [c for c in commands if c.action is CommandAction.HALT]
    assert halt and halt[-1].operator == "ops-alice" and halt[-1].reason == "desk review"


def test_resume_needs_a_reason_and_restores_active(client: httpx.Client) -> None:
    client.post("/v1/mode/reduce-only", json={"reason": "news"}, headers=auth(OPERATOR))
    assert client.get("/v1/status", headers=auth(VIEWER)).json()["mode"] == "REDUCE_ONLY"
    missing = client.post("/v1/mode/resume", json={}, headers=auth(OPERATOR))
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    blank = client.post("/v1/mode/resume", json={"reason": "  "}, headers=auth(OPERATOR))
    assert blank.status_code == 422
    resumed = client.post("/v1/mode/resume", json={"reason": "news digested"},
                          headers=auth(OPERATOR_2))
    assert resumed.status_code == 200 and resumed.json()["mode"] == "ACTIVE"


def test_status_reports_positions_exposure_rates_and_journal(
        served: Served, client: httpx.Client) -> None:
    post_intent(client, intent("s-1", qty="7"))
    status = client.get("/v1/status", headers=auth(VIEWER)).json()
    assert status["mode"] == "ACTIVE" and status["policy_name"] == "service-test"
    assert status["policy_hash"].startswith("sha256:")
    assert any(p["symbol"] == "AAPL" and p["qty"] == "7" for p in status["positions"])
    acc = next(e for e in status["exposure"] if e["account"] == "ACC-1")
    assert acc["gross_cap"] == "1000000" and acc["gross"] != "0"
    assert any(w["scope"] == "account" and w["key"] == "ACC-1" and w["count"] == 1
               for w in status["rate_windows"])
    assert status["journal"]["last_seq"] > 0
    assert status["dependencies"][0] == {"name": "journal", "healthy": True,
                                         "state": "healthy", "detail": ""}


def test_invalid_policy_is_422_naming_the_field(client: httpx.Client) -> None:
    broken = OTHER_POLICY.replace("max_order_qty: 50", "max_order_qty: -5")
    response = client.post("/v1/policy", json={"document": broken, "reason": "x"},
                           headers=auth(OPERATOR))
    assert response.status_code == 422 and "max_order_qty" in response.json()["detail"]


# ---------------------------------------------------------------- reads


def test_decisions_filter_paginate_and_read_one(client: httpx.Client) -> None:
    for n in range(5):
        post_intent(client, intent(f"d-{n}", symbol="AAPL" if n % 2 else "MSFT"))
    post_intent(client, intent("d-big", qty="5000"))
    page = client.get("/v1/decisions", params={"limit": 2}, headers=auth(VIEWER)).json()
    assert [item["intent_id"] for item in page["items"]] == ["d-big", "d-4"]
    rest = client.get("/v1/decisions", params={"limit": 10, "cursor": page["next_cursor"]},
                      headers=auth(VIEWER)).json()
    assert [item["intent_id"] for item in rest["items"]] == ["d-3", "d-2", "d-1", "d-0"]
    msft = client.get("/v1/decisions", params={"symbol": "MSFT"}, headers=auth(VIEWER)).json()
    assert {item["intent_id"] for item in msft["items"]} == {"d-0", "d-2", "d-4"}
    denied = client.get("/v1/decisions", params={"reason": "ORD-006"},
                        headers=auth(VIEWER)).json()
    assert [item["intent_id"] for item in denied["items"]] == ["d-big"]
    window = client.get("/v1/decisions", params={"since": "2030-01-01T00:00:00Z"},
                        headers=auth(VIEWER)).json()
    assert window["items"] == []
    bad = client.get("/v1/decisions", params={"since": "yesterday"}, headers=auth(VIEWER))
    assert bad.status_code == 422 and "since" in bad.json()["detail"]
    one = client.get("/v1/decisions/d-big", headers=auth(VIEWER)).json()
    assert one["intent"]["qty"] == "5000" and one["decision"]["violations"][0]["limit"] == "1000"
    assert client.get("/v1/decisions/none", headers=auth(VIEWER)).status_code == 404


def test_trader_reads_only_its_own_decisions(client: httpx.Client) -> None:
    post_intent(client, intent("own-1"))
    post_intent(client, intent("other-1", account="ACC-2"), TRADER_B)
    assert client.get("/v1/decisions/own-1", headers=auth(TRADER)).status_code == 200
    assert client.get("/v1/decisions/other-1", headers=auth(TRADER)).status_code == 404
    assert client.get("/v1/decisions", headers=auth(TRADER)).status_code == 403


def test_health_is_public_and_ready(client: httpx.Client) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["live"] and body["ready"]
    assert set(body["checks"]) == {"engine", "journal", "broker", "data"}


def test_metrics_count_decisions_by_outcome_and_reason(client: httpx.Client) -> None:
    post_intent(client, intent("m-1"))
    post_intent(client, intent("m-2", qty="5000"))
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=auth(VIEWER)).text
    assert 'ordergate_decisions_total{decision="ALLOW",reason="none"} 1.0' in text
    assert 'ordergate_decisions_total{decision="DENY",reason="ORD-006"} 1.0' in text
    assert 'ordergate_mode{mode="ACTIVE"} 1.0' in text
    assert "ordergate_evaluation_seconds_bucket" in text
    assert 'ordergate_exposure_cap{account="ACC-1",kind="gross"} 1e+06' in text
    assert "ordergate_throttle_utilisation" in text


def test_events_stream_sends_status(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http, \
            http.stream("GET", "/v1/events", headers=auth(VIEWER)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: status"
        data = next(lines)
        assert data.startswith("data: ") and '"mode":"ACTIVE"' in data


def test_openapi_documents_every_route_with_its_security(client: httpx.Client) -> None:
    document = client.get("/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["x-roles"] == list(route.roles)
        assert operation["security"] == ([{"bearer": []}] if route.roles else [])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_dashboard_page_is_served(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="mode-banner"' in page.text
    assert client.get("/static/dashboard.js").status_code == 200


def test_openapi_says_how_the_enforced_policy_is_identified_and_documents_the_feed(
        client: httpx.Client) -> None:
    document = client.get("/v1/openapi.json").json()
    status = document["paths"]["/v1/status"]["get"]
    assert "policy_hash" in status["description"] and "policy_name" in status["description"]
    properties = document["components"]["schemas"]["StatusView"]["properties"]
    assert {"policy_hash", "policy_name", "policy_monitor"} <= set(properties)
    assert not any("profile" in name for name in properties)
    market = document["paths"]["/v1/market"]["post"]
    assert market["x-roles"] == ["feeder", "operator"]
    assert "MarketSnapshot" in str(market["requestBody"])
    policy = document["paths"]["/v1/policy"]["post"]
    assert "shadow" in policy["description"] and "enforced policy stays" in policy["description"]
    assert "shadow_policy_hash" in properties
    monitor = next(p for p in document["paths"]["/v1/decisions"]["get"]["parameters"]
                   if p["name"] == "monitor")
    assert monitor["schema"] == {"enum": ["true", "false"]}
    shadow = next(p for p in document["paths"]["/v1/decisions"]["get"]["parameters"]
                  if p["name"] == "shadow_differs")
    assert shadow["schema"] == {"enum": ["true", "false"]}
