"""`ordergate eval` tells an intent line from another event by its top-level `type` key only:
the word "type" as a value (a strategy, a tag) or as a nested key is an intent's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ordergate.cli.eval_cmd import decode_line, read_intents
from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.runtime.sources import BadLine

INTENT = {"intent_id": "t1", "ts": "2026-03-02T15:00:00Z", "account": "A", "strategy": "s",
          "symbol": "X", "side": "buy", "qty": "1", "order_type": "limit",
          "limit_price": "100"}


def _line(**fields: Any) -> bytes:
    return json.dumps({**INTENT, **fields}).encode()


def test_a_strategy_named_type_is_an_intent() -> None:
    event = decode_line(_line(strategy="type"))
    assert isinstance(event, OrderIntent)
    assert event.strategy == "type"


def test_a_tag_value_or_key_type_is_an_intent() -> None:
    event = decode_line(_line(tags={"kind": "type"}))
    assert isinstance(event, OrderIntent)
    assert event.tags == {"kind": "type"}
    assert isinstance(decode_line(_line(tags={"type": "a"})), OrderIntent)


def test_a_top_level_type_still_names_the_event() -> None:
    assert isinstance(decode_line(_line(type="intent", strategy="type")), OrderIntent)
    market = decode_line(json.dumps({"type": "market", "symbol": "type",
                                     "ts": "2026-03-02T15:00:00Z", "bid": "99",
                                     "ask": "101"}).encode())
    assert isinstance(market, MarketSnapshot)


def test_a_bad_intent_line_mentioning_type_names_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    path.write_bytes(_line(strategy="type") + b"\n" + _line(strategy="type", qty="x") + b"\n")
    items = list(read_intents(path))
    assert isinstance(items[0][1], OrderIntent)
    number, bad = items[1]
    assert isinstance(bad, BadLine)
    assert number == 2
    assert str(bad) == f"{path}: line 2: field qty: Invalid decimal string"
