"""A gateway restarted on its journal with a fresh simulator (no saved broker state) books the
new simulator's fills: a fill id is built from the order's client order id, never from a
counter the new simulator starts again, so it cannot repeat a journaled fill's id and be
dropped as a redelivery."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.sim import fill_id
from ordergate.gateway import Gateway

ACCOUNT = "DEMO-1"


def _at(second: int) -> str:
    return f"2026-03-02T14:30:{second:02d}Z"


def _market(second: int) -> dict[str, Any]:
    return {"symbol": "AAPL", "ts": _at(second), "bid": "189.86", "ask": "189.94",
            "last": "189.90", "volume": "1000"}


def _intent(intent_id: str, qty: str, second: int) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": _at(second), "account": ACCOUNT, "strategy": "trend",
            "symbol": "AAPL", "side": "buy", "qty": qty}


def test_reopened_gateway_books_fills_of_a_fresh_simulator(tmp_path: Path) -> None:
    journal = str(tmp_path / "gw.db")
    with Gateway.open(demo_policy_path(), journal=journal, clock="event") as gateway:
        gateway.fund(ACCOUNT, "1000000", ts=_at(0))
        gateway.on_market(_market(1))
        assert gateway.submit(_intent("a1", "10", 2)).decision.value == "ALLOW"
    with Gateway.open(demo_policy_path(), journal=journal, clock="event") as gateway:
        gateway.on_market(_market(10))
        assert gateway.submit(_intent("a2", "20", 11)).decision.value == "ALLOW"
        status = gateway.status()
    assert [(p.symbol, p.qty) for p in status.positions if p.qty] == [("AAPL", Decimal(30))]
    assert not status.open_orders


def test_second_run_on_the_journal_books_its_fills(tmp_path: Path) -> None:
    journal, policy = tmp_path / "j.db", str(demo_policy_path())
    lines: list[dict[str, Any]] = [
        {"type": "account", "account": ACCOUNT, "cash": "1000000", "ts": _at(0)},
        {"type": "market", **_market(1)},
        {"type": "intent", **_intent("a1", "10", 2)},
    ]
    events = write_jsonl(tmp_path / "events.jsonl", lines)
    first = cli("run", "-q", "--policy", policy, "--journal", str(journal), str(events))
    assert first.returncode == 0, first.stderr
    # The same file with more lines, run again without --broker-state: a new simulator.
    write_jsonl(events, [*lines, {"type": "market", **_market(10)},
                         {"type": "intent", **_intent("a2", "20", 11)}])
    second = cli("run", "-q", "--policy", policy, "--journal", str(journal), str(events))
    assert second.returncode == 0, second.stderr
    status = json.loads(cli("status", "--journal", str(journal), "--json").stdout)
    held = [(p["symbol"], p["qty"]) for p in status["positions"] if Decimal(p["qty"])]
    assert held == [("AAPL", "30")]
    assert status["open_orders"] == []


def test_fill_id_fits_an_identifier_whatever_the_client_order_id() -> None:
    assert fill_id("og-abc", 2) == "og-abc-2"
    long_id = "x" * 128
    assert len(fill_id(long_id, 12)) <= 128
    assert fill_id(long_id, 1) != fill_id("x" * 127 + "y", 1)
    assert fill_id(long_id, 1) == fill_id(long_id, 1)


def test_a_fill_learnt_at_start_up_is_named_after_the_client_order_id() -> None:
    """Start-up books a fill the broker reports and the journal lacks under an id built from
    the client order id: a broker's own order ids may repeat (a simulator without saved
    state numbers its orders from 1 again), client order ids do not."""
    from ordergate.runtime.loop import recovered_fill_id

    first = recovered_fill_id("og-" + "a" * 28, Decimal("10"))
    assert first == "og-" + "a" * 28 + "-recovered-10"
    assert recovered_fill_id("og-" + "b" * 28, Decimal("10")) != first
    own = "x" * 128  # a strategy's own client order id may take all 128 characters
    long = recovered_fill_id(own, Decimal("2.5"))
    assert len(long) <= 128 and long != recovered_fill_id("x" * 127 + "y", Decimal("2.5"))
