"""A journal written before input decimals were bounded to 28 significant digits may hold a
longer one (an intent of 10.00000000000000000000000000001 was accepted then). It stays
readable: recovery, `status` and `replay verify` read it back, while new input with such a
figure is refused at the edge."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordergate import Gateway, InvalidInput
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.cli.main import app
from ordergate.model.values import journaled_digits

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: long-figures
defaults:
  max_market_data_age: 1m
"""
LONG = "10.00000000000000000000000000001"


def at(second: int) -> str:
    return f"2026-03-02T14:30:{second:02d}Z"


def intent(intent_id: str, qty: str) -> dict[str, str]:
    return {"intent_id": intent_id, "ts": at(2), "account": "ACC-1", "strategy": "s",
            "symbol": "AAPL", "side": "buy", "qty": qty, "order_type": "limit",
            "limit_price": "99"}


def test_a_journaled_figure_longer_than_28_digits_is_read_back(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    # The simulator keeps its book: an in-memory one would end the order at the restart.
    sim = SimConfig(state_path=str(tmp_path / "sim.db"))
    with Gateway.open(POLICY, journal=journal, clock="event", broker=SimBroker(sim)) as gateway:
        gateway.fund("ACC-1", "100000", ts=at(0))
        gateway.on_market({"symbol": "AAPL", "ts": at(1), "bid": "99.9", "ask": "100.1",
                           "last": "100"})
        with pytest.raises(InvalidInput, match="at most 28 significant digits"):
            gateway.submit(intent("new", LONG))
        with journaled_digits():  # what an earlier version accepted and journaled
            assert gateway.submit(intent("old", LONG)).decision.value == "ALLOW"
    with Gateway.open(POLICY, journal=journal, clock="event",
                      broker=SimBroker(sim)) as reopened:
        (order,) = reopened.status().open_orders
        assert str(order.remaining) == LONG
        with pytest.raises(InvalidInput, match="at most 28 significant digits"):
            reopened.submit(intent("again", LONG))
    runner = CliRunner()
    verify = runner.invoke(app, ["replay", "verify", "--journal", str(journal)])
    assert verify.exit_code == 0, verify.output
    shown = runner.invoke(app, ["status", "--journal", str(journal)])
    assert shown.exit_code == 0, shown.output
