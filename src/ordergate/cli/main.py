"""The `ordergate` entry point. Each command lives in its own `cli/*_cmd.py` module with a
`register(app)` function; this file only assembles them and maps errors to exit codes."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from ordergate.cli.console import err
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.cli.logs import configure_stderr_logging
from ordergate.journal import JournalError

app = typer.Typer(
    name="ordergate",
    help="Pre-trade risk and capital-policy gateway for automated trading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One line per command module, in the order they appear in --help.
_COMMAND_MODULES = (
    "ordergate.cli.reasons_cmd",
    "ordergate.cli.journal_cmd",
    "ordergate.cli.db_cmd",
    "ordergate.cli.policy_cmd",
    "ordergate.cli.eval_cmd",
    "ordergate.cli.demo_cmd",
    "ordergate.cli.run_cmd",
    "ordergate.cli.gateway_cmd",
    "ordergate.cli.replay_cmd",
    "ordergate.cli.decisions_cmd",
    "ordergate.cli.report_cmd",
    "ordergate.cli.status_cmd",
    "ordergate.cli.serve_cmd",
    "ordergate.cli.drill_cmd",
    "ordergate.cli.chaos_cmd",
)



@app.callback()
def _root() -> None:
    """Pre-trade risk and capital-policy gateway for automated trading."""
    # stdout carries results (JSON Lines, tables); library logs go to stderr, warnings and up,
    # unless a command configures its own logging.
    configure_stderr_logging(logging.WARNING)


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    # Usage errors are click's: it prints them and exits 2. Our own errors are mapped here so
    # users see one clear line, never a stack trace.
    try:
        app()
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except SafetyStop as exc:
        err.print(f"[bold red]SAFETY STOP:[/] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except JournalError as exc:
        # Commands name the journal problems they expect; any other is still one the gateway
        # must not go on from (it cannot prove its state), said in one line.
        err.print(f"[bold red]SAFETY STOP:[/] {exc}", markup=True)
        sys.exit(SafetyStop.exit_code)


if __name__ == "__main__":
    main()
