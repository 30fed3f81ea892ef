"""In a locale whose encoding is not UTF-8 (`LANG=C`, a bare container or cron), the CLI still
writes its tables and verdicts: our typographic marks come out as ASCII, never as a
UnicodeEncodeError traceback, and a failed `replay verify` still says SAFETY STOP and exits 3.
The stream's encoding is fixed when Python starts, so each case runs the CLI in a process of
its own."""

from __future__ import annotations

import decimal
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from ordergate import Gateway
from ordergate.cli.errors import EXIT_OK, EXIT_SAFETY_STOP
from ordergate.engine import core as engine_core

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: ascii-terminal}
defaults:
  max_market_data_age: 1m
  max_order_value: 9999.99995
"""


def write_journal(path: Path, *, precision: int | None = None) -> Path:
    """One order worth 10,000.0 (99.99 at 100.01, 9,999.9999 exactly) against a 9,999.99995
    limit. Decided by an engine made to compute in 6 digits it is denied, which a replay in
    exact arithmetic does not reproduce: the journal fails verification."""
    engine_context = (decimal.Context(prec=precision) if precision is not None
                      else engine_core.EXACT)
    with mock.patch.object(engine_core, "EXACT", engine_context), \
            Gateway.open(POLICY, journal=str(path), clock="event") as gateway:
        gateway.fund("ACC-1", "100000.01", ts="2026-03-02T14:30:00Z")
        gateway.on_market({"symbol": "AAPL", "ts": "2026-03-02T14:30:00Z",
                           "bid": "100.00", "ask": "100.01", "last": "100.005"})
        gateway.submit({"account": "ACC-1", "strategy": "s", "symbol": "AAPL",
                        "side": "buy", "intent_id": "e-0", "ts": "2026-03-02T14:30:01Z",
                        "qty": "99.99", "order_type": "limit", "limit_price": "100.01"})
    return path


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("journals")
    return {"clean": write_journal(directory / "clean.db"),
            "diverging": write_journal(directory / "diverging.db", precision=6)}


def in_c_locale(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in the C locale; both streams must be
    plain ASCII."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("LC_") and name not in ("LANG", "PYTHONIOENCODING")}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", COLUMNS="80")
    done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args], env=env,
                          capture_output=True, check=False, timeout=60)
    stdout, stderr = done.stdout.decode("ascii"), done.stderr.decode("ascii")
    assert "Traceback" not in stdout + stderr, stderr
    return done.returncode, stdout, stderr


def test_a_failed_replay_verify_still_shows_its_table_and_stops_with_exit_3(
        journals: dict[str, Path]) -> None:
    code, stdout, stderr = in_c_locale("replay", "verify", "--journal",
                                       str(journals["diverging"]))
    assert code == EXIT_SAFETY_STOP
    assert "SAFETY STOP:" in stderr
    assert "reproduced 0/1 decisions" in " ".join(stderr.split())
    # The policy hash is cut to fit 80 columns; the cut is marked '...', not '\u2026'.
    policies = next(line for line in stdout.splitlines() if "policies" in line)
    assert "sha256:" in policies and "..." in policies


def test_a_clean_replay_verify_passes(journals: dict[str, Path]) -> None:
    code, stdout, _ = in_c_locale("replay", "verify", "--journal", str(journals["clean"]))
    assert code == EXIT_OK
    assert "decisions reproduced" in stdout and "1/1 (100.00%)" in stdout


def test_status_shows_its_banner(journals: dict[str, Path]) -> None:
    code, stdout, _ = in_c_locale("status", "--journal", str(journals["clean"]))
    assert code == EXIT_OK
    assert "ACTIVE" in stdout
    assert "UTC - policy ascii-terminal" in stdout  # "·" between the time and the policy


def test_decisions_show_prints_the_latency_in_microseconds(journals: dict[str, Path]) -> None:
    code, stdout, _ = in_c_locale("decisions", "--journal", str(journals["diverging"]),
                                  "--show", "e-0")
    assert code == EXIT_OK
    assert "DENY ORD-007" in stdout
    assert "evaluation latency" in stdout and " us " in stdout


def test_json_output_stays_json_with_its_text_as_written(tmp_path: Path) -> None:
    """`status --json` and `reasons --json` are documents for programs: written as UTF-8 bytes
    whatever the locale, never with the terminal's ASCII stand-ins inside their strings."""
    journal = tmp_path / "halted.db"
    with Gateway.open(POLICY, journal=str(journal), clock="event") as gateway:
        gateway.fund("ACC-1", "1000", ts="2026-03-02T14:30:00Z")
        gateway.halt("ops", "café outage — see ticket…")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("LC_") and name not in ("LANG", "PYTHONIOENCODING")}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    for args in (("status", "--journal", str(journal), "--json"), ("reasons", "--json")):
        done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args], env=env,
                              capture_output=True, check=False, timeout=60)
        assert done.returncode == EXIT_OK, done.stderr
        document = json.loads(done.stdout.decode("utf-8"))
        assert document
    status = json.loads(subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "status", "--journal", str(journal),
         "--json"], env=env, capture_output=True, check=True, timeout=60).stdout)
    assert "café outage — see ticket…" in json.dumps(status, ensure_ascii=False)
