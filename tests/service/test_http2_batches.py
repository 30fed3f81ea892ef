"""Second-pass audit of `ordergate serve`: a batch over the maximum (intents or market
snapshots) is a 413 batch_too_large naming the count and the maximum, counted before any item
is decoded."""

from __future__ import annotations

import httpx

from ordergate.service.limits import MAX_BATCH_INTENTS
from service.support import FEEDER, TRADER, Served, auth, intent, quote


def test_intent_batch_over_the_maximum_is_413_naming_count_and_maximum(
        served: Served, client: httpx.Client) -> None:
    count = MAX_BATCH_INTENTS + 1
    body = {"intents": [intent(f"big-{n}") for n in range(count)]}

    response = client.post("/v1/intents", json=body, headers=auth(TRADER))

    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "batch_too_large",
        "detail": f"intents: {count} intents, at most {MAX_BATCH_INTENTS} per request"}
    assert served.sent() == []


def test_intent_batch_over_the_maximum_is_413_before_its_items_are_read(
        client: httpx.Client) -> None:
    # Items that are not intents at all: the count is refused before any is decoded.
    body = {"intents": [{"nonsense": n} for n in range(MAX_BATCH_INTENTS + 5)]}
    response = client.post("/v1/intents", json=body, headers=auth(TRADER))
    assert response.status_code == 413, response.text
    assert f"{MAX_BATCH_INTENTS + 5} intents" in response.json()["detail"]


def test_a_full_batch_is_still_decided(client: httpx.Client) -> None:
    body = {"intents": [intent(f"full-{n}", qty="1") for n in range(MAX_BATCH_INTENTS)]}
    response = client.post("/v1/intents", json=body, headers=auth(TRADER))
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == MAX_BATCH_INTENTS


def test_market_batch_over_the_maximum_is_413_naming_count_and_maximum(
        client: httpx.Client) -> None:
    count = MAX_BATCH_INTENTS + 1
    body = {"snapshots": [quote(f"S{n}", "10.00") for n in range(count)]}

    response = client.post("/v1/market", json=body, headers=auth(FEEDER))

    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "batch_too_large",
        "detail": f"snapshots: {count} snapshots, at most {MAX_BATCH_INTENTS} per request"}
