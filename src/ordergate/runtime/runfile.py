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

from ordergate.journal import Journal, RecordKind
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Dispatch, Fill, InputEvent, ModeChanged
from ordergate.runtime.health import GuardedRuntime
from ordergate.runtime.loop import BatchReport, ResumeMismatch, Runtime, encode
from ordergate.runtime.sources import (
    BadLine,
    FeedbackMark,
    SourceMark,
    decode_note,
    read_lines,
)

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
    """Where this file continues in this journal: after the newest line journaled from a file
    of its name (checked byte for byte), past its end when it was read to the end, or line 1
    for a file the journal has not read.

    The journal's last source is known from the recovery; any other name is looked for
    among the journal's source marks, newest first (a whole read of a journal that never had
    it), unless the file's first event is newer than every event journaled: a new day's file,
    whose first line cannot have been applied, starts at line 1 without a lookup.
    A file of a new name whose first events the journal already holds under another name (a
    renamed or copied file) is refused (ResumeMismatch): applied again it would fund the
    accounts and book the fills anew."""
    resume = runtime.resume
    if resume is not None and resume.source == path.name:
        runtime.check_source(path)
        return resume.next_line
    state = runtime.engine.state
    if not state.started:
        return 1  # no event journaled yet
    opening, first_ts = _opening_events(path)
    if first_ts is None or first_ts > state.now:
        return 1
    journal = runtime.journal
    found, copied = _scan_source_marks(journal, path.name, opening[0])
    if found is not None:
        seq, mark = found
        inputs, last_input = batch_inputs(journal, seq)
        if inputs:
            _check_line(path, mark.line + inputs - 1, last_input)
        return mark.line + inputs
    for seq, mark in copied:
        same = _journaled_events(journal, seq, mark.source, len(opening))
        if same and same == opening[:len(same)]:
            events = f"{len(same)} events" if len(same) > 1 else "event"
            if len(same) == len(opening):  # as far as compared, the same file
                raise ResumeMismatch(
                    f"{path}: its first {events} are already in this journal, read from "
                    f"'{mark.source}'; applied again they would count twice (accounts funded "
                    "anew, fills booked again). To go on with that file, run it under its "
                    f"journaled name '{mark.source}': the run resumes after its last "
                    "journaled line. For other events, use a new journal")
            # a shorter file the journal read whole: this one starts with all it held
            raise ResumeMismatch(
                f"{path}: its first {events} are the {events} this journal read from "
                f"'{mark.source}'; applied again they would count twice (accounts funded "
                f"anew, fills booked again). If this file goes on from '{mark.source}', "
                f"run it under that name (the run resumes after its last journaled line); "
                "otherwise take those lines out of it, or use a new journal")
    return 1


_SOURCE_MARK = b'{"type":"og.source",'
_SCAN_WINDOW = 4096  # records read at a time, newest first, looking for a file's marks
_OPENING = 16  # first events of a file compared with another file's to tell a copy


def _opening_events(path: Path) -> tuple[list[bytes], datetime | None]:
    """The journal payloads of the file's first `_OPENING` events (blank and bad lines left
    out, as the run leaves them out), and the first one's time (None: no event)."""
    opening: list[bytes] = []
    first_ts: datetime | None = None
    for _, item in read_lines(path):
        if item is None or isinstance(item, BadLine):
            continue
        if first_ts is None:
            first_ts = item.ts
        opening.append(encode(item))
        if len(opening) == _OPENING:
            break
    return opening, first_ts


def _scan_source_marks(journal: Journal, name: str, first: bytes
                       ) -> tuple[tuple[int, SourceMark] | None, list[tuple[int, SourceMark]]]:
    """The newest source mark of `name` (and its seq), read back from the journal's end; when
    there is none, the marks of other files whose first event is `first`, newest first."""
    copied: list[tuple[int, SourceMark]] = []
    after_window: bytes | None = None  # the INPUT right after the window just read, if one
    high = journal.last_seq()
    while high >= 1:
        low = max(1, high - _SCAN_WINDOW + 1)
        found: tuple[int, SourceMark] | None = None
        pending: tuple[int, SourceMark] | None = None  # its next record is still to be read
        in_window: list[tuple[int, SourceMark]] = []
        window_first: bytes | None = None
        for record in journal.read(low, high):
            is_input = record.kind is RecordKind.INPUT
            if record.seq == low:
                window_first = record.payload if is_input else None
            if pending is not None:
                if is_input and record.payload == first:
                    in_window.append(pending)
                pending = None
            if record.kind is RecordKind.META and record.payload.startswith(_SOURCE_MARK):
                note = decode_note(record.payload)
                if isinstance(note, SourceMark):
                    if note.source == name:
                        found = (record.seq, note)
                    else:
                        pending = (record.seq, note)
        if found is not None:
            return found, []
        if pending is not None and after_window == first:
            in_window.append(pending)
        copied.extend(reversed(in_window))
        after_window = window_first
        high = low - 1
    return None, copied


def batch_inputs(journal: Journal, seq: int) -> tuple[int, bytes]:
    """How many INPUT records follow the source mark at `seq` before the next batch's mark,
    and the last one's payload (`gateway` resumes its file by the same count)."""
    inputs = 0
    last = b""
    for record in journal.read(seq + 1):
        if record.kind is RecordKind.META and isinstance(
                decode_note(record.payload), SourceMark | FeedbackMark):
            break
        if record.kind is RecordKind.INPUT:
            inputs += 1
            last = record.payload
    return inputs, last


def _journaled_events(journal: Journal, seq: int, source: str, limit: int) -> list[bytes]:
    """Up to `limit` INPUT payloads journaled from `source` from its mark at `seq` on, until
    another file's batch begins."""
    taken: list[bytes] = []
    in_source = True
    for record in journal.read(seq + 1):
        if record.kind is RecordKind.META:
            note = decode_note(record.payload)
            if isinstance(note, SourceMark):
                if note.source != source:
                    break
                in_source = True
            elif isinstance(note, FeedbackMark):
                in_source = False
        elif record.kind is RecordKind.INPUT and in_source:
            taken.append(record.payload)
            if len(taken) == limit:
                break
    return taken


def _check_line(path: Path, line: int, journaled: bytes) -> None:
    """Refuse to go on from a file whose line `line` is not the event the journal recorded
    there from a file of the same name."""
    for _, item in read_lines(path, line):
        if item is None or isinstance(item, BadLine) or encode(item) != journaled:
            raise ResumeMismatch(
                f"{path}: line {line} differs from what this journal recorded from a file of "
                "this name; give a file of other events a name of its own, or use a new "
                "journal")
        return
    raise ResumeMismatch(f"{path}: has fewer than {line} lines, but this journal recorded "
                         f"line {line} of a file of this name")


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
