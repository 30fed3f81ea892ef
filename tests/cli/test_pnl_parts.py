"""The PnL line of `ordergate run`'s summary and of `ordergate status --journal` shows every
part of the day's PnL, fees included, so the parts shown add up to the total shown.

The day: buy 10 AAPL at 100, sell 5 at 102, mark 102, with a 10 bps fee. Realized 5 x 2 = 10,
unrealized 5 x 2 = 10, fees 1.00 + 0.51 = 1.51: PnL 18.49."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.cli.run_cmd import money, pnl_parts
from ordergate.engine.status import AccountStatus

ACCOUNT = "ACC-1"
SUMMARY_PNL = re.compile(r"PnL today (\S+) \(realized (\S+), unrealized (\S+), fees (\S+)\)")
STATUS_PNL = re.compile(r"PnL today (\S+)\s+realized (\S+)\s+unrealized (\S+)\s+fees (\S+)\s")


def _at(second: int) -> str:
    return f"2026-03-02T15:00:{second:02d}Z"


def _intent(intent_id: str, second: int, side: str, qty: str) -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": _at(second), "account": ACCOUNT,
            "strategy": "trend", "symbol": "AAPL", "side": side, "qty": qty}


def _market(second: int, mid: str) -> dict[str, Any]:
    value = Decimal(mid)
    return {"type": "market", "symbol": "AAPL", "ts": _at(second), "bid": str(value - 1),
            "ask": str(value + 1), "last": mid}


EVENTS = [
    {"type": "account", "ts": _at(0), "account": ACCOUNT, "cash": "100000"},
    _market(1, "100"),
    _intent("buy-1", 2, "buy", "10"),
    _market(3, "102"),
    _intent("sell-1", 4, "sell", "5"),
]


def _parts(match: re.Match[str] | None, text: str) -> list[Decimal]:
    assert match is not None, text
    return [Decimal(group.replace(",", "")) for group in match.groups()]


def test_shown_pnl_parts_add_up_to_the_total_shown(tmp_path: Path) -> None:
    broker = tmp_path / "sim.yaml"
    broker.write_text('sim:\n  fee_bps: "10"\n')
    journal = str(tmp_path / "journal.db")
    run = cli("run", "--quiet", "--policy", str(demo_policy_path()), "--journal", journal,
              "--broker", str(broker), str(write_jsonl(tmp_path / "events.jsonl", EVENTS)),
              columns=200)
    assert run.returncode == 0, run.stderr
    status = cli("status", "--journal", journal, columns=200)
    assert status.returncode == 0, status.stderr
    for total, realized, unrealized, fees in (_parts(SUMMARY_PNL.search(run.stderr), run.stderr),
                                              _parts(STATUS_PNL.search(status.stdout),
                                                     status.stdout)):
        assert (total, realized, unrealized, fees) == (
            Decimal("18.49"), Decimal("10.00"), Decimal("10.00"), Decimal("-1.51"))
        assert realized + unrealized + fees == total


def test_after_a_day_roll_the_parts_are_labelled_to_date(tmp_path: Path) -> None:
    """Realized PnL and fees run from the account's beginning, PnL today from the day's start:
    once a day has rolled the parts no longer make up today's figure and say so."""
    next_day = {**_market(5, "104"), "ts": "2026-03-03T15:00:05Z"}
    journal = str(tmp_path / "journal.db")
    # one event a batch: the fills are booked before the next day's quote rolls the day
    run = cli("run", "--quiet", "--batch-size", "1", "--policy", str(demo_policy_path()),
              "--journal", journal,
              str(write_jsonl(tmp_path / "events.jsonl", [*EVENTS, next_day])), columns=200)
    assert run.returncode == 0, run.stderr
    status = cli("status", "--journal", journal, columns=200)
    assert status.returncode == 0, status.stderr
    for text in (run.stderr, status.stdout):
        flat = " ".join(text.split())
        assert "to date: realized" in flat, flat
    assert SUMMARY_PNL.search(run.stderr) is None


def test_pnl_of_10_to_the_26_and_more_is_shown_instead_of_raising() -> None:
    """Rounding 10**26 to the cent takes more than Decimal's 28 digits: such a figure is shown
    as it is (the run summary and `status --journal` raised InvalidOperation on it)."""
    big = Decimal("9999999999999900000000000000")  # 10**14 shares gaining 10**14 - 1 each
    account = AccountStatus(
        account="A", cash=Decimal(1000), equity=big + 1000, realized_pnl=Decimal("0.5"),
        unrealized_pnl=big, fees=Decimal("1E+27"), day_start_equity=Decimal(1000),
        high_water_mark=big + 1000, daily_pnl=big + Decimal("0.5") - Decimal("1E+27"),
        drawdown_pct=Decimal(0), gross_exposure=big, net_exposure=big,
        max_gross_exposure=None, max_net_exposure=None, daily_loss_limit=None)
    assert pnl_parts(account) == (
        f"realized 0.50, unrealized {money(big)}, fees {money(Decimal('-1E+27'))}")
