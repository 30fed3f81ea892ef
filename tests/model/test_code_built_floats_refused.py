"""A program that builds an intent or a snapshot in code with a float, an int, a bool or a
string where a Decimal belongs gets an InvalidValue naming the field (exact money: a float
is never taken), not an AttributeError from inside the check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import InvalidValue, utc

TS = utc(2026, 3, 2, 15)


@pytest.mark.parametrize("value", [1.5, 10, "10", True])
@pytest.mark.parametrize("field", ["qty", "limit_price"])
def test_an_intent_with_a_non_decimal_figure_names_the_field(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"qty": Decimal(10), "order_type": "limit",
                              "limit_price": Decimal("100.5"), field: value}
    with pytest.raises(InvalidValue, match=rf"^{field}: expected a Decimal .*got "
                                           rf"{type(value).__name__}"):
        OrderIntent(intent_id="i-1", ts=TS, account="A", strategy="s", symbol="AAPL",
                    side="buy", **fields)


@pytest.mark.parametrize("field", ["bid", "ask", "last", "volume"])
def test_a_snapshot_with_a_float_names_the_field(field: str) -> None:
    prices: dict[str, Any] = {"bid": Decimal("99.9"), "ask": Decimal("100.1"),
                              "last": Decimal(100), field: 99.99}
    with pytest.raises(InvalidValue, match=rf"^{field}: expected a Decimal .*got float"):
        MarketSnapshot(symbol="AAPL", ts=TS, **prices)


def test_bad_market_data_given_as_decimals_still_reaches_the_gate() -> None:
    snapshot = MarketSnapshot(symbol="AAPL", ts=TS, bid=Decimal("NaN"), ask=Decimal("-1"))
    assert snapshot.bid is not None and snapshot.bid.is_nan()
