"""Stream an events file through a Runtime: the engine room of `ordergate run` and `demo`.

Given a `GuardedRuntime` (as `ordergate run` does), every batch also goes through the guard
(breakers, reconnect probes, clock sync, reconciliation), all on event time, and the guard's
start-up checks (a session close a crash interrupted, reconciliation) run just before the
first batch, at that batch's time. A run with no new line (the same command again after a
crash that came after the file's last batch) starts the guard only when a session close is
left to finish, at the engine's event time; otherwise it journals nothing beyond the run
manifest every start records.

Lines are read in batches of consecutive valid events (a blank or bad line ends a batch, so
a batch's lines are always `line, line + 1, ...`; see `runtime.sources` for why resuming
relies on that). A bad line stops the run after everything before it was journaled and
acted on, unless bad lines are skipped; either way the message names the line and field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Dispatch, Fill, InputEvent, ModeChanged
from ordergate.runtime.health import GuardedRuntime
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.runtime.sources import BadLine, read_lines

DEFAULT_BATCH_SIZE = 256


@dataclass(frozen=True, slots=True)
class ModeTransition:
    ts: datetime
    previous: str
    mode: str
    why: tuple[tuple[str, str], ...]  # (reason code, detail)
    actor: str


@dataclass(slots=True)
class Tally:
    """What a run did, for summaries: decisions by outcome and blocking reason, orders,
    fills, mode transitions."""

    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    fills: int = 0
    transitions: list[ModeTransition] = field(default_factory=list)
    inputs: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)

    def add(self, report: BatchReport) -> None:
        self.inputs += report.inputs
        for item in report.emitted:
            if isinstance(item, Decision):
                self.decisions[item.decision.value] += 1
                if item.decision is not DecisionKind.ALLOW and item.blocking:
                    self.reasons[item.blocking] += 1
            elif isinstance(item, Dispatch):
                self.orders += 1
            elif isinstance(item, Fill):
                self.fills += 1
            elif isinstance(item, ModeChanged):
                self.transitions.append(ModeTransition(
                    ts=item.ts, previous=item.previous.value, mode=item.mode.value,
                    why=tuple((reason.code, reason.detail) for reason in item.reasons),
                    actor=item.actor,
                ))


def count_lines(path: Path) -> int:
    total = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            total += chunk.count(b"\n")
    return total


def start_line_for(runtime: Runtime, path: Path) -> int:
    """Where this file continues in this journal: after the last line journaled from it
    (checked byte for byte), or line 1 for a file the journal has not seen last."""
    resume = runtime.resume
    if resume is None or resume.source != path.name:
        return 1
    runtime.check_source(path)
    return resume.next_line


def run_file(runtime: Runtime | GuardedRuntime, path: Path, *,
             batch_size: int = DEFAULT_BATCH_SIZE,
             skip_bad_lines: bool = False,
             on_report: Callable[[BatchReport], None] | None = None,
             on_progress: Callable[[int], None] | None = None,
             on_bad_line: Callable[[BadLine], None] | None = None,
             start_line: int | None = None) -> int:
    """Feed `path` from where this journal left it; returns the last line number read.

    Raises the first BadLine (after journaling and acting on every line before it) unless
    `skip_bad_lines`, in which case each bad line goes to `on_bad_line` and the run goes on.
    """
    guard = runtime if isinstance(runtime, GuardedRuntime) else None
    inner = runtime.runtime if isinstance(runtime, GuardedRuntime) else runtime
    first = start_line if start_line is not None else start_line_for(inner, path)
    name = path.name
    batch: list[InputEvent] = []
    batch_line = first
    last_line = first - 1

    def flush_batch() -> None:
        nonlocal batch
        if batch:
            if guard is not None and not guard.started:
                started = guard.start(_start_time(inner, batch))
                if on_report is not None and (started.emitted or started.inputs):
                    on_report(started)
            report = runtime.process(batch, source=name, line=batch_line)
            if on_report is not None:
                on_report(report)
            batch = []
        if on_progress is not None:
            on_progress(last_line)

    for number, item in read_lines(path, first):
        last_line = number
        if item is None or isinstance(item, BadLine):
            flush_batch()
            batch_line = number + 1
            if isinstance(item, BadLine):
                if not skip_bad_lines:
                    raise item
                if on_bad_line is not None:
                    on_bad_line(item)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush_batch()
            batch_line = number + 1
    flush_batch()
    if guard is not None and not guard.started and inner.engine.state.started \
            and guard.close_to_resume():
        started = guard.start(inner.engine.state.now)
        if on_report is not None and (started.emitted or started.inputs):
            on_report(started)
    return last_line


def _start_time(runtime: Runtime, batch: list[InputEvent]) -> datetime:
    """Event time for the start-up checks: the first event's, never before the engine's."""
    first = batch[0].ts
    state = runtime.engine.state
    return max(first, state.now) if state.started else first
