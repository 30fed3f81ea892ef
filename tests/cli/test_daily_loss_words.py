"""When the day's loss reaches the policy's daily loss limit, `status`, the run summary and
the demo say so in words, and say what it means: new risk is refused, and nothing closes the
positions already open (so a day can end past the limit, as the demo's does). `status` and the
run summary say until when: the trading day's end (the engine's next day roll, in UTC), which
with an exchange calendar puts a Saturday in Friday's day, ending at Monday's close."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.runtime.harness import cli, write_jsonl

from ordergate.cli.run_cmd import loss_limit_words
from ordergate.engine.status import AccountStatus, loss_limit_today


def _account(equity: str, limit: str | None) -> AccountStatus:
    return AccountStatus(
        account="ACC", cash=Decimal(0), equity=Decimal(equity), realized_pnl=Decimal(0),
        unrealized_pnl=Decimal(0), fees=Decimal(0), day_start_equity=Decimal(100_000),
        high_water_mark=Decimal(100_000), daily_pnl=Decimal(equity) - Decimal(100_000),
        drawdown_pct=None, gross_exposure=Decimal(0), net_exposure=Decimal(0),
        max_gross_exposure=None, max_net_exposure=None,
        daily_loss_limit=None if limit is None else Decimal(limit))


def test_the_limit_is_the_smaller_of_the_amount_and_the_percentage_of_day_start() -> None:
    assert loss_limit_today(Decimal(5000), Decimal(2), Decimal(100_000)) == Decimal(2000)
    assert loss_limit_today(Decimal(1000), Decimal(2), Decimal(100_000)) == Decimal(1000)
    assert loss_limit_today(None, Decimal("2.5"), Decimal(100_000)) == Decimal(2500)
    assert loss_limit_today(Decimal(1000), None, Decimal(100_000)) == Decimal(1000)
    # the percentage rule reads nothing from a day-start equity of zero or less
    assert loss_limit_today(None, Decimal(2), Decimal(0)) is None
    assert loss_limit_today(None, None, Decimal(100_000)) is None


def test_words_appear_from_the_moment_the_loss_reaches_the_limit() -> None:
    assert loss_limit_words(_account("98001", "2000")) is None
    at_limit = loss_limit_words(_account("98000", "2000"))
    assert at_limit is not None
    assert "the day's loss 2,000.00 has reached the daily loss limit 2,000.00" in at_limit
    assert "orders that add risk are refused" in at_limit
    assert "do not close positions already open" in at_limit
    assert loss_limit_words(_account("50000", None)) is None
    monday_close = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    until = loss_limit_words(_account("98000", "2000"), monday_close)
    assert until is not None
    assert ("orders that add risk are refused until the trading day ends Mon 2026-11-23 "
            "21:00:00 UTC, when the day's loss counts from zero again.") in until


def test_status_of_the_demo_day_says_the_loss_went_past_the_limit(demo_day: Path) -> None:
    shown = cli("status", "--journal", str(demo_day / "journal.db"), columns=400)
    assert shown.returncode == 0, shown.stderr
    assert ("account DEMO-1: the day's loss 96,947.42 has reached the daily loss limit "
            "60,000.00, so orders that add risk are refused until the trading day ends Tue "
            "2026-03-03 00:00:00 UTC") in shown.stdout  # the demo policy rolls at midnight


_WEEKEND_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: weekend
engine:
  day_roll_calendar: XNYS
defaults:
  max_daily_loss: 2000
  max_market_data_age: 4d
  max_order_qty: 5
"""
_MARKET = {"type": "market", "symbol": "BTC-USD"}
_BUY = {"type": "intent", "account": "ACC1", "strategy": "core", "symbol": "BTC-USD",
        "side": "buy", "qty": "1"}


def test_a_loss_limit_reached_on_a_saturday_holds_until_monday_s_close(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_WEEKEND_POLICY)
    events = write_jsonl(tmp_path / "events.jsonl", [
        {"type": "account", "ts": "2026-11-20T14:00:00Z", "account": "ACC1", "cash": "1000000"},
        {**_MARKET, "ts": "2026-11-20T14:00:00Z", "bid": "89999.50", "ask": "90000.50",
         "last": "90000"},
        {**_BUY, "ts": "2026-11-20T14:05:00Z", "intent_id": "friday"},
        # Saturday: bitcoin falls 5,000 under a 2,000 daily loss limit
        {**_MARKET, "ts": "2026-11-21T12:00:00Z", "bid": "84999.50", "ask": "85000.50",
         "last": "85000"},
    ])
    journal = tmp_path / "journal.db"
    ran = cli("run", "--policy", str(policy), "--journal", str(journal), "--quiet",
              str(events), columns=400)
    assert ran.returncode == 0, ran.stderr
    monday = "until the trading day ends Mon 2026-11-23 21:00:00 UTC"
    assert monday in ran.stderr  # the run summary

    shown = cli("status", "--journal", str(journal), columns=400)
    assert shown.returncode == 0, shown.stderr
    assert "as of 2026-11-21 12:00:00 UTC" in shown.stdout
    assert ("the day's loss 5,000.00 has reached the daily loss limit 2,000.00, so orders "
            f"that add risk are refused {monday}") in shown.stdout
    assert ("The trading day ends Mon 2026-11-23 21:00:00 UTC (the policy's day roll") \
        in shown.stdout
    as_json = json.loads(cli("status", "--journal", str(journal), "--json").stdout)
    assert as_json["day_ends_at"] == "2026-11-23T21:00:00Z"
