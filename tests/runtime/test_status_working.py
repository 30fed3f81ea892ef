"""`ordergate status --journal J` on a HALTED journal with working orders: the mode and its
meaning, the "why:" list (the halt's reason in plain words with its code, time and operator,
and the operator's strategy kill), and the working-orders table with each resting order's id,
strategy, symbol, side, remaining quantity (after a partial fill) and limit price.

The file: two resting limit buys (AAPL 10 @ 98.50, MSFT 3 @ 395.25) from `trend`, a market
buy of MSFT from `burst` that fills at the next quote, a partial fill of 4 AAPL on the first
limit order, an operator's halt and a kill of strategy `burst` (which has nothing working, so
`cancel_all_on_kill` cancels nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.engine.ids import derive_client_order_id

ACCOUNT = "ACC-1"
AAPL_ORDER = derive_client_order_id(ACCOUNT, "trend", "rest-aapl")
MSFT_ORDER = derive_client_order_id(ACCOUNT, "trend", "rest-msft")


def _at(second: int) -> str:
    return f"2026-03-02T15:00:{second:02d}Z"


def _quote(symbol: str, second: int, bid: str, ask: str, last: str) -> dict[str, Any]:
    return {"type": "market", "symbol": symbol, "ts": _at(second), "bid": bid, "ask": ask,
            "last": last}


def _limit(intent_id: str, second: int, symbol: str, qty: str, price: str) -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": _at(second), "account": ACCOUNT,
            "strategy": "trend", "symbol": symbol, "side": "buy", "qty": qty,
            "order_type": "limit", "limit_price": price}


EVENTS = [
    {"type": "account", "ts": _at(0), "account": ACCOUNT, "cash": "100000"},
    _quote("AAPL", 1, "99.95", "100.05", "100"),
    _quote("MSFT", 1, "399.95", "400.05", "400"),
    _limit("rest-aapl", 2, "AAPL", "10", "98.5"),
    _limit("rest-msft", 3, "MSFT", "3", "395.25"),
    {"type": "intent", "intent_id": "take-msft", "ts": _at(3), "account": ACCOUNT,
     "strategy": "burst", "symbol": "MSFT", "side": "buy", "qty": "2"},
    _quote("MSFT", 4, "401.95", "402.05", "402"),
    {"type": "fill", "ts": _at(4), "client_order_id": AAPL_ORDER, "fill_id": "desk-1",
     "qty": "4", "price": "98.5"},
    {"type": "command", "ts": _at(5), "action": "halt", "operator": "ops-1",
     "reason": "broker maintenance"},
    {"type": "command", "ts": _at(6), "action": "kill", "scope": "strategy", "key": "burst",
     "operator": "ops-2", "reason": "runaway loop"},
    {"type": "clock", "ts": _at(7)},
]


def _halted_journal(tmp_path: Path) -> Path:
    events = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    journal = tmp_path / "journal.db"
    result = cli("run", "--quiet", "--policy", str(demo_policy_path()),
                 "--journal", str(journal), "--fill-model", "next_market",
                 "--batch-size", "1", str(events))
    assert result.returncode == 0, result.stderr
    return journal


def _section(text: str, title: str) -> list[str]:
    """The table printed under the line `title`: its lines up to the first that is not
    part of it."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((n for n in range(start, len(lines)) if not lines[n].startswith(_TABLE)),
               len(lines))
    return lines[start:end]


_TABLE = ("┏", "┃", "┡", "│", "└")


def _rows(lines: list[str]) -> list[list[str]]:
    """A rich table's header row, then its body rows (cells stripped)."""
    return [[cell.strip() for cell in line.strip().strip(bar).split(bar)]
            for line in lines for bar in ("┃", "│") if line.startswith(bar)]


def test_status_of_a_halted_journal_lists_why_and_the_working_orders(tmp_path: Path) -> None:
    journal = _halted_journal(tmp_path)
    result = cli("status", "--journal", str(journal), columns=200)
    assert result.returncode == 0, result.stderr
    text = result.stdout

    assert "HALTED" in text
    assert "No new orders. Only cancels and an operator-ordered flatten go through." in text
    assert "as of 2026-03-02 15:00:07 UTC" in text and "policy demo-day" in text

    lines = text.splitlines()
    why = lines[lines.index("why:") + 1:]
    alerts_header = next(n for n, line in enumerate(why)
                         if line.startswith("latest critical and warning alerts"))
    bullets = [line for line in why[:alerts_header] if line.startswith("•")]
    # the halt's alert follows, in the list of the latest alerts
    assert any(line.startswith("• critical MOD-001 at 2026-03-02 15:00:05 UTC")
               for line in why[alerts_header:]), text
    assert bullets == [
        "• Trading is HALTED: only cancels and an operator-ordered flatten are allowed. "
        "(MOD-001 since 2026-03-02 15:00:05 UTC, by ops-1)",
        "• kill switch on strategy burst by ops-2: runaway loop",
    ]
    assert why[1] == "  broker maintenance"  # the halt's detail, under its reason

    working = _section(text, "working orders")
    assert _rows(working)[0] == ["client order id", "strategy", "symbol", "side", "remaining",
                                 "limit"]
    assert sorted(_rows(working)[1:]) == sorted([
        [AAPL_ORDER, "trend", "AAPL", "buy", "6", "98.50"],
        [MSFT_ORDER, "trend", "MSFT", "buy", "3", "395.25"],
    ])
    assert "no working orders" not in text

    positions = _section(text, "positions")
    assert sorted(_rows(positions)[1:]) == [
        [ACCOUNT, "AAPL", "4", "98.50", "100.00", "6.00"],
        [ACCOUNT, "MSFT", "2", "402.00", "402.00", "0.00"],
    ]
