"""The duplicate window compares whole orders: the order type and the stop price are part of
what makes two intents the same order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.harness import Harness, decision_of
from ordergate.gate import fingerprint
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import OrderIntent, OrderType, Side

D = Decimal


def _window() -> Harness:
    return Harness(defaults={"duplicate_window": "5s"}, symbols=("X", "Y"))


def _second(harness: Harness, first: dict[str, Any], second: dict[str, Any]) -> Any:
    harness.accepted(**first)
    harness.advance(0.1)
    return decision_of(harness.intent(**second))


def test_sell_stops_at_different_stop_prices_are_different_orders() -> None:
    stop = {"side": Side.SELL, "qty": "10", "order_type": OrderType.STOP}
    decision = _second(_window(), {**stop, "stop_price": D("95")},
                       {**stop, "stop_price": D("90")})
    assert decision.decision is DecisionKind.ALLOW, decision


def test_a_market_buy_and_a_buy_stop_are_different_orders() -> None:
    decision = _second(
        _window(), {"side": Side.BUY, "qty": "10", "order_type": OrderType.MARKET},
        {"side": Side.BUY, "qty": "10", "order_type": OrderType.STOP, "stop_price": D("150")},
    )
    assert decision.decision is DecisionKind.ALLOW, decision


def test_a_stop_limit_and_a_plain_limit_at_the_same_limit_are_different_orders() -> None:
    decision = _second(
        _window(),
        {"side": Side.SELL, "qty": "10", "order_type": OrderType.STOP_LIMIT,
         "stop_price": D("95"), "limit_price": "94"},
        {"side": Side.SELL, "qty": "10", "limit_price": "94"},
    )
    assert decision.decision is DecisionKind.ALLOW, decision


def test_the_same_stop_order_twice_is_still_a_duplicate() -> None:
    stop = {"side": Side.SELL, "qty": "10", "order_type": OrderType.STOP,
            "stop_price": D("95")}
    decision = _second(_window(), stop, {**stop, "stop_price": D("95.00")})
    assert decision.blocking == "DUP-002", decision


def test_fingerprint_names_the_order_type_and_stop_price() -> None:
    harness = _window()
    harness.accepted(Side.SELL, "10", order_type=OrderType.STOP_LIMIT, stop_price=D("95.0"),
                     limit_price="94.50")
    order = harness.log[-1]
    assert isinstance(order, OrderIntent)
    assert fingerprint(order) == "A s1 X sell 10 94.5 stop_limit stop_price=95"


def test_a_market_or_limit_order_keeps_the_fingerprint_old_journals_hold() -> None:
    """Fingerprints are journaled (decision records, DUP-002 evidence) and kept in snapshots:
    for the orders that had one before stops were told apart, the string is unchanged, so an
    older journal replays to the same bytes and its duplicate window holds across upgrades."""
    harness = _window()
    harness.accepted(Side.BUY, "10")  # a market order, the default
    harness.accepted(Side.SELL, "5", limit_price="101.50")
    market, limit = harness.log[-2], harness.log[-1]
    assert isinstance(market, OrderIntent) and isinstance(limit, OrderIntent)
    assert fingerprint(market) == "A s1 X buy 10 "
    assert fingerprint(limit) == "A s1 X sell 5 101.5"
