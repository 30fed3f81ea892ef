"""A policy's `market_hours.years` running out is said up front: after the last year the gate
denies every listed symbol's order as outside its trading session (MKT-001, whose text stays
as journaled), so `policy check` warns when the years end before the end of next year and
`run` warns at start when they end before the current year. The years are chosen relative
to the wall clock the CLI reads."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordergate.cli.main import app
from ordergate.service.auth import hash_token

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {{name: years-warning}}
market_hours:
  calendar: XNYS
  symbols: [AAPL]
  years: [{first}, {last}]
defaults:
  max_market_data_age: 1d
  max_daily_loss: 1000
"""


def _policy(directory: Path, first: int, last: int) -> Path:
    path = directory / "policy.yaml"
    path.write_text(POLICY.format(first=first, last=last))
    return path


def _year() -> int:
    return datetime.now(UTC).year


def test_policy_check_warns_when_years_end_before_the_end_of_next_year(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    year = _year()
    path = _policy(tmp_path, year - 1, year)
    app(args=["policy", "check", str(path)], standalone_mode=False)
    captured = capsys.readouterr()
    assert "valid" in captured.out
    [line] = [line for line in captured.err.splitlines() if "market_hours.years" in line]
    assert line == (f"WARNING: {path}: market_hours.years ends in {year}: from {year + 1}-01-01 "
                    "every AAPL order is denied as outside its XNYS trading session (MKT-001); "
                    "extend market_hours.years")


def test_policy_check_is_quiet_when_years_cover_next_year(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    year = _year()
    app(args=["policy", "check", str(_policy(tmp_path, year - 1, year + 1))],
        standalone_mode=False)
    assert "market_hours.years" not in capsys.readouterr().err


def _run(directory: Path, policy: Path) -> None:
    events = directory / "events.jsonl"
    events.write_text('{"type": "account", "ts": "2025-01-02T15:00:00Z", "account": "A1", '
                      '"cash": "100000"}\n')
    app(args=["run", "--quiet", "--policy", str(policy), "--journal",
              str(directory / "journal.db"), str(events)], standalone_mode=False)


def test_run_warns_at_start_when_years_ended_before_this_year(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    year = _year()
    path = _policy(tmp_path, year - 2, year - 1)
    _run(tmp_path, path)
    [line] = [line for line in capsys.readouterr().err.splitlines()
              if "market_hours.years" in line]
    assert line == (f"WARNING: {path}: market_hours.years ends in {year - 1}: from "
                    f"{year}-01-01 every AAPL order is denied as outside its XNYS trading "
                    "session (MKT-001); extend market_hours.years")


def test_run_is_quiet_while_years_cover_this_year(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    year = _year()
    _run(tmp_path, _policy(tmp_path, year - 1, year))
    assert "market_hours.years" not in capsys.readouterr().err



def test_serve_warns_at_start_when_years_ended_before_this_year(tmp_path: Path) -> None:
    year = _year()
    path = _policy(tmp_path, year - 2, year - 1)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - name: screen\n    role: viewer\n    hash: "
                      f"{hash_token('viewer-secret')}\n")
    # A process of its own (serve sets up logging for the whole process); it stops at its
    # port, taken here, after the start-up warnings.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        served = subprocess.run(
            [sys.executable, "-m", "ordergate.cli.main", "serve", "--policy", str(path),
             "--journal", str(tmp_path / "j.db"), "--tokens", str(tokens),
             "--port", str(taken.getsockname()[1])],
            capture_output=True, text=True, timeout=120, check=False)
    assert served.returncode == 1 and "cannot listen" in served.stderr, served.stderr
    assert f"market_hours.years ends in {year - 1}" in served.stderr
