"""When the day's loss reaches the policy's daily loss limit, `status`, the run summary and
the demo say so in words, and say what it means: new risk is refused, and nothing closes the
positions already open (so a day can end past the limit, as the demo's does)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.runtime.harness import cli

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


def test_status_of_the_demo_day_says_the_loss_went_past_the_limit(demo_day: Path) -> None:
    shown = cli("status", "--journal", str(demo_day / "journal.db"), columns=400)
    assert shown.returncode == 0, shown.stderr
    assert ("account DEMO-1: the day's loss 96,947.42 has reached the daily loss limit "
            "60,000.00, so orders that add risk are refused.") in shown.stdout
