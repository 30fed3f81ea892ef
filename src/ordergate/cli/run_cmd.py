"""`ordergate run`: stream a JSON Lines events file through the full pipeline (journal,
engine, dispatcher, simulated broker). Decisions, orders, fills and mode changes go to
stdout as JSON Lines; a progress bar and a summary go to stderr.

Re-running the same command on the same journal resumes after the last line it journaled,
so a killed run is finished by simply starting it again.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, BinaryIO

import msgspec
import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.cli.console import err
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.engine.status import EngineStatus
from ordergate.journal import Durability, JournalError
from ordergate.model.decision import Decision
from ordergate.model.events import Dispatch, Fill, ModeChanged
from ordergate.model.reasons import REGISTRY
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import Policy, load_policy
from ordergate.runtime import faults
from ordergate.runtime.loop import (
    DEFAULT_SNAPSHOT_EVERY,
    BatchReport,
    ResumeMismatch,
    Runtime,
    RuntimeStopped,
)
from ordergate.runtime.runfile import DEFAULT_BATCH_SIZE, Tally, count_lines, run_file
from ordergate.runtime.sources import BadLine

_PRINTED = (Decision, Dispatch, Fill, ModeChanged)
_encoder = msgspec.json.Encoder(order="deterministic")


def configure_logging(verbose: bool, quiet_level: int = logging.WARNING) -> None:
    """Library logs as plain lines on stderr: from `quiet_level` up, or everything with -v."""
    level = logging.DEBUG if verbose else quiet_level
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def journal_url(value: str) -> str:
    """A journal URL, or a plain file path for the embedded SQLite journal."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).resolve()}"


def load_policy_or_fail(path: Path) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise UserError(str(exc)) from None


def writer(stream: BinaryIO, quiet: bool, tally: Tally) -> Callable[[BatchReport], None]:
    def on_report(report: BatchReport) -> None:
        tally.add(report)
        if quiet:
            return
        lines = [_encoder.encode(item) for item in report.emitted if isinstance(item, _PRINTED)]
        if lines:
            stream.write(b"\n".join(lines) + b"\n")
            stream.flush()
    return on_report


def plain_reason(code: str) -> str:
    entry = REGISTRY.get(code)
    return entry.meaning if entry is not None else code


def money(value: object) -> str:
    return f"{float(str(value)):,.2f}"  # display only; the journal keeps the exact decimal


def render_summary(console: Console, tally: Tally, status: EngineStatus, *,
                   title: str = "ordergate run summary") -> None:
    """Decisions by outcome and reason, orders, fills, PnL and the final mode."""
    decided = sum(tally.decisions.values())
    console.rule(f"[bold]{title}")
    console.print(
        f"events {tally.inputs:,}   decisions {decided:,}   "
        f"[green]allowed {tally.decisions.get('ALLOW', 0):,}[/]   "
        f"[yellow]modified {tally.decisions.get('MODIFY', 0):,}[/]   "
        f"[red]denied {tally.decisions.get('DENY', 0):,}[/]   "
        f"orders {tally.orders:,}   fills {tally.fills:,}"
    )
    if tally.reasons:
        table = Table(title="why orders were denied or modified", title_justify="left")
        for column in ("count", "code", "in plain words"):
            table.add_column(column)
        for code, count in tally.reasons.most_common(8):
            table.add_row(f"{count:,}", code, plain_reason(code))
        console.print(table)
    for account in status.accounts:
        console.print(
            f"account {account.account}: equity {money(account.equity)}   "
            f"PnL today {money(account.daily_pnl)} (realized {money(account.realized_pnl)}, "
            f"unrealized {money(account.unrealized_pnl)})"
        )
    colour = {"ACTIVE": "green", "REDUCE_ONLY": "yellow", "HALTED": "red"}[status.mode.value]
    console.print(f"final mode: [bold {colour}]{status.mode.value}[/]")


def run(
    events: Annotated[Path, typer.Argument(help="JSON Lines events file (one event per line, "
                                                "with a `type` field).")],
    policy: Annotated[Path, typer.Option("--policy", help="Policy YAML file.")],
    journal: Annotated[str, typer.Option("--journal", help="Journal: a .db file path, "
                                                           "sqlite:///... or postgresql://...")],
    durability: Annotated[Durability, typer.Option(help="always: every record durable on its "
                                                        "own; batch: one flush per batch.")]
    = Durability.BATCH,
    broker_state: Annotated[Path | None, typer.Option(
        "--broker-state", help="Persist the simulated broker here, so a restarted run talks "
                               "to the same broker.")] = None,
    fill_model: Annotated[FillModel, typer.Option(
        "--fill-model", help="immediate: fill on receipt; next_market: fill against the next "
                             "market snapshot (limit orders rest until marketable).")]
    = FillModel.IMMEDIATE,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per journal flush.")]
    = DEFAULT_BATCH_SIZE,
    snapshot_every: Annotated[int, typer.Option(min=1, help="Input events between engine "
                                                            "snapshots.")] = DEFAULT_SNAPSHOT_EVERY,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No JSON Lines on stdout.")]
    = False,
    skip_bad_lines: Annotated[bool, typer.Option(
        "--skip-bad-lines", help="Report a malformed line and go on instead of stopping.")]
    = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs.")]
    = False,
) -> None:
    """Run events through the full pipeline with the simulated broker."""
    configure_logging(verbose)
    if faults.problem:
        raise UserError(faults.problem)
    if not events.is_file():
        raise UserError(f"{events}: no such events file")
    loaded = load_policy_or_fail(policy)
    broker = SimBroker(SimConfig(fill_model=fill_model,
                                 state_path=str(broker_state) if broker_state else None))
    tally = Tally()
    on_report = writer(sys.stdout.buffer, quiet, tally)
    try:
        runtime = Runtime.open(journal_url(journal), loaded, broker, durability,
                               snapshot_every=snapshot_every, source=events,
                               on_batch=on_report)
    except JournalError as exc:
        raise UserError(f"{journal}: {exc}") from None
    except ResumeMismatch as exc:
        raise UserError(str(exc)) from None
    except RuntimeStopped as exc:
        raise SafetyStop(str(exc)) from None
    bad: list[BadLine] = []
    try:
        total = count_lines(events)
        with Progress(TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("lines", total=total)
            run_file(runtime, events, batch_size=batch_size, skip_bad_lines=skip_bad_lines,
                     on_report=on_report,
                     on_progress=lambda line: progress.update(task, completed=line),
                     on_bad_line=bad.append)
    except BadLine as exc:
        render_summary(err, tally, runtime.engine.status())
        raise UserError(f"{exc} (every line before it was journaled; fix the line and run "
                        "the same command again to continue)") from None
    except ResumeMismatch as exc:
        raise UserError(str(exc)) from None
    except RuntimeStopped as exc:
        raise SafetyStop(str(exc)) from None
    finally:
        runtime.close()
        broker.close()
    for line in bad:
        err.print(f"[yellow]skipped[/] {line}", markup=True, highlight=False, soft_wrap=True)
    render_summary(err, tally, runtime.engine.status())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
