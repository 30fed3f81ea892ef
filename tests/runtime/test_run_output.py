"""What `ordergate run` prints, on a small events file whose outcome is known line by line:
the JSON Lines on stdout (decisions, orders, fills, mode changes, with their ids and fields,
in the order they happened) and the summary on stderr (decisions by outcome and by reason,
orders, fills, PnL and the final mode, with their values).

The file: one buy filled at 100, two intents for the restricted symbol GME (ORD-009), a new
AAPL mark of 102, an operator's reduce_only, then a buy (denied, MOD-002) and a sell that
shrinks the position (allowed, filled at 102). Realized PnL 4 x 2 = 8, unrealized 6 x 2 = 12.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.harness import cli, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.engine.ids import derive_client_order_id

ACCOUNT = "ACC-1"
POLICY_HASH_PREFIX = "sha256:"


def _at(second: int) -> str:
    return f"2026-03-02T15:00:{second:02d}Z"


def _intent(intent_id: str, second: int, symbol: str, side: str, qty: str,
            strategy: str = "trend") -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": _at(second), "account": ACCOUNT,
            "strategy": strategy, "symbol": symbol, "side": side, "qty": qty}


def _market(symbol: str, second: int, last: str) -> dict[str, Any]:
    mid = float(last)
    return {"type": "market", "symbol": symbol, "ts": _at(second),
            "bid": f"{mid - 0.05:.2f}", "ask": f"{mid + 0.05:.2f}", "last": last}


EVENTS = [
    {"type": "account", "ts": _at(0), "account": ACCOUNT, "cash": "100000"},
    _market("AAPL", 1, "100.00"),
    _market("GME", 1, "24.00"),
    _intent("buy-1", 2, "AAPL", "buy", "10"),
    _intent("gme-1", 3, "GME", "buy", "5"),
    _intent("gme-2", 4, "GME", "buy", "7", strategy="burst"),
    _market("AAPL", 5, "102.00"),
    {"type": "command", "ts": _at(6), "action": "reduce_only", "operator": "ops-1",
     "reason": "desk review"},
    _intent("buy-2", 7, "AAPL", "buy", "3"),
    _intent("sell-1", 8, "AAPL", "sell", "4"),
]


def _run(tmp_path: Path) -> tuple[list[dict[str, Any]], str]:
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    # One event per batch: each order's fill is back before the next event is decided.
    result = cli("run", "--policy", str(demo_policy_path()),
                 "--journal", str(tmp_path / "journal.db"), "--batch-size", "1",
                 str(events), columns=200)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert result.stdout.endswith("\n") and all(lines)
    return [json.loads(line) for line in lines], result.stderr


def test_stdout_has_every_decision_order_fill_and_mode_change_in_order(tmp_path: Path) -> None:
    printed, _ = _run(tmp_path)
    buy = derive_client_order_id(ACCOUNT, "trend", "buy-1")
    sell = derive_client_order_id(ACCOUNT, "trend", "sell-1")
    assert [(line["type"], _id(line)) for line in printed] == [
        ("alert", "POLICY_ACTIVATED"),
        ("decision", "buy-1"), ("dispatch", buy), ("fill", buy),
        ("decision", "gme-1"), ("decision", "gme-2"),
        ("alert", "MOD-002"), ("mode", "REDUCE_ONLY"),
        ("decision", "buy-2"),
        ("decision", "sell-1"), ("dispatch", sell), ("fill", sell),
    ]
    decisions = {line["intent_id"]: line for line in printed if line["type"] == "decision"}
    assert {key: (d["decision"], d.get("blocking", "")) for key, d in decisions.items()} == {
        "buy-1": ("ALLOW", ""), "gme-1": ("DENY", "ORD-009"), "gme-2": ("DENY", "ORD-009"),
        "buy-2": ("DENY", "MOD-002"), "sell-1": ("ALLOW", ""),
    }
    assert [v["code"] for v in decisions["gme-2"]["violations"]] == ["ORD-009"]
    assert decisions["gme-2"]["violations"][0]["observed"] == "GME"
    assert decisions["buy-2"]["mode"] == "REDUCE_ONLY"
    assert decisions["sell-1"]["mode"] == "REDUCE_ONLY" and decisions["sell-1"]["risk_reducing"]
    assert all(d["policy_hash"].startswith(POLICY_HASH_PREFIX) for d in decisions.values())

    dispatches = [line for line in printed if line["type"] == "dispatch"]
    assert [(d["intent_id"], d["account"], d["strategy"], d["symbol"], d["side"], d["qty"],
             d["order_type"], d["reduce_only"]) for d in dispatches] == [
        ("buy-1", ACCOUNT, "trend", "AAPL", "buy", "10", "market", False),
        ("sell-1", ACCOUNT, "trend", "AAPL", "sell", "4", "market", True),
    ]
    fills = [line for line in printed if line["type"] == "fill"]
    assert [(f["client_order_id"], f["qty"], f["price"]) for f in fills] == [
        (buy, "10", "100.00"), (sell, "4", "102.00")]
    assert len({f["fill_id"] for f in fills}) == 2

    (mode,) = [line for line in printed if line["type"] == "mode"]
    assert (mode["previous"], mode["mode"], mode["actor"], mode["ts"]) == (
        "ACTIVE", "REDUCE_ONLY", "ops-1", _at(6))
    assert [(r["code"], r["detail"], r["actor"]) for r in mode["reasons"]] == [
        ("MOD-002", "desk review", "ops-1")]


def test_summary_counts_reasons_orders_fills_pnl_and_final_mode(tmp_path: Path) -> None:
    _, summary = _run(tmp_path)
    assert re.search(r"decisions 5\s+allowed 2\s+modified 0\s+denied 3\s+orders 2\s+fills 2\b",
                     summary), summary
    rows = {cells[1]: cells[0] for cells in _table_rows(summary)}
    assert rows == {"ORD-009": "2", "MOD-002": "1"}, summary
    assert "The symbol is on the restricted list." in summary
    assert re.search(r"account ACC-1: equity 100,020\.00\s+PnL today 20\.00 "
                     r"\(realized 8\.00, unrealized 12\.00, fees 0\.00\)", summary), summary
    assert "mode ACTIVE -> REDUCE_ONLY at 2026-03-02T15:00:06+00:00 (ops-1): MOD-002 desk review" \
        in summary
    final = [line for line in summary.splitlines() if line.startswith("final mode:")]
    assert final == ["final mode: REDUCE_ONLY"], summary
    assert "held by MOD-002 desk review" in summary
    assert re.search(r"journal head: seq \d+ hash sha256:[0-9a-f]{64}", summary)


def _id(line: dict[str, Any]) -> str:
    """What a printed line is about: an intent, an order, a mode or an alert's code."""
    key = {"decision": "intent_id", "dispatch": "client_order_id", "fill": "client_order_id",
           "cancel": "client_order_id", "canceled": "client_order_id",
           "reject": "client_order_id", "mode": "mode",
           "alert": "code"}[line["type"]]
    return str(line[key])


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in `text` (cells stripped)."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


# Cancels, broker rejects, alerts and refused commands: a limit buy below the market rests
# at the broker until a kill switch cancels it; the broker (a simulator config file that
# rejects MSFT) refuses an MSFT order; a resume without an operator is refused; a halt is
# lifted by an operator's resume with a reason.
SIM_REJECTING_MSFT = "sim:\n  fill_model: immediate\n  reject_symbols: [MSFT]\n  seed: 3\n"
OPERATOR_EVENTS = [
    {"type": "account", "ts": _at(0), "account": ACCOUNT, "cash": "100000"},
    _market("AAPL", 1, "100.00"),
    _market("MSFT", 1, "300.00"),
    {**_intent("rest-1", 2, "AAPL", "buy", "5"), "order_type": "limit", "limit_price": "90"},
    _intent("msft-1", 3, "MSFT", "buy", "2"),
    {"type": "command", "ts": _at(4), "action": "kill", "operator": "ops-1",
     "reason": "runaway", "cancel_all": True},
    {"type": "command", "ts": _at(5), "action": "unkill", "operator": "ops-1",
     "reason": "contained"},
    {"type": "command", "ts": _at(6), "action": "halt", "operator": "ops-1",
     "reason": "desk check"},
    {"type": "command", "ts": _at(7), "action": "resume", "reason": "forgot my name"},
    {"type": "command", "ts": _at(8), "action": "resume", "operator": "ops-2",
     "reason": "desk checked the book"},
]


def _run_operator_day(tmp_path: Path) -> tuple[list[dict[str, Any]], str]:
    events = write_jsonl(tmp_path / "events.jsonl", OPERATOR_EVENTS)
    sim = tmp_path / "sim.yaml"
    sim.write_text(SIM_REJECTING_MSFT, encoding="utf-8")
    result = cli("run", "--policy", str(demo_policy_path()), "--broker", str(sim),
                 "--journal", str(tmp_path / "journal.db"), "--batch-size", "1",
                 str(events), columns=300)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_stdout_shows_cancels_broker_rejects_alerts_and_refused_commands(
        tmp_path: Path) -> None:
    printed, _ = _run_operator_day(tmp_path)
    resting = derive_client_order_id(ACCOUNT, "trend", "rest-1")
    msft = derive_client_order_id(ACCOUNT, "trend", "msft-1")
    assert [(line["type"], _id(line)) for line in printed] == [
        ("alert", "POLICY_ACTIVATED"),
        ("decision", "rest-1"), ("dispatch", resting),
        ("decision", "msft-1"), ("dispatch", msft), ("reject", msft),
        ("alert", "KIL-002"), ("cancel", resting), ("canceled", resting),
        ("alert", "COMMAND"),
        ("alert", "MOD-001"), ("mode", "HALTED"),
        ("alert", "COMMAND_REFUSED"),
        ("alert", "COMMAND"), ("mode", "ACTIVE"),
    ]
    by_type = {(line["type"], _id(line)): line for line in printed}
    cancel = by_type[("cancel", resting)]
    assert (cancel["ts"], cancel["reason"]) == (_at(4), "kill switch firm:")
    reject = by_type[("reject", msft)]
    assert reject["reason"] == "rejected by the simulator"
    refused = by_type[("alert", "COMMAND_REFUSED")]
    assert (refused["ts"], refused["severity"], refused["message"]) == (
        _at(7), "warning", "resume refused: missing operator")


def test_summary_gives_the_resume_reason_and_the_refused_command(tmp_path: Path) -> None:
    _, summary = _run_operator_day(tmp_path)
    assert "mode HALTED -> ACTIVE at 2026-03-02T15:00:08+00:00 (ops-2): desk checked the book" \
        in summary, summary
    assert "command refused at 2026-03-02T15:00:07+00:00: resume refused: missing operator" \
        in summary, summary
    assert "final mode: ACTIVE" in summary


@pytest.mark.postgres
def test_the_gateway_summary_gives_the_resume_reason_too(tmp_path: Path,
                                                         postgres_url: str) -> None:
    """`ordergate gateway` ends with the same summary as `run`, operators' reasons included
    (a resume's mode change carries none of its own; the summary showed "-")."""
    events = write_jsonl(tmp_path / "events.jsonl", OPERATOR_EVENTS)
    sim = tmp_path / "sim.yaml"
    sim.write_text(SIM_REJECTING_MSFT, encoding="utf-8")
    result = cli("gateway", str(events), "--policy", str(demo_policy_path()), "--broker",
                 str(sim), "--journal", postgres_url, "--shard", "desk-a", "--quiet",
                 columns=300)
    assert result.returncode == 0, result.stderr
    assert "mode HALTED -> ACTIVE at 2026-03-02T15:00:08+00:00 (ops-2): desk checked the book" \
        in result.stderr, result.stderr
    assert "command refused at 2026-03-02T15:00:07+00:00: resume refused: missing operator" \
        in result.stderr, result.stderr
