"""`ordergate run`: stream a JSON Lines events file through the full pipeline (journal,
engine, dispatcher, broker: the simulator by default, or the one a `--broker` config file
names). Decisions, orders, cancel requests, broker rejects, the broker's cancel confirmations,
fills, mode changes and alerts (a refused operator command among them) go to stdout as JSON
Lines; a progress bar and a summary (with every mode change and why, and every refused
command) go to stderr.

The run is guarded (`runtime.health.GuardedRuntime`) on event time: circuit breakers on the
broker and the feed, reconnect probes, clock sync against a broker with a clock of its own,
reconciliation with the broker before the first event and every N batches. The same events
file therefore gives the same output bytes, run after run.

Re-running the same command on the same journal resumes after the last line it journaled,
so a killed run is finished by simply starting it again.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, BinaryIO

import msgspec
import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ordergate.brokers.base import BrokerAdapter
from ordergate.brokers.sim import FillModel, SimBroker, SimFaults, SubmitFault
from ordergate.cli.broker_spec import broker_from_spec, sim_config_for
from ordergate.cli.console import err, plain
from ordergate.cli.errors import SafetyStop, UserError, journal_problem
from ordergate.cli.logs import stderr_logger_factory
from ordergate.cli.policy_flags import (
    PolicyOperator,
    PolicyReason,
    ReplacePolicy,
    announce_policy_choice,
    policy_replacement,
    warn_if_years_ended,
)
from ordergate.engine.commands import COMMAND_NOTE, COMMAND_REFUSED
from ordergate.engine.status import AccountStatus, EngineStatus, held_words
from ordergate.journal import HASH_PREFIX, Durability, JournalError, head_of, open_journal
from ordergate.journal.urls import parse_journal_url
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    CancelOrder,
    Dispatch,
    Fill,
    ModeChanged,
    OrderCanceled,
    OrderReject,
)
from ordergate.model.reasons import REGISTRY
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import Policy, load_policy
from ordergate.resilience.breakers import BreakerSnapshot, BreakerState
from ordergate.runtime import faults
from ordergate.runtime.health import (
    EventClock,
    GuardedRuntime,
    StartRefused,
    open_proven,
    settings_for,
)
from ordergate.runtime.loop import (
    DEFAULT_SNAPSHOT_EVERY,
    BatchReport,
    ResumeMismatch,
    Runtime,
    RuntimeStopped,
)
from ordergate.runtime.policy_choice import PolicyReplacement
from ordergate.runtime.runfile import DEFAULT_BATCH_SIZE, Tally, count_lines, run_file
from ordergate.runtime.sources import BadLine

_PRINTED = (Decision, Dispatch, CancelOrder, OrderReject, OrderCanceled, Fill, ModeChanged,
            Alert)
_encoder = msgspec.json.Encoder(order="deterministic")


def configure_logging(verbose: bool, quiet_level: int = logging.WARNING) -> None:
    """Library logs as plain lines on stderr: from `quiet_level` up, or everything with -v."""
    level = logging.DEBUG if verbose else quiet_level
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


def journal_url(value: str) -> str:
    """A journal URL, or a plain file path for the embedded SQLite journal. A libpq keyword
    string (`host=... dbname=... password=...`) is refused: taken as a path it would name a
    SQLite file after it, password and all."""
    if "://" in value:
        return value
    if _KEYWORD_DSN.match(value) and not value.endswith(".db"):
        try:
            parse_journal_url(value)
        except JournalError as exc:
            raise UserError(f"--journal: {exc}") from None
    return f"sqlite:///{Path(value).resolve()}"


_KEYWORD_DSN = re.compile(r"\s*[A-Za-z_]+\s*=")


def require_events_file(events: Path) -> None:
    """The events file must be a regular file: a run resumes by reading it again from the
    line it stopped at, which a pipe or standard input cannot do."""
    if str(events) == "-":
        raise UserError("-: events cannot come from standard input; write them to a file "
                        "(a run resumes by reading its file again)")
    if events.is_file():
        return
    if events.is_dir():
        raise UserError(f"{events}: is a directory; give an events file (JSON Lines)")
    if events.exists():
        raise UserError(f"{events}: not a regular file (a pipe or a device); write the events "
                        "to a file (a run resumes by reading its file again)")
    raise UserError(f"{events}: no such events file")


def load_policy_or_fail(path: Path) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise UserError(str(exc)) from None


@dataclass(slots=True)
class OperatorNotes:
    """What the summary says about operators' commands beyond the mode changes: why an
    operator resumed (a resume's mode change carries no reason, the engine's note beside it
    does) and every command the engine refused, with its words."""

    resumed: dict[tuple[datetime, str], str] = field(default_factory=dict)  # (ts, operator)
    refused: list[Alert] = field(default_factory=list)

    def add(self, report: BatchReport) -> None:
        resume_note: Alert | None = None
        for item in report.emitted:
            if isinstance(item, Alert):
                if item.code == COMMAND_REFUSED:
                    self.refused.append(item)
                elif item.code == COMMAND_NOTE and item.message.startswith("resume by "):
                    resume_note = item
                    continue
            elif isinstance(item, ModeChanged) and resume_note is not None \
                    and resume_note.ts == item.ts and not item.reasons:
                prefix = f"resume by {item.actor}: "
                if resume_note.message.startswith(prefix):
                    self.resumed[(item.ts, item.actor)] = resume_note.message.removeprefix(prefix)
            resume_note = None


def writer(stream: BinaryIO, quiet: bool, tally: Tally,
           notes: OperatorNotes | None = None) -> Callable[[BatchReport], None]:
    def on_report(report: BatchReport) -> None:
        tally.add(report)
        if notes is not None:
            notes.add(report)
        if quiet:
            return
        printed = [item for item in report.emitted if isinstance(item, _PRINTED)]
        if printed:
            stream.write(_encoder.encode_lines(printed))
            stream.flush()
    return on_report


def plain_reason(code: str) -> str:
    entry = REGISTRY.get(code)
    return entry.meaning if entry is not None else code


def money(value: object) -> str:
    return f"{float(str(value)):,.2f}"  # display only; the journal keeps the exact decimal


_CENT = Decimal("0.01")


def pnl_parts(account: AccountStatus) -> str:
    """"realized R, unrealized U, fees F" (with `parts_label`'s "to date: " when they are not
    today's PnL). Each part is shown to the cent; when they make up PnL today, unrealized is
    shown as what the other two leave of the PnL shown, so the three add up to it to the cent
    (rounded one by one, they can miss it by a cent)."""
    label = parts_label(account)
    realized = account.realized_pnl.quantize(_CENT)
    fees = (-account.fees).quantize(_CENT) if account.fees else Decimal(0)
    unrealized = account.unrealized_pnl.quantize(_CENT)
    if not label:
        unrealized = account.daily_pnl.quantize(_CENT) - realized - fees
    return (f"{label}realized {money(realized)}, unrealized {money(unrealized)}, "
            f"fees {money(fees)}")


def loss_limit_words(account: AccountStatus) -> str | None:
    """When the day's loss has reached the policy's daily loss limit, what that means: new
    risk is refused from then on, and no limit closes what is already held, so the loss can
    keep growing with the market (past the limit, as a day can end)."""
    if not account.daily_loss_reached or account.daily_loss_limit is None:
        return None
    loss = account.day_start_equity - account.equity
    return (f"account {plain(account.account)}: the day's loss {money(loss)} has reached the "
            f"daily loss limit {money(account.daily_loss_limit)}, so orders that add risk are "
            "refused. Limits and halts stop new orders; they do not close positions already "
            "open, which keep gaining or losing with the market.")


def parts_label(account: AccountStatus) -> str:
    """"" when realized + unrealized + fees make up PnL today, else "to date: ". Realized PnL
    and fees run from the account's beginning, PnL today from the day's start (a day roll or
    new funding restarts it): shown as today's parts they would not add up."""
    parts = account.realized_pnl + account.unrealized_pnl - account.fees
    # within a cent: the engine's 28-digit averages leave a remainder of about 1E-22
    return "" if abs(parts - account.daily_pnl) < _CENT else "to date: "


_REASON_ROWS = 8  # the summary's reasons table; the rest is one row naming them


def render_summary(console: Console, tally: Tally, status: EngineStatus, *,
                   title: str = "ordergate run summary",
                   breakers: list[BreakerSnapshot] | None = None,
                   head: tuple[int, str] | None = None,
                   notes: OperatorNotes | None = None) -> None:
    """Decisions by outcome and reason, orders, fills, PnL, every mode change with its
    reasons (an operator's resume with the reason they gave), commands the engine refused,
    circuits that are not closed, the final mode, and the journal's head (seq and hash of its
    newest record, for the operator's log pipeline to keep outside the journal;
    `journal verify --head` checks it)."""
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
        ranked = tally.reasons.most_common()
        for code, count in ranked[:_REASON_ROWS]:
            table.add_row(f"{count:,}", code, plain_reason(code))
        if rest := ranked[_REASON_ROWS:]:
            # the rows must add up to what was refused: the rest is counted, not dropped
            table.add_row(f"{sum(count for _, count in rest):,}",
                          f"{len(rest)} more", ", ".join(code for code, _ in rest))
        console.print(table)
    for account in status.accounts:
        console.print(
            f"account {plain(account.account)}: equity {money(account.equity)}   "
            f"PnL today {money(account.daily_pnl)} ({pnl_parts(account)})"
        )
        if (words := loss_limit_words(account)) is not None:
            console.print(f"  {words}")
    for change in tally.transitions:
        why = "; ".join(f"{code} {detail}".strip() for code, detail in change.why)
        if not why and notes is not None:
            why = notes.resumed.get((change.ts, change.actor), "")
        why = why or "-"
        console.print(f"mode {change.previous} -> {change.mode} at {change.ts.isoformat()} "
                      f"({change.actor}): {why}", markup=False, highlight=False,
                      emoji=False, soft_wrap=True)
    for refused in notes.refused if notes is not None else ():
        console.print(f"command refused at {refused.ts.isoformat()}: {refused.message}",
                      markup=False, highlight=False, emoji=False, soft_wrap=True)
    for breaker in breakers or ():
        if breaker.state is BreakerState.CLOSED:
            continue
        until = (f" until {breaker.opened_until.isoformat()}"
                 if breaker.opened_until is not None else "")
        console.print(f"circuit {breaker.name}: {breaker.state.value}{until} "
                      f"({breaker.recent_failures} recent failures)", markup=False,
                      highlight=False, soft_wrap=True)
    colour = {"ACTIVE": "green", "REDUCE_ONLY": "yellow", "HALTED": "red"}[status.mode.value]
    console.print(f"final mode: [bold {colour}]{status.mode.value}[/]")
    for reason in status.reasons:
        console.print(f"  held by {reason.code} {reason.detail}".rstrip(), markup=False,
                      highlight=False, emoji=False, soft_wrap=True)
    if status.held_after is not None and (
            line := held_words(status, plain_reason(status.held_after.code))) is not None:
        console.print(f"  {line}", markup=False, highlight=False, emoji=False, soft_wrap=True)
    if head is not None:
        console.print(f"journal head: seq {head[0]} hash {HASH_PREFIX}{head[1]}", markup=False,
                      highlight=False, emoji=False, soft_wrap=True)


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
                               "to the same broker. Without it a restart ends the orders still "
                               "working at the old simulator (journaled as canceled).")] = None,
    fill_model: Annotated[FillModel, typer.Option(
        "--fill-model", help="immediate: fill on receipt when marketable against the last "
                             "quote (a limit order rests until a quote reaches it); "
                             "next_market: fill against the next market snapshot (limit "
                             "orders rest until marketable).")]
    = FillModel.IMMEDIATE,
    batch_size: Annotated[int, typer.Option(min=1, help=(
        "Events per batch: one journal flush, then the broker's answers. Fills are seen only "
        "after their order's batch, so an intent later in the same batch is decided without "
        "them: decisions are deterministic for a given file and batch size, and may differ "
        "with another size (1: the broker is heard after every event)."))]
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
    broker_spec: Annotated[str, typer.Option(
        "--broker", help="'sim' (the simulator with its defaults), a simulator config file "
                         "(YAML with a 'sim' section: fill model, slippage, fees, latencies, "
                         "volume participation, planned rejects, seed) or a broker config "
                         "YAML file (paper or live; live needs live_confirmed).")] = "sim",
    sim_fault: Annotated[str | None, typer.Option(
        "--sim-fault", help="Make the simulator fail its next submits: KIND:COUNT with KIND "
                            "unavailable, rate_limited (HTTP 429) or auth (HTTP 401).")]
    = None,
    replace_policy: ReplacePolicy = False,
    operator: PolicyOperator = "",
    reason: PolicyReason = "",
) -> None:
    """Run events through the full pipeline, guarded by circuit breakers, clock sync and
    reconciliation on event time."""
    configure_logging(verbose)
    if faults.problem:
        raise UserError(faults.problem)
    require_events_file(events)
    loaded = load_policy_or_fail(policy)
    warn_if_years_ended(loaded, policy)
    replacement = policy_replacement(replace_policy, operator, reason)
    broker = _make_broker(broker_spec, loaded, fill_model=fill_model, broker_state=broker_state,
                          sim_fault=sim_fault)
    tally = Tally()
    notes = OperatorNotes()
    on_report = writer(sys.stdout.buffer, quiet, tally, notes)
    try:
        guard = _open_guarded(journal, loaded, broker, durability, snapshot_every, events,
                              on_report, replacement)
    except BaseException:
        _close_broker(broker)
        raise
    runtime = guard.runtime
    bad: list[BadLine] = []
    try:
        total = count_lines(events)
        with Progress(TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("lines", total=total)
            run_file(guard, events, batch_size=batch_size, skip_bad_lines=skip_bad_lines,
                     on_report=on_report,
                     on_progress=lambda line: progress.update(task, completed=line),
                     on_bad_line=bad.append)
    except BadLine as exc:
        render_summary(err, tally, runtime.engine.status(), breakers=guard.breakers(),
                       notes=notes)
        raise UserError(f"{exc} (every line before it was journaled; fix the line and run "
                        "the same command again to continue)") from None
    except ResumeMismatch as exc:
        raise UserError(str(exc)) from None
    except RuntimeStopped as exc:
        _shown_before_stop(exc, on_report)
        raise SafetyStop(str(exc)) from None
    finally:
        guard.close()
        _close_broker(broker)
    for line in bad:
        err.print(f"[yellow]skipped[/] {plain(line)}", markup=True, highlight=False, soft_wrap=True)
    render_summary(err, tally, runtime.engine.status(), breakers=guard.breakers(),
                   head=head_of(runtime.journal), notes=notes)


def _open_guarded(journal: str, policy: Policy, broker: BrokerAdapter, durability: Durability,
                  snapshot_every: int, events: Path,
                  on_report: Callable[[BatchReport], None],
                  replacement: PolicyReplacement | None = None) -> GuardedRuntime:
    """Verify the journal, recover the runtime from it (finishing an interrupted batch of
    `events`) and wire the guard in, on event time."""
    url = journal_url(journal)
    try:
        handle = open_journal(url, durability=durability)
    except JournalError as exc:
        raise UserError(journal_problem(journal, exc)) from None
    # The chain is proven before anything is acted on; on a large journal the check runs in
    # a second process while the state is rebuilt (`open_proven`).
    try:
        runtime = open_proven(handle, url, lambda on_replayed: Runtime.open_on(
            handle, policy, broker, snapshot_every=snapshot_every, source=events,
            on_batch=on_report, replace_policy=replacement, on_replayed=on_replayed))
    except StartRefused as exc:
        raise SafetyStop(str(exc)) from None
    except JournalError as exc:
        raise UserError(journal_problem(journal, exc)) from None
    except ResumeMismatch as exc:
        raise UserError(str(exc)) from None
    except RuntimeStopped as exc:
        _shown_before_stop(exc, on_report)
        raise SafetyStop(str(exc)) from None
    announce_policy_choice(runtime.policy_choice)
    return GuardedRuntime(runtime, EventClock(), settings_for(broker))


def _shown_before_stop(stop: RuntimeStopped, on_report: Callable[[BatchReport], None]) -> None:
    """What the batch the journal failed in had made durable before it failed (its decisions,
    the orders it sent, the broker's answers journaled), shown as its report would have been:
    the orders are at the broker and in the journal, and a restart does not show them again."""
    if stop.journaled:
        on_report(BatchReport(emitted=stop.journaled))


_SIM_ONLY = "--fill-model, --broker-state and --sim-fault"


def _make_broker(spec: str, policy: Policy, *, fill_model: FillModel,
                 broker_state: Path | None, sim_fault: str | None) -> BrokerAdapter:
    """The simulator (with its options, or as a simulator config file sets it up), or the
    adapter a broker config file describes, built and checked against the policy exactly as
    `ordergate serve` does it."""
    config = sim_config_for(spec)
    if config is None:
        if fill_model is not FillModel.IMMEDIATE or broker_state is not None or sim_fault:
            raise UserError(f"--broker {spec}: {_SIM_ONLY} apply to the simulator only "
                            "(--broker sim or a simulator config file)")
        return broker_from_spec(spec, policy)
    if spec != "sim" and fill_model is not FillModel.IMMEDIATE:
        raise UserError(f"--fill-model {fill_model.value}: the simulator config file {spec} "
                        "sets the fill model (fill_model in its 'sim' section)")
    if spec == "sim":
        config = msgspec.structs.replace(config, fill_model=fill_model)
    if broker_state is not None:
        config = msgspec.structs.replace(config, state_path=str(broker_state))
    broker = SimBroker(config)
    if sim_fault is not None:
        try:
            broker.faults = parse_sim_fault(sim_fault, broker.faults)
        except UserError:
            broker.close()
            raise
    return broker


def parse_sim_fault(text: str, current: SimFaults) -> SimFaults:
    """`KIND:COUNT` -> the simulator's faults with its next COUNT submits failing as KIND."""
    kind, _, count = text.partition(":")
    kinds = ", ".join(fault.value for fault in SubmitFault)
    try:
        fault = SubmitFault(kind.strip())
    except ValueError:
        raise UserError(f"--sim-fault {text}: expected KIND:COUNT with KIND one of {kinds}, "
                        f"got kind '{kind}'") from None
    if not count.strip().isdigit() or int(count) < 1:
        raise UserError(f"--sim-fault {text}: expected KIND:COUNT with COUNT a whole number "
                        f"of submits of at least 1, got '{count}'")
    return msgspec.structs.replace(current, fail_next_submits=int(count), submit_fault=fault)


def _close_broker(broker: BrokerAdapter) -> None:
    close = getattr(broker, "close", None)
    if callable(close):
        close()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
