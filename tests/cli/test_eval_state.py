"""`ordergate eval --state`: the equity marks a state file gives (equity, day-start equity,
high-water mark) are what the loss and drawdown limits decide on, as of the starting market,
even when the given equity disagrees with cash plus positions; a file without them decides as
before (cash plus positions at entry prices)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli
from typer.testing import CliRunner

from ordergate.cli.main import app

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: losing-day
defaults:
  max_market_data_age: 1h
  max_daily_loss: 1000
  max_daily_loss_pct: 2
  max_drawdown_pct: 5
"""
TS = "2026-03-02T15:00:00Z"
# cash plus the position: 50000 + 100 x 190 = 69000 at entry, 70000 at the market's 200
ACCOUNT = {"account": "ACC1", "cash": "50000"}
POSITION = {"account": "ACC1", "symbol": "AAPL", "qty": "100", "avg_price": "190"}


def _market(price: str, ts: str = TS) -> dict[str, Any]:
    return {"type": "market", "symbol": "AAPL", "ts": ts, "bid": price, "ask": price,
            "last": price, "volume": "1000000"}


def _intent(intent_id: str, side: str, ts: str = "2026-03-02T15:00:01Z") -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": ts, "account": "ACC1", "strategy": "s",
            "symbol": "AAPL", "side": side, "qty": "1"}


def _eval(tmp_path: Path, account: dict[str, Any],
          lines: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]], str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"accounts": [account], "positions": [POSITION]}))
    market = tmp_path / "market.json"
    market.write_text(json.dumps([_market("200")]))
    intents = tmp_path / "intents.jsonl"
    intents.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(app, ["eval", "--policy", str(policy), "--state", str(state),
                                      "--market", str(market), str(intents), "--out", str(out)])
    decisions = ([json.loads(line) for line in out.read_text().splitlines()]
                 if out.exists() else [])
    return result.exit_code, decisions, result.output


def _codes(decision: dict[str, Any]) -> dict[str, str]:
    return {violation["code"]: violation["observed"]
            for violation in decision.get("violations", [])}


def _loss(decision: dict[str, Any]) -> Decimal:
    return Decimal(_codes(decision)["LOS-001"])


def test_a_losing_day_in_the_state_file_denies_new_risk_on_every_loss_limit(
        tmp_path: Path) -> None:
    # equity 90000 against a day start of 100000 and a high-water mark of 120000: a 10000 loss
    # (LOS-001 at 1000), 10 % of the day (LOS-002 at 2 %), 25 % drawdown (LOS-003 at 5 %)
    losing = {**ACCOUNT, "equity": "90000", "day_start_equity": "100000",
              "high_water_mark": "120000"}
    code, decisions, output = _eval(tmp_path, losing, [_intent("buy-1", "buy"),
                                                       _intent("sell-1", "sell")])
    assert code == 0, output
    buy, sell = decisions
    assert (buy["decision"], buy["blocking"]) == ("DENY", "LOS-001")
    observed = _codes(buy)
    assert {"LOS-001", "LOS-002", "LOS-003"} <= set(observed)
    assert _loss(buy) == 10000
    # capital supremacy: the sell reduces the position, so the loss limits let it through
    assert sell["decision"] == "ALLOW"
    assert {"LOS-001", "LOS-002", "LOS-003"} <= set(_codes(sell))


def test_without_equity_marks_the_state_file_decides_on_cash_and_positions(
        tmp_path: Path) -> None:
    code, decisions, output = _eval(tmp_path, ACCOUNT, [_intent("buy-1", "buy")])
    assert code == 0, output
    assert decisions[0]["decision"] == "ALLOW"
    assert _codes(decisions[0]) == {}


def test_an_equity_that_disagrees_with_cash_and_positions_is_the_one_decided_on(
        tmp_path: Path) -> None:
    # Cash plus the position is 70000 at the starting market: with the given day start of
    # 100000 that would be a 30000 loss. The file says equity 98900: a 1100 loss, as of the
    # starting market (the position's 1000 gain from its entry price is already in it).
    account = {**ACCOUNT, "equity": "98900", "day_start_equity": "100000",
               "high_water_mark": "100000"}
    code, decisions, output = _eval(tmp_path, account, [
        _intent("buy-1", "buy"),
        # the market moves the given equity from there: +10 on 100 shares, a 100 loss
        _market("210", ts="2026-03-02T15:00:02Z"),
        _intent("buy-2", "buy", ts="2026-03-02T15:00:03Z"),
    ])
    assert code == 0, output
    first, second = decisions
    assert (first["decision"], first["blocking"]) == ("DENY", "LOS-001")
    assert _loss(first) == 1100
    assert second["decision"] == "ALLOW", second


def test_a_small_loss_within_the_limits_is_allowed_on_the_given_equity(tmp_path: Path) -> None:
    account = {**ACCOUNT, "equity": "99500", "day_start_equity": "100000",
               "high_water_mark": "100000"}
    code, decisions, output = _eval(tmp_path, account, [_intent("buy-1", "buy")])
    assert code == 0, output
    assert decisions[0]["decision"] == "ALLOW", decisions[0]


def test_a_high_water_mark_below_the_equity_is_raised_to_it(tmp_path: Path) -> None:
    # equity 99000, high-water mark 50000: read as 99000, so no drawdown (the day's 1000
    # loss still denies, LOS-001, and nothing else of the loss family)
    account = {**ACCOUNT, "equity": "99000", "day_start_equity": "100000",
               "high_water_mark": "50000"}
    code, decisions, output = _eval(tmp_path, account, [_intent("buy-1", "buy")])
    assert code == 0, output
    observed = _codes(decisions[0])
    assert "LOS-003" not in observed
    assert _loss(decisions[0]) == 1000


def test_a_mark_that_is_not_a_finite_decimal_is_refused_naming_its_field(
        tmp_path: Path) -> None:
    _eval(tmp_path, ACCOUNT, [_intent("buy-1", "buy")])  # writes the policy and market files
    state = tmp_path / "bad-state.json"
    state.write_text(json.dumps({"accounts": [{**ACCOUNT, "equity": "NaN"}]}))
    result = cli("eval", "--policy", str(tmp_path / "policy.yaml"), "--state", str(state),
                 str(tmp_path / "intents.jsonl"), columns=400)
    assert result.returncode == 1
    assert "accounts[0]: equity: expected a finite decimal" in result.stderr
    assert result.stdout == ""
