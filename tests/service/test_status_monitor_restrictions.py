"""In monitor mode a strategy disabled by the repeated-execution limit (THR-006) still trades
(its orders come back ALLOW with would_block THR-006 and are sent), so /v1/status, `ordergate
status --url` and the dashboard say its orders would be denied and are still sent: it is not
counted among the restrictions that deny orders, the banner does not read RESTRICTED for it
alone, and the dashboard's LIMITS NOT ENFORCED stays shown beside a RESTRICTED banner."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.model.intent import Side
from ordergate.policy.loader import parse_policy
from service import test_dashboard_browser
from service.support import (
    OPERATOR,
    POLICY,
    VIEWER,
    Served,
    auth,
    decided,
    intent,
    start,
    status_of,
)
from service.test_dashboard_browser import LIVE_UPDATE_MS

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails)
    from playwright.sync_api import Page

MONITOR_REPEATED = POLICY + "  repeated_execution: {max: 2, window: 1m}\nmonitor: true\n"
DEADLINE_S = 5.0  # fills come back from the simulator in a later batch; they arrive at all

# test_dashboard_browser's Chromium and page, under the fixture names they have there
browser = test_dashboard_browser.browser
page = test_dashboard_browser.page


def _disable_momo(served: Served) -> None:
    for number in range(2):
        assert decided(served, intent(f"fill-{number}"))["decision"] == "ALLOW"
    deadline = time.monotonic() + DEADLINE_S
    while not status_of(served)["restrictions"] and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def disabled_in_monitor(tmp_path: Path) -> Iterator[Served]:
    """A monitor-mode gateway whose strategy momo the repeated-execution limit disabled."""
    served = start(tmp_path, policy=parse_policy(MONITOR_REPEATED))
    try:
        _disable_momo(served)
        yield served
    finally:
        served.stop()




def _kill_account(served: Served, account: str) -> None:
    killed = httpx.post(f"{served.url}/v1/kill", headers=auth(OPERATOR), timeout=10.0,
                        json={"scope": "account", "name": account, "reason": "desk review"})
    assert killed.status_code == 200, killed.text


def _cli_words(served: Served) -> str:
    result = CliRunner().invoke(app, ["status", "--url", served.url, "--token", VIEWER],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()  # the command bound structlog to the runner's closed stderr
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").replace("┃", " ").split())


def test_disabled_strategy_in_monitor_mode_is_said_to_be_still_sent(
        disabled_in_monitor: Served) -> None:
    served = disabled_in_monitor
    sent = decided(served, intent("after-disable", seconds=3))
    assert sent["decision"] == "ALLOW" and sent["would_block"] == "THR-006"

    status = status_of(served)
    assert status["mode"] == "ACTIVE" and status["policy_monitor"] is True
    [disabled] = status["restrictions"]
    assert disabled["code"] == "THR-006" and disabled["key"] == "momo"
    assert disabled["text"].startswith("Every new order of strategy momo in account ACC-1 that "
                                       "adds risk would be denied (monitor mode: still sent")
    assert "is denied" not in disabled["text"]
    headline = status["headline"]
    assert headline.startswith("Limits NOT enforced (monitor mode)")
    assert "deny orders (listed below)" not in headline and "Trading restricted" not in headline
    assert headline.endswith("1 restriction would deny orders were the limits enforced "
                             "(monitor mode: still sent; listed below).")

    words = _cli_words(served)
    assert "RESTRICTED" not in words and "Trading restricted" not in words
    assert "would be denied (monitor mode: still sent" in words
    assert "in monitor mode a disabled strategy's orders are still sent" in words


def test_journal_status_says_the_disabled_strategy_is_still_sent(tmp_path: Path) -> None:
    served = start(tmp_path, policy=parse_policy(MONITOR_REPEATED))
    try:
        _disable_momo(served)
    finally:
        served.stop()
    result = CliRunner().invoke(app, ["status", "--journal", str(tmp_path / "journal.db")],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    assert ("strategy momo (ACC-1) is disabled: its new orders that add risk would be denied "
            "(monitor mode: still sent, the breach only recorded)") in " ".join(
                result.output.split())


def test_a_kill_switch_still_restricts_in_monitor_mode_and_is_counted_alone(
        disabled_in_monitor: Served) -> None:
    served = disabled_in_monitor
    _kill_account(served, "ACC-2")

    headline = status_of(served)["headline"]
    assert headline.startswith("Trading restricted: 1 restriction deny orders (listed below).")
    assert "Limits NOT enforced (monitor mode)" in headline
    assert "1 restriction would deny orders were the limits enforced" in headline
    assert "ACTIVE — RESTRICTED" in _cli_words(served)


def test_dashboard_keeps_limits_not_enforced_beside_restricted(
        page: Page, disabled_in_monitor: Served) -> None:
    served = disabled_in_monitor
    page.goto(f"{served.url}/#token={VIEWER}")
    page.wait_for_function("() => document.querySelectorAll('#restrictions li .code').length",
                           timeout=LIVE_UPDATE_MS)
    # the disabled strategy alone restricts nothing in monitor mode
    assert page.inner_text("#mode-text") == "ACTIVE — LIMITS NOT ENFORCED"
    assert "would be denied (monitor mode: still sent" in page.inner_text("#restrictions")

    _kill_account(served, "ACC-2")
    page.wait_for_function(
        "() => document.getElementById('mode-text').textContent === "
        "'ACTIVE — RESTRICTED — LIMITS NOT ENFORCED'", timeout=LIVE_UPDATE_MS)
    classes = page.get_attribute("#mode-banner", "class") or ""
    assert "restricted" in classes and "monitor" in classes


def test_an_enforced_disabled_strategy_is_said_to_deny_only_orders_that_add_risk(
        tmp_path: Path) -> None:
    # THR-006 is a risk gate that never blocks an order reducing risk (gate.table: RECORDED)
    served = start(tmp_path, policy=parse_policy(
        POLICY + "  repeated_execution: {max: 2, window: 1m}\n"))
    try:
        _disable_momo(served)
        assert decided(served, intent("add", seconds=3))["blocking"] == "THR-006"
        reducing = decided(served, intent("reduce", qty="5", side=Side.SELL, seconds=4))
        assert reducing["decision"] == "ALLOW"
        [disabled] = status_of(served)["restrictions"]
        assert disabled["text"].startswith(
            "Every new order of strategy momo in account ACC-1 that adds risk is denied (orders "
            "that reduce risk still go through): disabled by the repeated-execution limit")
    finally:
        served.stop()
    result = CliRunner().invoke(app, ["status", "--journal", str(tmp_path / "journal.db")],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    assert ("strategy momo (ACC-1) is disabled: its new orders that add risk are denied (orders "
            "that reduce risk still go through)") in " ".join(result.output.split())


MONITOR_CANCEL_RATE = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: watching}
monitor: true
defaults:
  max_market_data_age: 48h
  cancel_rate: {max: 1, window: 1m}
"""


def test_journal_status_counts_the_cancels_monitor_mode_sent_over_the_rate(
        tmp_path: Path) -> None:
    def at(second: int) -> str:
        return f"2026-03-02T14:31:{second:02d}Z"

    def order(intent_id: str, second: int, **more: str) -> dict[str, Any]:
        return {"type": "intent", "intent_id": intent_id, "ts": at(second), "account": "A1",
                "strategy": "s1", "symbol": "AAPL", "side": "buy", "qty": "100",
                "order_type": "market", **more}

    sells = [order(f"s{n}", n + 1, side="sell", qty="1", order_type="limit",
                   limit_price=str(200 + n), client_order_id=f"c-s{n}") for n in range(3)]
    events = [
        {"type": "account", "account": "A1", "cash": "1000000", "ts": "2026-03-02T14:00:00Z"},
        {"type": "market", "symbol": "AAPL", "ts": "2026-03-02T14:30:00Z", "bid": "189.95",
         "ask": "190.05", "last": "190", "volume": "1000"},
        order("buy", 0), *sells,  # long 100: cancelling a resting sell adds risk
        *({"type": "cancel_request", "client_order_id": f"c-s{n}", "account": "A1",
           "ts": at(10 + n)} for n in range(3))]  # the last two over the rate, sent
    (tmp_path / "policy.yaml").write_text(MONITOR_CANCEL_RATE)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(event) + "\n"
                                                   for event in events))
    journal = str(tmp_path / "j.db")
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "--quiet", "--batch-size", "1", "--policy",
                              str(tmp_path / "policy.yaml"), "--journal", journal,
                              str(tmp_path / "events.jsonl")])
    structlog.reset_defaults()
    assert ran.exit_code == 0, ran.output
    result = runner.invoke(app, ["status", "--journal", journal], env={"COLUMNS": "240"})
    structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    assert ("2 cancel(s) the policy would have refused were sent since the journal began "
            "(cancel_rate, THR-005).") in " ".join(result.output.split())
