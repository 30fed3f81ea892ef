"""What denies orders while the mode says ACTIVE is visible: a strategy disabled after repeated
executions (THR-006) and operator kill switches for an account, a strategy or a symbol appear in
GET /v1/status with code, plain words, scope, since and who, and the banner says trading is
restricted; the first of two approvals to resume after a drawdown halt shows as pending, with
who gave it; per-strategy and per-symbol rate windows are listed (the busiest, saying how many
more) and exported as `ordergate_throttle_utilisation`. `ordergate status --url` prints the
same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.model.events import Command, CommandAction, KillScope
from ordergate.policy.loader import parse_policy
from ordergate.service.status import RATE_WINDOWS_PER_SCOPE
from service.support import (
    FEEDER,
    OPERATOR,
    OPERATOR_2,
    POLICY,
    T0,
    VIEWER,
    Served,
    auth,
    decided,
    intent,
    quote,
    start,
    status_of,
)

DEADLINE_S = 5.0  # fills come back from the simulator in a later batch; they arrive at all

REPEATED_POLICY = POLICY + "  repeated_execution: {max: 2, window: 1m}\n"
DRAWDOWN_POLICY = POLICY.replace("  max_order_qty: 1000\n", "  max_order_qty: 1000\n"
                                 "  max_drawdown_pct: 5\n  drawdown_kill: true\n")
RATE_POLICY = POLICY + ("  rate_strategy: {max: 100, window: 1m}\n"
                        "  rate_symbol: {max: 4, window: 1m}\n")


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[[str], Served]]:
    started: list[Served] = []

    def open_gateway(policy: str) -> Served:
        served = start(tmp_path, policy=parse_policy(policy))
        started.append(served)
        return served

    try:
        yield open_gateway
    finally:
        for served in started:
            served.stop()




def _command(served: Served, **fields: Any) -> None:
    command = Command(ts=T0 + timedelta(seconds=2), **fields)
    asyncio.run(served.gateway.bridge.submit_events([command]))


def _cli_words(served: Served) -> str:
    """`ordergate status --url` output as words (panels and tables wrap; compare words)."""
    result = CliRunner().invoke(app, ["status", "--url", served.url, "--token", VIEWER],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()  # the command bound structlog to the runner's closed stderr
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").replace("┃", " ").split())


def _wait_for(served: Served, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        status = status_of(served)
        if ready(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_disabled_strategy_and_scoped_kills_are_restrictions_in_status_and_cli(
        gateways: Callable[[str], Served]) -> None:
    served = gateways(REPEATED_POLICY)
    assert status_of(served)["headline"] == "Trading normally: no active reason."
    for number, qty in enumerate(("10", "11")):
        assert decided(served, intent(f"fill-{number}", qty=qty))["decision"] == "ALLOW"
    status = _wait_for(served, lambda s: any(r["code"] == "THR-006" for r in s["restrictions"]))
    _command(served, action=CommandAction.KILL, scope=KillScope.ACCOUNT, key="ACC-2",
             operator="ops-alice", reason="desk review")
    _command(served, action=CommandAction.KILL, scope=KillScope.SYMBOL, key="MSFT",
             operator="ops-bob", reason="corporate action")
    _command(served, action=CommandAction.KILL, scope=KillScope.STRATEGY, key="meanrev",
             operator="ops-bob", reason="model retrain")
    denied = decided(served, intent("after-disable", qty="12", seconds=3))
    assert denied["decision"] == "DENY" and denied["blocking"] == "THR-006"

    status = status_of(served)
    assert status["mode"] == "ACTIVE" and status["reasons"] == []
    assert status["headline"].startswith("Trading restricted: 4 restrictions deny orders")
    by_key = {(r["code"], r["scope"], r["key"]): r for r in status["restrictions"]}
    assert set(by_key) == {("THR-006", "strategy", "momo"), ("KIL-002", "account", "ACC-2"),
                           ("KIL-002", "symbol", "MSFT"), ("KIL-002", "strategy", "meanrev")}
    disabled = by_key[("THR-006", "strategy", "momo")]
    assert disabled["account"] == "ACC-1" and disabled["actor"] == "system"
    assert disabled["name"] == "STRATEGY_DISABLED" and disabled["since"] is not None
    assert disabled["detail"] == "2 fills within 60 s"
    assert "strategy momo in account ACC-1 that adds risk is denied" in disabled["text"]
    assert "re-enable" in disabled["text"]
    account_kill = by_key[("KIL-002", "account", "ACC-2")]
    assert account_kill["actor"] == "ops-alice" and account_kill["detail"] == "desk review"
    assert account_kill["since"] == "2026-03-02T14:30:02Z"
    assert "account ACC-2 is denied" in account_kill["text"]
    assert by_key[("KIL-002", "symbol", "MSFT")]["actor"] == "ops-bob"

    words = _cli_words(served)
    assert "ACTIVE — RESTRICTED" in words and "Trading restricted: 4 restrictions" in words
    assert "Restrictions: orders denied whatever the mode" in words
    for expected in ("THR-006", "strategy momo in account ACC-1 that adds risk is denied",
                     "desk review", "ops-alice", "corporate action", "symbol MSFT", "model retrain",
                     "2026-03-02 14:30:02Z"):
        assert expected in words, expected
    assert "Trading normally" not in words

    # re-enabling and releasing take them off the list
    _command(served, action=CommandAction.ENABLE_STRATEGY, key="momo", operator="ops-alice",
             reason="fills explained")
    for scope, key in ((KillScope.ACCOUNT, "ACC-2"), (KillScope.SYMBOL, "MSFT"),
                       (KillScope.STRATEGY, "meanrev")):
        _command(served, action=CommandAction.UNKILL, scope=scope, key=key,
                 operator="ops-alice", reason="done")
    status = status_of(served)
    assert status["restrictions"] == []
    assert status["headline"] == "Trading normally: no active reason."


def test_first_of_two_resume_approvals_shows_as_pending_and_survives_a_restart(
        gateways: Callable[[str], Served]) -> None:
    served = gateways(DRAWDOWN_POLICY)
    assert decided(served, intent("dd-buy", qty="1000"))["decision"] == "ALLOW"
    crash = httpx.post(f"{served.url}/v1/market", json=quote("AAPL", "40.00", seconds=2),
                       headers=auth(FEEDER), timeout=10.0)
    assert crash.status_code == 200 and crash.json()["mode"] == "HALTED", crash.text
    assert status_of(served)["pending_approvals"] == []

    first = httpx.post(f"{served.url}/v1/mode/resume", json={"reason": "loss reviewed"},
                       headers=auth(OPERATOR), timeout=10.0)
    assert first.status_code == 200 and first.json()["mode"] == "HALTED", first.text
    status = status_of(served)
    [pending] = status["pending_approvals"]
    assert pending["action"] == "resume" and pending["first_operator"] == "ops-alice"
    assert pending["reason"] == "loss reviewed" and pending["since"] is not None
    assert "waiting for a second operator (not ops-alice)" in pending["text"]
    assert "1 command waiting for a second operator" in status["headline"]
    words = _cli_words(served)
    assert "PENDING RESUME" in words and "approved by ops-alice" in words
    assert "loss reviewed" in words and "waiting for a second operator" in words

    # recovered from the journal: the engine's state and the approval's own record
    served.stop()
    served = gateways(DRAWDOWN_POLICY)
    assert status_of(served)["pending_approvals"] == status["pending_approvals"]

    second = httpx.post(f"{served.url}/v1/mode/resume", json={"reason": "agreed"},
                        headers=auth(OPERATOR_2), timeout=10.0)
    assert second.status_code == 200 and second.json()["mode"] == "ACTIVE", second.text
    status = status_of(served)
    assert status["pending_approvals"] == []
    assert "second operator" not in status["headline"]
    assert "PENDING" not in _cli_words(served)


def test_strategy_and_symbol_rate_windows_are_listed_busiest_first_and_exported(
        gateways: Callable[[str], Served]) -> None:
    served = gateways(RATE_POLICY)
    symbols = [f"SYM{number:02d}" for number in range(RATE_WINDOWS_PER_SCOPE + 2)]
    for symbol in symbols:
        posted = httpx.post(f"{served.url}/v1/market", json=quote(symbol, "10.00"),
                            headers=auth(FEEDER), timeout=10.0)
        assert posted.status_code == 200, posted.text
    for symbol in symbols:
        assert decided(served, intent(f"i-{symbol}", symbol=symbol))["decision"] == "ALLOW"
    for qty in ("11", "12"):  # SYM05 is the busiest: 3 of its 4
        assert decided(served, intent(f"i-busy-{qty}", symbol="SYM05", qty=qty)
                            )["decision"] == "ALLOW"

    status = status_of(served)
    windows = status["rate_windows"]
    [strategy] = [w for w in windows if w["scope"] == "strategy"]
    assert strategy["key"] == "momo" and strategy["count"] == len(symbols) + 2
    assert strategy["max_count"] == 100 and strategy["window_s"] == 60
    by_symbol = [w for w in windows if w["scope"] == "symbol"]
    assert len(by_symbol) == RATE_WINDOWS_PER_SCOPE
    assert by_symbol[0]["key"] == "SYM05" and by_symbol[0]["count"] == 3
    assert by_symbol[0]["utilisation"] == 0.75
    assert status["rate_windows_omitted"] == [
        {"scope": "symbol", "shown": RATE_WINDOWS_PER_SCOPE, "in_use": len(symbols)}]

    words = _cli_words(served)
    assert "strategy momo 14 100 60 14%" in words and "symbol SYM05 3 4 60 75%" in words
    assert f"the {RATE_WINDOWS_PER_SCOPE} busiest of {len(symbols)} in use" in words

    metrics = httpx.get(f"{served.url}/metrics", headers=auth(VIEWER), timeout=10.0).text
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
               if line.startswith("ordergate_throttle_utilisation{")}
    assert samples['ordergate_throttle_utilisation{key="momo",scope="strategy"}'] == 0.14
    assert samples['ordergate_throttle_utilisation{key="SYM05",scope="symbol"}'] == 0.75
    assert len([name for name in samples if 'scope="symbol"' in name]) == RATE_WINDOWS_PER_SCOPE
