"""The caller's decimal context is not ordergate's: an embedding program that sets
`decimal.getcontext().prec = 6` or traps `Inexact` for its own figures (or a sitecustomize
that does it for the whole process) gets the decisions, fills, status and journal a clean
process gets, its journal replays clean, and a journal of engine behaviour 4 (which decided
in Decimal's default 28 digits) replays and rebuilds as decided whatever context the process
reading it runs in. The caller's context is its own again after every call."""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, Inexact, getcontext, localcontext
from pathlib import Path
from typing import Any

import pytest

from ordergate import AsyncGateway, Gateway
from ordergate.brokers.labels import fill_id
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.runtime import loop
from ordergate.runtime.loop import rebuild

# 99.99 x 100.01 = 9999.9999: allowed under this cap, a 10000.0 past it in 6 digits
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: caller-context}
defaults:
  max_market_data_age: 1m
  max_order_value: 9999.99995
  max_position_qty: 150.5
  exposure_modify: true
"""
BASE = {"account": "ACC-1", "strategy": "s", "symbol": "AAPL", "side": "buy"}


def _at(second: int) -> str:
    return f"2026-03-02T14:30:{second:02d}Z"


@contextmanager
def _caller(kind: str) -> Iterator[None]:
    """The calling program's own decimal context while inside."""
    with localcontext() as context:
        if kind == "prec6":
            context.prec = 6
        elif kind == "inexact":
            context.traps[Inexact] = True
        yield


def _session(gateway: Gateway) -> list[Any]:
    """Funding, a quote, four intents (an allowed limit buy that fills, a market buy cut down
    to the position cap, two denied) and a quote that moves the mark; then the status."""
    seen: list[Any] = [gateway.fund("ACC-1", "100000.01", ts=_at(0))]
    gateway.on_market({"symbol": "AAPL", "ts": _at(0), "bid": "100.00", "ask": "100.01",
                       "last": "100.005"})
    for index, (qty, price) in enumerate([("99.99", "100.01"), ("99.99", None),
                                          ("33.3333", "100.01"), ("77.7777", None)]):
        intent = {**BASE, "intent_id": f"e-{index}", "ts": _at(index + 1), "qty": qty}
        if price is not None:
            intent.update(order_type="limit", limit_price=price)
        decision = gateway.submit(intent)
        seen.append((decision.decision.value, decision.modified_qty, decision.blocking))
    seen.append(gateway.on_market({"symbol": "AAPL", "ts": _at(59), "bid": "98.7654",
                                   "ask": "98.7655", "last": "98.76543"}))
    seen.append(gateway.status())
    return seen


def _records(journal: Path) -> list[tuple[RecordKind, bytes]]:
    """The journal's inputs and outputs (META records hold timings and the process)."""
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [(record.kind, record.payload) for record in handle.read()
                if record.kind in (RecordKind.INPUT, RecordKind.OUTPUT)]
    finally:
        handle.close()


def _replays_clean(journal: Path) -> None:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report.message
    assert report.mismatches == 0 and report.outputs_matched == report.outputs > 0


def _run(journal: Path, caller: str) -> list[Any]:
    with _caller(caller):
        before = getcontext()
        with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
            seen = _session(gateway)
        assert getcontext() is before  # the caller's own context, untouched
    return seen


@pytest.mark.parametrize("caller", ["prec6", "inexact"])
def test_the_callers_decimal_context_changes_nothing_ordergate_decides_or_journals(
        tmp_path: Path, caller: str) -> None:
    clean = _run(tmp_path / "clean.db", "clean")
    assert clean[1:5] == [("ALLOW", None, ""), ("MODIFY", Decimal("50.51"), "EXP-001"),
                          ("DENY", None, "EXP-001"), ("DENY", None, "EXP-001")]
    assert _run(tmp_path / "other.db", caller) == clean
    assert _records(tmp_path / "other.db") == _records(tmp_path / "clean.db")
    _replays_clean(tmp_path / "other.db")


def test_the_async_gateways_worker_ignores_a_changed_default_context(tmp_path: Path) -> None:
    async def session(journal: Path) -> None:
        async with await AsyncGateway.open(POLICY, journal=journal, clock="event") as gateway:
            await gateway.run(_session)

    asyncio.run(session(tmp_path / "clean.db"))
    saved = decimal.DefaultContext.prec
    decimal.DefaultContext.prec = 6  # what a new thread's context starts from
    try:
        asyncio.run(session(tmp_path / "default6.db"))
    finally:
        decimal.DefaultContext.prec = saved
    assert _records(tmp_path / "default6.db") == _records(tmp_path / "clean.db")


def test_a_behaviour_4_journal_replays_and_rebuilds_as_decided_in_a_6_digit_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "b4.db"
    with monkeypatch.context() as patched:
        patched.setattr(loop, "ENGINE_BEHAVIOUR", 4)  # sums and products in 28 digits
        with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
            gateway.fund("ACC-1", "100000", ts=_at(0))
            gateway.on_market({"symbol": "AAPL", "ts": _at(0), "bid": "100.00",
                               "ask": "100.01", "last": "100.005"})
            decision = gateway.submit({**BASE, "intent_id": "e-0", "ts": _at(1),
                                       "qty": "99.99", "order_type": "limit",
                                       "limit_price": "100.01"})
            assert decision.decision.value == "ALLOW"
    assert any(payload.startswith(b'{"type":"engine_upgrade","behaviour":4')
               for _, payload in _records(journal))
    url = f"sqlite:///{journal}"
    clean = rebuild(url).status()
    assert clean.positions[0].qty == Decimal("99.99")
    with _caller("prec6"):  # as a sitecustomize setting prec 6 would
        _replays_clean(journal)
        rebuilt = rebuild(url).status()
        assert getcontext().prec == 6
    assert rebuilt == clean


def test_a_fill_id_tells_apart_quantities_that_agree_to_6_digits() -> None:
    clean = {fill_id("og-1", Decimal(qty)) for qty in ("1.23456789", "1.23457")}
    assert len(clean) == 2
    with _caller("prec6"):
        assert {fill_id("og-1", Decimal(qty)) for qty in ("1.23456789", "1.23457")} == clean
