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
