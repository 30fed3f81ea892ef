"""A key given twice in one JSON object is refused (422 naming it), never read as its last
value: `{"dry_run": true, ..., "dry_run": false}` must not enforce what was meant as a dry run,
`{"qty": "1", "qty": "50"}` must not trade 50. And an API policy activation carries the
operator's reason, like every other operator action."""

from __future__ import annotations

import json

import httpx
import pytest

from ordergate.journal import RecordKind, open_journal
from ordergate.model.events import Command, CommandAction
from ordergate.runtime.loop import decode_input
from ordergate.service.context import ApiError, may_repeat_keys, refuse_repeated_keys
from ordergate.service.intents import parse_intents
from service.support import OPERATOR, OTHER_POLICY, POLICY, TRADER, Served, auth, intent, quote

TWICE = "appears twice; a key may appear once"


def _post(client: httpx.Client, path: str, body: str, token: str) -> httpx.Response:
    return client.post(path, content=body.encode(),
                       headers={**auth(token), "Content-Type": "application/json"})


def _members(value: dict[str, object]) -> str:
    """The members of a JSON object without its braces, to splice repeated keys into."""
    return json.dumps(value)[1:-1]


def _commands(served: Served) -> list[Command]:
    """The operators' commands in the journal (the start-up activation left out)."""
    journal = open_journal(served.journal_url, create=False, reader=True)
    try:
        return [event for record in journal.read(1) if record.kind is RecordKind.INPUT
                for event in [decode_input(record.payload)]
                if isinstance(event, Command) and event.operator != "ordergate"]
    finally:
        journal.close()


def _enforced_hash(client: httpx.Client) -> str:
    status: str = client.get("/v1/status", headers=auth(OPERATOR)).json()["policy_hash"]
    return status


# ---------------------------------------------------------------- operator bodies


def test_a_policy_body_with_repeated_keys_is_refused_and_nothing_changes(
        served: Served, client: httpx.Client) -> None:
    before = _enforced_hash(client)
    body = ("{" + _members({"document": POLICY, "reason": "try it", "dry_run": True}) + ", "
            + _members({"document": OTHER_POLICY, "dry_run": False}) + "}")

    response = _post(client, "/v1/policy", body, OPERATOR)

    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid", "detail": f"$.document: {TWICE}"}
    assert _enforced_hash(client) == before
    assert client.get("/v1/status", headers=auth(OPERATOR)).json()["shadow_policy_hash"] == ""
    assert not [c for c in _commands(served)
                if c.action in (CommandAction.ACTIVATE_POLICY, CommandAction.SHADOW_POLICY)]


def test_a_mode_change_with_a_repeated_reason_is_refused(served: Served,
                                                         client: httpx.Client) -> None:
    response = _post(client, "/v1/mode/halt",
                     '{"reason": "desk review", "cancel_all": false, "reason": "x", '
                     '"reason": "y"}', OPERATOR)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "$.reason: appears 3 times; a key may appear once"
    kill = _post(client, "/v1/kill",
                 '{"scope": "account", "name": "ACC-1", "scope": "firm", "reason": "r"}',
                 OPERATOR)
    assert kill.status_code == 422 and kill.json()["detail"] == f"$.scope: {TWICE}"
    assert _commands(served) == []


def test_market_data_with_a_repeated_price_is_refused(client: httpx.Client) -> None:
    snapshot = quote("AAPL", "100")
    body = "{" + _members(snapshot) + ', "bid": "1"}'
    response = _post(client, "/v1/market", body, OPERATOR)
    assert response.status_code == 422 and response.json()["detail"] == f"$.bid: {TWICE}"


# ---------------------------------------------------------------- policy reason


def test_an_api_policy_activation_journals_the_operators_reason(
        served: Served, client: httpx.Client) -> None:
    missing = client.post("/v1/policy", json={"document": OTHER_POLICY},
                          headers=auth(OPERATOR))
    assert missing.status_code == 422 and "`reason`" in missing.json()["detail"]
    blank = client.post("/v1/policy", json={"document": OTHER_POLICY, "reason": " \u200b "},
                        headers=auth(OPERATOR))
    assert blank.status_code == 422
    assert blank.json()["detail"] == "reason: must not be blank"

    dry = client.post("/v1/policy", json={"document": OTHER_POLICY, "dry_run": True,
                                          "reason": "try the tighter caps"},
                      headers=auth(OPERATOR))
    live = client.post("/v1/policy", json={"document": OTHER_POLICY,
                                           "reason": "  tighter caps, ticket 812  "},
                       headers=auth(OPERATOR))

    assert dry.status_code == 200 and live.status_code == 200, (dry.text, live.text)
    assert live.json()["activated"] is True
    policy_commands = [(c.action, c.reason) for c in _commands(served)
                       if c.action in (CommandAction.ACTIVATE_POLICY,
                                       CommandAction.SHADOW_POLICY)]
    assert policy_commands == [(CommandAction.SHADOW_POLICY, "try the tighter caps"),
                               (CommandAction.ACTIVATE_POLICY, "tighter caps, ticket 812")]


def test_the_openapi_document_requires_a_policy_reason(client: httpx.Client) -> None:
    document = client.get("/v1/openapi.json").json()
    schema = document["components"]["schemas"]["PolicyRequest"]
    assert "reason" in schema["required"] and "reason" in schema["properties"]


# ---------------------------------------------------------------- intents


def test_an_intent_with_a_repeated_quantity_is_refused_and_not_traded(
        served: Served, client: httpx.Client) -> None:
    body = "{" + _members(intent("dup-1", qty="1")) + ', "qty": "50"}'

    response = _post(client, "/v1/intents", body, TRADER)

    assert response.status_code == 422, response.text
    assert response.json() == {"error": "invalid", "detail": f"$.qty: {TWICE}"}
    assert served.sent() == []
    retried = client.post("/v1/intents", json=intent("dup-1", qty="1"), headers=auth(TRADER))
    assert retried.status_code == 200 and retried.json()["replayed"] is False


def _refusal(body: str) -> str:
    with pytest.raises(ApiError) as refused:
        parse_intents(body.encode())
    assert refused.value.status == 422
    return refused.value.detail


def test_every_way_of_repeating_an_intent_key_is_refused() -> None:
    one = _members(intent("i-1"))
    assert _refusal("{" + one + ', "side": "sell"}') == f"$.side: {TWICE}"
    # An escaped name is the same key.
    assert _refusal("{" + one + ', "q\\u0074y": "50"}') == f"$.qty: {TWICE}"
    assert _refusal("{" + one + ', "tags": {"why": "a", "why": "b"}}') == f"$.tags.why: {TWICE}"
    batch = ('{"intents": [{' + one + '}, {' + _members(intent("i-2"))
             + ', "reduce_only": true, "reduce_only": false}]}')
    assert _refusal(batch) == f"$.intents[1].reduce_only: {TWICE}"
    assert _refusal('{"intents": [{' + one + '}], "intents": [{' + one + "}]}") == \
        f"$.intents: {TWICE}"


def test_field_names_inside_values_are_not_repeated_keys() -> None:
    # A name written again as a value, or the same key in different objects, is no repeat.
    tagged = {**intent("i-1"), "tags": {"qty": "qty", "note": 'say "qty"'}}
    [decoded], batch = parse_intents(json.dumps(tagged).encode())
    assert not batch and decoded.tags == {"qty": "qty", "note": 'say "qty"'}
    both = json.dumps({"intents": [intent("i-1"), intent("i-2")]}).encode()
    assert [i.intent_id for i in parse_intents(both)[0]] == ["i-1", "i-2"]


def test_the_cheap_test_lets_through_only_bodies_without_repeats() -> None:
    plain = json.dumps({"a": [{"b": "x", "c": 1}, {"b": "y"}], "d": {"e": None}}).encode()
    assert not may_repeat_keys(plain)
    refuse_repeated_keys(plain)
    for repeated in (b'{"a": 1, "a": 1}', b'{"a": [{"b": 1, "b": "x"}]}',
                     b'{"a": {"b": {"c": "", "c": ""}}}'):
        assert may_repeat_keys(repeated)
        with pytest.raises(ApiError):
            refuse_repeated_keys(repeated)
    # Escapes can hide a repeat from a count of quotes: such bodies get the exact check.
    assert may_repeat_keys(b'{"a": "\\u0022", "a": "\\u0022"}')
