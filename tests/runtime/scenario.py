"""A small, fixed trading scenario for the runtime tests: a few hundred events with every
kind of outcome (allowed market orders, resting limit orders and their cancels, denials for
a restricted symbol and an oversized order, clock ticks) so every crash point is crossed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

from ordergate.engine.ids import derive_client_order_id
from ordergate.model.events import AccountFunding, CancelRequest, ClockTick, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.runtime.demo_data import write_events

START = utc(2026, 3, 2, 15, 0)
ACCOUNT = "DEMO-1"
PRICES = {"AAPL": Decimal("190.00"), "MSFT": Decimal("410.00"), "GME": Decimal("24.00")}


def demo_policy_path() -> Path:
    return Path(str(resources.files("ordergate") / "data" / "demo_policy.yaml"))


def scenario_events(seconds: int = 60) -> list[InputEvent]:
    events: list[InputEvent] = [AccountFunding(ts=START, account=ACCOUNT,
                                               cash=Decimal(1_000_000))]
    resting: list[tuple[int, str]] = []
    for number, second in enumerate(range(1, seconds + 1), start=1):
        base = START + timedelta(seconds=second)
        for index, (symbol, price) in enumerate(PRICES.items()):
            mid = price + Decimal(second % 7) / 10
            events.append(MarketSnapshot(
                symbol=symbol, ts=base + timedelta(milliseconds=index),
                bid=mid - Decimal("0.05"), ask=mid + Decimal("0.05"), last=mid,
                volume=Decimal(1000)))
        ts = base + timedelta(milliseconds=100)
        kind = second % 5
        if kind in (0, 1):
            side = Side.BUY if second % 4 < 2 else Side.SELL
            intent = OrderIntent(intent_id=f"t-{number:04d}", ts=ts, account=ACCOUNT,
                                 strategy="trend", symbol="AAPL", side=side,
                                 qty=Decimal(10 + second))
        elif kind == 2:
            intent = OrderIntent(intent_id=f"t-{number:04d}", ts=ts, account=ACCOUNT,
                                 strategy="trend", symbol="MSFT", side=Side.BUY,
                                 qty=Decimal(5), order_type=OrderType.LIMIT,
                                 limit_price=Decimal("400.00") + Decimal(second) / 100)
            resting.append((second, intent.intent_id))
        elif kind == 3:
            intent = OrderIntent(intent_id=f"b-{number:04d}", ts=ts, account=ACCOUNT,
                                 strategy="burst", symbol="GME", side=Side.BUY,
                                 qty=Decimal(100))
        else:
            intent = OrderIntent(intent_id=f"b-{number:04d}", ts=ts, account=ACCOUNT,
                                 strategy="burst", symbol="MSFT",
                                 side=Side.BUY if second % 3 else Side.SELL,
                                 qty=Decimal(700 if second % 10 == 4 else 20))
        events.append(intent)
        if resting and resting[0][0] <= second - 4:
            _, intent_id = resting.pop(0)
            events.append(CancelRequest(
                ts=base + timedelta(milliseconds=200),
                client_order_id=derive_client_order_id(ACCOUNT, "trend", intent_id),
                account=ACCOUNT, requested_by="trend"))
        if second % 2 == 0:
            events.append(ClockTick(ts=base + timedelta(milliseconds=300)))
    return events


def write_scenario(path: Path, seconds: int = 60) -> Path:
    write_events(path, scenario_events(seconds))
    return path
