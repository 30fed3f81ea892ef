"""Every example script runs offline, end to end, and says what the docs say it does. The broker
examples talk to the local Alpaca and Deribit APIs from tests/brokers/fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ordergate.journal import open_journal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(ROOT / "tests" / "brokers"))

from fakes import alpaca, deribit  # noqa: E402
from fakes.server import ServerThread  # noqa: E402


def run_example(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> str:
    journal = tmp_path / "journal.db"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--journal", str(journal)],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=180,
        cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    verified = open_journal(f"sqlite:///{journal}", create=False)
    try:
        assert verified.verify().ok
    finally:
        verified.close()
    return result.stdout


@pytest.fixture(scope="module")
def alpaca_url() -> Iterator[tuple[str, alpaca.AlpacaState]]:
    state = alpaca.AlpacaState()
    server = ServerThread(alpaca.build(state))
    url = server.start()
    yield url, state
    server.stop()


@pytest.fixture(scope="module")
def deribit_url() -> Iterator[tuple[str, deribit.DeribitState]]:
    state = deribit.DeribitState()
    server = ServerThread(deribit.build(state))
    url = server.start()
    yield url, state
    server.stop()


def test_bar_strategy_trades_the_bundled_bars_and_the_gateway_trims_and_refuses(
        tmp_path: Path) -> None:
    out = run_example("bar_strategy.py", tmp_path)
    assert "bars: 390" in out
    assert "MODIFY EXP-001" in out  # the position cap trims entries
    assert "'DENY ORD-006': 1" in out  # the fat-fingered order
    assert "mode: ACTIVE" in out


def test_bar_strategy_runs_again_on_its_journal_without_funding_it_twice(tmp_path: Path) -> None:
    """A restart on the same journal (the examples fund only a new journal: a second
    `fund` of a funded account is refused, as it would reset the cash the positions used)."""
    run_example("bar_strategy.py", tmp_path)
    again = run_example("bar_strategy.py", tmp_path)
    assert "mode: ACTIVE" in again


def test_alpaca_paper_bot_fills_at_the_venue_and_halts(
        tmp_path: Path, alpaca_url: tuple[str, alpaca.AlpacaState]) -> None:
    url, state = alpaca_url
    state.reset()
    state.prices["AAPL"] = Decimal("190.00")
    out = run_example("alpaca_paper_bot.py", tmp_path, {
        "ALPACA_API_KEY_ID": alpaca.KEY_ID, "ALPACA_API_SECRET_KEY": alpaca.SECRET,
        "ORDERGATE_ALPACA_BASE_URL": url})
    assert "buy 10 AAPL: ALLOW" in out
    assert "buy 5000 AAPL: DENY ORD-006" in out
    assert "alpaca says: AAPL 10" in out
    assert "mode after halt: HALTED" in out
    sent = [body for method, _, body in state.requests if method == "POST"]
    assert [Decimal(str(body["qty"])) for body in sent] == [10]  # the refused one never left
    assert alpaca.SECRET not in out


def test_alpaca_paper_bot_without_credentials_names_the_variable(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ALPACA_", "ORDERGATE_ALPACA"))}
    result = subprocess.run([sys.executable, str(EXAMPLES / "alpaca_paper_bot.py")], env=env,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert "ALPACA_API_KEY_ID is not set" in result.stderr


def test_deribit_bot_opens_and_closes_reduce_only(
        tmp_path: Path, deribit_url: tuple[str, deribit.DeribitState]) -> None:
    url, state = deribit_url
    state.reset()
    state.prices["BTC-PERPETUAL"] = Decimal("50000")
    out = run_example("deribit_bot.py", tmp_path, {
        "DERIBIT_CLIENT_ID": deribit.CLIENT_ID, "DERIBIT_CLIENT_SECRET": deribit.CLIENT_SECRET,
        "ORDERGATE_DERIBIT_BASE_URL": url})
    assert "buy 100 BTC-PERPETUAL: ALLOW" in out
    assert "DENY ORD-006" in out
    assert "sell 100 reduce-only: ALLOW" in out
    assert "gateway positions: flat" in out and "deribit positions: flat" in out
    closing = [order for order in state.orders.values() if order["direction"] == "sell"]
    assert len(closing) == 1 and closing[0].get("reduce_only") in (True, "true")
