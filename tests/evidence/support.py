"""Shared builders for evidence tests: the CLI in-process, and journals written by it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from typer.testing import CliRunner

from ordergate.cli.errors import SafetyStop, UserError
from ordergate.cli.main import app
from ordergate.journal import Durability, Journal, open_journal

TIGHTER = {
    "    max_order_qty: 500\n": "    max_order_qty: 200\n",
    "    max_order_value: 100000\n": "    max_order_value: 20000\n",
    "name: demo-day\n": "name: demo-day-tight\n",
}


@dataclass(frozen=True)
class Cli:
    code: int
    output: str


def invoke(*args: str) -> Cli:
    """`ordergate ARGS` in this process, with the exit code `main()` would give."""
    result = CliRunner().invoke(app, list(args))
    # Commands bind structlog to the runner's (now closed) stderr; later library logs in this
    # process must not write there.
    structlog.reset_defaults()
    exc = result.exception
    if isinstance(exc, UserError | SafetyStop):
        return Cli(exc.exit_code, result.output + str(exc))
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Cli(result.exit_code, result.output)


def read(path: Path) -> Journal:
    return open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False)


def tighter_policy(policy: Path, out: Path) -> Path:
    text = policy.read_text()
    for old, new in TIGHTER.items():
        assert old in text, old
        text = text.replace(old, new)
    out.write_text(text)
    return out
