"""POST /v1/intents is a plain ASGI endpoint that the front door reaches without Starlette's
router and middleware. These tests prove the shortcut changes nothing a client can see: the
same requests through the front door and through the Starlette app (where the route table
mounts the same endpoint) get byte-identical answers, and the one-pass body decoding reads
every body exactly as telling single intents from batches by their keys does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.model.intent import OrderIntent
from ordergate.service.app import create_app, starlette_app
from ordergate.service.bridge import DECIDED_NOT_ANSWERED, INTERNAL_ERROR_WORDS
from ordergate.service.context import ApiError, decode_error
from ordergate.service.intents import IntentsEndpoint, parse_intents
from ordergate.service.schemas import IntentBatch
from service.support import OPERATOR, SLOW, TRADER, TRADER_B, VIEWER, Served, auth, intent

JSON_HEADERS = {"content-type": "application/json"}


def _requests() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, headers, body) covering every answer of the route."""
    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    trader = {**auth(TRADER), **JSON_HEADERS}
    return [
        ("POST", "/v1/intents", trader, body(intent("same-1"))),
        ("POST", "/v1/intents", trader, body({"intents": [intent("same-1"), intent("same-2")]})),
        ("POST", "/v1/intents", JSON_HEADERS, body(intent("a-1"))),  # no token: 401
        ("POST", "/v1/intents", {**auth("wrong"), **JSON_HEADERS}, body(intent("a-1"))),
        ("POST", "/v1/intents", {"Authorization": "Basic abc"}, body(intent("a-1"))),
        ("POST", "/v1/intents", {**auth(VIEWER), **JSON_HEADERS}, body(intent("a-1"))),
        ("POST", "/v1/intents", {**auth(SLOW), **JSON_HEADERS}, body(intent("a-1"))),
        ("POST", "/v1/intents", {**auth(OPERATOR), **JSON_HEADERS}, body(intent("a-1"))),
        ("POST", "/v1/intents", {**auth(TRADER_B), **JSON_HEADERS}, body(intent("a-1"))),
        ("POST", "/v1/intents", trader,
         body({"intents": [intent("a-2"), intent("a-3", account="ACC-2")]})),
        ("POST", "/v1/intents", trader, b""),
        ("POST", "/v1/intents", trader, b'{"intent_id": '),
        ("POST", "/v1/intents", trader, b"[1, 2]"),
        ("POST", "/v1/intents", trader, body({**intent("a-4"), "qty": "-5"})),
        ("POST", "/v1/intents", trader, body({"intents": []})),
        ("POST", "/v1/intents", trader, body({"intents": None})),
        ("POST", "/v1/intents", trader, body({"intents": [intent("a-5"), {"x": 1}]})),
        ("POST", "/v1/intents", {**auth(TRADER), "content-type": "text/plain"}, b"x"),
        ("POST", "/v1/intents", {**auth(TRADER), "content-length": "x1"}, b""),
        ("POST", "/v1/intents", trader, b'{"intents": [' + b" " * 1_100_000 + b"]}"),
        ("POST", "/v1/intents", trader, body({"intents": [intent(f"o-{n}") for n in range(1001)]})),
        ("GET", "/v1/intents", auth(TRADER), b""),
        ("PUT", "/v1/intents", trader, body(intent("a-6"))),
        ("POST", "/v1/intents/", trader, body(intent("a-7"))),
    ]


async def _answers(app: Any, base: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    transport = httpx.ASGITransport(app=app)
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        for method, path, headers, body in _requests():
            response = await http.request(method, path, headers=headers, content=body)
            answers.append((response.status_code, response.headers.multi_items(),
                            response.content))
    return answers


def test_front_door_answers_exactly_as_the_starlette_route(served: Served) -> None:
    ctx = served.gateway.ctx
    for intent_id in ("same-1", "same-2"):  # decided once, so both apps answer replays
        fresh = httpx.post(f"{served.url}/v1/intents", json=intent(intent_id),
                           headers=auth(TRADER))
        assert fresh.status_code == 200 and fresh.json()["replayed"] is False
    front = asyncio.run(_answers(create_app(ctx), served.url))
    behind = asyncio.run(_answers(starlette_app(ctx, IntentsEndpoint(ctx)), served.url))
    assert [status for status, _, _ in front] == [
        200, 200, 401, 401, 401, 403, 403, 403, 403, 403, 400, 400, 422, 422, 422, 422, 422,
        415, 400, 413, 413, 405, 405, 307]
    assert front == behind
    assert len(served.sent()) == 2


def test_a_batch_decided_and_durable_but_not_answered_says_so_in_plain_words(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one 503 after which the order may have gone out keeps its own error code (the
    client tells it from "nothing was done" by it), and says what happened without the
    exception's class or text."""
    index = served.gateway.bridge.index

    def broken(records: object) -> None:
        monkeypatch.undo()  # once
        raise OSError(f"{served.journal_url}: disk")

    monkeypatch.setattr(index, "add", broken)
    answer = httpx.post(f"{served.url}/v1/intents", json=intent("late-1"), headers=auth(TRADER))

    assert answer.status_code == 503, answer.text
    assert answer.json() == {
        "error": DECIDED_NOT_ANSWERED,
        "detail": f"decided and durable, but answering failed: {INTERNAL_ERROR_WORDS}; read "
                  "the decision at GET /v1/decisions/{intent_id}"}
    assert "OSError" not in answer.text and "sqlite" not in answer.text
    assert len(served.sent()) == 1  # durable, so sent


# ---------------------------------------------------------------- one-pass decoding


_peek = msgspec.json.Decoder(dict[str, msgspec.Raw])


def reference_parse(body: bytes) -> tuple[list[OrderIntent], bool]:
    """Tell a batch from a single intent by its top-level keys, then decode that shape."""
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        batch = "intents" in _peek.decode(body)
        intents = (msgspec.json.decode(body, type=IntentBatch).intents if batch
                   else [msgspec.json.decode(body, type=OrderIntent)])
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None
    return intents, batch


def _outcome(parse: Any, body: bytes) -> object:
    try:
        return parse(body)
    except ApiError as exc:
        return (exc.status, exc.error, exc.detail)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(
    ["", "intent", "buy", "sell", "10", "-5", "ACC-1", "2026-03-02T14:30:01Z", "limit"]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["intents", "type", "qty", "side", "x", "tags"]), inner, max_size=3),
    max_leaves=8)


@st.composite
def _intent_like(draw: st.DrawFn) -> dict[str, Any]:
    """A valid intent, maybe with a field changed, removed or added."""
    value = intent(draw(st.sampled_from(["i-1", "i-2", ""])),
                   qty=draw(st.sampled_from(["1", "10", "0", "-1", "x"])))
    if draw(st.booleans()):
        key = draw(st.sampled_from([*sorted(value), "intents", "price", "tags"]))
        if draw(st.booleans()):
            value.pop(key, None)
        else:
            value[key] = draw(_json)
    return value


_bodies = st.one_of(
    _intent_like().map(lambda v: json.dumps(v).encode()),
    st.lists(_intent_like(), max_size=3).map(lambda v: json.dumps({"intents": v}).encode()),
    st.builds(lambda v, extra: json.dumps({"intents": v, **extra}).encode(),
              st.lists(_intent_like(), max_size=2),
              st.dictionaries(st.sampled_from(["type", "x"]), _json, max_size=1)),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    _intent_like().map(lambda v: json.dumps(v).encode()[:-3]),
)


@settings(max_examples=400, deadline=None)
@given(_bodies)
def test_one_pass_decoding_reads_every_body_as_the_key_peek_does(body: bytes) -> None:
    assert _outcome(parse_intents, body) == _outcome(reference_parse, body)
