"""A fill past its order's limit (a critical FILL_PRICE alert) and a cancel the broker refused
(a warning CANCEL_REFUSED alert) change no mode, so nothing else an owner reads mentions them:
the evidence report's summary counts them by code with plain words (critical under What
failed, warnings under What remains risky) and its Alerts table quotes them, and the run
summary (shown even with -q) has a line for each code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evidence.support import invoke
from ordergate.model.ids import derive_client_order_id

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: alerts
defaults:
  max_market_data_age: 1h
  allowed_order_types: [market, limit]
  max_order_qty: 1000
  max_gross_exposure: 3000000
"""
TS = "2026-03-02T14:3{}Z"
EVENTS: list[dict[str, Any]] = [
    {"type": "account", "account": "A1", "cash": "1000000", "ts": "2026-03-02T14:29:00Z"},
    {"type": "market", "symbol": "MSFT", "ts": "2026-03-02T14:30:00Z", "bid": "409.72",
     "ask": "409.88", "last": "409.80", "volume": "1000"},
    *({"type": "intent", "intent_id": intent, "ts": f"2026-03-02T14:30:0{n}Z", "account": "A1",
       "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "10", "order_type": "limit",
       "limit_price": limit, "tif": "day"}
      for n, (intent, limit) in enumerate((("i1", "400.00"), ("i2", "401.00")), start=1)),
    {"type": "cancel_refused", "client_order_id": derive_client_order_id("A1", "s", "i1"),
     "reason": "order is not cancelable", "ts": "2026-03-02T14:31:01Z"},
    {"type": "fill", "client_order_id": derive_client_order_id("A1", "s", "i2"),
     "fill_id": "f1", "qty": "5", "price": "405.00", "ts": "2026-03-02T14:31:02Z"},
]


def _run(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in EVENTS))
    journal = tmp_path / "j.db"
    ran = invoke("run", "--quiet", "--policy", str(tmp_path / "policy.yaml"), "--journal",
                 str(journal), "--broker-state", str(tmp_path / "broker.json"), str(events))
    assert ran.code == 0, ran.output
    return journal, " ".join(ran.output.split())


def test_the_run_summary_counts_critical_and_warning_alerts_by_code(tmp_path: Path) -> None:
    _, summary = _run(tmp_path)
    assert ("1 critical FILL_PRICE alert (at 2026-03-02T14:31:02Z): a fill past its order's "
            "limit price: the broker executed an order at a price the order did not allow"
            ) in summary, summary
    assert ("1 warning CANCEL_REFUSED alert (at 2026-03-02T14:31:01Z): the broker refused to "
            "cancel an order: it went on working there") in summary, summary
    # critical first
    assert summary.index("FILL_PRICE alert") < summary.index("CANCEL_REFUSED alert")


def test_the_evidence_report_says_what_failed_and_what_remains_risky(tmp_path: Path) -> None:
    journal, _ = _run(tmp_path)
    made = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"))
    assert made.code == 0, made.output
    # the console says it too, not only the pack's files (a critical alert is no safety stop)
    assert "failed: 1 critical FILL_PRICE alert" in made.output, made.output
    assert "risky: 1 warning CANCEL_REFUSED alert" in made.output, made.output
    report = (tmp_path / "pack" / "report.md").read_text()
    summary = report[report.index("**What failed**"):report.index("## Policies in force")]
    failed, risky = summary.split("**What remains risky**")
    assert "- nothing" not in failed, summary
    assert "1 critical FILL_PRICE alert (at 2026-03-02T14:31:02Z): a fill past its order's " \
           "limit price" in failed, summary
    assert "CANCEL_REFUSED" not in failed, summary
    assert "1 warning CANCEL_REFUSED alert (at 2026-03-02T14:31:01Z): the broker refused to " \
           "cancel an order" in risky, summary
    # the Alerts table quotes each code's first alert, naming the order
    alerts = report[report.index("## Alerts"):report.index("## Monitor mode")]
    rows = [line for line in alerts.splitlines() if line.startswith("| critical")
            or line.startswith("| warning")]
    assert [row.split(" | ")[1] for row in rows] == ["FILL_PRICE", "CANCEL_REFUSED"], alerts
    assert "was filled at 405.00, above its limit price 401.00" in rows[0], rows
    assert "order is not cancelable" in rows[1], rows
    page = (tmp_path / "pack" / "report.html").read_text()
    assert 'id="table-alerts"' in page and "FILL_PRICE" in page


def test_a_journal_without_such_alerts_reports_none(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in EVENTS[:3]))
    journal = tmp_path / "j.db"
    ran = invoke("run", "--quiet", "--policy", str(tmp_path / "policy.yaml"), "--journal",
                 str(journal), str(events))
    assert ran.code == 0 and "alerts raised" not in ran.output, ran.output
    assert invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack")).code == 0
    report = (tmp_path / "pack" / "report.md").read_text()
    assert "**What failed**\n\n- nothing" in report
    assert "No critical or warning alert was journaled in the window" in report
