"""The HTTP client against a real `ordergate serve` app on loopback: typed answers, idempotent
retries, bounded retries only where safe, and one exception class per failure."""

from __future__ import annotations

import asyncio
import socket

import pytest
from client_support import OPERATOR, POLICY, SLOW, TRADER, VIEWER, Served, intent

from ordergate.client import (
    AsyncClient,
    AuthError,
    Client,
    ForbiddenError,
    GatewayUnavailable,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    field_of,
)
from ordergate.model.decision import DecisionKind
from ordergate.service.schemas import IntentResult


class Sleeps:
    """Records the waits the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_submit_returns_a_typed_decision_and_a_repeat_is_the_original(served: Served) -> None:
    with Client(served.url, TRADER) as client:
        first = client.submit(intent("c-1"))
        again = client.submit(intent("c-1"))
    assert isinstance(first, IntentResult)
    assert first.decision.decision is DecisionKind.ALLOW and not first.replayed
    assert again.replayed and again.decision == first.decision
    assert len(served.sent()) == 1


def test_submit_batch_decides_every_intent_in_order(served: Served) -> None:
    with Client(served.url, TRADER) as client:
        batch = client.submit_batch([intent("b-1"), intent("b-2", qty="5000")])
    assert [r.intent_id for r in batch.results] == ["b-1", "b-2"]
    assert batch.results[0].decision.decision is DecisionKind.ALLOW
    assert batch.results[1].decision.blocking == "ORD-006"
    assert batch.results[1].blocking_meaning


def test_reads_status_health_and_decisions(served: Served) -> None:
    with Client(served.url, TRADER) as trader:
        for number in range(5):
            trader.submit(intent(f"r-{number}", seconds=1 + number))
        # 5 s ahead of the gateway's clock: the furthest ahead it accepts
        trader.submit(intent("r-big", qty="5000", seconds=6))
        assert trader.decision("r-big").decision.blocking == "ORD-006"
        with pytest.raises(NotFoundError):
            trader.decision("never-sent")
    with Client(served.url, VIEWER) as viewer:
        assert viewer.status().mode == "ACTIVE"
        assert viewer.health().ready
        denied = viewer.decisions(decision="DENY")
        assert [item.intent_id for item in denied.items] == ["r-big"]
        page = viewer.decisions(limit=2)
        assert len(page.items) == 2 and page.next_cursor is not None
        every = [item.intent_id for item in viewer.iter_decisions(limit=2)]
    assert every == ["r-big", "r-4", "r-3", "r-2", "r-1", "r-0"]


def test_operator_commands_change_the_mode(served: Served) -> None:
    with Client(served.url, OPERATOR) as ops, Client(served.url, TRADER) as trader:
        halted = ops.halt("drill", cancel_all=True)
        assert halted.mode == "HALTED" and halted.operator == "ops-alice"
        assert trader.submit(intent("h-1")).decision.blocking == "MOD-001"
        assert ops.reduce_only("step down").mode == "HALTED"
        assert ops.resume("drill over").mode == "ACTIVE"
        dry = ops.activate_policy(POLICY.replace("client-test", "client-2"), "try it",
                                  dry_run=True)
        assert dry.dry_run and not dry.activated and dry.name == "client-2"
        status = ops.status()
        assert status.shadow_policy_hash == dry.policy_hash != status.policy_hash
        ended = ops.end_dry_run("seen enough")
        assert "cleared by ops-alice" in ended.message
        assert not ops.status().shadow_policy_hash
        assert ops.status().policy_hash == status.policy_hash
        live = ops.activate_policy(POLICY.replace("client-test", "client-3"), "enforce it")
        assert live.activated and ops.status().policy_name == "client-3"


def test_each_failure_has_its_exception_class(served: Served) -> None:
    with Client(served.url, "not-a-token-at-all-000000") as stranger, pytest.raises(AuthError):
        stranger.status()
    with Client(served.url, VIEWER) as viewer, pytest.raises(ForbiddenError) as forbidden:
        viewer.submit(intent("f-1"))
    assert forbidden.value.status == 403
    with Client(served.url, TRADER) as trader, pytest.raises(ForbiddenError):
        trader.submit(intent("f-2", account="ACC-OTHER"))
    with Client(served.url, OPERATOR) as ops, pytest.raises(ValidationError) as invalid:
        ops.halt("x" * 501)
    assert invalid.value.status == 422 and invalid.value.field == "$.reason"
    with Client(served.url, OPERATOR) as ops, pytest.raises(ValidationError) as bad_policy:
        ops.activate_policy("apiVersion: ordergate/v1\nkind: Policy\n", "broken")
    assert bad_policy.value.status == 422


def test_a_bad_intent_field_fails_before_sending_with_its_path(served: Served) -> None:
    sleeps = Sleeps()
    with Client(served.url, TRADER, sleep=sleeps) as client:
        with pytest.raises(ValidationError) as negative:
            client.submit(intent("v-1", qty="-5"))
        with pytest.raises(ValidationError) as floating:
            client.submit({**intent("v-2"), "qty": 1.5})
        with pytest.raises(ValidationError) as in_batch:
            client.submit_batch([intent("v-3"), {**intent("v-4"), "side": "sideways"}])
    assert negative.value.field == "$.qty"
    assert floating.value.field == "$.qty"
    assert in_batch.value.field == "$.intents[1].side"
    assert served.broker.submissions() == []


def test_429_is_retried_after_retry_after_then_raised_when_the_budget_is_spent(
        served: Served) -> None:
    sleeps = Sleeps()
    with Client(served.url, SLOW, retries=2, sleep=sleeps) as client:
        client.status()
        with pytest.raises(RateLimitedError) as limited:
            client.status()
    assert limited.value.retry_after >= 1
    assert sleeps.waits == [limited.value.retry_after] * 2


def test_a_retry_after_longer_than_the_limit_is_raised_at_once(served: Served) -> None:
    sleeps = Sleeps()
    with Client(served.url, SLOW, max_retry_wait_s=0.5, sleep=sleeps) as client:
        client.status()
        with pytest.raises(RateLimitedError):
            client.status()
    assert sleeps.waits == []


def test_503_is_retried_for_submits_but_never_for_operator_commands(served: Served) -> None:
    served.gateway.bridge.stop()
    sleeps = Sleeps()
    with Client(served.url, TRADER, retries=3, sleep=sleeps) as trader, \
            pytest.raises(GatewayUnavailable) as unavailable:
        trader.submit(intent("u-1"))
    assert unavailable.value.status == 503 and len(sleeps.waits) == 3
    command_sleeps = Sleeps()
    with Client(served.url, OPERATOR, retries=3, sleep=command_sleeps) as ops, \
            pytest.raises(GatewayUnavailable):
        ops.halt("engine down")
    assert command_sleeps.waits == []


def test_an_unreachable_gateway_is_retried_a_bounded_number_of_times() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with Client(f"http://127.0.0.1:{port}", VIEWER, retries=2, sleep=sleeps) as client, \
            pytest.raises(GatewayUnavailable) as unreachable:
        client.health()
    assert unreachable.value.status == 0 and len(sleeps.waits) == 2


def test_field_paths_are_read_from_server_messages() -> None:
    assert field_of("Expected `str`, got `int` - at `$.intents[2].symbol`") == \
        "$.intents[2].symbol"
    assert field_of("$.intents[0].account: token 'x' may not trade") == "$.intents[0].account"
    assert field_of("reason: must not be blank") == "$.reason"
    assert field_of("something else went wrong") == ""


def test_async_client_submits_and_reads(served: Served) -> None:
    async def run() -> tuple[IntentResult, str]:
        async with AsyncClient(served.url, TRADER) as trader, \
                AsyncClient(served.url, VIEWER) as viewer:
            results = await asyncio.gather(*(trader.submit(intent(f"a-{n}")) for n in range(4)))
            again = await trader.submit(intent("a-0"))
            assert all(r.decision.decision is DecisionKind.ALLOW for r in results)
            return again, (await viewer.status()).mode

    again, mode = asyncio.run(run())
    assert again.replayed and mode == "ACTIVE"
