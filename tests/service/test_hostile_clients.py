"""Clumsy and hostile clients against a real gateway on 127.0.0.1: an intent_id reused for a
different intent, bodies nested thousands deep, query numbers in other scripts' digits,
operator reasons that say nothing visible. Each gets a 4xx naming the field, never a 500, and
nothing already decided is lost or sent twice."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordergate.model.intent import Side
from service.support import (
    FEEDER,
    OPERATOR,
    POLICY,
    TRADER,
    TRADER_B,
    VIEWER,
    Served,
    auth,
    intent,
)

DEEP = 100_000


def post_intent(client: httpx.Client, body: object, token: str = TRADER) -> httpx.Response:
    return client.post("/v1/intents", json=body, headers=auth(token))


def decision_of(client: httpx.Client, intent_id: str) -> dict[str, object]:
    response = client.get(f"/v1/decisions/{intent_id}", headers=auth(VIEWER))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# ---------------------------------------------------------------- one intent_id, two intents


def test_an_intent_id_reused_for_a_different_intent_is_refused_and_sends_nothing(
        served: Served, client: httpx.Client) -> None:
    first = post_intent(client, intent("reuse-1", qty="10"))
    assert first.status_code == 200 and first.json()["replayed"] is False

    other = post_intent(client, intent("reuse-1", qty="999", side=Side.SELL))

    assert other.status_code == 409, other.text
    body = other.json()
    assert body["error"] == "intent_id_conflict"
    assert body["detail"].startswith("$.intent_id: 'reuse-1' already names a different intent")
    assert "side, qty" in body["detail"]
    assert decision_of(client, "reuse-1")["intent"]["qty"] == "10"  # type: ignore[index]
    # The exact retry is still a replay of the original decision.
    again = post_intent(client, intent("reuse-1", qty="10"))
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["decision"] == first.json()["decision"]
    assert len(served.sent()) == 1


def test_a_retry_restamped_or_retagged_is_a_replay_not_a_conflict(
        served: Served, client: httpx.Client) -> None:
    first = post_intent(client, intent("restamped", seconds=1.0))
    assert first.status_code == 200 and first.json()["replayed"] is False

    # a strategy that stamps its retry when it sends it, or adds its own notes, still hears
    # the original decision, as the embedded Gateway and the engine answer it
    later = post_intent(client, intent("restamped", seconds=2.5))
    tagged = post_intent(client, {**intent("restamped"), "tags": {"attempt": "2"}})
    in_one_batch = post_intent(client, {"intents": [intent("twice", seconds=1.0),
                                                    intent("twice", seconds=1.5)]})

    for again in (later, tagged):
        assert again.status_code == 200, again.text
        assert again.json()["replayed"] is True
        assert again.json()["decision"] == first.json()["decision"]
    assert in_one_batch.status_code == 200, in_one_batch.text
    assert [item["replayed"] for item in in_one_batch.json()["results"]] == [False, True]
    assert len(served.sent()) == 2
    # what differs in the order itself is still a conflict, and names only those fields
    other = post_intent(client, {**intent("restamped", qty="11", seconds=3.0),
                                 "tags": {"attempt": "3"}})
    assert other.status_code == 409, other.text
    assert "(it differs in qty)" in other.json()["detail"]


def test_a_batch_reusing_an_id_inside_itself_is_refused_whole(
        served: Served, client: httpx.Client) -> None:
    batch = {"intents": [intent("in-batch"), intent("fresh-beside"),
                         intent("in-batch", qty="11")]}

    response = post_intent(client, batch)

    assert response.status_code == 409, response.text
    assert response.json()["detail"].startswith("$.intents[2].intent_id: 'in-batch'")
    assert served.sent() == []  # nothing of the refused request was decided or sent
    listed = client.get("/v1/decisions", headers=auth(VIEWER)).json()["items"]
    assert [item["intent_id"] for item in listed] == []
    # Identical copies are fine: the first is decided, the second replays it.
    same = post_intent(client, {"intents": [intent("in-batch"), intent("in-batch")]})
    assert [r["replayed"] for r in same.json()["results"]] == [False, True]
    assert len(served.sent()) == 1


def test_concurrent_requests_with_different_intents_under_one_id_make_one_order(
        served: Served) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            return await asyncio.gather(*(
                http.post("/v1/intents", json=intent("race", qty=str(n + 1)),
                          headers=auth(TRADER))
                for n in range(8)))

    responses = asyncio.run(burst())

    decided = [r for r in responses if r.status_code == 200]
    assert len(decided) == 1 and decided[0].json()["replayed"] is False
    assert {r.status_code for r in responses if r is not decided[0]} == {409}
    assert len(served.sent()) == 1


def test_another_accounts_intent_id_is_refused_without_describing_that_intent(
        served: Served, client: httpx.Client) -> None:
    assert post_intent(client, intent("shared-id")).status_code == 200

    response = post_intent(client, intent("shared-id", account="ACC-2"), token=TRADER_B)

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert detail.startswith("$.intent_id: 'shared-id' already names a different intent;")
    assert "ACC-1" not in detail and "differs" not in detail
    assert len(served.sent()) == 1


# ---------------------------------------------------------------- nesting and numbers


@pytest.mark.parametrize(("path", "token", "body"), [
    ("/v1/intents", TRADER, b'{"intents":' + b"[" * DEEP),
    ("/v1/intents", TRADER, b'{"tags":{"a":' + b"[" * DEEP),
    ("/v1/market", FEEDER, b'{"snapshots":' + b"[" * DEEP),
])
def test_a_body_nested_thousands_deep_is_malformed_not_an_internal_error(
        client: httpx.Client, path: str, token: str, body: bytes) -> None:
    response = client.post(path, content=body,
                           headers={**auth(token), "Content-Type": "application/json"})

    assert response.status_code == 400, response.text
    assert response.json() == {"error": "malformed_json", "detail": (
        "request body is nested too deeply; expected a JSON object of the documented shape")}


@pytest.mark.parametrize(("name", "raw"), [
    ("limit", "\u00b2"), ("limit", "\u0663"), ("limit", "9" * 5000),
    ("cursor", "\u00b9"), ("cursor", "7" * 5000),
])
def test_decisions_query_numbers_beyond_ascii_digits_are_invalid(
        client: httpx.Client, name: str, raw: str) -> None:
    response = client.get("/v1/decisions", params={name: raw}, headers=auth(VIEWER))

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"query {name}: expected an integer from 1 to ")


# ---------------------------------------------------------------- operator input


def test_a_policy_nested_too_deeply_is_invalid_and_the_old_policy_stays(
        client: httpx.Client) -> None:
    before = client.get("/v1/status", headers=auth(VIEWER)).json()["policy_hash"]
    document = POLICY + "x: " + "[" * 2000 + "]" * 2000 + "\n"

    response = client.post("/v1/policy", json={"document": document, "reason": "deep"},
                           headers=auth(OPERATOR))

    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "invalid_policy",
        "detail": "request.document: the YAML is nested too deeply (a policy needs at most 16 "
                  "levels)"}
    assert client.get("/v1/status", headers=auth(VIEWER)).json()["policy_hash"] == before


@pytest.mark.parametrize(("reason", "detail"), [
    ("\u200b", "reason: must not be blank"),
    (" \u200b\u2060 ", "reason: must not be blank"),
    ("\x00", "reason: character 0 is the control character U+0000; write the reason on one "
             "line in plain words"),
    ("ok\x1b[2J", "reason: character 2 is the control character U+001B; write the reason on "
                  "one line in plain words"),
])
def test_an_operator_reason_must_say_something_visible_without_control_characters(
        client: httpx.Client, reason: str, detail: str) -> None:
    response = client.post("/v1/mode/halt", json={"reason": reason}, headers=auth(OPERATOR))

    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid", "detail": detail}
    assert client.get("/v1/status", headers=auth(VIEWER)).json()["mode"] == "ACTIVE"
