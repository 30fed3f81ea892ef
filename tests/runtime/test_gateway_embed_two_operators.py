"""A two-operator resume after a drawdown halt cannot be completed by the first approver under
the same id written another way ("alice", then " Alice ", "ALICE" or full-width letters).

The engine compares operator ids exactly (journals already written must replay that way), so
the gateway refuses the lookalike before anything is journaled, naming `operator`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordergate import Gateway, InvalidInput, Mode

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: two-operators
engine:
  resume_requires_two_operators: true
defaults:
  max_market_data_age: 1h
  max_order_qty: 1000
  max_position_qty: 1000
  max_drawdown_pct: 2
  drawdown_kill: true
"""


def quote(gateway: Gateway, seconds: int, price: int) -> None:
    gateway.on_market({"symbol": "AAPL", "ts": T0 + timedelta(seconds=seconds),
                       "bid": f"{price - 0.01:.2f}", "ask": f"{price + 0.01:.2f}",
                       "last": str(price)})


@pytest.fixture()
def halted(tmp_path: Path) -> Gateway:
    gateway = Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event")
    gateway.fund("ACC-1", "100000", ts=T0)
    quote(gateway, 0, 100)
    gateway.submit({"intent_id": "x1", "ts": T0 + timedelta(seconds=1), "account": "ACC-1",
                    "strategy": "demo", "symbol": "AAPL", "side": "buy", "qty": "900"})
    quote(gateway, 30, 100)
    quote(gateway, 60, 90)  # a 9% drawdown: halted until two operators resume
    assert gateway.mode is Mode.HALTED
    return gateway


@pytest.mark.parametrize("lookalike", [" Alice ", "ALICE", "\uff41\uff4c\uff49\uff43\uff45",
                                       "alice\u200b", "al\u00adice"],
                         ids=["case-and-spaces", "upper-case", "full-width", "zero-width-space",
                              "soft-hyphen"])
def test_first_approver_under_another_spelling_is_refused_and_journals_nothing(
        halted: Gateway, lookalike: str) -> None:
    pending = halted.resume("alice", "loss understood")
    assert pending.mode is Mode.HALTED
    journal = halted._runtime.journal
    before = journal.last_seq()
    with pytest.raises(InvalidInput, match=r"^operator: .*second, different operator"):
        halted.resume(lookalike, "ok")
    assert journal.last_seq() == before
    assert halted.mode is Mode.HALTED
    assert halted.resume("bob", "second look").mode is Mode.ACTIVE
    halted.close()


def test_a_name_with_its_inner_spaces_doubled_is_the_same_approver(halted: Gateway) -> None:
    assert halted.resume("alice smith", "loss understood").mode is Mode.HALTED
    with pytest.raises(InvalidInput, match=r"^operator: .*second, different operator"):
        halted.resume("alice  smith", "ok")
    assert halted.mode is Mode.HALTED
    halted.close()


def test_the_same_approver_again_stays_pending(halted: Gateway) -> None:
    halted.resume("alice", "first")
    again = halted.resume("alice", "again")
    assert again.mode is Mode.HALTED
    assert any("needs a second operator" in message for message in again.messages)
    halted.close()


def test_lookalike_ids_are_only_refused_while_an_approval_is_pending(tmp_path: Path) -> None:
    gateway = Gateway.open(POLICY, journal=tmp_path / "plain.db", clock="event")
    gateway.fund("ACC-1", "100000", ts=T0)
    gateway.halt("alice", "lunch", ts=T0)
    assert gateway.resume(" ALICE ", "back", ts=T0).mode is Mode.ACTIVE
    gateway.close()
