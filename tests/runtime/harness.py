"""Run `ordergate run` in child processes that can really be SIGKILLed.

Children are forked from the test process (which has already imported everything), then
call the real CLI entry point with the real arguments and the fault plan in their
environment (`ORDERGATE_FAULT_KILL_AT`), exactly as a separately started `ordergate run`
would; forking instead of exec-ing only saves the interpreter start-up per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import Dispatch
from ordergate.runtime import faults
from ordergate.runtime.loop import decode_output, rebuild

KILLED = -9
Output = TypeVar("Output")


def silence() -> None:
    """A child's output goes nowhere (the exit code is the report)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until _exit


def fork_run(args: Sequence[str], fault: str | None) -> int:
    """Start `ordergate <args>` in a forked child; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        silence()
        if fault:
            os.environ[faults.ENV_VAR] = fault
        else:
            os.environ.pop(faults.ENV_VAR, None)
        faults.arm_from_environment()
        from ordergate.cli.main import app

        try:
            app(args=list(args), standalone_mode=False)
            code = 0
        except (UserError, SafetyStop) as exc:
            code = exc.exit_code
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os._exit(code)


def wait_exit(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_args(events: Path, policy: Path, journal: Path, broker_state: Path,
             *extra: str) -> list[str]:
    return ["run", "--quiet", "--policy", str(policy), "--journal", str(journal),
            "--broker-state", str(broker_state), "--fill-model", "next_market",
            "--batch-size", "16", "--snapshot-every", "50", *extra, str(events)]


def journaled_outputs(journal: Path, kind: type[Output]) -> list[Output]:
    """The journal's outputs of one type, in journal order."""
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [
            output
            for record in handle.read()
            if record.kind is RecordKind.OUTPUT
            for output in [decode_output(record.payload)]
            if isinstance(output, kind)
        ]
    finally:
        handle.close()


def dispatched_ids(journal: Path) -> list[str]:
    return [output.client_order_id for output in journaled_outputs(journal, Dispatch)]


def input_payloads(journal: Path) -> list[bytes]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [r.payload for r in handle.read() if r.kind is RecordKind.INPUT]
    finally:
        handle.close()


_BROKER_ANSWERS = tuple(f'{{"type":"{name}"'.encode()
                        for name in ("ack", "reject", "fill", "canceled", "dependency"))


def source_payloads(journal: Path) -> list[bytes]:
    """INPUT payloads other than broker answers and health reports."""
    return [p for p in input_payloads(journal) if not p.startswith(_BROKER_ANSWERS)]


def verify(journal: Path) -> tuple[bool, str]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        report = handle.verify()
        return report.ok, report.message
    finally:
        handle.close()


def submissions(broker_state: Path) -> list[str]:
    broker = SimBroker(SimConfig(state_path=str(broker_state)))
    try:
        return broker.submissions()
    finally:
        broker.close()


_PLACES = Decimal("0.00000001")


def final_state(journal: Path) -> tuple[object, ...]:
    """Positions (quantities exact, average prices to 1e-8), open orders and mode."""
    status = rebuild(f"sqlite:///{journal}").status()
    positions = tuple(
        (p.account, p.symbol, p.qty, p.avg_price.quantize(_PLACES))
        for p in status.positions if p.qty != 0
    )
    orders = tuple((o.client_order_id, o.remaining, o.status.value) for o in status.open_orders)
    return positions, orders, status.mode.value


def write_jsonl(path: Path, events: Sequence[dict[str, Any]]) -> Path:
    """An events file: one JSON object per line."""
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def cli(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """`ordergate <args>` in a new interpreter; whatever it says, never a stack trace.
    `columns` widens the terminal rich wraps to (an error is then one line)."""
    env = {**os.environ, "COLUMNS": str(columns)} if columns else None
    result = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                            capture_output=True, text=True, check=False, env=env)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result
