"""What the evidence pack tells a reviewer: the operator's commands and the policies in force,
a kill switch still engaged at the end, decisions taken in monitor mode, how many decisions
met a full order-rate window, a retry's repeated answer, a journal that failed verification
(never shown as zeros), tables that survive `|` and line breaks, and a write that fails."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.evidence.support import invoke

from ordergate.evidence.report import NOT_READ, _table_md

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: {name}
{top}engine:
  on_drawdown: HALTED
  resume_requires_two_operators: {two}
restricted_symbols: [GME]
defaults:
  max_market_data_age: 48h
  max_order_qty: 1000
  max_gross_exposure: 10000000
  duplicate_window: 1ms
  rate_strategy: {{max: 3, window: 1s}}
  max_drawdown_pct: {drawdown}
  drawdown_kill: true
"""
START = [
    {"type": "account", "account": "A1", "cash": "1000000", "ts": "2026-03-02T14:00:00Z"},
    {"type": "market", "symbol": "AAPL", "ts": "2026-03-02T14:30:00Z", "bid": "189.95",
     "ask": "190.05", "last": "190", "volume": "1000"},
    {"type": "market", "symbol": "GME", "ts": "2026-03-02T14:30:00Z", "bid": "19.95",
     "ask": "20.05", "last": "20", "volume": "1000"},
]


def _intent(intent_id: str, second: int, qty: int = 1, symbol: str = "AAPL",
            strategy: str = "s1") -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": f"2026-03-02T14:31:{second:02d}Z",
            "account": "A1", "strategy": strategy, "symbol": symbol, "side": "buy",
            "qty": str(qty), "order_type": "market"}


def _command(action: str, operator: str, reason: str, second: int,
             **more: str) -> dict[str, Any]:
    return {"type": "command", "action": action, "operator": operator, "reason": reason,
            "ts": f"2026-03-02T14:31:{second:02d}Z", **more}


def _pack(tmp_path: Path, events: list[dict[str, Any]], *, monitor: bool = False,
          two_operators: bool = False, drawdown: int = 50, code: int = 0) -> str:
    """report.md of a journal `ordergate run` wrote from START + `events`."""
    top = "monitor: true\n" if monitor else ""
    (tmp_path / "policy.yaml").write_text(POLICY.format(
        name="contents", top=top, two=str(two_operators).lower(), drawdown=drawdown))
    (tmp_path / "events.jsonl").write_text(
        "".join(json.dumps(event) + "\n" for event in START + events))
    journal = tmp_path / "j.db"
    # one event a batch: a fill is booked before the next event (the drawdown halts in time)
    ran = invoke("run", "--quiet", "--batch-size", "1", "--policy",
                 str(tmp_path / "policy.yaml"), "--journal", str(journal),
                 str(tmp_path / "events.jsonl"))
    assert ran.code == 0, ran.output
    result = invoke("report", "--journal", str(journal), "--out", str(tmp_path / "pack"))
    assert result.code == code, result.output
    return (tmp_path / "pack" / "report.md").read_text()


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _risky(markdown: str) -> str:
    return markdown.split("**What remains risky**", 1)[1].split("**", 1)[0]


def test_pack_lists_operator_actions_the_policy_in_force_and_a_kill_still_engaged(
        tmp_path: Path) -> None:
    markdown = _pack(tmp_path, [
        _intent("i1", 1),
        _command("kill", "dave", "strategy s1 off", 2, scope="strategy", key="s1"),
        _command("unkill", "erin", "", 3, scope="strategy", key="s1"),  # no reason: refused
        _command("kill", "alice", "suspicious fills on AAPL", 4),
        _intent("i2", 5),
    ])

    policies = _section(markdown, "Policies in force")
    assert re.search(r"\| 2026-03-02T14:00:00Z \| end \| contents \| sha256:[0-9a-f]{64} \| no "
                     r"\| ordergate \|", policies), policies
    actions = _section(markdown, "Operator actions")
    assert "| dave | kill | strategy s1 | strategy s1 off | accepted |" in actions
    assert "| erin | unkill | strategy s1 |  | refused | unkill refused: missing reason |" \
        in actions
    assert "| alice | kill | firm | suspicious fills on AAPL | accepted |" in actions
    risky = _risky(markdown)
    assert ("the firm-wide kill switch engaged by alice at 2026-03-02T14:31:04Z (suspicious "
            "fills on AAPL) is still engaged: every order is denied") in risky
    assert "the kill switch on strategy s1 engaged by dave" in risky
    html = (tmp_path / "pack" / "report.html").read_text()
    assert 'id="table-actions"' in html and "suspicious fills on AAPL" in html


def test_pack_names_both_operators_of_a_drawdown_resume_and_a_resume_still_awaited(
        tmp_path: Path) -> None:
    crash = [_intent("x1", 1, qty=400),
             {"type": "market", "symbol": "AAPL", "ts": "2026-03-02T14:31:05Z",
              "bid": "149.95", "ask": "150.05", "last": "150", "volume": "1000"},
             _intent("x2", 6)]
    bob = _command("resume", "bob", "loss accepted by bob", 7)
    carol = _command("resume", "carol", "loss accepted by carol", 8)
    (tmp_path / "both").mkdir()
    (tmp_path / "one").mkdir()

    both = _pack(tmp_path / "both", [*crash, bob, carol], two_operators=True, drawdown=1)
    one = _pack(tmp_path / "one", [*crash, bob], two_operators=True, drawdown=1)

    actions = _section(both, "Operator actions")
    assert ("| bob | resume |  | loss accepted by bob | first approval: a second operator "
            "must resume |") in actions
    assert "| carol | resume |  | loss accepted by carol | accepted |" in actions
    assert "approved by bob only: it waits for a second operator" not in both
    assert "approved by bob only: it waits for a second operator" in _risky(one)


def test_pack_says_decisions_were_taken_in_monitor_mode_and_lists_what_would_have_blocked(
        tmp_path: Path) -> None:
    markdown = _pack(tmp_path, [_intent("m1", 1), _intent("m2", 2, symbol="GME"),
                                _intent("m3", 3, qty=2000)], monitor=True)

    assert ("3 of 3 decision(s) were taken in monitor mode (the policy sets monitor: true: its "
            "limits were evaluated and recorded, not enforced); 2 of them let through an order "
            "the policy would have blocked: ORD-009 \u00d71, ORD-006 \u00d71") in _risky(markdown)
    monitor = _section(markdown, "Monitor mode")
    assert "| ORD-009 | 1 |" in monitor and "| ORD-006 | 1 |" in monitor
    assert "| m2 | s1 | GME | buy | 10 | ALLOW | ORD-009 |" not in monitor  # qty is 1
    assert "| m2 | s1 | GME | buy | 1 | ALLOW | ORD-009 |" in monitor
    assert "| m3 | s1 | AAPL | buy | 2000 | ALLOW | ORD-006 |" in monitor
    assert "| yes |" in _section(markdown, "Policies in force")


def test_pack_counts_the_decisions_that_met_a_full_order_rate_window(tmp_path: Path) -> None:
    # the strategy window holds 3; six orders in one second: the last three are throttled
    markdown = _pack(tmp_path, [_intent(f"r{n}", 1, qty=n) for n in range(1, 7)])

    assert "an order-rate window was full at 3 decision(s)" in _risky(markdown)
    assert "| THR-003 | 3 |" in _section(markdown, "Decisions")


def test_pack_tells_a_retry_s_repeated_answer_from_a_missing_decision_record(
        tmp_path: Path) -> None:
    markdown = _pack(tmp_path, [_intent("i1", 1), _intent("i1", 1)])

    assert "carry no DecisionRecord" not in markdown
    assert ("1 decision(s) repeat the engine's earlier answer to an intent id sent again (a "
            "retry: not judged again, no second order, so no DecisionRecord of their own)"
            in markdown)


def test_pack_of_a_journal_that_failed_verification_shows_no_counts(tmp_path: Path) -> None:
    _pack(tmp_path, [_intent("i1", 1), _intent("i2", 2)])
    with sqlite3.connect(tmp_path / "j.db") as connection:
        seq = connection.execute("select max(seq) from journal_records where "
                                 "cast(payload as text) like '{\"type\":\"decision\",%'"
                                 ).fetchone()[0]
        connection.execute("update journal_records set payload = cast(replace(cast(payload "
                           "as text), '\"ALLOW\"', '\"DENY\"') as blob) where seq = ?", (seq,))
    connection.close()

    result = invoke("report", "--journal", str(tmp_path / "j.db"), "--out",
                    str(tmp_path / "pack"))

    assert result.code == 3, result.output
    markdown = (tmp_path / "pack" / "report.md").read_text()
    assert "| ALLOW | 0 |" not in markdown and "| DENY |" not in markdown
    for title in ("Decisions", "Operator actions", "Policies in force", "Monitor mode"):
        assert NOT_READ in _section(markdown, title)
    risky = _risky(markdown)
    assert "nothing" not in risky and "not assessed: the journal failed verification" in risky
    html = (tmp_path / "pack" / "report.html").read_text()
    assert 'id="table-outcomes"' not in html and "<svg" not in html
    assert not list((tmp_path / "pack").glob("*.csv"))


def test_markdown_tables_keep_their_shape_with_pipes_and_line_breaks(tmp_path: Path) -> None:
    table = _table_md(("strategy", "reason"), [("s|1", "venue A | venue B down\nsee ticket 42"),
                                               ("back\\slash", "ok")])

    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2] == "| s\\|1 | venue A \\| venue B down<br>see ticket 42 |"
    assert lines[3] == "| back\\\\slash | ok |"
    assert all(len(re.findall(r"(?<!\\)\|", line.replace("\\\\", ""))) == 3 for line in lines)

    markdown = _pack(tmp_path, [
        _command("halt", "alice", "venue A | venue B down\nsee ticket 42", 1),
        _command("resume", "bob", "ok", 2), _intent("x1", 3, strategy="s|1")])
    assert "| s\\|1 | ALLOW | 1 |" in markdown
    assert "| alice | halt |  | venue A \\| venue B down<br>see ticket 42 | accepted |" \
        in markdown


def test_a_pack_that_cannot_be_written_whole_leaves_nothing_and_says_so(
        tmp_path: Path) -> None:
    _pack(tmp_path, [_intent("i1", 1)])
    out = tmp_path / "blocked"
    (out / "report.html").mkdir(parents=True)

    result = invoke("report", "--journal", str(tmp_path / "j.db"), "--out", str(out))

    assert result.code == 1, result.output
    said = " ".join(result.output.split())
    assert (f"cannot write the evidence pack: {out / 'report.html'}: Is a directory; nothing "
            "of the pack was written") in said
    assert sorted(path.name for path in out.iterdir()) == ["report.html"]
    assert sorted(path.name for path in tmp_path.iterdir() if ".partial" in path.name) == []


def test_pack_of_a_window_before_any_policy_was_activated_says_so(demo_day: Path,
                                                                  tmp_path: Path) -> None:
    # The demo's policy is activated at its start-up; a window ending before it holds no
    # activation at all (the pack used to stop there with a stack trace).
    result = invoke("report", "--journal", str(demo_day / "journal.db"), "--out",
                    str(tmp_path / "pack"), "--until", "2026-03-02T14:00:00Z")
    assert result.code == 0, result.output
    text = (tmp_path / "pack" / "report.md").read_text()
    assert "No policy was activated up to the window's end" in text
