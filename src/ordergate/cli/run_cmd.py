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
so a killed run is finished by simply starting it again. Ctrl-C or SIGTERM stops the run once
the batch in progress is journaled, acted on and shown, with the summary (exit 130 or 143); a
second one stops it at once, and the next run finishes that batch from the journal.

Each record is shown by the run that journaled it, once: a restart shows what it journals
itself. A run that was killed (not stopped) may have journaled its last batch without showing
it; a restart on a journal that holds records says on stderr which batch that was and how to
list it (`earlier_batch`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, BinaryIO

import msgspec
import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ordergate.brokers.base import BrokerAdapter
from ordergate.brokers.config import BrokerConfigError
from ordergate.brokers.sim import FillModel, SimBroker, SimFaults, SubmitFault
from ordergate.cli.broker_spec import broker_from_spec, sim_config_for
from ordergate.cli.console import err, plain
from ordergate.cli.errors import SafetyStop, UserError, journal_file_at, journal_problem
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
from ordergate.evidence.report import (
    CANCEL_RATE,
    AlertTally,
    alert_line,
    counted_alert,
    let_through,
    monitor_words,
    ranked_alerts,
    tally_alerts,
)
from ordergate.journal import (
    HASH_PREFIX,
    Durability,
    Journal,
    JournalError,
    RecordKind,
    head_of,
    open_journal,
    redact_url,
)
from ordergate.journal.chain import JournalDamaged
from ordergate.journal.urls import not_a_journal, parse_journal_url, resolved_journal_url
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    AlertSeverity,
    CancelOrder,
    DecisionRecord,
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
from ordergate.runtime.runfile import (
    DEFAULT_BATCH_SIZE,
    Tally,
    count_lines,
    run_file,
    start_line_for,
)
from ordergate.runtime.sources import BadLine, SourceMark, decode_note

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
    """The journal URL `--journal value` names, by the rules every command reads a journal
    by (`journal.urls.parse_journal_url`): a path ending in '.db' (the embedded SQLite
    journal), sqlite:///... or postgresql://... Anything else is refused by name: an events
    file or a policy given by mistake, or a libpq keyword string (`host=... password=...`),
    which taken as a path would name a SQLite file after it, password and all."""
    try:
        return resolved_journal_url(value)
    except JournalError as exc:
        raise UserError(str(exc)) from None


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
    does) and every command the engine refused, with its words; the other critical and
    warning alerts of the run, counted by code (`counted_alert`), which -q hides from stdout
    with everything else; and the decisions taken in monitor mode, with the orders they let
    through that the policy would have blocked, by the rule that would have (`let_through`),
    and the cancels sent that its `cancel_rate` would have refused (an info THR-005 alert
    each)."""

    resumed: dict[tuple[datetime, str], str] = field(default_factory=dict)  # (ts, operator)
    refused: list[Alert] = field(default_factory=list)
    alerts: dict[tuple[str, str], AlertTally] = field(default_factory=dict)
    monitored: int = 0
    would_have_blocked: Counter[str] = field(default_factory=Counter)
    cancels_sent: int = 0
    # a decision that let an order through, until its DecisionRecord says it was judged anew:
    # a retry's repeated answer comes without one and sends no second order
    _letting_through: Decision | None = field(default=None, init=False, repr=False)

    def add(self, report: BatchReport) -> None:
        resume_note: Alert | None = None
        for item in report.emitted:
            if isinstance(item, Decision):
                self._letting_through = None
                if item.monitor:
                    self.monitored += 1
                    if let_through(item.decision, item.monitor, item.would_block):
                        self._letting_through = item
            elif isinstance(item, DecisionRecord):
                judged = self._letting_through
                if judged is not None and judged.intent_id == item.intent_id:
                    self.would_have_blocked[judged.would_block] += 1
                self._letting_through = None
            if isinstance(item, Alert):
                if item.code == CANCEL_RATE and item.severity is AlertSeverity.INFO:
                    self.cancels_sent += 1  # monitor mode: sent, enforced it is refused
                if item.code == COMMAND_REFUSED:
                    self.refused.append(item)
                elif counted_alert(item):
                    tally_alerts(self.alerts, item)
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
# Rounding to the cent keeps at most Decimal's 28 digits: 25 before the point, 2 after.
_CENTS_MAX_ADJUSTED = 25


def _to_cent(amount: Decimal) -> Decimal:
    """`amount` rounded to the cent, or as it is when that takes more than 28 digits (10**26
    and more): `quantize` would raise on it, and `money` shows it with two decimals anyway."""
    if amount.adjusted() > _CENTS_MAX_ADJUSTED:
        return amount
    return amount.quantize(_CENT)


def pnl_parts(account: AccountStatus) -> str:
    """"realized R, unrealized U, fees F" (with `parts_label`'s "to date: " when they are not
    today's PnL). Each part is shown to the cent; when they make up PnL today, unrealized is
    shown as what the other two leave of the PnL shown, so the three add up to it to the cent
    (rounded one by one, they can miss it by a cent)."""
    label = parts_label(account)
    realized = _to_cent(account.realized_pnl)
    fees = _to_cent(-account.fees) if account.fees else Decimal(0)
    unrealized = _to_cent(account.unrealized_pnl)
    if not label:
        unrealized = _to_cent(account.daily_pnl) - realized - fees
    return (f"{label}realized {money(realized)}, unrealized {money(unrealized)}, "
            f"fees {money(fees)}")


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def utc_words(moment: datetime) -> str:
    """`moment` as "Mon 2026-11-30 21:00:00 UTC": the weekday tells a Saturday reader that the
    day runs to Monday (spelled here, not by the locale)."""
    moment = moment.astimezone(UTC)
    return f"{_WEEKDAYS[moment.weekday()]} {moment:%Y-%m-%d %H:%M:%S} UTC"


def day_end_words(day_ends: datetime) -> str:
    """When the trading day ends, and what starts again then (a sentence)."""
    return (f"The trading day ends {utc_words(day_ends)} (the policy's day roll: 00:00 UTC, or "
            "the session close of its day_roll_calendar, weekends and holidays belonging to "
            "the day before): PnL today and the daily loss limit start again then.")


def loss_limit_words(account: AccountStatus, day_ends: datetime | None = None) -> str | None:
    """When the day's loss has reached the policy's daily loss limit, what that means: new
    risk is refused from then on until the trading day ends (`day_ends`, the engine's next day
    roll, when known: on a Saturday that is Monday's close for an exchange calendar), and no
    limit closes what is already held, so the loss can keep growing with the market (past
    the limit, as a day can end)."""
    if not account.daily_loss_reached or account.daily_loss_limit is None:
        return None
    loss = account.day_start_equity - account.equity
    until = (f" until the trading day ends {utc_words(day_ends)}, when the day's loss counts "
             "from zero again" if day_ends is not None else "")
    return (f"account {plain(account.account)}: the day's loss {money(loss)} has reached the "
            f"daily loss limit {money(account.daily_loss_limit)}, so orders that add risk are "
            f"refused{until}. Limits and halts stop new orders; they do not close positions "
            "already open, which keep gaining or losing with the market.")


def parts_label(account: AccountStatus) -> str:
    """"" when realized + unrealized + fees make up PnL today, else "to date: ". Realized PnL
    and fees run from the account's beginning, PnL today from the day's start (a day roll or
    new funding restarts it): shown as today's parts they would not add up."""
    parts = account.realized_pnl + account.unrealized_pnl - account.fees
    # within a cent: the engine's 28-digit averages leave a remainder of about 1E-22
    return "" if abs(parts - account.daily_pnl) < _CENT else "to date: "


_REASON_ROWS = 8  # the summary's reasons table; the rest is one row naming them


def _reasons_table(title: str, reasons: Counter[str]) -> Table:
    """Counts by reason code with their plain words, the most frequent first."""
    table = Table(title=title, title_justify="left")
    for column in ("count", "code", "in plain words"):
        table.add_column(column)
    ranked = reasons.most_common()
    for code, count in ranked[:_REASON_ROWS]:
        table.add_row(f"{count:,}", code, plain_reason(code))
    if rest := ranked[_REASON_ROWS:]:
        # the rows must add up to what was counted: the rest is counted, not dropped
        table.add_row(f"{sum(count for _, count in rest):,}",
                      f"{len(rest)} more", ", ".join(code for code, _ in rest))
    return table


def render_summary(console: Console, tally: Tally, status: EngineStatus, *,
                   title: str = "ordergate run summary",
                   breakers: list[BreakerSnapshot] | None = None,
                   head: tuple[int, str] | None = None,
                   notes: OperatorNotes | None = None) -> None:
    """Decisions by outcome and reason, orders, fills, PnL, every mode change with its
    reasons (an operator's resume with the reason they gave), commands the engine refused,
    the run's critical and warning alerts by code, circuits that are not closed, the final
    mode, and the journal's head (seq and hash of its newest record, for the operator's log
    pipeline to keep outside the journal; `journal verify --head` checks it)."""
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
        console.print(_reasons_table("why orders were denied or modified", tally.reasons))
    if notes is not None and (notes.monitored or notes.cancels_sent):
        # as `ordergate status` and the pack's Monitor mode section say it
        passed = notes.would_have_blocked
        said = monitor_words(notes.monitored, decided, passed.total(), notes.cancels_sent)
        console.print(f"MONITOR: {said}",
                      style="bold black on yellow", markup=False, highlight=False,
                      emoji=False, soft_wrap=True)
        if passed:
            console.print(_reasons_table("would have been blocked (let through in monitor "
                                         "mode)", passed))
    for account in status.accounts:
        console.print(
            f"account {plain(account.account)}: equity {money(account.equity)}   "
            f"PnL today {money(account.daily_pnl)} ({pnl_parts(account)})"
        )
        if (words := loss_limit_words(account, status.day_ends_at)) is not None:
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
    raised = ranked_alerts(notes.alerts) if notes is not None else []
    if raised:
        console.print("[bold]alerts raised[/] (critical and warning, by code; the Alerts table "
                      "of `ordergate report` quotes each):")
    for raised_alert in raised:
        console.print(f"  {alert_line(raised_alert)}",
                      style="red" if raised_alert.severity.value == "critical" else "yellow",
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
    journal: Annotated[str, typer.Option(
        "--journal", help="Journal: a .db file path, sqlite:///... or postgresql://... (as "
                          "every command reads it). A file already there must be an ordergate "
                          "journal; an empty one starts a new journal.")],
    durability: Annotated[Durability, typer.Option(help="always: every record durable on its "
                                                        "own; batch: one flush per batch.")]
    = Durability.BATCH,
    broker_state: Annotated[Path | None, typer.Option(
        "--broker-state", help="Persist the simulated broker here (a file of its own, never "
                               "the journal's), so a restarted run talks to the same broker. "
                               "Without it, or with a file that does not exist yet (made at "
                               "this start), a restart ends the orders still working at the "
                               "old simulator (journaled as canceled, naming the new file)."
                               )] = None,
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
    reconciliation on event time.

    Ctrl-C or SIGTERM stops the run once the batch in progress is journaled, acted on and
    shown on stdout, prints the summary and exits 130 (Ctrl-C) or 143 (SIGTERM); a second one
    stops it at once. Run the same command again to resume: it goes on after the last line
    journaled and finishes a batch cut short. Asked while the journal is being replayed, the
    stop comes before anything is appended.

    Every record is shown once, by the run that journaled it. A killed run (SIGKILL, a crash)
    may have journaled its last batch without showing it, and no later run can tell whether
    it did: a run on a journal that already holds records shows only what it adds, and says on
    stderr (unless --quiet) how many records the journal held, which batch came last (lines,
    decisions, orders, fills) and how to list it (`ordergate decisions --journal ...`)."""
    configure_logging(verbose)
    if faults.problem:
        raise UserError(faults.problem)
    require_events_file(events)
    loaded = load_policy_or_fail(policy)
    warn_if_years_ended(loaded, policy)
    replacement = policy_replacement(replace_policy, operator, reason)
    url = journal_url(journal)
    refuse_broker_state_in_journal(broker_state, url, journal)
    with StopOnSignal() as stop:
        try:
            _run_until_done_or_stopped(
                events, loaded, journal, url, broker_spec, durability=durability,
                broker_state=broker_state, fill_model=fill_model, batch_size=batch_size,
                snapshot_every=snapshot_every, quiet=quiet, skip_bad_lines=skip_bad_lines,
                sim_fault=sim_fault, replacement=replacement, stop=stop)
        except KeyboardInterrupt:
            if stop.last is None:
                raise
            err.print(f"stopped at once ({_SIGNALS[stop.last]}): the batch in progress is "
                      "finished from the journal by running the same command again",
                      markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(128 + stop.last) from None


def _run_until_done_or_stopped(
        events: Path, loaded: Policy, journal: str, url: str, broker_spec: str, *,
        durability: Durability, broker_state: Path | None, fill_model: FillModel,
        batch_size: int, snapshot_every: int, quiet: bool, skip_bad_lines: bool,
        sim_fault: str | None, replacement: PolicyReplacement | None,
        stop: StopOnSignal) -> None:
    broker = _make_broker(broker_spec, loaded, fill_model=fill_model, broker_state=broker_state,
                          sim_fault=sim_fault)
    tally = Tally()
    notes = OperatorNotes()
    on_report = writer(sys.stdout.buffer, quiet, tally, notes)
    earlier: list[EarlierBatch] = []
    try:
        guard = _open_guarded(journal, loaded, broker, durability, snapshot_every, events,
                              on_report, replacement, url=url,
                              on_earlier=None if quiet else earlier.append, stop=stop)
    except StopAsked as asked:
        _close_broker(broker)
        err.print(f"stopped ({_SIGNALS[asked.signum]}) while starting, before anything was "
                  "journaled; run the same command again to start", markup=False,
                  highlight=False, soft_wrap=True)
        raise typer.Exit(128 + asked.signum) from None
    except BaseException:
        _close_broker(broker)
        raise
    runtime = guard.runtime
    for batch in earlier:
        err.print(batch.words(journal), markup=False, highlight=False, soft_wrap=True)
    bad: list[BadLine] = []
    stopped: int | None = None
    first: int | None = None  # the first line this run reads
    last = 0
    try:
        stop.check()  # asked during the start-up: nothing more is read
        first = start_line_for(runtime, events)
        total = count_lines(events)
        with Progress(TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("lines", total=total)

            def on_progress(line: int) -> None:
                # called after each batch is journaled, acted on and shown: where a stop
                # asked for meanwhile takes effect
                progress.update(task, completed=line)
                stop.check()

            last = run_file(guard, events, batch_size=batch_size,
                            skip_bad_lines=skip_bad_lines, on_report=on_report,
                            on_progress=on_progress, on_bad_line=bad.append,
                            start_line=first)
    except StopAsked as asked:
        stopped = asked.signum
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
    if stopped is None and first is not None and first > 1 and last < first:
        err.print(f"nothing new: {events} was read to its end before (this journal holds "
                  f"its lines through line {first - 1:,}), so no line of it was applied "
                  f"again; lines added to it later are read from line {first:,} on",
                  markup=False, highlight=False, soft_wrap=True)
    if stopped is not None:
        resume = runtime.resume
        journaled = (resume.next_line if resume is not None and resume.source == events.name
                     else first or 1)
        where = (f"every line before line {journaled:,} of {events} is journaled, "
                 "acted on and shown" if journaled > 1
                 else f"no line of {events} was journaled yet")
        err.print(f"stopped ({_SIGNALS[stopped]}): {where}; run the same command again to "
                  "resume", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(128 + stopped)


_SIGNALS: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StopAsked(Exception):
    """Ctrl-C or SIGTERM asked the run to stop; raised between batches (`StopOnSignal`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(_SIGNALS.get(signum, str(signum)))
        self.signum = signum


class StopOnSignal:
    """While entered: SIGINT (Ctrl-C) and SIGTERM ask the run to stop, and `check`, called
    between batches (once a batch is journaled, acted on and shown), raises StopAsked then.
    A second signal stops the run at once (KeyboardInterrupt, wherever it lands), as a kill
    would: the next run finishes that batch from the journal. The previous handlers come
    back on exit. Outside the main thread (where Python takes no signal handlers) it does
    nothing."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal: the stop asked for
        self.last: int | None = None  # the latest one
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._asked)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _asked(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked snapshot child: it finishes its snapshot, its parent decides
        self.last = signum
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        again = "Ctrl-C again" if signum == signal.SIGINT else "a second SIGTERM"
        with contextlib.suppress(OSError):  # no stderr: the stop goes on unannounced
            os.write(2, f"\n{_SIGNALS[signum]}: stopping once the batch in progress is "
                        f"journaled and shown ({again} stops at once)\n".encode())

    def check(self) -> None:
        if self.signum is not None:
            raise StopAsked(self.signum)


@dataclass(frozen=True, slots=True)
class EarlierBatch:
    """What a journal held when a run started on it: its records, and the last source batch
    among them (from its source mark to the journal's end: the batch's inputs, what the engine
    made of them, the broker's answers, and anything journaled after it)."""

    records: int
    source: str = ""
    line: int = 0
    count: int = 0
    first_ts: datetime | None = None  # the times of its inputs: the listing's bounds
    last_ts: datetime | None = None
    decisions: int = 0
    orders: int = 0
    fills: int = 0
    shown: int = 0  # records of the kinds stdout shows: its lines there

    def words(self, journal: str) -> str:
        """One line for stderr: stdout shows only what this run journals, and which batch a
        killed run may have journaled without showing, with the command that lists it."""
        where = redact_url(journal)
        listing = f"ordergate decisions --journal {shlex.quote(where)}"
        text = (f"journal {where} already holds {self.records:,} records from earlier runs; "
                "stdout shows only what this run adds")
        if not self.count:
            return f"{text} (`{listing}` lists its decisions)."
        lines = (f"line {self.line:,}" if self.count == 1
                 else f"lines {self.line:,}-{self.line + self.count - 1:,}")
        bounds = "".join(f" --{name} {_rfc3339(moment)}" for name, moment in (
            ("since", self.first_ts), ("until", self.last_ts)) if moment is not None)
        held = (f"{_count(self.decisions, 'decision')}, {_count(self.orders, 'order')}, "
                f"{_count(self.fills, 'fill')}: {_count(self.shown, 'line')} of stdout")
        return (f"{text}. Its last batch, {lines} of {self.source} ({held}), is on the stdout "
                "of the run that journaled it unless that run was killed before showing it: "
                f"`{listing}{bounds}` lists its decisions.")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class _Stamped(msgspec.Struct):
    ts: datetime


_SCAN_WINDOW = 1024
_SCAN_LIMIT = 64 * _SCAN_WINDOW  # records looked back through for the last source batch
_DECISION = b'{"type":"decision",'
_ORDER = b'{"type":"dispatch",'
_FILL = b'{"type":"fill",'
# The kinds of records stdout shows (`_PRINTED`): the engine's outputs, and the broker's
# answers among the inputs.
_SHOWN_OUTPUTS = (_DECISION, _ORDER, b'{"type":"cancel",', b'{"type":"mode",',
                  b'{"type":"alert",')
_SHOWN_INPUTS = (_FILL, b'{"type":"reject",', b'{"type":"canceled",')


def earlier_batch(journal: Journal) -> EarlierBatch | None:
    """What `journal` held before this run appended anything (None: nothing): its record
    count, and its last source batch, looked for among its newest records (`_SCAN_LIMIT`)."""
    last = journal.last_seq()
    if last == 0:
        return None
    mark_seq, mark = _last_source_mark(journal, last)
    if mark is None:
        return EarlierBatch(records=last)
    decisions = orders = fills = shown = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    for record in journal.read(mark_seq, last):
        payload = record.payload
        if record.kind is RecordKind.OUTPUT:
            decisions += payload.startswith(_DECISION)
            orders += payload.startswith(_ORDER)
            shown += payload.startswith(_SHOWN_OUTPUTS)
        elif record.kind is RecordKind.INPUT:
            fills += payload.startswith(_FILL)
            shown += payload.startswith(_SHOWN_INPUTS)
            # an input without a readable time leaves the listing unbounded on its side
            with contextlib.suppress(msgspec.DecodeError):
                ts = msgspec.json.decode(payload, type=_Stamped).ts
                first_ts = ts if first_ts is None else min(first_ts, ts)
                last_ts = ts if last_ts is None else max(last_ts, ts)
    return EarlierBatch(records=last, source=mark.source, line=mark.line, count=mark.count,
                        first_ts=first_ts, last_ts=last_ts, decisions=decisions,
                        orders=orders, fills=fills, shown=shown)


def _last_source_mark(journal: Journal, last: int) -> tuple[int, SourceMark | None]:
    """The newest source mark among the journal's newest `_SCAN_LIMIT` records, and its seq."""
    high = last
    while high >= 1 and last - high < _SCAN_LIMIT:
        low = max(1, high - _SCAN_WINDOW + 1)
        found: tuple[int, SourceMark | None] = (0, None)
        for record in journal.read(low, high):
            if record.kind is RecordKind.META:
                note = decode_note(record.payload)
                if isinstance(note, SourceMark):
                    found = (record.seq, note)
        if found[1] is not None:
            return found
        high = low - 1
    return 0, None


def refuse_broker_state_in_journal(broker_state: Path | None, url: str, journal: str) -> None:
    """The simulated broker keeps its state in a file of its own: never the journal or one of
    its files (the journal given as --broker-state had the simulator's tables written into
    it; a new journal's path became a simulator file the journal then refused)."""
    if broker_state is None:
        return
    what = journal_file_at(url, broker_state)
    if what is not None:
        raise UserError(f"--broker-state {broker_state}: is {what} ({redact_url(journal)}); "
                        "the simulated broker needs a file of its own (a new one is made when "
                        "none is there)")


def _open_guarded(journal: str, policy: Policy, broker: BrokerAdapter, durability: Durability,
                  snapshot_every: int, events: Path,
                  on_report: Callable[[BatchReport], None],
                  replacement: PolicyReplacement | None = None, *, url: str | None = None,
                  on_earlier: Callable[[EarlierBatch], None] | None = None,
                  stop: StopOnSignal | None = None) -> GuardedRuntime:
    """Verify the journal, recover the runtime from it (finishing an interrupted batch of
    `events`) and wire the guard in, on event time. `on_earlier` gets what the journal held
    before anything is appended (`earlier_batch`), when it held anything. A stop asked of
    `stop` before then (during the replay or the chain check) raises StopAsked there, with
    nothing appended; from then on the recovery runs to its end."""
    url = journal_url(journal) if url is None else url
    problem = not_a_journal(parse_journal_url(url))
    if problem is not None:  # refused before the journal makes its lock file beside it
        raise UserError(problem)
    try:
        handle = open_journal(url, durability=durability)
    except JournalDamaged as exc:  # a journal, damaged: as `journal verify` says it
        raise SafetyStop(journal_problem(journal, exc)) from None
    except JournalError as exc:
        raise UserError(journal_problem(journal, exc)) from None

    def replayed(check: Callable[[], None]) -> Callable[[], None]:
        def then_look() -> None:
            if stop is not None:
                stop.check()
            check()  # the chain is proven: what it holds may be read out
            if stop is not None:
                stop.check()
            if on_earlier is not None and (held := earlier_batch(handle)) is not None:
                on_earlier(held)
        return then_look

    # The chain is proven before anything is acted on; on a large journal the check runs in
    # a second process while the state is rebuilt (`open_proven`).
    try:
        runtime = open_proven(handle, url, lambda on_replayed: Runtime.open_on(
            handle, policy, broker, snapshot_every=snapshot_every, source=events,
            on_batch=on_report, replace_policy=replacement,
            on_replayed=replayed(on_replayed)))
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
    try:
        broker = SimBroker(config)
    except BrokerConfigError as exc:  # its state file (SimStateError), named in `exc`
        where = "--broker-state" if broker_state is not None else f"--broker {spec}"
        raise UserError(f"{where}: {exc}") from None
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
