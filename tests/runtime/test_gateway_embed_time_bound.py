"""The embedded Gateway holds a new intent's and a snapshot's `ts` to the wall clock, as the HTTP
service does (`runtime.timebound`), except with `clock="event"`.

Event time never goes back. On `clock="wall"`, one intent stamped two days ahead (a strategy
writing local time with a 'Z') rolled the trading day: the daily loss limit (LOS-001) was
wiped, the working DAY order was canceled by the session close, and every correctly stamped
intent after it was denied until the wall clock caught up. The clock here is injected (a
`ManualClock`, or a plain callable), standing for the wall clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate import AsyncGateway, DecisionKind, Gateway, InvalidInput
from ordergate.model.intent import OrderIntent
from ordergate.resilience.clock import ManualClock

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # a Monday, mid-session
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: embed-time-bound}
defaults:
  max_market_data_age: 1h
  max_daily_loss: 1000
  max_intent_skew: 5s
"""


def intent(intent_id: str, ts: datetime, **fields: Any) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": ts, "account": "A1", "strategy": "s",
            "symbol": "BTC-USD", "side": "buy", "qty": "1", **fields}


def typed_intent(intent_id: str, ts: datetime) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account="A1", strategy="s",
                       symbol="BTC-USD", side="buy", qty=Decimal(1))


def quote(ts: datetime, mid: str) -> dict[str, Any]:
    price = Decimal(mid)
    return {"symbol": "BTC-USD", "ts": ts, "bid": str(price - Decimal("0.01")),
            "ask": str(price + Decimal("0.01")), "last": mid}


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture()
def gateway(tmp_path: Path, clock: ManualClock) -> Gateway:
    """The audit's desk: a loss over the daily limit, and a working DAY sell order."""
    opened = Gateway.open(POLICY, journal=tmp_path / "j.db", clock=clock)
    opened.fund("A1", "100000")
    opened.on_market(quote(T0, "100"))
    assert opened.submit(intent("buy", T0, qty="100")).decision is DecisionKind.ALLOW
    opened.on_market(quote(T0, "85"))
    rest = opened.submit(intent("rest", T0, side="sell", order_type="limit",
                                limit_price="200"))
    assert rest.decision is DecisionKind.ALLOW
    loss = opened.submit(intent("loss", T0))
    assert (loss.decision, loss.blocking) == (DecisionKind.DENY, "LOS-001")
    return opened


def daily_pnl(gateway: Gateway) -> Decimal:
    (account,) = gateway.status().accounts
    return account.daily_pnl


def test_intent_stamped_days_ahead_is_refused_and_the_trading_day_stays(
        gateway: Gateway, clock: ManualClock) -> None:
    pnl, event_time = daily_pnl(gateway), gateway.event_time
    with pytest.raises(InvalidInput, match=r"^intent\.ts: .* ahead of the gateway's clock"):
        gateway.submit(intent("future", T0 + timedelta(days=2)))
    assert daily_pnl(gateway) == pnl
    assert len(gateway.status().open_orders) == 1  # the DAY order still works
    assert gateway.event_time == event_time
    # a correctly stamped intent afterwards meets the loss limit, not a clock two days ahead
    clock.advance(1)
    later = gateway.submit(intent("next", T0 + timedelta(seconds=1)))
    assert (later.decision, later.blocking) == (DecisionKind.DENY, "LOS-001")
    assert len(gateway.status().open_orders) == 1
    gateway.close()


def test_a_refused_batch_journals_none_of_its_intents(gateway: Gateway) -> None:
    gateway.on_market(quote(T0, "100"))
    with pytest.raises(InvalidInput, match=r"^intents\[1\]\.ts: .* ahead"):
        gateway.submit_many([intent("sell-1", T0, side="sell"),
                             intent("late", T0 + timedelta(days=2))])
    assert gateway.status().positions[0].qty == Decimal(100)  # sell-1 was not decided
    decision = gateway.submit_many([intent("sell-1", T0, side="sell")])[0]
    assert decision.decision is DecisionKind.ALLOW
    gateway.close()


def test_intent_stamped_more_than_a_day_behind_is_refused(gateway: Gateway) -> None:
    with pytest.raises(InvalidInput, match=r"^intent\.ts: .* behind the gateway's clock"):
        gateway.submit(intent("old", T0 - timedelta(hours=25)))
    gateway.close()


def test_process_holds_its_intents_to_the_bound(gateway: Gateway) -> None:
    future = typed_intent("p-1", T0 + timedelta(days=2))
    with pytest.raises(InvalidInput, match=r"^events\[0\]\.ts: .* ahead"):
        gateway.process([future])
    gateway.close()


def test_retry_of_a_decided_intent_gets_its_decision_whatever_its_ts(
        gateway: Gateway, clock: ManualClock) -> None:
    first = gateway.submit(intent("buy", T0, qty="100"))
    clock.advance(timedelta(hours=30))  # the original ts is now beyond MAX_TS_BEHIND
    assert gateway.submit(intent("buy", T0, qty="100")) == first
    event_time = gateway.event_time
    # restamped far ahead, it is still a retry: answered, and its ts moves no clock
    ahead = T0 + timedelta(days=5)
    assert gateway.submit_many([intent("buy", ahead, qty="100")]) == [first]
    assert gateway.process([typed_intent("loss", ahead)])[0].blocking == "LOS-001"
    assert gateway.event_time == event_time
    # a different intent under a used id is new: held to the bound
    with pytest.raises(InvalidInput, match=r"^intent\.ts: .* ahead"):
        gateway.submit(intent("buy", ahead, qty="7"))
    gateway.close()


def test_snapshot_stamped_ahead_is_refused_and_an_old_one_is_not(gateway: Gateway) -> None:
    with pytest.raises(InvalidInput, match=r"^market\.ts: .* ahead of the gateway's clock"):
        gateway.on_market(quote(T0 + timedelta(days=1), "90"))
    gateway.on_market(quote(T0 - timedelta(hours=30), "90"))
    assert gateway.event_time == T0
    gateway.close()


def test_event_clock_accepts_any_ts(tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "e.db", clock="event") as gateway:
        gateway.fund("A1", "100000", ts=T0)
        later = T0 + timedelta(days=400)
        gateway.on_market(quote(later, "100"))
        decision = gateway.submit(intent("far", later))
        assert decision.decision is DecisionKind.ALLOW
        assert gateway.event_time == later


def test_callable_clock_and_async_gateway_are_bounded(tmp_path: Path) -> None:
    async def run() -> None:
        async with await AsyncGateway.open(POLICY, journal=tmp_path / "a.db",
                                           clock=lambda: T0) as gateway:
            await gateway.fund("A1", "100000")
            await gateway.on_market(quote(T0, "100"))
            with pytest.raises(InvalidInput, match=r"^intent\.ts: .* ahead"):
                await gateway.submit(intent("a-1", T0 + timedelta(seconds=6)))
            with pytest.raises(InvalidInput, match=r"^intents\[0\]\.ts: .* ahead"):
                await gateway.submit_many([intent("a-2", T0 + timedelta(days=2))])
            decision = await gateway.submit(intent("a-3", T0 + timedelta(seconds=5)))
            assert decision.decision is DecisionKind.ALLOW

    asyncio.run(run())


@pytest.mark.parametrize("first", ["submit", "fund then submit"])
def test_the_first_intent_on_a_new_journal_is_bounded_by_the_policys_own_skew(
        tmp_path: Path, first: str) -> None:
    """The policy is activated with the first batch; its max_intent_skew bounds that batch
    too, not the 5 s default."""
    wide = POLICY.replace("max_intent_skew: 5s", "max_intent_skew: 60s")
    with Gateway.open(wide, journal=tmp_path / "j.db", clock=ManualClock(start=T0)) as gateway:
        if first == "fund then submit":
            gateway.fund("A1", "100000")
        decided = gateway.submit(intent("i-1", T0 + timedelta(seconds=30)))
        assert decided.intent_id == "i-1"  # decided, not refused as 30 s ahead
    narrow = POLICY.replace("max_intent_skew: 5s", "max_intent_skew: 1s")
    with (Gateway.open(narrow, journal=tmp_path / "k.db", clock=ManualClock(start=T0)) as gateway,
          pytest.raises(InvalidInput, match=r"4 s ahead .*max_intent_skew")):
        gateway.submit(intent("i-2", T0 + timedelta(seconds=4)))


def test_a_clock_that_returns_a_naive_time_is_named(tmp_path: Path) -> None:
    naive = datetime(2026, 3, 2, 14, 30)
    with (Gateway.open(POLICY, journal=tmp_path / "j.db", clock=lambda: naive) as gateway,
          pytest.raises(InvalidInput, match=r"^clock: .*UTC")):
        gateway.submit(intent("i-1", T0))
