"""The command the demo prints under "replay the day yourself" trades the demo's day again,
exactly: the same decisions (line for line), the same counts, the same PnL and the same mode
changes at the same times. It names the simulated broker's config file the demo wrote (fill
model, slippage, fees, seed) and the demo's batch size, since fills are seen after their batch.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from ordergate.cli.demo_cmd import program, render, run_demo
from ordergate.cli.run_cmd import money
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.decision import Decision
from ordergate.model.events import Dispatch, Fill
from ordergate.runtime.loop import decode_input, decode_output

_REPLAY = "replay the day yourself:"


def _printed_command(result: Any, what: str) -> list[str]:
    """The command the demo prints after `what`, read off a narrow terminal: each stays on
    one line, so that it can be copied as it stands."""
    screen = io.StringIO()
    render(Console(file=screen, width=60, color_system=None), result)
    (line,) = [line for line in screen.getvalue().splitlines() if what in line]
    command = shlex.split(line.split(what, 1)[1])
    # `ordergate` when it is on the PATH, else the script beside this interpreter
    assert command[0] == program() and command[0].endswith("ordergate")
    return command[1:]


def _printed_replay_command(result: Any) -> list[str]:
    return _printed_command(result, _REPLAY)


def _journaled(journal: Path) -> list[dict[str, Any]]:
    """The demo journal's decisions, dispatches (outputs) and fills (inputs from the broker),
    in journal order, as JSON objects."""
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        items: list[dict[str, Any]] = []
        for record in handle.read():
            if record.kind is RecordKind.INPUT:
                item: object = decode_input(record.payload)
            elif record.kind is RecordKind.OUTPUT:
                item = decode_output(record.payload)
            else:
                continue
            if isinstance(item, Decision | Dispatch | Fill):
                items.append(json.loads(msgspec.json.encode(item)))
        return items
    finally:
        handle.close()


def test_the_printed_replay_command_reproduces_the_demo_day(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    args = _printed_replay_command(result)
    assert "--broker" in args and "--batch-size" in args

    completed = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", *args], cwd=tmp_path,
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "400"})
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    printed = [json.loads(line) for line in completed.stdout.splitlines()]

    journaled = _journaled(result.journal)
    assert {line["type"] for line in journaled} == {"decision", "dispatch", "fill"}
    assert [line for line in printed if line["type"] in ("decision", "dispatch", "fill")] \
        == journaled

    tally, status = result.tally, result.status
    summary = completed.stderr
    counts = (f"decisions {sum(tally.decisions.values()):,}   "
              f"allowed {tally.decisions['ALLOW']:,}   modified {tally.decisions['MODIFY']:,}   "
              f"denied {tally.decisions['DENY']:,}   orders {tally.orders:,}   "
              f"fills {tally.fills:,}")
    assert counts in summary, summary
    (account,) = status.accounts
    line = re.search(
        rf"account {account.account}: equity {re.escape(money(account.equity))}   PnL today "
        r"(\S+) \(realized (\S+), unrealized (\S+), fees (\S+)\)", summary)
    assert line is not None, summary
    pnl, realized, unrealized, fees = (Decimal(part.replace(",", "")) for part in line.groups())
    assert pnl == account.daily_pnl.quantize(Decimal("0.01"))
    assert realized + unrealized + fees == pnl  # the parts shown add up to the PnL shown
    assert fees == -account.fees.quantize(Decimal("0.01"))
    assert abs(unrealized - account.unrealized_pnl) <= Decimal("0.01")
    modes = re.findall(r"^mode (\S+) -> (\S+) at (\S+) \(([^)]*)\)", summary, re.MULTILINE)
    assert modes == [(change.previous, change.mode, change.ts.isoformat(), change.actor)
                     for change in tally.transitions]
    assert len(modes) >= 2  # the demo day halts: a replay with other fills would not
    assert f"final mode: {status.mode.value}" in summary


def test_the_summary_lists_every_reason_and_they_add_up_to_the_orders_stopped(
        tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    screen = io.StringIO()
    render(Console(file=screen, width=200, color_system=None), result)
    shown = screen.getvalue()
    listed = re.findall(r"^│ ([\d,]+) +│ ([A-Z]{3}-\d{3}) ", shown, re.MULTILINE)
    assert {code for _, code in listed} == set(result.tally.reasons)
    assert sum(int(count.replace(",", "")) for count, _ in listed) == \
        result.tally.decisions["DENY"] + result.tally.decisions["MODIFY"]


def test_the_printed_verify_command_runs_as_printed_on_a_narrow_terminal(
        tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    args = _printed_command(result, "check it has not been altered:")
    assert args[:2] == ["journal", "verify"] and "--head" in args
    completed = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", *args], cwd=Path.cwd(),
        capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_a_bad_simulator_config_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    policy = Path(__file__).parents[2] / "src" / "ordergate" / "data" / "demo_policy.yaml"
    cases = {
        "sim:\n  slipage_bps: 1\n": "sim.slipage_bps: unknown key",
        "sim:\n  fee_bps: '-1'\n": "sim.fee_bps: expected a decimal in [0, 10000)",
        "sim:\n  seed: seven\n": "sim.seed: Expected `int`, got `str`",
        "sim:\n  ack_latency: 5\n": "sim.ack_latency: expected a duration such as 250ms",
        "sim:\n  fill_model: later\n": "sim.fill_model: Invalid enum value 'later'",
        "sim: {}\nseed: 1\n": "seed: unknown key",
    }
    for text, expected in cases.items():
        sim = tmp_path / "sim.yaml"
        sim.write_text(text, encoding="utf-8")
        completed = subprocess.run(
            [sys.executable, "-m", "ordergate.cli.main", "run", "--policy", str(policy),
             "--broker", str(sim), "--journal", str(tmp_path / "j.db"), str(events)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "COLUMNS": "400"})
        assert completed.returncode == 1, (text, completed.stderr)
        assert f"{sim}: " in completed.stderr and expected in completed.stderr, completed.stderr
        assert "Traceback" not in completed.stderr
