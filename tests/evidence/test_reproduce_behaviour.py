"""`decisions --show` re-derives a decision in the arithmetic of the engine behaviour it was
journaled under (`evidence.reproduce.behaviour_at`): 28 digits up to behaviour 4, exact from
behaviour 5. A behaviour-4 decision on a figure 28 digits rounded is no false alarm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.reproduce import behaviour_at
from ordergate.runtime import loop

# 3 x this is 1000000.0000000000000000000002: 1,000,000 when rounded to 28 digits
THIRD = "333333.3333333333333333333334"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: cap
defaults:
  max_market_data_age: 48h
  max_order_qty: 10000
  max_order_value: 1000000
"""
EVENTS = [
    {"type": "account", "account": "A1", "cash": "10000000", "ts": "2026-03-02T14:00:00Z"},
    {"type": "market", "symbol": "MSFT", "ts": "2026-03-02T14:30:00Z", "bid": "333333.33",
     "ask": "333333.34", "last": "333333.33", "volume": "1000"},
    {"type": "intent", "intent_id": "i1", "ts": "2026-03-02T14:31:00Z", "account": "A1",
     "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "3", "order_type": "limit",
     "limit_price": THIRD},
]


def _journal(directory: Path) -> Path:
    (directory / "policy.yaml").write_text(POLICY)
    source = directory / "events.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in EVENTS))
    journal = directory / "j.db"
    ran = invoke("run", "--quiet", "--policy", str(directory / "policy.yaml"), "--journal",
                 str(journal), str(source))
    assert ran.code == 0, ran.output
    return journal


def _shown(journal: Path) -> str:
    shown = invoke("decisions", "--journal", str(journal), "--show", "i1")
    assert shown.code == 0, shown.output
    return shown.output


def test_a_behaviour_4_decision_re_derives_in_28_digits(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(loop, "ENGINE_BEHAVIOUR", 4)  # sums and products in 28 digits
        journal = _journal(tmp_path)
    opened = read(journal)
    try:
        last = opened.last_seq()
        assert behaviour_at(opened, [1, last]) == {1: 1, last: 4}
    finally:
        opened.close()
    output = _shown(journal)
    assert "ALLOWED" in output  # 3 x THIRD rounded to 28 digits is exactly the cap
    assert "re-derived from the record alone: identical decision" in output
    assert "DIFFERENT" not in output


def test_a_behaviour_5_decision_re_derives_in_exact_arithmetic(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    output = _shown(journal)
    assert ENGINE_BEHAVIOUR >= 5
    assert "DENIED by ORD-007" in output  # 1000000.0000000000000000000002 is above the cap
    assert "re-derived from the record alone: identical decision" in output
