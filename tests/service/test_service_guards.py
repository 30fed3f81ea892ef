"""Guards of the HTTP edge, against a real gateway on 127.0.0.1: an intent or a quote stamped
far from the server's clock is refused before it is journaled (one from 2099 would hold event
time there for good); bytes that are not UTF-8 are a 400 on every POST route; the decisions
query refuses what it does not know; an operator past its rate limit can still halt; operators
re-enable a disabled strategy and engage or release kill switches over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.journal import RecordKind, open_journal
from ordergate.policy.loader import Policy, parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.service import openapi
from ordergate.service.auth import Principal, Role, TokenStore
from service.support import (
    FEEDER,
    OPERATOR,
    POLICY,
    T0,
    TRADER,
    TRADER_B,
    VIEWER,
    Served,
    auth,
    feed,
    intent,
    quote,
    start,
)

HASTY_OPERATOR = "hasty-operator-token-0123456789"


@dataclass
class Clock:
    """The gateway's wall clock, moved by the test."""

    now: datetime = field(default_factory=lambda: T0 + timedelta(seconds=1))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Running:
    """A gateway of `service.support.start` and the wall clock the test moves."""

    served: Served
    clock: Clock

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def journal_url(self) -> str:
        return self.served.journal_url

    def stop(self) -> None:
        self.served.stop()


def _tokens() -> TokenStore:
    return TokenStore.from_tokens({
        TRADER: Principal(name="desk-a", role=Role.TRADER, accounts=frozenset({"ACC-1"})),
        TRADER_B: Principal(name="desk-b", role=Role.TRADER, accounts=frozenset({"ACC-2"})),
        OPERATOR: Principal(name="ops-alice", role=Role.OPERATOR),
        VIEWER: Principal(name="screen", role=Role.VIEWER),
        FEEDER: Principal(name="feed-1", role=Role.FEEDER),
        HASTY_OPERATOR: Principal(name="ops-hasty", role=Role.OPERATOR,
                                  requests_per_second=0.001, burst=2),
    })


def _start(tmp_path: Path, policy: Policy | None = None, clock: Clock | None = None) -> Running:
    clock = clock or Clock()
    return Running(start(tmp_path, policy=policy, wall_clock=clock, token_store=_tokens()),
                   clock)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Running]:
    running = _start(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(gateway: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10.0) as http:
        yield http


def _journaled(journal_url: str, kind: str) -> list[dict[str, Any]]:
    handle = open_journal(journal_url, create=False)
    try:
        events = [json.loads(record.payload) for record in handle.read()
                  if record.kind is RecordKind.INPUT]
    finally:
        handle.close()
    return [event for event in events if event.get("type") == kind]


def _post_intent(client: httpx.Client, body: object, token: str = TRADER) -> httpx.Response:
    return client.post("/v1/intents", json=body, headers=auth(token))


def _event_time(client: httpx.Client) -> str:
    status = client.get("/v1/status", headers=auth(VIEWER))
    assert status.status_code == 200, status.text
    return str(status.json()["event_time"])


# ---------------------------------------------------------------- timestamps far from the clock


def test_an_intent_from_2099_is_refused_naming_ts_and_trading_goes_on(
        gateway: Running, client: httpx.Client) -> None:
    before = _event_time(client)
    future = _post_intent(client, {**intent("from-2099"), "ts": "2099-01-01T00:00:00Z"})
    assert future.status_code == 422, future.text
    detail = future.json()["detail"]
    assert detail.startswith("$.ts: 2099-01-01T00:00:00Z is ")
    assert "ahead of the server's clock (2026-03-02T14:30:01Z)" in detail
    assert "at most 5 s ahead is accepted" in detail
    batch = _post_intent(client, {"intents": [intent("beside"), {**intent("far"),
                                                                 "ts": "2030-01-01T00:00:00Z"}]})
    assert batch.status_code == 422 and batch.json()["detail"].startswith("$.intents[1].ts: ")
    assert _event_time(client) == before
    after = _post_intent(client, intent("after"))
    assert after.status_code == 200 and after.json()["decision"]["decision"] == "ALLOW", after.text
    gateway.stop()
    assert [e["intent_id"] for e in _journaled(gateway.journal_url, "intent")] == ["after"]


def test_the_policys_max_intent_skew_bounds_how_far_ahead(tmp_path: Path) -> None:
    policy = parse_policy(POLICY.replace("defaults:\n", "defaults:\n  max_intent_skew: 2s\n"))
    running = _start(tmp_path, policy)
    try:
        with httpx.Client(base_url=running.url, timeout=10.0) as client:
            ahead = _post_intent(client, intent("three-ahead", seconds=4))
            assert ahead.status_code == 422, ahead.text
            assert "at most 2 s ahead is accepted (the policy's max_intent_skew)" in (
                ahead.json()["detail"])
            within = _post_intent(client, intent("two-ahead", seconds=3))
            assert within.status_code == 200, within.text
    finally:
        running.stop()


def test_a_retry_of_an_old_intent_gets_its_decision_but_a_new_old_intent_is_refused(
        tmp_path: Path) -> None:
    running = _start(tmp_path)
    try:
        with httpx.Client(base_url=running.url, timeout=10.0) as client:
            first = _post_intent(client, intent("old-1"))
            assert first.status_code == 200, first.text
            running.clock.now = T0 + timedelta(hours=30)
            retry = _post_intent(client, intent("old-1"))
            assert retry.status_code == 200, retry.text
            assert retry.json()["replayed"] is True
            assert retry.json()["decision"] == first.json()["decision"]
            late = _post_intent(client, intent("old-2"))
            assert late.status_code == 422, late.text
            assert late.json()["detail"].startswith("$.ts: 2026-03-02T14:30:01Z is 30 h behind")
    finally:
        running.stop()
    assert [e["intent_id"] for e in _journaled(running.journal_url, "intent")] == ["old-1"]


def test_a_quote_from_2099_is_refused_naming_ts_and_moves_no_clock(
        gateway: Running, client: httpx.Client) -> None:
    before = _event_time(client)
    one = client.post("/v1/market", json={**quote("AAPL", "100.00"),
                                          "ts": "2099-01-01T00:00:00Z"}, headers=auth(FEEDER))
    assert one.status_code == 422, one.text
    assert one.json()["detail"].startswith("$.ts: 2099-01-01T00:00:00Z is ahead of the server")
    batch = client.post("/v1/market", json={"snapshots": [
        quote("AAPL", "100.00"), {**quote("MSFT", "200.00"), "ts": "2099-01-01T00:00:00Z"}]},
        headers=auth(FEEDER))
    assert batch.status_code == 422 and batch.json()["detail"].startswith("$.snapshots[1].ts:")
    assert _event_time(client) == before
    allowed = _post_intent(client, intent("after-quote"))
    assert allowed.json()["decision"]["decision"] == "ALLOW", allowed.text
    gateway.stop()
    assert len(_journaled(gateway.journal_url, "market")) == 2  # the two fed at start


# ---------------------------------------------------------------- bytes that are not UTF-8


_NOT_UTF8 = b"\xff\xfe"


def _with_bad_bytes(body: dict[str, Any], name: str) -> bytes:
    """`body` as JSON with the string field `name` holding bytes that are not UTF-8."""
    encoded = json.dumps({**body, name: "@@BAD@@"}).encode()
    return encoded.replace(b"@@BAD@@", _NOT_UTF8)


_BODIES: dict[str, tuple[str, dict[str, Any], str]] = {
    "/v1/intents": (TRADER, intent("utf8"), "intent_id"),
    "/v1/market": (FEEDER, quote("AAPL", "100.00"), "symbol"),
    "/v1/mode/reduce-only": (OPERATOR, {}, "reason"),
    "/v1/mode/halt": (OPERATOR, {}, "reason"),
    "/v1/mode/resume": (OPERATOR, {}, "reason"),
    "/v1/policy": (OPERATOR, {}, "document"),
    "/v1/policy/dry-run/end": (OPERATOR, {}, "reason"),
    "/v1/kill": (OPERATOR, {"scope": "firm"}, "reason"),
    "/v1/unkill": (OPERATOR, {"scope": "firm"}, "reason"),
    "/v1/strategies/enable": (OPERATOR, {"strategy": "momo"}, "reason"),
}


def test_every_post_route_is_covered_here() -> None:
    posts = {route.path for route in openapi.ROUTES if route.method == "POST"}
    assert posts == set(_BODIES)


@pytest.mark.parametrize("path", sorted(_BODIES))
def test_bytes_that_are_not_utf8_are_a_400_on_every_post_route(
        client: httpx.Client, path: str) -> None:
    token, body, name = _BODIES[path]
    response = client.post(path, content=_with_bad_bytes(body, name),
                           headers={**auth(token), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "malformed_json",
        "detail": "request body is not valid UTF-8: a JSON string holds the byte 0xFF "
                  "(invalid start byte); send the body encoded as UTF-8"}
    assert client.get("/v1/status", headers=auth(VIEWER)).json()["mode"] == "ACTIVE"


# ---------------------------------------------------------------- the decisions query


@pytest.mark.parametrize("query", ["bogus=1", "from=2026-03-02T14:30:00Z"])
def test_an_unknown_decisions_query_parameter_is_refused_naming_it(
        client: httpx.Client, query: str) -> None:
    response = client.get(f"/v1/decisions?{query}", headers=auth(VIEWER))
    assert response.status_code == 422, response.text
    name = query.split("=")[0]
    assert response.json()["detail"] == (
        f"query '{name}': unknown parameter; accepted: since, until, symbol, account, reason, "
        "decision, monitor, shadow_differs, limit, cursor")


def test_a_repeated_decisions_query_parameter_is_refused(client: httpx.Client) -> None:
    response = client.get("/v1/decisions?symbol=AAPL&symbol=MSFT", headers=auth(VIEWER))
    assert response.status_code == 422
    assert response.json()["detail"] == "query symbol: given 2 times; give it once"


def test_an_unknown_reason_code_filter_is_refused_naming_it(client: httpx.Client) -> None:
    assert _post_intent(client, intent("big", qty="5000")).status_code == 200
    unknown = client.get("/v1/decisions?reason=NOPE-1", headers=auth(VIEWER))
    assert unknown.status_code == 422, unknown.text
    assert "unknown reason code 'NOPE-1'" in unknown.json()["detail"]
    known = client.get("/v1/decisions?reason=ORD-006", headers=auth(VIEWER))
    assert [item["intent_id"] for item in known.json()["items"]] == ["big"]


# ---------------------------------------------------------------- halting past the rate limit


def test_an_operator_past_its_rate_limit_can_still_halt(client: httpx.Client) -> None:
    hasty = auth(HASTY_OPERATOR)
    for _ in range(2):
        assert client.get("/v1/status", headers=hasty).status_code == 200
    assert client.get("/v1/status", headers=hasty).status_code == 429
    reduce = client.post("/v1/mode/reduce-only", json={"reason": "drill"}, headers=hasty)
    assert reduce.status_code == 200 and reduce.json()["mode"] == "REDUCE_ONLY", reduce.text
    kill = client.post("/v1/kill", json={"scope": "symbol", "name": "AAPL", "reason": "drill"},
                       headers=hasty)
    assert kill.status_code == 200, kill.text
    halt = client.post("/v1/mode/halt", json={"reason": "stop now"}, headers=hasty)
    assert halt.status_code == 200 and halt.json()["mode"] == "HALTED", halt.text
    assert halt.json()["operator"] == "ops-hasty"
    # loosening stays rate limited, and halting still needs the operator role and a token
    resume = client.post("/v1/mode/resume", json={"reason": "drill over"}, headers=hasty)
    assert resume.status_code == 429
    viewer = client.post("/v1/mode/halt", json={"reason": "x"}, headers=auth(VIEWER))
    assert viewer.status_code == 403
    assert client.post("/v1/mode/halt", json={"reason": "x"}).status_code == 401


# ---------------------------------------------------------------- strategies and kill switches


REPEATED = POLICY.replace("defaults:\n", "defaults:\n  repeated_execution: {max: 2, window: 1h}\n")


def test_a_disabled_strategy_is_re_enabled_over_http(tmp_path: Path) -> None:
    running = _start(tmp_path, parse_policy(REPEATED))
    try:
        with httpx.Client(base_url=running.url, timeout=10.0) as client:
            for number in (1, 2):
                answer = _post_intent(client, intent(f"fill-{number}"))
                assert answer.json()["decision"]["decision"] == "ALLOW", answer.text
            disabled = _post_intent(client, intent("while-disabled"))
            assert disabled.json()["decision"]["blocking"] == "THR-006", disabled.text
            by_trader = client.post("/v1/strategies/enable",
                                    json={"strategy": "momo", "reason": "x"}, headers=auth(TRADER))
            assert by_trader.status_code == 403
            enabled = client.post("/v1/strategies/enable",
                                  json={"strategy": "momo", "reason": "fills checked"},
                                  headers=auth(OPERATOR))
            assert enabled.status_code == 200, enabled.text
            assert enabled.json()["operator"] == "ops-alice"
            assert "strategy momo re-enabled by ops-alice: fills checked" in (
                enabled.json()["message"])
            allowed = _post_intent(client, intent("re-enabled"))
            assert allowed.json()["decision"]["decision"] == "ALLOW", allowed.text
            again = client.post("/v1/strategies/enable",
                                json={"strategy": "other", "reason": "x"}, headers=auth(OPERATOR))
            assert again.status_code == 409, again.text
            assert "strategy other is not disabled" in again.json()["detail"]
    finally:
        running.stop()
    commands = [(c["action"], c["operator"], c["key"], c["reason"])
                for c in _journaled(running.journal_url, "command")
                if c["action"] != "activate_policy"]
    assert commands == [("enable_strategy", "ops-alice", "momo", "fills checked"),
                        ("enable_strategy", "ops-alice", "other", "x")]


def test_an_account_kill_switch_is_engaged_and_released_over_http(
        gateway: Running, client: httpx.Client) -> None:
    ops = auth(OPERATOR)
    kill = client.post("/v1/kill", json={"scope": "account", "name": "ACC-1",
                                         "reason": "runaway"}, headers=ops)
    assert kill.status_code == 200, kill.text
    denied = _post_intent(client, intent("killed"))
    assert denied.json()["decision"]["blocking"] == "KIL-002", denied.text
    other = _post_intent(client, intent("other-account", account="ACC-2"), TRADER_B)
    assert other.json()["decision"]["decision"] == "ALLOW", other.text
    unkill = client.post("/v1/unkill", json={"scope": "account", "name": "ACC-1",
                                             "reason": "fixed"}, headers=ops)
    assert unkill.status_code == 200, unkill.text
    assert _post_intent(client, intent("released")).json()["decision"]["decision"] == "ALLOW"
    twice = client.post("/v1/unkill", json={"scope": "account", "name": "ACC-1",
                                            "reason": "fixed"}, headers=ops)
    assert twice.status_code == 409
    assert "no kill switch is engaged for account:ACC-1" in twice.json()["detail"]
    gateway.stop()
    commands = [(c["action"], c["scope"], c["key"], c["operator"])
                for c in _journaled(gateway.journal_url, "command")
                if c["action"] != "activate_policy"]
    assert commands == [("kill", "account", "ACC-1", "ops-alice"),
                        ("unkill", "account", "ACC-1", "ops-alice"),
                        ("unkill", "account", "ACC-1", "ops-alice")]


@pytest.mark.parametrize(("body", "said"), [
    ({"scope": "account", "reason": "x"}, "$.name: scope account needs the account it covers"),
    ({"scope": "firm", "name": "ACC-1", "reason": "x"}, "$.name: scope firm covers everything"),
    ({"scope": "desk", "reason": "x"}, "$.scope"),
    ({"scope": "symbol", "name": "AA\nPL", "reason": "x"}, "$.name: character 2 is the control"),
])
def test_a_kill_request_that_names_no_clear_scope_is_refused(
        client: httpx.Client, body: dict[str, Any], said: str) -> None:
    response = client.post("/v1/kill", json=body, headers=auth(OPERATOR))
    assert response.status_code == 422, response.text
    assert said in response.json()["detail"]


def test_a_history_file_under_run_is_not_held_to_the_servers_clock(tmp_path: Path) -> None:
    """The bound lives at the HTTP edge: `ordergate run` replays files of any age."""
    from ordergate.runtime.runfile import run_file

    events = tmp_path / "events.jsonl"
    lines = [json.dumps({**intent("history-1"), "ts": "2019-06-03T14:30:01Z"}),
             json.dumps({**intent("history-2"), "ts": "2099-01-01T00:00:00Z"})]
    events.write_text("\n".join(lines) + "\n")
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'run.db'}", parse_policy(POLICY),
                           SimBroker(SimConfig()))
    try:
        runtime.process(feed(datetime(2019, 6, 3, 14, 30, tzinfo=T0.tzinfo)))
        run_file(runtime, events)
        decided = runtime.engine.state.decided
        assert [("ACC-1", "momo", f"history-{n}") in decided for n in (1, 2)] == [True, True]
    finally:
        runtime.close()
