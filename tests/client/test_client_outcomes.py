"""A request that was sent but whose answer was lost may have been acted on: the client says so
with OutcomeUnknown (never GatewayUnavailable, which means nothing was done), after repeating a
submit under the same intent_id as far as its retries allow. Against a real gateway on loopback
behind a proxy that loses answers after the gateway gave them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from client_support import OPERATOR, TRADER, VIEWER, Served, intent
from lossy_proxy import LossyProxy

from ordergate.client import (
    AsyncClient,
    Client,
    ClientError,
    GatewayUnavailable,
    OutcomeUnknown,
)
from ordergate.model.decision import DecisionKind

NO_WAIT = {"sleep": lambda seconds: None}


@pytest.fixture
def proxy(served: Served) -> Iterator[LossyProxy]:
    port = httpx.URL(served.url).port
    assert port is not None
    with LossyProxy(port) as lossy:
        yield lossy


def test_a_lost_answer_to_a_submit_is_resent_and_the_original_decision_returned(
        served: Served, proxy: LossyProxy) -> None:
    proxy.plan("drop")
    with Client(proxy.url, TRADER, **NO_WAIT) as trader:
        result = trader.submit(intent("lost-1"))
    assert proxy.fates[:2] == ["drop", "pass"]
    assert result.replayed and result.decision.decision is DecisionKind.ALLOW
    assert len(served.sent()) == 1


@pytest.mark.parametrize("fate", ["drop", "hold"])
def test_a_submit_never_answered_within_the_retries_is_outcome_unknown(
        served: Served, proxy: LossyProxy, fate: str) -> None:
    proxy.plan(*[fate] * 3)
    with Client(proxy.url, TRADER, retries=2, timeout_s=0.3, **NO_WAIT) as trader, \
            pytest.raises(OutcomeUnknown) as unknown:
        trader.submit(intent("tmo-1"))
    assert not isinstance(unknown.value, GatewayUnavailable)
    assert unknown.value.status == 0 and unknown.value.error == "outcome_unknown"
    message = str(unknown.value)
    assert "may have been decided" in message and "same intent_id" in message
    assert "decision('tmo-1')" in message
    # It was acted on, once: the decision is there and one order went to the broker.
    with Client(served.url, VIEWER) as viewer:
        assert viewer.decision("tmo-1").decision.decision is DecisionKind.ALLOW
    assert len(served.sent()) == 1


def test_a_batch_never_answered_is_outcome_unknown(served: Served, proxy: LossyProxy) -> None:
    proxy.plan("drop", "drop")
    with Client(proxy.url, TRADER, retries=1, **NO_WAIT) as trader, \
            pytest.raises(OutcomeUnknown) as unknown:
        trader.submit_batch([intent("lb-1"), intent("lb-2")])
    assert "first intent_id 'lb-1'" in str(unknown.value)
    assert len(served.sent()) == 2


@pytest.mark.parametrize("fate", ["drop", "hold"])
def test_an_operator_command_whose_answer_is_lost_is_outcome_unknown_at_once(
        served: Served, proxy: LossyProxy, fate: str) -> None:
    proxy.plan(fate)
    with Client(proxy.url, OPERATOR, timeout_s=0.3, **NO_WAIT) as ops, \
            pytest.raises(OutcomeUnknown) as unknown:
        ops.reduce_only("tighten")
    assert proxy.fates == [fate]  # not sent twice
    assert "/v1/status" in str(unknown.value)
    with Client(served.url, VIEWER) as viewer:
        assert viewer.status().mode == "REDUCE_ONLY"


def test_a_read_whose_answer_is_lost_is_gateway_unavailable(proxy: LossyProxy) -> None:
    proxy.plan("drop", "drop")
    with Client(proxy.url, VIEWER, retries=1, **NO_WAIT) as viewer, \
            pytest.raises(GatewayUnavailable) as unavailable:
        viewer.status()
    assert unavailable.value.error == "no_answer"


def test_async_client_reports_a_lost_submit_as_outcome_unknown(
        served: Served, proxy: LossyProxy) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    async def run() -> ClientError:
        async with AsyncClient(proxy.url, TRADER, retries=1, sleep=no_wait) as trader:
            try:
                await trader.submit(intent("alost-1"))
            except ClientError as exc:
                return exc
        raise AssertionError("the submit was answered")

    proxy.plan("drop", "drop")
    assert isinstance(asyncio.run(run()), OutcomeUnknown)
    assert len(served.sent()) == 1
