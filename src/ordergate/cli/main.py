"""The `ordergate` entry point. Each command lives in its own `cli/*_cmd.py` module with a
`register(app)` function; this file only assembles them and maps errors to exit codes."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import NoReturn

import typer

from ordergate.cli.console import err, guard_output_encoding, plain
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.cli.logs import configure_stderr_logging
from ordergate.engine.state import EngineTooNew
from ordergate.journal import JournalError

# Each command (or command group) and the module that registers it, in the order of --help.
_COMMANDS: dict[str, str] = {
    "reasons": "ordergate.cli.reasons_cmd",
    "journal": "ordergate.cli.journal_cmd",
    "db": "ordergate.cli.db_cmd",
    "policy": "ordergate.cli.policy_cmd",
    "eval": "ordergate.cli.eval_cmd",
    "demo": "ordergate.cli.demo_cmd",
    "run": "ordergate.cli.run_cmd",
    "gateway": "ordergate.cli.gateway_cmd",
    "firm": "ordergate.cli.gateway_cmd",
    "replay": "ordergate.cli.replay_cmd",
    "decisions": "ordergate.cli.decisions_cmd",
    "report": "ordergate.cli.report_cmd",
    "status": "ordergate.cli.status_cmd",
    "serve": "ordergate.cli.serve_cmd",
    "token": "ordergate.cli.serve_cmd",
    "drill": "ordergate.cli.drill_cmd",
    "chaos": "ordergate.cli.chaos_cmd",
}


def _root() -> None:
    """Pre-trade risk and capital-policy gateway for automated trading."""
    # stdout carries results (JSON Lines, tables); library logs go to stderr, warnings and up,
    # unless a command configures its own logging.
    configure_stderr_logging(logging.WARNING)


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every command, or with only `command`'s module when it is one of ours.
    Importing every command brings in what all of them need (the PostgreSQL, Redis and HTTP
    clients, the service): about a third of a second before any command starts, so the
    entry point imports only the module of the command being run."""
    built = typer.Typer(
        name="ordergate",
        help="Pre-trade risk and capital-policy gateway for automated trading.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    built.callback()(_root)
    modules = ([_COMMANDS[command]] if command in _COMMANDS
               else list(dict.fromkeys(_COMMANDS.values())))
    for name in modules:
        importlib.import_module(name).register(built)
    return built


def __getattr__(name: str) -> typer.Typer:
    """`app`: the CLI with every command, built on first use (tests and the docs import it)."""
    if name == "app":
        full = globals()["app"] = build_app()
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command(argv: list[str]) -> str | None:
    """The command named on the command line: its first word (the root takes no options)."""
    return argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None


def _fail(label: str, exc: Exception, exit_code: int) -> NoReturn:
    """One line on stderr, then exit `exit_code` even if that line cannot be written: a
    safety stop's exit 3 is the contract scripts read."""
    try:
        err.print(f"[bold red]{label}:[/] {plain(exc)}", markup=True)
    finally:
        sys.exit(exit_code)


def main() -> None:
    # Usage errors are click's: it prints them and exits 2. Our own errors are mapped here so
    # users see one clear line, never a stack trace.
    guard_output_encoding()
    try:
        build_app(_command(sys.argv))()
    except UserError as exc:
        _fail("error", exc, exc.exit_code)
    except SafetyStop as exc:
        _fail("SAFETY STOP", exc, exc.exit_code)
    except (JournalError, EngineTooNew) as exc:
        # Commands name the journal problems they expect; any other is still one the gateway
        # must not go on from (it cannot prove its state), said in one line. A journal a
        # newer version wrote stops every reader that replays it.
        _fail("SAFETY STOP", exc, SafetyStop.exit_code)


if __name__ == "__main__":
    main()
