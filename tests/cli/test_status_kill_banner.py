"""`ordergate status --journal`: a firm-wide kill switch denies every order whatever the mode
says, so the banner says so in red instead of "ACTIVE — Trading normally"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from ordergate import Gateway, KillScope
from ordergate.cli.main import app

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: kill-banner
defaults:
  max_market_data_age: 1m
"""


def status_text(journal: Path) -> str:
    result = CliRunner().invoke(app, ["status", "--journal", str(journal)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_firm_kill_shows_all_orders_denied_and_an_account_kill_does_not(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.kill("ops-alice", "desk review", scope=KillScope.ACCOUNT, key="ACC-1")
    shown = status_text(journal)
    assert "ALL ORDERS DENIED" not in shown
    assert "ACTIVE" in shown
    with Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        gateway.tick(T0)
        gateway.kill("ops-bob", "fat finger incident", scope=KillScope.FIRM)
    shown = status_text(journal)
    assert "KILL SWITCH — ALL ORDERS DENIED" in shown
    assert "ops-bob engaged the firm-wide kill switch: fat finger incident" in shown
    assert "Trading normally" not in shown


def test_the_policy_s_own_kill_switch_shows_all_orders_denied(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY + "kill_switch: true\n", journal=journal,
                      clock="event") as gateway:
        gateway.fund("ACC-1", "100000", ts=T0)
        gateway.submit({"intent_id": "i1", "ts": T0.isoformat(), "account": "ACC-1",
                        "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "1"})
    shown = status_text(journal)
    assert "KILL SWITCH — ALL ORDERS DENIED" in shown
    assert "the policy kill-banner sets kill_switch" in shown
