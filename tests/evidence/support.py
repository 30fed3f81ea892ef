"""Shared builders for evidence tests: the CLI in-process, and journals written by it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# A small day: one account, one quote, one market buy (more intents may follow it).
SMALL_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: small
defaults:
  max_market_data_age: 48h
  max_order_qty: 10000
  max_gross_exposure: 1000000
"""
SMALL_DAY: list[dict[str, Any]] = [
    {"type": "account", "account": "A1", "cash": "10000000", "ts": "2026-03-02T14:00:00Z"},
    {"type": "market", "symbol": "MSFT", "ts": "2026-03-02T14:30:00Z", "bid": "399.99",
     "ask": "400.01", "last": "400.00", "volume": "1000"},
    {"type": "intent", "intent_id": "i1", "ts": "2026-03-02T14:31:00Z", "account": "A1",
     "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "100", "order_type": "market"},
]


def small_journal(directory: Path, events: list[dict[str, Any]], *run: str) -> Path:
    """`directory`/j.db written by `ordergate run` (with `run` options) from `events` under
    SMALL_POLICY, which is left in `directory`/policy.yaml."""
    (directory / "policy.yaml").write_text(SMALL_POLICY)
    source = directory / "events.jsonl"
    source.write_text("".join(json.dumps(event) + "\n" for event in events))
    journal = directory / "j.db"
    ran = invoke("run", "--quiet", "--policy", str(directory / "policy.yaml"), "--journal",
                 str(journal), *run, str(source))
    assert ran.code == 0, ran.output
    return journal

