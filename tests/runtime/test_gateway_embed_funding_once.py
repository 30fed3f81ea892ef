"""`Gateway.fund` funds an account once: a restart of a program that funds at start-up (as
docs/embedding.md once showed) no longer puts the starting cash back beside the positions it
bought, so the day's loss limit still binds after the restart.

Before: restarted after buying 100 at 100 with the price down to 90 (equity 99,000, a 1,000
loss over a 500 limit: DENY LOS-001), the start-up `fund("ACC-1", "100000")` set cash back to
100,000 beside the 100 shares (equity 109,000, day loss 0) and the next buy was ALLOWED. A
`fund` stamped before the gateway's event time was accepted without a word."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate import AsyncGateway, DecisionKind, Gateway, InvalidInput

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: embedded}
defaults:
  max_market_data_age: 1h
  max_order_qty: 1000
  max_daily_loss: 500
"""


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def quote(seconds: int, price: int) -> dict[str, Any]:
    return {"symbol": "AAPL", "ts": at(seconds), "bid": str(price - Decimal("0.01")),
            "ask": str(price + Decimal("0.01")), "last": str(price)}


def buy(intent_id: str, seconds: int, qty: str) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": at(seconds), "account": "ACC-1", "strategy": "demo",
            "symbol": "AAPL", "side": "buy", "qty": qty}


def cash(gateway: Gateway) -> Decimal:
    [account] = gateway.status().accounts
    return account.cash


def test_funding_again_at_a_restart_is_refused_and_the_loss_limit_still_binds(
        tmp_path: Path) -> None:
    journal = tmp_path / "embedded.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.on_market(quote(0, 100))
        assert gateway.submit(buy("e-1", 1, "100")).decision is DecisionKind.ALLOW
        gateway.on_market(quote(60, 90))
        denied = gateway.submit(buy("e-2", 61, "10"))
        assert denied.decision is DecisionKind.DENY
        assert "LOS-001" in [v.code for v in denied.violations]
        before = gateway.status().accounts
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        assert gateway.is_funded("ACC-1")
        with pytest.raises(InvalidInput) as refused:
            gateway.fund("ACC-1", "100000", ts=T0)  # the start-up code, run again
        said = str(refused.value)
        assert said.startswith("funding.account: ACC-1 is already funded in this journal")
        assert "2026-03-02T14:31:01Z" in said  # the event time it was funded by
        assert "again=True" in said and "is_funded('ACC-1')" in said
        assert gateway.status().accounts == before  # nothing journaled
        gateway.on_market(quote(90, 90))
        again = gateway.submit(buy("e-3", 91, "10"))
    assert again.decision is DecisionKind.DENY
    assert "LOS-001" in [v.code for v in again.violations]


def test_is_funded_tells_a_new_journal_from_a_restart(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        assert not gateway.is_funded("ACC-1")
        gateway.fund("ACC-1", "100000", ts=T0)
        assert gateway.is_funded("ACC-1")
        assert not gateway.is_funded("ACC-2")
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        assert gateway.is_funded("ACC-1")
        assert cash(gateway) == Decimal(100000)


def test_funding_again_on_purpose_sets_the_cash_given(tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.fund("ACC-1", "120000", ts=at(5), again=True)  # a deposit of 20,000
        assert cash(gateway) == Decimal(120000)
        with pytest.raises(InvalidInput, match=r"^again: expected True or False, got str"):
            gateway.fund("ACC-1", "1", ts=at(6), again="yes")  # type: ignore[arg-type]
        assert cash(gateway) == Decimal(120000)


def test_funding_stamped_before_the_event_time_is_refused(tmp_path: Path) -> None:
    with Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.on_market(quote(60, 100))
        for account, again in (("ACC-2", False), ("ACC-1", True)):
            with pytest.raises(InvalidInput, match=(
                    r"^funding\.ts: 2026-03-02T14:30:30Z is before the gateway's event time "
                    r"\(2026-03-02T14:31:00Z\)")):
                gateway.fund(account, "5000", ts=at(30), again=again)
        assert not gateway.is_funded("ACC-2")
        assert cash(gateway) == Decimal(100000)
        gateway.fund("ACC-2", "5000")  # no ts: stamped at the event time, accepted
        assert gateway.is_funded("ACC-2")


def test_async_gateway_funds_once_too(tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool, str]:
        async with await AsyncGateway.open(POLICY, journal=tmp_path / "a.db",
                                           clock="event") as gateway:
            new = await gateway.is_funded("ACC-1")
            await gateway.fund("ACC-1", "100000", ts=T0)
            try:
                await gateway.fund("ACC-1", "100000", ts=T0)
            except InvalidInput as exc:
                refused = str(exc)
            await gateway.fund("ACC-1", "90000", ts=T0, again=True)
            return new, await gateway.is_funded("ACC-1"), refused

    new, funded, refused = asyncio.run(main())
    assert (new, funded) == (False, True)
    assert refused.startswith("funding.account: ACC-1 is already funded")
