"""The evidence pack shows a policy dry run (POST /v1/policy with dry_run: the shadow policy
judged beside the enforced one, its answers journaled as ShadowDecision records): which policy
and hash, what it would have denied by code, the intents whose answer differs from the enforced
one, and every shadow answer in shadow_decisions.csv; Monitor mode no longer reads as if nothing
was judged without being enforced."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tests.evidence.support import invoke

from ordergate.policy.loader import parse_policy

ENFORCED = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: enforced}
defaults:
  max_market_data_age: 48h
  max_order_qty: 1000
"""
SHADOW = ENFORCED.replace("name: enforced", "name: stricter").replace("1000", "50")
START = [
    {"type": "account", "account": "A1", "cash": "1000000", "ts": "2026-03-02T14:00:00Z"},
    {"type": "market", "symbol": "AAPL", "ts": "2026-03-02T14:30:00Z", "bid": "189.95",
     "ask": "190.05", "last": "190", "volume": "1000"},
]


def _intent(intent_id: str, second: int, qty: int) -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": f"2026-03-02T14:31:{second:02d}Z",
            "account": "A1", "strategy": "s1", "symbol": "AAPL", "side": "buy",
            "qty": str(qty), "order_type": "market"}


def _shadow(policy_hash: str, second: int, reason: str) -> dict[str, Any]:
    return {"type": "command", "action": "shadow_policy", "operator": "ops-alice",
            "reason": reason, "policy_hash": policy_hash,
            "ts": f"2026-03-02T14:31:{second:02d}Z"}


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_pack_shows_what_a_dry_run_policy_would_have_denied(tmp_path: Path) -> None:
    shadow = parse_policy(SHADOW)
    events = [*START,
              {"type": "policy", "ts": "2026-03-02T14:31:00Z", "policy_hash": shadow.hash,
               "document": shadow.document},
              _shadow(shadow.hash, 1, "try max_order_qty 50"),
              _intent("d1", 2, 100), _intent("d2", 3, 10), _intent("d3", 4, 80),
              _shadow("", 5, "seen enough"),
              _intent("d4", 6, 100)]  # after the dry run: judged by the enforced policy only
    (tmp_path / "policy.yaml").write_text(ENFORCED)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(event) + "\n"
                                                   for event in events))
    ran = invoke("run", "--quiet", "--policy", str(tmp_path / "policy.yaml"), "--journal",
                 str(tmp_path / "j.db"), str(tmp_path / "events.jsonl"))
    assert ran.code == 0, ran.output
    result = invoke("report", "--journal", str(tmp_path / "j.db"), "--out",
                    str(tmp_path / "pack"))
    assert result.code == 0, result.output
    markdown = (tmp_path / "pack" / "report.md").read_text()

    named = f"stricter {shadow.hash}"
    assert (f"dry run of policy {named} (judged, never enforced): of 3 intent(s) it judged it "
            "would have denied 2 and modified 0; 2 answer(s) differ from the enforced one"
            ) in markdown
    assert (f"Judged beside them in a dry run, never enforced: policy {named} from "
            "2026-03-02T14:31:01Z until 2026-03-02T14:31:05Z") in _section(
                markdown, "Policies in force")
    monitor = _section(markdown, "Monitor mode")
    assert "what it would have denied or modified is under Dry runs" in monitor

    dry = _section(markdown, "Dry runs")
    assert ("| 2026-03-02T14:31:01Z | 2026-03-02T14:31:05Z | stricter | " + shadow.hash
            + " | ops-alice | try max_order_qty 50 | ended by ops-alice: seen enough | 3 | 2 "
            "| 0 | 2 |") in dry
    assert f"| stricter | {shadow.hash} | DENY | ORD-006 | 2 |" in dry
    assert f"| d1 | s1 | AAPL | buy | 100 | ALLOW | {named} | DENY ORD-006 |" in dry
    assert f"| d3 | s1 | AAPL | buy | 80 | ALLOW | {named} | DENY ORD-006 |" in dry
    assert "| d2 |" not in dry and "| d4 |" not in dry  # same answer; after the dry run

    with (tmp_path / "pack" / "shadow_decisions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["intent_id"], row["decision"], row["shadow_decision"],
             row["shadow_blocking"], row["shadow_policy_hash"], row["differs"])
            for row in rows] == [
        ("d1", "ALLOW", "DENY", "ORD-006", shadow.hash, "yes"),
        ("d2", "ALLOW", "ALLOW", "", shadow.hash, "no"),
        ("d3", "ALLOW", "DENY", "ORD-006", shadow.hash, "yes")]
    # times written as decisions.csv writes them (Z, not +00:00)
    with (tmp_path / "pack" / "decisions.csv").open() as handle:
        decided = {row["seq"]: row["ts"] for row in csv.DictReader(handle)}
    assert [row["ts"] for row in rows] == [decided[row["seq"]] for row in rows] == [
        "2026-03-02T14:31:02Z", "2026-03-02T14:31:03Z", "2026-03-02T14:31:04Z"]
    html = (tmp_path / "pack" / "report.html").read_text()
    assert 'id="table-dry-run-differs"' in html


def test_pack_without_a_dry_run_says_so(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(ENFORCED)
    (tmp_path / "events.jsonl").write_text("".join(
        json.dumps(event) + "\n" for event in [*START, _intent("n1", 2, 100)]))
    assert invoke("run", "--quiet", "--policy", str(tmp_path / "policy.yaml"), "--journal",
                  str(tmp_path / "j.db"), str(tmp_path / "events.jsonl")).code == 0
    assert invoke("report", "--journal", str(tmp_path / "j.db"), "--out",
                  str(tmp_path / "pack")).code == 0
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert "No policy was dry-run in the window" in _section(markdown, "Dry runs")
    assert "Dry runs" not in _section(markdown, "Monitor mode")
    assert not (tmp_path / "pack" / "shadow_decisions.csv").exists()


MONITOR = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: watching}
monitor: true
defaults:
  max_market_data_age: 48h
  max_order_qty: 1000
  cancel_rate: {max: 1, window: 1m}
  max_drawdown_pct: 5
  drawdown_kill: true
"""


def _pack(tmp_path: Path, events: list[dict[str, Any]], policy: str = MONITOR) -> str:
    """report.md of a journal `ordergate run` wrote from `events` (one event a batch: a fill
    is booked before the next event)."""
    (tmp_path / "policy.yaml").write_text(policy)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(event) + "\n"
                                                   for event in events))
    ran = invoke("run", "--quiet", "--batch-size", "1", "--policy",
                 str(tmp_path / "policy.yaml"), "--journal", str(tmp_path / "j.db"),
                 str(tmp_path / "events.jsonl"))
    assert ran.code == 0, ran.output
    result = invoke("report", "--journal", str(tmp_path / "j.db"), "--out",
                    str(tmp_path / "pack"))
    assert result.code == 0, result.output
    return (tmp_path / "pack" / "report.md").read_text()


def _sell(intent_id: str, second: int, price: int) -> dict[str, Any]:
    return {**_intent(intent_id, second, 1), "side": "sell", "order_type": "limit",
            "limit_price": str(price), "client_order_id": f"c-{intent_id}"}


def _cancel(intent_id: str, second: int) -> dict[str, Any]:
    return {"type": "cancel_request", "client_order_id": f"c-{intent_id}", "account": "A1",
            "ts": f"2026-03-02T14:31:{second:02d}Z"}


def test_monitor_mode_counts_the_cancels_it_sent_and_a_resent_intent_once(
        tmp_path: Path) -> None:
    markdown = _pack(tmp_path, [
        *START, _intent("buy", 1, 100),  # long 100: cancelling a resting sell adds risk
        _sell("s1", 2, 200), _sell("s2", 3, 201), _sell("s3", 4, 202),
        _cancel("s1", 5), _cancel("s2", 6), _cancel("s3", 7),  # the last two over the rate
        _intent("a1", 8, 2000), _intent("a1", 9, 2000),  # resent: answered again, not sent
        _intent("a2", 10, 2000)])

    monitor = _section(markdown, "Monitor mode")
    assert ("7 of 7 decision(s) were taken in monitor mode: the policy sets monitor: true, so "
            "its limits were evaluated and recorded, not enforced (kill switches, the mode and "
            "data checks still were). 2 order(s) the policy would have blocked were let "
            "through; 2 cancel(s) the policy would have refused were sent.") in monitor
    assert "| ORD-006 | 2 |" in monitor
    assert len([line for line in monitor.splitlines() if "| a1 |" in line]) == 1
    assert ("2 of them let through an order the policy would have blocked: ORD-006 \u00d72; "
            "2 cancel(s) the policy would have refused were sent (THR-005)") in markdown


def test_monitor_policy_without_intents_says_it_was_in_force_and_would_have_halted(
        tmp_path: Path) -> None:
    policy = parse_policy(MONITOR)
    markdown = _pack(tmp_path, [
        {"type": "account", "account": "A1", "cash": "100000", "ts": "2026-03-02T14:00:00Z",
         "high_water_mark": "120000"},
        {"type": "position", "account": "A1", "symbol": "AAPL", "qty": "10",
         "avg_price": "190", "ts": "2026-03-02T14:00:00Z"},
        START[1]])  # the mark: equity 101,900, more than 5% below 120,000

    monitor = _section(markdown, "Monitor mode")
    assert "No monitor-mode policy was in force" not in monitor
    assert "the policies' limits were enforced" not in monitor
    assert (f"In force in the window with monitor: true: policy watching {policy.hash} from "
            "2026-03-02T14:00:00Z.") in monitor
    assert ("drawdown_kill would have moved the mode to HALTED 1 time(s) (LOS-003 alerts, "
            "listed under Alerts): trading went on.") in monitor


def test_an_enforced_policy_has_no_monitor_mode(tmp_path: Path) -> None:
    markdown = _pack(tmp_path, [*START, _intent("e1", 1, 10)],
                     policy=MONITOR.replace("monitor: true\n", ""))
    assert _section(markdown, "Monitor mode").strip() == (
        "No monitor-mode policy was in force in the window: the policies' limits were "
        "enforced.")
