"""A strategy's own client order id may not start with the prefix of the ids the engine
derives (so it can never be the id derived for another intent): refused where intents enter
(events files, HTTP, the embedded Gateway), naming the field. A journal is read without the
check: one written before it, holding such an id, still opens, replays and is followed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ordergate import Gateway, InvalidInput
from ordergate.brokers.sim import SimBroker
from ordergate.engine.ids import PREFIX
from ordergate.evidence.replay import verify_journal
from ordergate.journal import open_journal
from ordergate.model.events import AccountFunding, Dispatch
from ordergate.model.intent import (
    DERIVED_ID_PREFIX,
    OrderIntent,
    OrderType,
    Side,
    reserved_id_problem,
)
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from ordergate.runtime.sources import BadLine, read_lines
from ordergate.service.context import ApiError
from ordergate.service.intents import parse_intents

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
LINE = {"type": "intent", "intent_id": "i-1", "ts": "2026-03-02T14:30:02Z", "account": "A",
        "strategy": "s", "symbol": "X", "side": "buy", "qty": "1"}
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: prefix
defaults:
  max_market_data_age: 1h
"""


def _intent(client_order_id: str | None, intent_id: str = "i-1") -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=T0 + timedelta(seconds=2), account="A",
                       strategy="s", symbol="X", side=Side.BUY, qty=Decimal(1),
                       order_type=OrderType.LIMIT, limit_price=Decimal(100),
                       client_order_id=client_order_id)


def test_the_reserved_prefix_is_the_derived_ids_prefix() -> None:
    assert DERIVED_ID_PREFIX == PREFIX
    assert reserved_id_problem(_intent("og-1")) is not None
    for client_order_id in (None, "og", "OG-1", "x-og-1", "trend-cid-1"):
        assert reserved_id_problem(_intent(client_order_id)) is None


def test_an_events_file_line_with_a_reserved_id_is_a_bad_line_naming_the_field(
        tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps({**LINE, "client_order_id": "mine-1"}) + "\n"
                      + json.dumps({**LINE, "intent_id": "i-2", "client_order_id": "og-1"})
                      + "\n")
    (_, first), (_, second) = read_lines(source, 1)
    assert isinstance(first, OrderIntent) and first.client_order_id == "mine-1"
    assert isinstance(second, BadLine) and second.line == 2
    assert second.problem.startswith("field client_order_id: 'og-1' starts with 'og-'")


def test_http_refuses_a_reserved_id_with_422_naming_its_place() -> None:
    with pytest.raises(ApiError) as single:
        parse_intents(json.dumps({**LINE, "client_order_id": "og-1"}).encode())
    assert single.value.status == 422
    assert single.value.detail.startswith("$.client_order_id: 'og-1' starts with 'og-'")
    batch = {"intents": [LINE, {**LINE, "intent_id": "i-2", "client_order_id": "og-2"}]}
    with pytest.raises(ApiError, match=r"^\$\.intents\[1\]\.client_order_id: 'og-2'"):
        parse_intents(json.dumps(batch).encode())


def test_the_gateway_refuses_a_reserved_id_and_journals_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        with pytest.raises(InvalidInput, match=r"^intent\.client_order_id: 'og-1' starts"):
            gateway.submit({**LINE, "client_order_id": "og-1"})
        with pytest.raises(InvalidInput, match=r"^intents\[0\]\.client_order_id: 'og-2'"):
            gateway.submit_many([_intent("og-2")])
        with pytest.raises(InvalidInput, match=r"client_order_id: 'og-3'"):
            gateway.process([_intent("og-3")])
        gateway.submit(_intent("mine-1", intent_id="i-4"))  # a good intent after them
    reader = open_journal(f"sqlite:///{journal}", reader=True, create=False)
    try:
        payloads = [record.payload for record in reader.read()]
    finally:
        reader.close()
    assert not [payload for payload in payloads if b'"og-1"' in payload or b'"og-2"' in payload
                or b'"og-3"' in payload]
    assert any(b'"client_order_id":"mine-1"' in payload for payload in payloads)


def test_a_journal_holding_a_reserved_id_from_before_the_check_still_opens_and_replays(
        tmp_path: Path) -> None:
    # an older version journaled intents with such ids: the runtime itself never checks
    url = f"sqlite:///{tmp_path / 'old.db'}"
    policy = parse_policy(POLICY)
    runtime = Runtime.open_on(open_journal(url), policy, SimBroker())
    runtime.process([
        AccountFunding(ts=T0, account="A", cash=Decimal(1_000_000)),
        MarketSnapshot(symbol="X", ts=T0 + timedelta(seconds=1), bid=Decimal("99.99"),
                       ask=Decimal("100.01"), last=Decimal(100)),
        _intent("og-mine-1"),
    ], source="old.jsonl", line=1)
    runtime.close()

    with open_journal(url, reader=True, create=False) as journal:
        assert verify_journal(journal).ok
    reopened = Runtime.open_on(open_journal(url), policy, SimBroker())
    try:
        state = reopened.engine.state
        assert "og-mine-1" in state.open_orders or "og-mine-1" in state.done
        assert state.foreign_derived_ids == {"og-mine-1": None}
    finally:
        reopened.close()
    reader = open_journal(url, reader=True, create=False)
    try:
        sent = [msgspec.json.decode(record.payload, type=Dispatch) for record in reader.read()
                if record.payload.startswith(b'{"type":"dispatch"')]
    finally:
        reader.close()
    assert [dispatch.client_order_id for dispatch in sent] == ["og-mine-1"]
