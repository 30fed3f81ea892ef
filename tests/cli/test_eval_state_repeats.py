"""`ordergate eval --state` refuses a state file that gives the same account, or the same
account and symbol, twice: keeping one of the rows would silently drop the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: poscap}
defaults:
  max_market_data_age: 1h
  max_position_qty: 10
"""
ACCOUNT = {"account": "A", "cash": "100000"}
POSITION = {"account": "A", "symbol": "X", "qty": "8", "avg_price": "100"}
MARKET = [{"type": "market", "symbol": "X", "ts": "2026-03-02T15:00:00Z", "bid": "99.9",
           "ask": "100.1", "last": "100"}]
BUY = {"intent_id": "buy-2", "ts": "2026-03-02T15:00:01Z", "account": "A", "strategy": "s",
       "symbol": "X", "side": "buy", "qty": "2", "order_type": "limit", "limit_price": "100"}


def _eval(tmp_path: Path, state: dict[str, Any]) -> Any:
    files = {"policy.yaml": POLICY, "state.json": json.dumps(state),
             "market.json": json.dumps(MARKET), "intents.jsonl": json.dumps(BUY) + "\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return cli("eval", "--policy", str(tmp_path / "policy.yaml"),
               "--state", str(tmp_path / "state.json"), "--market",
               str(tmp_path / "market.json"), str(tmp_path / "intents.jsonl"), columns=400)


def test_two_position_rows_for_one_account_and_symbol_are_refused(tmp_path: Path) -> None:
    result = _eval(tmp_path, {"accounts": [ACCOUNT],
                              "positions": [POSITION, {**POSITION, "qty": "1"}]})
    assert result.returncode == 1
    assert result.stdout == ""  # no decision on a position the file left ambiguous
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "state.json: positions[1]: account A symbol X is already given at positions[0]" \
        in line


def test_an_account_given_twice_is_refused(tmp_path: Path) -> None:
    result = _eval(tmp_path, {"accounts": [ACCOUNT, {**ACCOUNT, "cash": "5"}],
                              "positions": [POSITION]})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "state.json: accounts[1]: account A is already given at accounts[0]" in result.stderr


def test_one_row_per_account_and_symbol_is_decided(tmp_path: Path) -> None:
    other = {**POSITION, "symbol": "Y"}
    result = _eval(tmp_path, {"accounts": [ACCOUNT, {**ACCOUNT, "account": "B"}],
                              "positions": [POSITION, other, {**POSITION, "account": "B"}]})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "ALLOW"
