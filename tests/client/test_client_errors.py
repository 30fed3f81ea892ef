"""Every id the gateway accepts can be looked up; a conflict has its own error class with the
field; no password from the base URL is shown; each field is named once, as a `$.` path.
Against a real gateway on loopback."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest
from client_support import OPERATOR, POLICY, TRADER, VIEWER, Served, intent

from ordergate.client import (
    Client,
    ConflictError,
    GatewayUnavailable,
    ValidationError,
    field_of,
)
from ordergate.service import openapi


@pytest.mark.parametrize("intent_id", [
    "a/b", "acct/2026/1", "..", ".", "../x", "a/../b", "a/", "/", "a//b", "a.b", "%2F", "x%",
    "q?z=1", "h#1",
])
def test_decision_finds_every_intent_id_the_gateway_accepts(
        served: Served, intent_id: str) -> None:
    with Client(served.url, TRADER) as trader:
        decided = trader.submit(intent(intent_id))
        assert trader.decision(intent_id).decision == decided.decision
    with Client(served.url, VIEWER) as viewer:
        assert viewer.decision(intent_id).intent_id == intent_id


def test_the_openapi_document_names_the_decision_path_without_router_syntax() -> None:
    paths = openapi.document()["paths"]
    assert "/v1/decisions/{intent_id}" in paths
    assert not any(":" in path for path in paths)


def test_a_reused_intent_id_is_a_conflict_error_naming_the_field(served: Served) -> None:
    with Client(served.url, TRADER) as trader:
        trader.submit(intent("e-1"))
        with pytest.raises(ConflictError) as single:
            trader.submit(intent("e-1", qty="11"))
        with pytest.raises(ConflictError) as in_batch:
            trader.submit_batch([intent("e-2"), intent("e-1", qty="11")])
    assert single.value.status == 409 and single.value.error == "intent_id_conflict"
    assert single.value.field == "$.intent_id"
    assert in_batch.value.field == "$.intents[1].intent_id"
    assert not isinstance(single.value, ValidationError)


def test_an_unreachable_gateway_is_reported_without_the_password_of_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://desk:s3cret@127.0.0.1:{port}", "x", retries=0) as client, \
            pytest.raises(GatewayUnavailable) as unreachable:
        client.health()
    assert "s3cret" not in str(unreachable.value)
    assert f"***@127.0.0.1:{port}" in str(unreachable.value)


def test_a_field_refused_before_sending_is_named_once(served: Served) -> None:
    with Client(served.url, TRADER) as trader:
        with pytest.raises(ValidationError) as zero:
            trader.submit_batch([intent("z-1"), intent("z-2", qty="0")])
        with pytest.raises(ValidationError) as naive:
            trader.submit({**intent("z-3"), "ts": datetime(2026, 3, 2, 14, 30)})
        with pytest.raises(ValidationError) as since:
            trader.decisions(since=datetime(2026, 3, 2))
    assert zero.value.field == "$.intents[1].qty"
    assert str(zero.value).startswith("$.intents[1].qty: expected a positive decimal")
    assert naive.value.field == "$.ts"
    assert str(naive.value).startswith("$.ts: timestamp must carry a UTC offset")
    assert since.value.field == "$.since"
    assert served.broker.submissions() == []


def test_a_bad_policy_names_the_document_field(served: Served) -> None:
    with Client(served.url, OPERATOR) as ops, pytest.raises(ValidationError) as bad:
        ops.activate_policy(POLICY.replace("max_market_data_age: 1d\n", ""), "broken")
    assert bad.value.status == 422 and bad.value.field == "$.document"
    assert field_of("request.document:4:1: defaults: missing") == "$.document"
