"""A strategy's own client order id may not start with the prefix of the ids the engine
derives (so it can never be the id derived for another intent)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from ordergate.engine.ids import PREFIX
from ordergate.model.intent import DERIVED_ID_PREFIX, OrderIntent, Side

LINE = {"type": "intent", "intent_id": "i-1", "ts": "2026-03-02T14:30:00Z", "account": "A",
        "strategy": "s", "symbol": "X", "side": "buy", "qty": "1"}


def test_the_reserved_prefix_is_the_derived_ids_prefix() -> None:
    assert DERIVED_ID_PREFIX == PREFIX


def test_an_explicit_id_with_the_derived_prefix_is_refused_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match="client_order_id: 'og-1' starts with 'og-'"):
        msgspec.json.decode(msgspec.json.encode({**LINE, "client_order_id": "og-1"}),
                            type=OrderIntent)
    with pytest.raises(ValueError, match="client_order_id"):
        OrderIntent(intent_id="i-1", ts=datetime(2026, 3, 2, tzinfo=UTC), account="A",
                    strategy="s", symbol="X", side=Side.BUY, qty=Decimal(1),
                    client_order_id="og-2")


def test_other_explicit_ids_are_kept() -> None:
    for client_order_id in ("og", "OG-1", "x-og-1", "trend-cid-1"):
        intent = msgspec.json.decode(
            msgspec.json.encode({**LINE, "client_order_id": client_order_id}), type=OrderIntent)
        assert intent.client_order_id == client_order_id
