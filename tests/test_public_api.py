"""The public API, used exactly as a user would: only `import ordergate` and names from it.

A strategy runs end to end through the embedding API (journal, engine, dispatcher, simulated
broker); the promises users rely on are checked through that surface alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import ordergate
from ordergate import (
    AsyncGateway,
    Decision,
    DecisionKind,
    Gateway,
    InvalidInput,
    KillScope,
    MarketSnapshot,
    Mode,
    OrderIntent,
    Side,
)

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: public-api
engine:
  cancel_all_on_kill: true
defaults:
  max_market_data_age: 1m
  max_order_qty: 100
  max_position_qty: 150
  exposure_modify: true
"""


def quote(price: str, seconds: int) -> MarketSnapshot:
    mid = Decimal(price)
    return MarketSnapshot(symbol="AAPL", ts=T0 + timedelta(seconds=seconds),
                          bid=mid - Decimal("0.01"), ask=mid + Decimal("0.01"), last=mid)


def intent(intent_id: str, side: str, qty: str, seconds: int) -> dict[str, object]:
    return {"intent_id": intent_id, "ts": (T0 + timedelta(seconds=seconds)).isoformat(),
            "account": "ACC-1", "strategy": "demo", "symbol": "AAPL", "side": side, "qty": qty}


def test_all_names_are_exported_and_nothing_else_is_public() -> None:
    assert sorted(ordergate.__all__) == sorted(set(ordergate.__all__))
    for name in ordergate.__all__:
        assert getattr(ordergate, name) is not None
    assert set(dir(ordergate)) == set(ordergate.__all__)
    with pytest.raises(AttributeError):
        _ = ordergate.Runtime


def test_import_ordergate_loads_no_optional_dependency() -> None:
    code = ("import sys, ordergate; "
            "print(sorted(m for m in ('httpx', 'ccxt', 'alpaca', 'psycopg', "
            "'ordergate.runtime.loop') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_a_strategy_runs_end_to_end_through_the_public_api(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        decisions: list[Decision] = []
        for step in range(4):
            gateway.on_market(quote(str(100 + step), 10 * step + 1))
            decisions.append(gateway.submit(intent(f"buy-{step}", "buy", "60", 10 * step + 2)))
        fat = gateway.submit(intent("fat", "buy", "1000", 50))
        status = gateway.status()
    kinds = [d.decision for d in decisions]
    # 60 + 60 fit under the 150 cap, the third is trimmed to 30, the fourth has no room left.
    assert kinds == [DecisionKind.ALLOW, DecisionKind.ALLOW, DecisionKind.MODIFY,
                     DecisionKind.DENY]
    assert decisions[2].modified_qty == 30 and decisions[3].blocking == "EXP-001"
    assert fat.blocking == "ORD-006" and ordergate.reason("ORD-006").name == "MAX_ORDER_QTY"
    assert [p.qty for p in status.positions] == [150]
    assert status.mode is Mode.ACTIVE


def test_a_retried_intent_gets_the_original_decision_and_no_second_order(
        tmp_path: Path) -> None:
    broker = ordergate.SimBroker(ordergate.SimConfig())
    with Gateway.open(POLICY, journal=tmp_path / "j.db", broker=broker, clock="event") as gw:
        gw.fund("ACC-1", "100000", ts=T0)
        gw.on_market(quote("100", 1))
        first = gw.submit(intent("once", "buy", "10", 2))
        again = gw.submit(intent("once", "buy", "10", 3))
    assert again == first and first.decision is DecisionKind.ALLOW
    assert len(broker.submissions()) == 1


def test_reopening_the_journal_recovers_positions_and_mode(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.on_market(quote("100", 1))
        gateway.submit(intent("held", "buy", "40", 2))
        gateway.halt("ops-alice", "end of day")
    with Gateway.open(POLICY, journal=journal, clock="event") as reopened:
        status = reopened.status()
        assert reopened.mode is Mode.HALTED
        assert [p.qty for p in status.positions] == [40]
        assert reopened.submit(intent("after", "buy", "1", 3)).blocking == "MOD-001"
        resumed = reopened.resume("ops-bob", "new day")
    assert resumed.mode is Mode.ACTIVE


def test_a_restart_replaces_the_journals_policy_with_the_public_policy_replacement(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    tighter = POLICY.replace("public-api", "public-api-2").replace("max_order_qty: 100",
                                                                   "max_order_qty: 10")
    with Gateway.open(POLICY, journal=journal, clock="event") as first:
        first.fund("ACC-1", "100000", ts=T0)
    with Gateway.open(tighter, journal=journal, clock="event") as kept:
        assert kept.policy.name == "public-api"  # a restart alone never changes the limits
    replacement = ordergate.PolicyReplacement(operator="ops-alice", reason="tighter limits")
    with Gateway.open(tighter, journal=journal, clock="event",
                      replace_policy=replacement) as replaced:
        assert replaced.policy.name == "public-api-2"
        assert replaced.policy_choice is not None
        assert replaced.policy_choice.outcome == "replaced"

    async def replaced_async() -> str:
        back = ordergate.PolicyReplacement(operator="ops-alice", reason="back to the first")
        async with await AsyncGateway.open(POLICY, journal=journal, clock="event",
                                           replace_policy=back) as gateway:
            return gateway.gateway.policy.name

    assert asyncio.run(replaced_async()) == "public-api"  # the async door takes it too


def test_reduce_only_lets_a_reducing_order_through_and_refuses_an_opening_one(
        tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.on_market(quote("100", 1))
        gateway.submit(intent("open", "buy", "50", 2))
        outcome = gateway.reduce_only("ops-alice", "risk review")
        opening = gateway.submit(intent("more", "buy", "10", 3))
        reducing = gateway.submit(intent("less", "sell", "20", 3))
    assert outcome.mode is Mode.REDUCE_ONLY
    assert opening.blocking == "MOD-002"
    assert reducing.decision is DecisionKind.ALLOW and reducing.risk_reducing


def test_bad_input_names_the_field_and_journals_nothing(tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event") as gateway:
        with pytest.raises(InvalidInput, match="qty"):
            gateway.submit(intent("neg", "buy", "-5", 1))
        with pytest.raises(InvalidInput, match=r"intent\.qty.*float"):
            gateway.submit({**intent("float", "buy", "1", 1), "qty": 1.5})
        with pytest.raises(InvalidInput, match="reason"):
            gateway.halt("ops-alice", "  ")
        with pytest.raises(InvalidInput, match="clock='event'"):
            gateway.tick()
        assert gateway.event_time is None
    with pytest.raises(ordergate.PolicyError, match="max_order_qty"):
        Gateway.open(POLICY.replace("max_order_qty: 100", "max_order_qty: -1"),
                     journal=tmp_path / "other.db")


def test_typed_intents_work_as_well_as_dicts(tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.on_market(quote("100", 1))
        typed = OrderIntent(intent_id="typed", ts=T0 + timedelta(seconds=2), account="ACC-1",
                            strategy="demo", symbol="AAPL", side=Side.BUY,
                            qty=Decimal(5))
        assert gateway.submit(typed).decision is DecisionKind.ALLOW


def test_a_closed_gateway_refuses_calls(tmp_path: Path) -> None:
    gateway = Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event")
    gateway.close()
    gateway.close()
    with pytest.raises(ordergate.GatewayClosed):
        gateway.submit(intent("late", "buy", "1", 1))


def test_async_gateway_runs_the_same_pipeline_on_one_worker_thread(tmp_path: Path) -> None:
    async def run() -> tuple[list[Decision], Mode]:
        async with await AsyncGateway.open(POLICY, journal=tmp_path / "j.db",
                                           clock="event") as gateway:
            await gateway.fund("ACC-1", "100000", ts=T0)
            await gateway.on_market(quote("100", 1))
            decisions = await asyncio.gather(
                *(gateway.submit(intent(f"a-{n}", "buy", "10", 2)) for n in range(5)))
            halted = await gateway.halt("ops-alice", "async drill")
            return list(decisions), halted.mode

    decisions, mode = asyncio.run(run())
    assert all(d.decision is DecisionKind.ALLOW for d in decisions)
    assert sorted(d.intent_id for d in decisions) == [f"a-{n}" for n in range(5)]
    assert mode is Mode.HALTED


def test_async_gateway_offers_the_operator_commands_of_the_gateway(tmp_path: Path) -> None:
    async def run() -> None:
        async with await AsyncGateway.open(POLICY, journal=tmp_path / "j.db",
                                           clock="event") as gateway:
            await gateway.fund("ACC-1", "100000", ts=T0)
            await gateway.on_market(quote("100", 1))
            await gateway.submit(intent("held", "buy", "40", 2))
            resting = await gateway.submit({**intent("stop", "buy", "10", 2),
                                            "order_type": "stop", "stop_price": "120"})
            assert resting.decision is DecisionKind.ALLOW
            working = (await gateway.status()).open_orders
            assert [order.intent_id for order in working] == ["stop"]
            canceled = await gateway.cancel(working[0].client_order_id, "ACC-1",
                                            requested_by="desk")
            assert any(isinstance(event, ordergate.OrderCanceled) for event in canceled)
            assert not (await gateway.status()).open_orders

            killed = await gateway.kill("ops-alice", "drill", scope=KillScope.ACCOUNT,
                                        key="ACC-1")
            assert [kill.key for kill in (await gateway.status()).kills] == ["ACC-1"]
            assert killed.messages
            blocked = await gateway.submit(intent("while-killed", "buy", "1", 3))
            assert blocked.blocking == "KIL-002"

            flattened = await gateway.flatten("ops-alice", "drill", scope=KillScope.ACCOUNT,
                                              key="ACC-1")
            closing = [event for event in flattened.events
                       if isinstance(event, ordergate.Dispatch)]
            assert [(d.side, d.qty, d.reduce_only) for d in closing] == [
                (Side.SELL, Decimal(40), True)]
            assert [p.qty for p in (await gateway.status()).positions if p.qty] == []

            released = await gateway.unkill("ops-bob", "drill over", scope=KillScope.ACCOUNT,
                                            key="ACC-1")
            assert released.mode is Mode.ACTIVE
            assert not (await gateway.status()).kills
            after = await gateway.submit(intent("after-drill", "buy", "1", 4))
            assert after.decision is DecisionKind.ALLOW

    asyncio.run(run())
