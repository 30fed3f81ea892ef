"""The what-if's simulator keeps DAY orders to the engine's trading days, as the guard of
`ordergate run` has the journal's simulator do: a Monday DAY limit below the market that
Tuesday's opening quotes reach is canceled by the session close in both, and a what-if of the
journal under its own policy gives it back (it filled the order on Tuesday's quote, which the
simulator is shown before the close that follows the batch cancels it)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.analytics.whatif import WhatIfReport, what_if
from ordergate.journal import RecordKind
from ordergate.policy.loader import load_policy

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: day-order}
engine: {day_roll_calendar: XNYS}
defaults:
  max_market_data_age: 1d
  price_collar_pct: 20
"""


def _quote(ts: str, mid: str) -> dict[str, str]:
    half = Decimal("0.01")
    return {"type": "market", "ts": ts, "symbol": "AAPL", "bid": str(Decimal(mid) - half),
            "ask": str(Decimal(mid) + half), "last": mid, "volume": "1000000"}


# Monday 2026-11-23: a DAY buy limit at 195 rests under a 200 market; Tuesday opens at 190.
EVENTS = [
    {"type": "account", "ts": "2026-11-23T14:00:00Z", "account": "ACC1", "cash": "1000000"},
    _quote("2026-11-23T15:00:00Z", "200"),
    {"type": "intent", "ts": "2026-11-23T15:00:01Z", "intent_id": "mon-day-limit",
     "account": "ACC1", "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "50",
     "order_type": "limit", "limit_price": "195", "tif": "day"},
    _quote("2026-11-23T20:59:00Z", "200"),
    _quote("2026-11-24T14:31:00Z", "190"),
    _quote("2026-11-24T15:00:00Z", "190"),
]


def _journal(tmp_path: Path, batch_size: int) -> tuple[Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    events = tmp_path / "day_order.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in EVENTS))
    journal = tmp_path / "j.db"
    ran = invoke("run", "--quiet", "--policy", str(policy), "--journal", str(journal),
                 "--batch-size", str(batch_size), str(events))
    assert ran.code == 0, ran.output
    return journal, policy


def _what_if(journal: Path, policy: Path, workdir: Path) -> WhatIfReport:
    opened = read(journal)
    try:
        return what_if(opened, load_policy(policy), workdir=workdir)
    finally:
        opened.close()


def _journaled_types(journal: Path) -> list[str]:
    opened = read(journal)
    try:
        return [json.loads(record.payload)["type"] for record in opened.read()
                if record.kind is RecordKind.INPUT]
    finally:
        opened.close()


@pytest.mark.parametrize("batch_size", [1, 256])
def test_same_policy_whatif_of_a_day_order_the_close_canceled_changes_nothing(
        tmp_path: Path, batch_size: int) -> None:
    journal, policy = _journal(tmp_path, batch_size)
    types = _journaled_types(journal)
    assert "fill" not in types and "canceled" in types  # the run's close canceled the order

    report = _what_if(journal, policy, tmp_path)

    assert report.decisions == 1 and report.changed == []
    assert report.transitions_appeared == report.transitions_vanished == []
    path = report.path
    assert path is not None
    assert path.final_equity_before == path.final_equity_after == Decimal(1_000_000)
    assert path.final_gross_before == path.final_gross_after == 0
    assert path.min_daily_pnl_after == path.min_daily_pnl_before == 0
    assert path.max_equity_gap == 0
