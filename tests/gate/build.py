"""Small builders for gate tests: a clean world where a plain limit buy is allowed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from gate.views import MemoryView
from ordergate.gate import evaluate_limits
from ordergate.model.decision import Decision
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc
from ordergate.policy.limits import ResolvedLimits

NOW = utc(2024, 3, 1, 15, 0, 0)
D = Decimal


def limits(**overrides: Any) -> ResolvedLimits:
    base: dict[str, Any] = {"max_market_data_age": timedelta(seconds=5)}
    base.update(overrides)
    return ResolvedLimits(**base)


def intent(**overrides: Any) -> OrderIntent:
    base: dict[str, Any] = {
        "intent_id": "i-1", "ts": NOW, "account": "A1", "strategy": "S1", "symbol": "XYZ",
        "side": Side.BUY, "qty": D("10"), "order_type": OrderType.LIMIT,
        "limit_price": D("100.00"),
    }
    base.update(overrides)
    return OrderIntent(**base)


def quote(symbol: str = "XYZ", **overrides: Any) -> MarketSnapshot:
    base: dict[str, Any] = {
        "symbol": symbol, "ts": NOW, "bid": D("99.90"), "ask": D("100.10"),
        "last": D("100.00"), "volume": D("100000"),
    }
    base.update(overrides)
    return MarketSnapshot(**base)


def view(**overrides: Any) -> MemoryView:
    base: dict[str, Any] = {"now": NOW, "markets": {"XYZ": quote()}}
    base.update(overrides)
    return MemoryView(**base)


def decide(
    order: OrderIntent | None = None, world: MemoryView | None = None,
    policy: ResolvedLimits | None = None,
) -> Decision:
    return evaluate_limits(
        order if order is not None else intent(),
        world if world is not None else view(),
        policy if policy is not None else limits(),
        "policy-hash",
    )


def codes(decision: Decision) -> list[str]:
    return [violation.code for violation in decision.violations]


def violation(decision: Decision, code: str) -> Any:
    matches = [item for item in decision.violations if item.code == code]
    assert matches, f"{code} not in {codes(decision)}"
    return matches[0]
