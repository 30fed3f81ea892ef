"""A what-if under the journal's own policy gives back the journal: zero changed decisions
and the same figures, also across a session close that canceled resting DAY orders (the
what-if re-feeds what the run fed its engine and re-derives only what depends on the policy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.analytics.whatif import WhatIfReport, diff_outcomes, journal_outcomes, what_if
from ordergate.journal import RecordKind
from ordergate.policy.loader import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ROLL_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: roll
defaults:
  max_market_data_age: 48h
  max_order_qty: {max_order_qty}
  max_gross_exposure: 1000000
"""

# A DAY limit order rests below the market on day 1 (600,000 of exposure); the session close
# cancels it; on day 2 a market buy of 600,000 fits under the 1,000,000 cap only because the
# close released the resting order's exposure.
TWO_DAYS = [
    {"type": "account", "account": "A1", "cash": "10000000", "ts": "2026-03-02T14:00:00Z"},
    {"type": "market", "symbol": "MSFT", "ts": "2026-03-02T14:30:00Z", "bid": "399.99",
     "ask": "400.01", "last": "400.00", "volume": "1000"},
    {"type": "intent", "intent_id": "d1-rest", "ts": "2026-03-02T14:31:00Z", "account": "A1",
     "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "2000", "order_type": "limit",
     "limit_price": "300.00", "tif": "day"},
    {"type": "market", "symbol": "MSFT", "ts": "2026-03-03T14:30:00Z", "bid": "399.99",
     "ask": "400.01", "last": "400.00", "volume": "1000"},
    {"type": "intent", "intent_id": "d2-buy", "ts": "2026-03-03T14:31:00Z", "account": "A1",
     "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "1500", "order_type": "market"},
]


def _write_lines(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def _run(policy: Path, journal: Path, events: Path, batch_size: int) -> None:
    ran = invoke("run", "--quiet", "--policy", str(policy), "--journal", str(journal),
                 "--batch-size", str(batch_size), str(events))
    assert ran.code == 0, ran.output


def _what_if(journal: Path, policy: Path, workdir: Path) -> WhatIfReport:
    opened = read(journal)
    try:
        return what_if(opened, load_policy(policy), workdir=workdir)
    finally:
        opened.close()


def _session_closes(journal: Path) -> int:
    opened = read(journal)
    try:
        return sum(1 for record in opened.read() if record.kind is RecordKind.META
                   and record.payload.startswith(b'{"type":"og.session_close",'))
    finally:
        opened.close()


def _assert_gives_back_the_journal(report: WhatIfReport) -> None:
    assert report.decisions > 0
    assert [(item.intent_id, item.before.label, item.after.label)
            for item in report.changed] == []
    assert report.transitions_appeared == report.transitions_vanished == []
    assert report.final_mode_after == report.final_mode_before
    path = report.path
    assert path is not None
    assert path.final_equity_after == path.final_equity_before
    assert path.final_gross_after == path.final_gross_before
    assert path.max_gross_after == path.max_gross_before
    assert path.min_daily_pnl_after == path.min_daily_pnl_before
    assert path.max_equity_gap == 0


def _examples_events(out: Path) -> Path:
    """examples/ as one events file: the accounts of state.json, the snapshots of
    market.json, then intents.jsonl (operator commands, a policy switch, firm updates)."""
    state = json.loads((EXAMPLES / "state.json").read_text())
    events: list[dict[str, object]] = [
        {"type": "account", "account": account["account"], "cash": account["cash"],
         "ts": "2026-03-02T14:59:00Z"} for account in state["accounts"]]
    events.extend(json.loads((EXAMPLES / "market.json").read_text()))
    for line in (EXAMPLES / "intents.jsonl").read_text().splitlines():
        if line.strip():
            event = json.loads(line)
            events.append(event if "type" in event else {**event, "type": "intent"})
    return _write_lines(out, events)


def test_same_policy_whatif_of_the_demo_day_changes_nothing(tmp_path: Path,
                                                            demo_day: Path) -> None:
    _assert_gives_back_the_journal(
        _what_if(demo_day / "journal.db", demo_day / "policy.yaml", tmp_path))


@pytest.mark.parametrize("batch_size", [1, 256])
def test_same_policy_whatif_across_a_session_close_changes_nothing(tmp_path: Path,
                                                                   batch_size: int) -> None:
    policy = tmp_path / "roll.yaml"
    policy.write_text(ROLL_POLICY.format(max_order_qty=10000))
    journal = tmp_path / "j.db"
    _run(policy, journal, _write_lines(tmp_path / "ev.jsonl", TWO_DAYS), batch_size)
    assert _session_closes(journal) == 1  # the run closed day 1, canceling d1-rest

    report = _what_if(journal, policy, tmp_path)

    _assert_gives_back_the_journal(report)


@pytest.mark.parametrize("batch_size", [1, 256])
def test_same_policy_whatif_of_the_examples_changes_nothing(tmp_path: Path,
                                                            batch_size: int) -> None:
    policy = EXAMPLES / "policy.yaml"
    journal = tmp_path / "examples.db"
    _run(policy, journal, _examples_events(tmp_path / "examples.jsonl"), batch_size)
    assert _session_closes(journal) == 1

    _assert_gives_back_the_journal(_what_if(journal, policy, tmp_path))


def test_whatif_closes_the_session_on_the_orders_the_new_policy_let_rest(
        tmp_path: Path) -> None:
    """The session close is re-derived, not copied: an order only the new policy lets rest is
    canceled at the close as a direct run under that policy cancels it."""
    strict, loose = tmp_path / "strict.yaml", tmp_path / "loose.yaml"
    strict.write_text(ROLL_POLICY.format(max_order_qty=1800))  # denies d1-rest (2000)
    loose.write_text(ROLL_POLICY.format(max_order_qty=10000))
    events = _write_lines(tmp_path / "ev.jsonl", TWO_DAYS)
    original, direct = tmp_path / "strict.db", tmp_path / "loose.db"
    _run(strict, original, events, 1)
    _run(loose, direct, events, 1)
    opened_original, opened_direct = read(original), read(direct)
    try:
        expected = diff_outcomes(journal_outcomes(opened_original),
                                 journal_outcomes(opened_direct), {})
    finally:
        opened_original.close()
        opened_direct.close()

    report = _what_if(original, loose, tmp_path)

    assert [(item.intent_id, item.after.label) for item in expected] == [("d1-rest", "ALLOW")]
    assert [(item.intent_id, item.after.label) for item in report.changed] == [
        (item.intent_id, item.after.label) for item in expected]
    direct_report = _what_if(direct, loose, tmp_path)
    assert report.path is not None and direct_report.path is not None
    assert report.path.final_gross_after == direct_report.path.final_gross_before
