"""A program embedding the gateway owns its stdout: when it has not configured structlog,
ordergate's logs go to stderr; when it has, its configuration is kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = '''
import sys
from ordergate import Gateway

POLICY = """\\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: embedded}
defaults:
  max_market_data_age: 1m
"""
if sys.argv[2] == "configured":
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stdout))
with Gateway.open(POLICY, journal=sys.argv[1], clock="event") as gateway:
    gateway.fund("ACC-1", "100000", ts="2026-03-02T14:30:00Z")
print("the program's own line")
'''


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"{mode}.db"), mode],
                          capture_output=True, text=True, check=True, timeout=120)


def test_an_embedding_programs_stdout_holds_only_its_own_output(tmp_path: Path) -> None:
    done = _run(tmp_path, "unconfigured")
    assert done.stdout == "the program's own line\n"
    assert "gateway_opened" in done.stderr and "journal.closed" in done.stderr


def test_a_program_that_configured_structlog_keeps_its_choice(tmp_path: Path) -> None:
    done = _run(tmp_path, "configured")
    assert "gateway_opened" in done.stdout
    assert "gateway_opened" not in done.stderr
