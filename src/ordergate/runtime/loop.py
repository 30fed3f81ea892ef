"""The Runtime: the imperative shell around the deterministic engine.

It owns the journal, the engine, the broker and the one Dispatcher, and runs every event
through the same path:

1. a batch of input events is appended to the journal (INPUT records, canonical msgspec
   JSON), each one *before* the engine handles it; the engine's outputs are appended right
   after it (OUTPUT records);
2. ONE flush per batch makes all of it durable (invariant 2);
3. only then are the batch's actions performed, in event order: market snapshots shown to a
   simulated broker, dispatches submitted, cancels sent, all through the Dispatcher;
4. what the broker answers (acks, rejects, fills, cancels, health changes) comes back as
   input events and goes through steps 1-3 again as a feedback batch.

Batches are framed by META records (`runtime.sources`): a `SourceMark` before the events
of a source batch and a `FeedbackMark` before broker answers. A new batch starts only after
the previous batch's actions were performed, so after a crash only the last batch's actions
are in doubt, and the recovery re-performs exactly those, idempotently: a dispatch is sent
only if the broker, asked by its deterministic client order id, has never seen it.

Recovery (`Runtime.open`): the newest snapshot (snapshots are only taken when no order is
awaiting a broker answer), then the journal tail replayed into the engine (outputs of the
replay are not re-performed); an interrupted source batch is completed first from the same
file; then the last batch's actions are re-performed, the broker's pending events drained,
and whatever the broker knows that the journal lost (an answer polled but not yet durable at
the crash) is fed back as events; only then may new events come in.

Determinism: the same events file run twice, in separate processes, gives byte-identical
stdout and journal payloads. `run_id` and `recorded_at_ns` of journal records say which
process wrote a record and when, so they are excluded from that comparison by design.

Arithmetic: the entry points (`open_on` with its recovery, `process`, `inject`, `snapshot`,
`rebuild`) compute in `model.values.STANDARD`, set once per call whatever the caller's decimal
context is, and so does everything they call: the engine (which sets its exact context inside
from behaviour 5 on), the dispatcher and the broker adapters (the simulator's fill prices and
fees, fill ids).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import msgspec
import structlog

from ordergate.brokers.base import BrokerAdapter, BrokerOrder, OrderStatus
from ordergate.brokers.labels import (
    PRICE_STEP,
    PriceLimit,
    decimal_places,
    derived_price,
    half_unit,
    order_limit,
)
from ordergate.brokers.sim import SimBroker
from ordergate.engine.core import (
    POLICY_NOT_EFFECTIVE,
    POLICY_REJECTED,
    POLICY_UNKNOWN,
    Engine,
)
from ordergate.engine.image import SnapshotError
from ordergate.engine.state import ENGINE_BEHAVIOUR, EngineTooNew
from ordergate.engine.status import OrderStatusView
from ordergate.evidence.latency import encode_latencies
from ordergate.evidence.manifest import build_manifest, record_manifest
from ordergate.evidence.replay import journaled_input
from ordergate.journal import (
    DIGEST_PREFIX,
    DetachedSnapshots,
    Durability,
    Journal,
    JournalError,
    RecordKind,
    open_journal,
    redact_url,
)
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    CancelOrder,
    Command,
    CommandAction,
    DependencyStatus,
    Dispatch,
    EngineUpgrade,
    Fill,
    InputEvent,
    ModeChanged,
    OrderAck,
    OrderCanceled,
    OrderReject,
    OutputEvent,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import in_standard_arithmetic
from ordergate.policy.loader import Policy
from ordergate.resilience.errors import DEPENDENCY_ERRORS
from ordergate.runtime import faults
from ordergate.runtime.dispatch import CIRCUIT_PREFIX, SUBMIT_DEPENDENCY, Dispatcher, Outcome
from ordergate.runtime.policy_choice import (
    PolicyChoice,
    PolicyReplacement,
    choose_policy,
    not_in_effect,
)
from ordergate.runtime.sources import (
    BadLine,
    FeedbackMark,
    ResolvedDispatch,
    SourceMark,
    UnresolvedDispatch,
    decode_note,
    read_lines,
)

log = structlog.get_logger("ordergate.runtime")

# The engine's alerts for a policy activation it refused.
POLICY_REFUSALS = (POLICY_NOT_EFFECTIVE, POLICY_REJECTED, POLICY_UNKNOWN)

JOURNAL_DEPENDENCY = "journal"
JOURNAL_UNAVAILABLE = "SYS-006"
DEFAULT_SNAPSHOT_EVERY = 20_000
# Once the state is large, one snapshot per this many bytes of the last snapshot in events.
SNAPSHOT_BYTES_PER_EVENT = 1024
MAX_FEEDBACK_ROUNDS = 16
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096
_MAX_FAILURE_REASON = 4096  # below PIPE_BUF: a snapshot child's one write never blocks
SNAPSHOT_DEADLINE_S = 300.0
"""A snapshot child still running this long after its fork is killed. Storing even a day's
largest state takes seconds; one that hangs (a lock held on the snapshots table, a network that
drops packets without a reset, a stuck disk) would otherwise block every later snapshot and
the runtime's close. A killed child stores nothing: a missed snapshot, as any failure."""
_KILL_GRACE_S = 5.0  # how long a close waits for a killed child to exit before leaving it
_POLL_S = 0.01
_SCAN_WINDOW = 1024

Action = MarketSnapshot | Dispatch | CancelOrder
Emitted = InputEvent | OutputEvent

_encoder = msgspec.json.Encoder(order="deterministic")
_input_decoder = msgspec.json.Decoder(InputEvent)
_output_decoder = msgspec.json.Decoder(OutputEvent)
_BROKER_ANSWERS = (OrderAck, OrderReject, OrderCanceled, Fill)
# How the canonical encoding of a Dispatch and of a CancelOrder begins (the tag comes first).
ACTION_PREFIXES = (b'{"type":"dispatch",', b'{"type":"cancel",')
_DISPATCH_PREFIX = ACTION_PREFIXES[0]
_FILL_PREFIX = b'{"type":"fill",'  # ...and of a Fill
_POLICY_PREFIX = b'{"type":"policy",'  # ...and of a PolicyDocument
# The origin of the feedback batch journaling the policy start-up activates.
_POLICY_ORIGIN = "policy"
# The engine's condition for an open broker_submit circuit (SYS-007 circuit:broker_submit).
_SUBMIT_CIRCUIT_KEY = f"dependency:{CIRCUIT_PREFIX}{SUBMIT_DEPENDENCY}"


SIM_RESTARTED_REASON = ("the paper simulator was restarted without its state (no broker "
                        "state file): it no longer holds this order")


def _forgets_orders_on_restart(broker: BrokerAdapter) -> bool:
    """A simulator without a state file: it knows only what this process sent it."""
    return isinstance(broker, SimBroker) and not broker.keeps_orders_across_restarts


class RuntimeStopped(Exception):
    """The runtime refuses further events (the journal failed: no new risk).

    `journaled` is what the call that stopped had made durable before the failure, in journal
    order (decisions, orders it then sent, broker answers), which the report that call would
    have returned carries: a caller that shows reports shows it, or the orders sent just
    before the failure would go unseen. The rest of that call was never journaled."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.journaled: list[Emitted] = []


@contextlib.contextmanager
def kept_on_stop(report: BatchReport) -> Iterator[None]:
    """Should the runtime stop inside, the RuntimeStopped carries the durable part of `report`
    (what the calls gathered in it made durable, and sent, before a later write failed),
    before whatever a call nested inside, with a report of its own, put there: that came
    after in the journal. Without it a journal failure in a later step (the session close, a
    feed or clock event, reconciliation) would drop what the journal and the broker hold from
    what the caller shows, and the restart, which continues from the journal, would not show
    it either."""
    try:
        yield
    except RuntimeStopped as stop:
        stop.journaled[:0] = report.emitted[:report.durable]
        raise


def merge_report(into: BatchReport, more: BatchReport) -> None:
    """Add to `into` the report of a runtime call that returned: all of it is durable, as is
    `into`."""
    into.emitted.extend(more.emitted)
    into.inputs += more.inputs
    into.durable = len(into.emitted)


class ResumeMismatch(Exception):
    """The events file is not the one this journal was written from."""


@dataclass(slots=True)
class _Block:
    """The batch being journaled or replayed, with its actions in event order."""

    mark: SourceMark | FeedbackMark | None
    inputs: int = 0
    last_input: bytes = b""
    actions: list[tuple[int, Action]] = field(default_factory=list)
    acted: bool = False
    # intent_id -> engine.handle wall time (ns), journaled as a META note before the flush
    latencies: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class _SnapshotChild:
    """A forked process storing the snapshot at record `seq`; if it fails, it writes why to
    the pipe `reason_fd` reads. Past `deadline` (`time.monotonic()`) it is killed."""

    pid: int
    seq: int
    reason_fd: int
    deadline: float
    killed: bool = False


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a source continues: the first line not yet journaled."""

    source: str
    next_line: int


@dataclass(slots=True)
class BatchReport:
    """Everything a batch journaled that a user may want to see, in journal order:
    engine outputs (decisions, dispatches, mode changes, alerts) and broker events."""

    emitted: list[Emitted] = field(default_factory=list)
    inputs: int = 0
    durable: int = 0
    """How many of `emitted`, from the first, the runtime has made durable (set at each flush
    of the batch that builds the report): a journal failure leaves the rest unjournaled."""


def encode(event: InputEvent | OutputEvent) -> bytes:
    return _encoder.encode(event)


def decode_input(payload: bytes) -> InputEvent:
    event: InputEvent = _input_decoder.decode(payload)
    return event


def decode_output(payload: bytes) -> OutputEvent:
    output: OutputEvent = _output_decoder.decode(payload)
    return output


class Runtime:
    """One journal, one engine, one broker, one dispatcher. Single-threaded."""

    def __init__(self, journal: Journal, engine: Engine, broker: BrokerAdapter, policy: Policy,
                 *, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
                 market_to_broker: bool = True) -> None:
        self.journal = journal
        self.engine = engine
        self.broker = broker
        self.policy = policy
        self.snapshot_every = snapshot_every
        self.dispatcher = Dispatcher(broker, self._durable_through,
                                     show_market=market_to_broker, run_id=journal.run_id)
        self._durable_seq = journal.last_seq()
        self._awaiting: dict[str, tuple[int, Dispatch]] = {}
        self._unresolved: dict[str, tuple[int, Dispatch]] = {}
        # unresolved orders whose journaled note says their resend was held
        self._held_noted: set[str] = set()
        self._block = _Block(mark=None, acted=True)
        self._source_block: _Block | None = None  # the newest source batch
        self._since_snapshot = 0
        self._last_snapshot_bytes = 0
        self.snapshot_seq = 0
        """The record of the newest snapshot this runtime loaded or stored (0: none): read
        by the status view, which must not scan and hash the snapshots to learn it."""
        self._stopped = ""
        self.on_stopped: Callable[[str, list[OutputEvent]], None] | None = None
        """Called once, when the journal fails (`_fail_closed`), with why the runtime stopped
        and the engine's outputs for the failure (its SYS-006 alert and mode change), which
        are not journaled: the journal is what failed. The service alerts with them. It must
        not raise."""
        self._now: datetime | None = None
        self._policy_pending = True
        # The hash of the policy document the journal's last batch, a start-up's activation,
        # journaled without its activation: the process stopped between the two.
        self._document_unactivated = ""
        self._upgrade_pending = False
        # orders journaled by the recovery itself (`_recover`), which no process has sent
        self._never_sent: set[str] = set()
        self.start_time: datetime | None = None
        """The start-up time the pending activation is judged at (see `open_on`)."""
        self.policy_choice: PolicyChoice | None = None
        """What start-up decided about the `--policy` file (`policy_choice.choose_policy`)."""
        self.resume: Resume | None = None
        self.newest_feedback: dict[str, int] = {}
        """origin -> seq of the newest feedback mark of that origin, from the recovery scan
        on: the shell finds its own interrupted work there (`reconcile.interrupted_close`)."""
        self.background_snapshots = True
        """Periodic snapshots are stored by a forked child (`DetachedSnapshots`: SQLite and
        PostgreSQL, where the platform can fork); off, they are taken in line."""
        self.snapshot_deadline_s = SNAPSHOT_DEADLINE_S
        """Seconds a snapshot child may take before it is killed (`SNAPSHOT_DEADLINE_S`)."""
        self._snapshot_child: _SnapshotChild | None = None
        self._froze = False
        self._on_flush: Callable[[float], None] | None = None
        # the per-intent engine nanoseconds of the newest source batch, until taken
        self._engine_ns: list[int] = []
        self._log = log.bind(run_id=journal.run_id)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, journal_url: str, policy: Policy, broker: BrokerAdapter,
             durability: Durability | str = Durability.BATCH, *,
             snapshot_every: int = DEFAULT_SNAPSHOT_EVERY, run_id: str | None = None,
             source: Path | None = None,
             on_batch: Callable[[BatchReport], None] | None = None,
             market_to_broker: bool = True,
             replace_policy: PolicyReplacement | None = None,
             start_time: datetime | None = None, upgrade_engine: bool = True) -> Runtime:
        """Open the journal at `journal_url` and recover (see `open_on`)."""
        journal = open_journal(journal_url, durability=Durability(durability), run_id=run_id)
        return cls.open_on(journal, policy, broker, snapshot_every=snapshot_every,
                           source=source, on_batch=on_batch, market_to_broker=market_to_broker,
                           replace_policy=replace_policy, start_time=start_time,
                           upgrade_engine=upgrade_engine)

    @classmethod
    @in_standard_arithmetic
    def open_on(cls, journal: Journal, policy: Policy, broker: BrokerAdapter, *,
                snapshot_every: int = DEFAULT_SNAPSHOT_EVERY, source: Path | None = None,
                on_batch: Callable[[BatchReport], None] | None = None,
                market_to_broker: bool = True,
                replace_policy: PolicyReplacement | None = None,
                on_replayed: Callable[[], None] | None = None,
                start_time: datetime | None = None,
                upgrade_engine: bool = True) -> Runtime:
        """Recover on an open journal: snapshot + tail replay, finish an interrupted batch of
        `source`, resolve unanswered dispatches with the broker. The policy the journal
        enforces stays enforced; `policy` (the `--policy` file) is activated (lazily, at the
        first event) only on a journal that enforces none yet, or when `replace_policy` says
        which operator replaces it and why (`policy_choice`). The runtime owns the journal from
        here on (closing the runtime closes it).

        `start_time`, when the events to come are stamped near it (a service on the wall
        clock), is the time the pending activation is judged at before the first event: a
        replacement not in effect then is refused (`PolicyNotInEffect`, before anything is
        journaled), and a new journal's policy not in effect then is reported as enforcing
        nothing (`deciding_policy`, `policy_not_in_effect`).

        `on_replayed` is called once the replay has rebuilt the state and before anything is
        appended to the journal or sent to a broker; what it raises stops the start-up there
        (the start-up's chain check waits for its verdict in it: `health.StartupCheck`)."""
        try:
            snapshot = journal.latest_snapshot()
            engine = Engine.restore(snapshot.state) if snapshot is not None else Engine()
            runtime = cls(journal, engine, broker, policy, snapshot_every=snapshot_every,
                          market_to_broker=market_to_broker)
            runtime.start_time = start_time
            runtime.snapshot_seq = snapshot.seq if snapshot is not None else 0

            def replayed() -> None:
                # Chosen once the state is rebuilt and before anything is appended or sent,
                # so that a refused replacement leaves no trace and an interrupted batch
                # finished by the recovery is judged under the chosen policy.
                if on_replayed is not None:
                    on_replayed()
                runtime._choose_policy(policy, replace_policy)

            runtime._recover(snapshot.seq if snapshot is not None else 0, source, on_batch,
                             replayed)
            if upgrade_engine:  # else only a journaled upgrade fed to it raises it (what-if)
                runtime._upgrade_engine(None)
            assert runtime.policy_choice is not None  # chosen in `replayed`
            record_manifest(journal, build_manifest(
                journal, runtime.deciding_policy or runtime.policy, broker))
        except (EngineTooNew, SnapshotError) as exc:
            # a newer version's journal, or a snapshot this one cannot restore: nothing is
            # appended to it
            journal.close()
            raise JournalError(f"{redact_url(journal.url)}: {exc}") from exc
        except BaseException:
            journal.close()
            raise
        return runtime

    def _upgrade_engine(self, ts: datetime | None) -> None:
        """Journal an `EngineUpgrade` to this code's behaviour (`ENGINE_BEHAVIOUR`) when the
        engine runs an older one: at start-up, once the recovery has replayed the journal
        under the behaviour it was written with and finished the batch it left, before
        anything else is appended. It is an input like any other, so every replay switches
        behaviour at the same record. Stamped with the newest event time (the engine's clock
        does not move); a journal that has none yet (a new one) gets it as the first input
        of its first batch, at that batch's time (`ts`)."""
        if self.engine.state.behaviour >= ENGINE_BEHAVIOUR:
            self._upgrade_pending = False
            return
        at = self._now if self._now is not None else ts
        if at is None:
            self._upgrade_pending = True
            return
        self._upgrade_pending = False
        previous = self.engine.state.behaviour
        self._feedback([EngineUpgrade(ts=at, behaviour=ENGINE_BEHAVIOUR)], BatchReport(),
                       origin="engine")
        self._log.info("engine_upgraded", behaviour=self.engine.state.behaviour,
                       previous=previous)

    def _choose_policy(self, policy: Policy, replacement: PolicyReplacement | None) -> None:
        choice = choose_policy(self.engine.active, policy, replacement,
                               run_id=self.journal.run_id, now=self.start_time)
        assert choice.enforced is not None  # start-up always enforces the file's or the journal's
        self.policy_choice, self.policy = choice, choice.enforced
        self._policy_pending = self._policy_needs_activation()

    def _durable_through(self) -> int:
        return self._durable_seq

    # ------------------------------------------------------------------ recovery

    def _recover(self, snapshot_seq: int, source: Path | None,
                 on_batch: Callable[[BatchReport], None] | None,
                 on_replayed: Callable[[], None] | None = None) -> None:
        journal = self.journal
        # Start at the newest source mark at or before the snapshot: what follows it says
        # which lines were journaled, even when the snapshot sits after its feedback batches.
        scan_from = self._last_source_mark_at_or_before(snapshot_seq) if snapshot_seq else 1
        replayed = 0
        held: set[str] = set()
        # The engine's outputs for the newest live input, and how many OUTPUT records follow
        # it: fewer at the journal's end means the process died between journaling an input
        # and journaling what the engine made of it (an input commits alone under ALWAYS, or
        # when a large batch fills the write buffer).
        newest_outputs: list[OutputEvent] = []
        outputs_seen = 0
        for record in journal.read(scan_from):
            live = record.seq > snapshot_seq
            if record.kind is RecordKind.META:
                note = decode_note(record.payload)
                if isinstance(note, SourceMark | FeedbackMark):
                    self._block = _Block(mark=note, acted=not live)
                    if isinstance(note, SourceMark):
                        self._source_block = self._block
                    else:
                        self.newest_feedback[note.origin] = record.seq
                elif isinstance(note, UnresolvedDispatch) and live:
                    pair = self._awaiting.get(note.client_order_id)
                    if pair is not None:
                        self._unresolved[note.client_order_id] = pair
                        if note.resend_held:
                            held.add(note.client_order_id)
                elif isinstance(note, ResolvedDispatch) and live:
                    self._unresolved.pop(note.client_order_id, None)
                    held.discard(note.client_order_id)
            elif record.kind is RecordKind.INPUT:
                self._block.inputs += 1
                self._block.last_input = record.payload
                if not live:
                    continue
                event = journaled_input(record.seq, record.payload)
                newest_outputs, outputs_seen = self.engine.handle(event), 0
                if self._now is None or event.ts > self._now:  # never back (see _journal_input)
                    self._now = event.ts
                replayed += 1
                self._note_answer(event)
                if isinstance(event, MarketSnapshot):
                    self._block.actions.append((record.seq, event))
            elif live and record.kind is RecordKind.OUTPUT:
                outputs_seen += 1
                if not record.payload.startswith(ACTION_PREFIXES):
                    # Only dispatches and cancels matter here; the other outputs (decision
                    # records above all) are large and would be decoded for nothing.
                    continue
                output = decode_output(record.payload)
                if isinstance(output, Dispatch):
                    self._awaiting[output.client_order_id] = (record.seq, output)
                    self._block.actions.append((record.seq, output))
                elif isinstance(output, CancelOrder):
                    self._block.actions.append((record.seq, output))
        if self._now is None and self.engine.state.started:
            # No input after the snapshot (a process that stopped right after one): the
            # newest event time is the one the snapshot kept. Without it the broker would not
            # be asked about the working orders, nor would the adapter follow them.
            self._now = self.engine.state.now
        self._durable_seq = journal.last_seq()
        self._policy_pending = self._policy_needs_activation()
        self._document_unactivated = self._interrupted_activation()
        self._recover_held_resends(held)
        self._log.info("recovery_replayed", snapshot_seq=snapshot_seq, replayed=replayed,
                       last_seq=self._durable_seq)
        faults.crossing("after_recovery_replay")
        if on_replayed is not None:
            on_replayed()
        cut_short = BatchReport()
        with kept_on_stop(cut_short):
            if newest_outputs[outputs_seen:]:
                # What the engine decided for that input (its decision, the order it allowed) is
                # journaled now, where it belongs, and acted on with its batch below: else the
                # intent would have no decision, and the engine would hold a working order the
                # broker never got.
                self._log.warning("recovery_outputs_journaled", missing=len(newest_outputs)
                                  - outputs_seen, seq=journal.last_seq())
                missing = newest_outputs[outputs_seen:]
                try:
                    self._journal_outputs(missing, cut_short)
                    self._flush(cut_short)
                except JournalError as exc:
                    self._fail_closed(exc)
                # Never sent for certain: an order goes out only once its record is durable.
                self._never_sent.update(output.client_order_id for output in missing
                                        if isinstance(output, Dispatch))

            source_block = self._source_block
            if source_block is not None and isinstance(source_block.mark, SourceMark):
                mark = source_block.mark
                self.resume = Resume(source=mark.source, next_line=mark.line + source_block.inputs)
                if (source_block is self._block and source_block.inputs < mark.count
                        and source is not None and not source_block.acted):
                    self._finish_interrupted_batch(mark, source, on_batch)
            if not self._block.acted:
                self._act(self._block, cut_short, recovering=True)
                if on_batch is not None:
                    on_batch(cut_short)
            elif cut_short.emitted and on_batch is not None:
                on_batch(cut_short)
        self._reconcile_lost_answers(on_batch)
        faults.crossing("after_recovery_resolve")

    def _interrupted_activation(self) -> str:
        """The policy hash of the document a start-up's activation journaled last, when the
        journal ends there ('' otherwise): its activation was never journaled."""
        block = self._block
        if not (isinstance(block.mark, FeedbackMark) and block.mark.origin == _POLICY_ORIGIN
                and block.last_input.startswith(_POLICY_PREFIX)):
            return ""
        document = decode_input(block.last_input)
        return document.policy_hash if isinstance(document, PolicyDocument) else ""

    def _recover_held_resends(self, held: set[str]) -> None:
        """An order whose resend was held before the restart stays held (it may be live at
        the venue: sent late it would be stale). And while the replayed engine holds the
        broker_submit circuit open (the process stopped inside its open period), start-up,
        which no breaker watches yet, sends nothing again: it only asks."""
        for cid in held:
            if cid in self._unresolved:
                self.dispatcher.recover_held(cid)
                self._held_noted.add(cid)
        if self.engine.state.guard.has(_SUBMIT_CIRCUIT_KEY):
            self.dispatcher.hold_resends()
            self._log.warning("resends_held_circuit_open_at_start",
                              unresolved=len(self._unresolved), held=len(self._held_noted))

    def _last_source_mark_at_or_before(self, seq: int) -> int:
        """The seq of the newest source mark at or before `seq` (1 when there is none)."""
        high = seq
        while high >= 1:
            low = max(1, high - _SCAN_WINDOW + 1)
            found = 0
            for record in self.journal.read(low, high):
                if record.kind is RecordKind.META and isinstance(
                        decode_note(record.payload), SourceMark):
                    found = record.seq
            if found:
                return found
            high = low - 1
        return 1

    def _finish_interrupted_batch(self, mark: SourceMark, source: Path,
                                  on_batch: Callable[[BatchReport], None] | None) -> None:
        """A crash left a source batch half journaled (a large batch spilled, or ALWAYS
        durability): journal the rest of it from the same file, unchanged, as one batch."""
        self.check_source(source)
        remaining = mark.count - self._block.inputs
        events: list[InputEvent] = []
        for _, item in read_lines(source, mark.line + self._block.inputs):
            if item is None or isinstance(item, BadLine):
                break
            events.append(item)
            if len(events) == remaining:
                break
        if len(events) != remaining:
            raise ResumeMismatch(f"{source}: the interrupted batch at line {mark.line} needs "
                                 f"{remaining} more events but the file has changed")
        report = BatchReport()
        with kept_on_stop(report):
            try:
                for event in events:
                    self._journal_input(event, report)
                self._flush(report)
            except JournalError as exc:
                self._fail_closed(exc)
            assert self.resume is not None
            self.resume = Resume(source=mark.source, next_line=mark.line + mark.count)
            self._act(self._block, report)
        if on_batch is not None:
            on_batch(report)

    def check_source(self, source: Path) -> None:
        """Refuse to resume from a file other than the one the journal was written from:
        the last journaled line must read back byte for byte."""
        block = self._source_block
        if block is None or not isinstance(block.mark, SourceMark) or not block.inputs:
            return
        mark = block.mark
        if mark.source != source.name:
            raise ResumeMismatch(f"{source}: this journal was written from '{mark.source}'; "
                                 "use a new journal for a different events file")
        line = mark.line + block.inputs - 1
        for _, item in read_lines(source, line):
            if item is None or isinstance(item, Exception) or \
                    encode(item) != block.last_input:
                raise ResumeMismatch(
                    f"{source}: line {line} differs from what the journal recorded; "
                    "use a new journal for a different events file")
            return
        raise ResumeMismatch(f"{source}: has fewer than {line} lines, but the journal "
                             f"recorded line {line}")

    def _reconcile_lost_answers(self, on_batch: Callable[[BatchReport], None] | None) -> None:
        """After a crash between polling the broker and journaling what it said, the broker
        has moved on and will not repeat itself. Drain what it still holds, then feed what
        it knows that the journal lost, for every order still awaiting an answer or working.
        A simulator that keeps no state between processes has never heard of the working
        orders an earlier process sent it and never will: those are ended here, journaled as
        canceled (`SIM_RESTARTED_REASON`), so their reservations are freed. Orders journaled
        but never sent were sent by now (`_act` while recovering) and are found; any other
        broker's unknown order stays open for reconciliation to report. Last, the adapter
        (which follows no order after a restart) is handed every order the gateway still
        holds open, so their later acks and fills come back by `poll_events`.

        What the broker knew is booked order by order, at the recovery time (event time never
        goes back), in the order the venue filled them as closely as it says: the sequence of
        fills in one instrument sets its average price and realized PnL. The orders whose
        missing fills are booked in one instrument follow the venue's time of each one's latest
        fill (`BrokerOrder.filled_at`; equal times in the order they were dispatched) when the
        venue gave one for every one of them; otherwise, and across instruments, they follow
        the order they were dispatched in (a resting order sent earlier, filled by a later
        quote, comes before the orders the last batch sent)."""
        report = BatchReport()
        with kept_on_stop(report):
            self._feedback(self._poll(), report)
            if self._now is None:
                return
            answers: list[_LostAnswers] = []  # in dispatch order
            found: dict[str, BrokerOrder] = {}
            forgotten: list[str] = []
            forgetful = _forgets_orders_on_restart(self.broker)
            status = self.engine.status()
            working = {order.client_order_id: order for order in status.open_orders}
            candidates = self._in_dispatch_order()
            looked_up: list[tuple[str, BrokerOrder]] = []
            for cid in candidates:
                if cid in self._unresolved:
                    continue
                try:
                    known = self.broker.get_order(cid)
                except DEPENDENCY_ERRORS as exc:  # the order stays for a later attempt
                    self._log.warning("reconcile_lookup_failed", client_order_id=cid,
                                      error=f"{type(exc).__name__}: {exc}")
                    continue
                if known is None:
                    if forgetful and cid in working:
                        forgotten.append(cid)
                    continue
                looked_up.append((cid, known))
            # What the journal booked of each partly journaled order that filled further while
            # no process watched it: the missing part is priced from it, as a live poll would.
            partly = {cid: order.filled for cid, known in looked_up
                      if (order := working.get(cid)) is not None and order.filled > 0
                      and known.filled_qty > order.filled and known.avg_fill_price is not None}
            booked = self._journaled_notionals(partly) if partly else {}
            for cid, known in looked_up:
                order = working.get(cid)
                journal_filled = order.filled if order is not None else Decimal(0)
                acked = order.acked if order is not None else False
                events: list[InputEvent] = []
                filled = False
                if not acked:
                    events.append(OrderAck(ts=self._now, client_order_id=cid,
                                           broker_order_id=known.broker_order_id))
                missing = known.filled_qty - journal_filled
                found[cid] = known
                if missing > 0 and known.avg_fill_price is not None:
                    limit = None if order is None else order_limit(order.side,
                                                                   order.limit_price)
                    price = increment_price(known.filled_qty, known.avg_fill_price,
                                            journal_filled, booked.get(cid), limit=limit)
                    events.append(Fill(ts=self._now, client_order_id=cid,
                                       fill_id=recovered_fill_id(cid, known.filled_qty),
                                       qty=missing, price=price))
                    filled = True
                elif missing != 0:
                    # Not reported: the adapter is to take the order over from the journal's count.
                    found[cid] = msgspec.structs.replace(known, filled_qty=journal_filled,
                                                         avg_fill_price=None)
                if known.status is OrderStatus.CANCELED:
                    events.append(OrderCanceled(ts=self._now, client_order_id=cid,
                                                reason="canceled at the broker"))
                elif known.status is OrderStatus.REJECTED:
                    events.append(OrderReject(ts=self._now, client_order_id=cid,
                                              reason="rejected by the broker", code="broker"))
                if events:
                    answers.append(_LostAnswers(known=known, events=events, filled=filled))
            lost = [event for answer in _in_venue_fill_order(answers) for event in answer.events]
            if forgotten:
                self._log.warning("sim_orders_forgotten_on_restart", orders=len(forgotten),
                                  broker=self.broker.name)
                why = isinstance(self.broker, SimBroker) and self.broker.forgotten_orders_reason
                lost.extend(OrderCanceled(ts=self._now, client_order_id=cid,
                                          reason=why or SIM_RESTARTED_REASON) for cid in forgotten)
            if lost:
                self._log.warning("recovered_lost_broker_answers", events=len(lost))
                self._feedback(lost, report, origin="recovery")
            if not self._stopped:
                for order in self.engine.status().open_orders:
                    cid = order.client_order_id
                    self.broker.track(cid, _reported_state(order, found.get(cid)),
                                      limit=order_limit(order.side, order.limit_price))
        if on_batch is not None:
            on_batch(report)

    def _in_dispatch_order(self) -> list[str]:
        """The orders awaiting an answer or working, in the order they were dispatched: the
        engine keeps its open orders in that order (a snapshot keeps it too); an order
        awaiting an answer that the engine no longer holds open follows, by its dispatch
        record."""
        open_orders = self.engine.state.open_orders
        rest = sorted((cid for cid in self._awaiting if cid not in open_orders),
                      key=lambda cid: self._awaiting[cid][0])
        return [*open_orders, *rest]

    def _journaled_notionals(self, filled: dict[str, Decimal]) -> dict[str, Decimal]:
        """The notional (sum of quantity x price) of the fills the journal booked for each
        order of `filled` (client order id -> the quantity the engine holds filled), read
        back from the journal's end to each order's dispatch (a fill can lie before the
        snapshot recovery started from). A fill id journaled twice counts once, as the engine
        booked it; an order whose fills read back do not add up to its filled quantity is
        left out (its missing part is priced at the broker's average, the best known)."""
        needles = {b'"client_order_id":' + msgspec.json.encode(cid): cid for cid in filled}
        fills: dict[str, dict[str, tuple[Decimal, Decimal]]] = {cid: {} for cid in filled}
        open_ = set(filled)
        high = self.journal.last_seq()
        while open_ and high >= 1:
            low = max(1, high - _SCAN_WINDOW + 1)
            window = list(self.journal.read(low, high))
            for record in reversed(window):
                payload = record.payload
                fill = record.kind is RecordKind.INPUT and payload.startswith(_FILL_PREFIX)
                if not fill and not (record.kind is RecordKind.OUTPUT
                                     and payload.startswith(_DISPATCH_PREFIX)):
                    continue
                cid = next((cid for needle, cid in needles.items() if needle in payload), None)
                if cid is None or cid not in open_:
                    continue
                if not fill:
                    dispatch = decode_output(payload)
                    if isinstance(dispatch, Dispatch) and dispatch.client_order_id == cid:
                        open_.discard(cid)  # the order's fills all come after its dispatch
                    continue
                event = journaled_input(record.seq, payload)
                if isinstance(event, Fill) and event.client_order_id == cid:
                    fills[cid][event.fill_id] = (event.qty, event.price)
            high = low - 1
        notionals: dict[str, Decimal] = {}
        for cid, booked in fills.items():
            if sum((qty for qty, _ in booked.values()), Decimal(0)) == filled[cid]:
                notionals[cid] = sum((qty * price for qty, price in booked.values()),
                                     Decimal(0))
        return notionals

    @property
    def deciding_policy(self) -> Policy | None:
        """The policy the engine enforces, the one the next batch is judged under: the one
        start-up activates with that batch while its activation is pending (unless it is not
        in effect at the start-up time: the engine will refuse it), else the engine's active
        policy (None: every intent is denied, SYS-005)."""
        if self._policy_pending and not not_in_effect(self.policy, self.start_time):
            return self.policy
        return self.engine.active

    @property
    def policy_not_in_effect(self) -> str:
        """Why no policy is enforced, or '' when one is (or is about to be, with the next
        batch): "no policy in effect: <name> takes effect at <ts>" for a policy not in effect
        yet, or the engine's reason for refusing the one start-up activated."""
        if self.deciding_policy is not None:
            return ""
        choice = self.policy_choice
        later = not_in_effect(self.policy, self.engine.state.now if self.engine.state.started
                              else self.start_time)
        if later:
            return f"no policy in effect: {later}"
        if choice is not None and choice.refusal:
            return f"no policy in effect: {choice.refusal}"
        return "no policy in effect"

    def _policy_needs_activation(self) -> bool:
        active = self.engine.active
        return active is None or active.hash != self.policy.hash

    # ------------------------------------------------------------------ the batch path

    @property
    def stopped(self) -> str:
        """Why the runtime refuses events ('' while it accepts them)."""
        return self._stopped

    @in_standard_arithmetic
    def process(self, events: Sequence[InputEvent], *, source: str = "",
                line: int = 0,
                on_durable: Callable[[BatchReport], None] | None = None) -> BatchReport:
        """Journal, decide and act on one batch of source events (lines `line`, `line + 1`...
        of `source` when they come from a file), then feed the broker's answers back.

        `on_durable`, if given, is called with the report once the batch's decisions are
        durable and before anything is sent to a broker: a caller waiting only for its
        decisions (the HTTP service) can answer then instead of after the broker round trip
        and the second flush for the broker's answers. The report grows afterwards (orders,
        acks, fills); the callback must not keep relying on it being complete."""
        if self._stopped:
            raise RuntimeStopped(self._stopped)
        report = BatchReport()
        if not events:
            return report
        with kept_on_stop(report):
            if self._upgrade_pending:
                self._upgrade_engine(events[0].ts)
            if self._policy_pending:
                self._activate_policy(events[0].ts, report)
            mark = SourceMark(source=source, line=line, count=len(events))
            block = _Block(mark=mark)
            self._block = block
            self._source_block = block
            try:
                self._append(RecordKind.META, _encoder.encode(mark))
                half = len(events) // 2
                for index, event in enumerate(events):
                    if index == half:
                        faults.crossing("mid_batch")
                    self._journal_input(event, report)
                self._note_latencies(block)
                self._flush(report)
            except JournalError as exc:
                self._fail_closed(exc)
            self._engine_ns = [nanoseconds for _, nanoseconds in block.latencies]
            try:
                if on_durable is not None:
                    on_durable(report)
            finally:
                # Whatever the caller's callback does, durable orders go out; its error (if any)
                # reaches the caller after that.
                if source:
                    self.resume = Resume(source=source, next_line=line + len(events))
                self._act(block, report)
                self._since_snapshot += len(events)
                self._maybe_snapshot()
        return report

    @in_standard_arithmetic
    def inject(self, events: Sequence[InputEvent], *, origin: str,
               notes: Sequence[bytes] = ()) -> BatchReport:
        """Journal what the shell itself observed (circuit breakers, clock sync,
        reconciliation) as a feedback batch marked with `origin`, feed it to the engine and
        act on what the engine decides. `notes` are META records journaled with it."""
        if self._stopped:
            raise RuntimeStopped(self._stopped)
        report = BatchReport()
        with kept_on_stop(report):
            if events and self._upgrade_pending:
                self._upgrade_engine(events[0].ts)
            if events and self._policy_pending:
                self._activate_policy(events[0].ts, report)
            self._feedback(list(events), report, notes=notes, origin=origin)
        return report

    def _append(self, kind: RecordKind, payload: bytes) -> int:
        return self.journal.append(kind, payload)

    def _journal_input(self, event: InputEvent, report: BatchReport) -> None:
        block = self._block
        journal = self.journal
        payload = _encoder.encode(event)
        seq = journal.append(RecordKind.INPUT, payload)
        faults.crossing("after_input_append")
        block.inputs += 1
        block.last_input = payload
        report.inputs += 1
        if isinstance(event, OrderIntent):
            started = perf_counter_ns()
            outputs = self.engine.handle(event)
            block.latencies.append((event.intent_id, perf_counter_ns() - started))
        else:
            outputs = self.engine.handle(event)
        faults.crossing("after_engine_handle")
        # Event time never goes back (the engine's does not either): an event stamped before
        # one already seen must not hide the broker's answers to orders sent at the later time.
        if self._now is None or event.ts > self._now:
            self._now = event.ts
        if isinstance(event, _BROKER_ANSWERS):
            self._note_answer(event)
            report.emitted.append(event)
        elif isinstance(event, MarketSnapshot) and self.dispatcher.listens_to_market:
            block.actions.append((seq, event))
        if outputs:
            self._journal_outputs(outputs, report)

    def _journal_outputs(self, outputs: list[OutputEvent], report: BatchReport) -> None:
        """Journal the engine's outputs for the input just journaled, and note the orders
        and cancels among them for the block to act on."""
        block = self._block
        journal = self.journal
        # One call for the event's outputs: they are buffered (and, under ALWAYS, committed)
        # together, and they are all appended before anything is acted on anyway.
        encode_output = _encoder.encode
        out_seqs = journal.append_many([(RecordKind.OUTPUT, encode_output(output))
                                        for output in outputs])
        report.emitted.extend(outputs)
        for out_seq, output in zip(out_seqs, outputs, strict=True):
            if isinstance(output, Dispatch):
                self._awaiting[output.client_order_id] = (out_seq, output)
                block.actions.append((out_seq, output))
            elif isinstance(output, CancelOrder):
                block.actions.append((out_seq, output))
            elif isinstance(output, ModeChanged):  # live only: a replay journals nothing
                self._log.warning("mode_changed", mode=output.mode.value,
                                  previous=output.previous.value, actor=output.actor,
                                  event_ts=output.ts.isoformat(), seq=out_seq)

    def _note_latencies(self, block: _Block) -> None:
        if block.latencies:
            self._append(RecordKind.META, encode_latencies(block.latencies))

    def _note_answer(self, event: InputEvent) -> None:
        if isinstance(event, _BROKER_ANSWERS):
            cid = event.client_order_id
            if self._awaiting.pop(cid, None) is not None and cid in self._unresolved:
                self._unresolved.pop(cid, None)
                self._held_noted.discard(cid)

    @property
    def on_flush(self) -> Callable[[float], None] | None:
        return self._on_flush

    @on_flush.setter
    def on_flush(self, observe: Callable[[float], None] | None) -> None:
        """Called with the seconds each write of journal records to storage took (the commit
        with its fsync), once it succeeded: a batch's flush and, under `always` durability,
        every record's own commit. The service's journal latency metric, kept out of the
        runtime; the journal times its own writes (`ChainJournal.on_write`)."""
        self._on_flush = observe
        if hasattr(self.journal, "on_write"):  # a journal of this package (not a test fake)
            self.journal.on_write = observe

    def take_engine_times(self) -> list[int]:
        """Nanoseconds the engine spent on each intent of the newest source batch, once: a
        second call before another source batch returns []."""
        taken, self._engine_ns = self._engine_ns, []
        return taken

    def _flush(self, report: BatchReport) -> None:
        """Make everything appended durable; so is then all `report` holds."""
        faults.crossing("before_flush")
        self.journal.flush()
        self._durable_seq = self.journal.last_seq()
        report.durable = len(report.emitted)
        faults.crossing("after_flush")

    def _activate_policy(self, ts: datetime, report: BatchReport) -> None:
        """Journal the policy document and its activation, as inputs, at event time `ts`.
        A restart after a process that stopped between the two (it journaled the document
        alone, under ALWAYS durability) journals only the activation of that document, when
        it is the same policy (same hash): the engine stored it as it was journaled."""
        policy = self.policy
        operator, reason = (("ordergate", f"policy {policy.name} loaded at start-up")
                            if self.policy_choice is None else self.policy_choice.activation)
        stored = (policy.hash == self._document_unactivated
                  and policy.hash in self.engine.policies)
        self._document_unactivated = ""
        self._log.info("activating_policy", policy_hash=policy.hash, policy=policy.name,
                       operator=operator, document_journaled=stored)
        events: list[InputEvent] = [] if stored else [
            PolicyDocument(ts=ts, policy_hash=policy.hash, document=policy.document)]
        events.append(Command(ts=ts, action=CommandAction.ACTIVATE_POLICY,
                              policy_hash=policy.hash, operator=operator, reason=reason))
        first = len(report.emitted)
        self._feedback(events, report, origin=_POLICY_ORIGIN)
        self._policy_pending = False
        active = self.engine.active
        if self.policy_choice is not None and (active is None or active.hash != policy.hash):
            # The engine's reason, without the "; keeping <policy>" the choice says anyway.
            refusal = next((output.message.removeprefix("activate_policy: ")
                            .partition("; keeping ")[0]
                            for output in report.emitted[first:]
                            if isinstance(output, Alert) and output.code in POLICY_REFUSALS),
                           f"policy {policy.name} {policy.hash} was not activated")
            self.policy_choice = self.policy_choice.refused(refusal, active)
            self._log.warning("policy_activation_refused", policy=policy.name,
                              policy_hash=policy.hash, detail=self.policy_choice.warning)

    # ------------------------------------------------------------------ acting

    def _act(self, block: _Block, report: BatchReport, *, recovering: bool = False) -> None:
        """Perform a durable batch's actions in event order, then feed back the answers."""
        if self._stopped:
            return
        answers: list[InputEvent] = []
        notes: list[bytes] = []
        dispatcher = self.dispatcher
        for seq, action in block.actions:
            if isinstance(action, MarketSnapshot):
                dispatcher.show_market(action, seq)
                continue
            if isinstance(action, Dispatch):
                cid = action.client_order_id
                if recovering and cid not in self._awaiting:
                    continue
                outcome = (dispatcher.resolve(action, seq, recovering=True)
                           if recovering and cid not in self._never_sent
                           else dispatcher.submit(action, seq))
                self._never_sent.discard(cid)
                self._outcome(seq, action, outcome, answers, notes)
            else:
                outcome = dispatcher.cancel(action, seq)
                answers.extend(outcome.events)
        block.acted = True
        self._retry_unresolved(answers, notes, recovering=recovering)
        answers.extend(self._poll())
        self._feedback(answers, report, notes=notes)

    def _outcome(self, seq: int, order: Dispatch, outcome: Outcome, answers: list[InputEvent],
                 notes: list[bytes]) -> None:
        answers.extend(outcome.events)
        cid = order.client_order_id
        if outcome.unresolved:
            # A note when the order becomes unresolved, and again when its resend is first
            # held, so a restart keeps holding it.
            held = self.dispatcher.resend_is_held(cid)
            if cid not in self._unresolved or (held and cid not in self._held_noted):
                self._unresolved[cid] = (seq, order)
                if held:
                    self._held_noted.add(cid)
                notes.append(_encoder.encode(UnresolvedDispatch(
                    client_order_id=cid, detail=outcome.detail, resend_held=held)))
        elif cid in self._unresolved:
            del self._unresolved[cid]
            self._held_noted.discard(cid)
            notes.append(_encoder.encode(ResolvedDispatch(client_order_id=cid,
                                                          outcome="answered")))

    def _retry_unresolved(self, answers: list[InputEvent], notes: list[bytes], *,
                          recovering: bool = False) -> None:
        if self._unresolved and self._now is not None and not recovering:
            self.dispatcher.advance(self._now)  # the wait of an order not found runs on it
        for cid, (seq, order) in list(self._unresolved.items()):
            if cid not in self._awaiting:
                continue
            self._outcome(seq, order, self.dispatcher.resolve(order, seq, recovering=recovering),
                          answers, notes)

    def _poll(self) -> list[InputEvent]:
        if self._now is None:
            return []
        events, _ = self.dispatcher.poll(self._now)
        return events

    def _feedback(self, events: list[InputEvent], report: BatchReport, *,
                  notes: Iterable[bytes] = (), origin: str = "broker") -> None:
        """Journal broker answers (or recovery/policy events) as a batch, act, repeat."""
        pending_notes = list(notes)
        for _ in range(MAX_FEEDBACK_ROUNDS):
            if not events and not pending_notes:
                return
            if self._stopped:
                return
            block = _Block(mark=FeedbackMark(origin=origin))
            self._block = block
            try:
                self.newest_feedback[origin] = self._append(RecordKind.META,
                                                            _encoder.encode(block.mark))
                for note in pending_notes:
                    self._append(RecordKind.META, note)
                for event in events:
                    self._journal_input(event, report)
                self._note_latencies(block)
                faults.crossing("after_ack_append")
                self._flush(report)
                faults.crossing("after_feedback_flush")
            except JournalError as exc:
                self._fail_closed(exc)
                return
            pending_notes = []
            if not block.actions:
                block.acted = True
                return
            # The answers caused new orders or cancels (a fill tripped a limit...).
            answers: list[InputEvent] = []
            for seq, action in block.actions:
                if isinstance(action, Dispatch):
                    self._outcome(seq, action, self.dispatcher.submit(action, seq), answers,
                                  pending_notes)
                elif isinstance(action, CancelOrder):
                    answers.extend(self.dispatcher.cancel(action, seq).events)
                else:
                    self.dispatcher.show_market(action, seq)
            block.acted = True
            answers.extend(self._poll())
            events = answers
            origin = "broker"
        self._log.error("feedback_rounds_exhausted", rounds=MAX_FEEDBACK_ROUNDS)

    # ------------------------------------------------------------------ failure and snapshots

    def _fail_closed(self, exc: JournalError) -> None:
        """The journal cannot be written: nothing of this batch is acted on, the engine is
        told (SYS-006) so its mode tightens, and every later event is refused, for good: the
        engine's state now holds what the failed batch did (decisions, reservations, orders,
        broker answers) that no journal holds, so nothing may be decided or sent from it again;
        a restart rebuilds the state from what is durable. `on_stopped` hears of it, with what
        the engine made of the failure (no journal holds that either)."""
        self._stopped = (f"the journal could not be written ({exc}); no new orders are sent "
                         "until the gateway restarts on a healthy journal")
        self._log.error("journal_failed_fail_closed", error=str(exc))
        outputs: list[OutputEvent] = []
        if self._now is not None:
            outputs = self.engine.handle(DependencyStatus(
                ts=self._now, dependency=JOURNAL_DEPENDENCY, healthy=False,
                code=JOURNAL_UNAVAILABLE, detail=str(exc)))
        if self.on_stopped is not None:
            self.on_stopped(self._stopped, outputs)
        raise RuntimeStopped(self._stopped) from exc

    def _maybe_snapshot(self) -> None:
        if self._snapshot_child is not None:
            self._reap_snapshot(wait=False)
        if self._since_snapshot < self.snapshot_interval or self._awaiting or self._unresolved:
            return
        journal = self.journal
        if self.background_snapshots and isinstance(journal, DetachedSnapshots) and \
                hasattr(os, "fork"):
            if self._snapshot_child is None:  # else the next due batch tries again
                self._snapshot_in_background(journal)
            return
        self.snapshot()

    def _snapshot_in_background(self, journal: DetachedSnapshots) -> None:
        """Snapshot the engine from a forked child, which stores it through the journal
        (`write_detached`: a file beside SQLite, a row over its own PostgreSQL connection)
        while this process goes on deciding.

        The fork gives the child a copy-on-write image of the state at the current end of
        the journal, so the snapshot costs the order path the fork itself (a few ms for a
        large state) instead of encoding and storing the whole state (seconds, late in a
        busy day). The child runs nothing but the encoding and the store, takes no lock,
        uses nothing inherited but the pipe it reports a failure on, and leaves with
        `os._exit` (no finalizer runs, so no inherited connection is closed on the parent's
        behalf)."""
        faults.crossing("before_snapshot")
        try:
            self.journal.flush()
        except JournalError as exc:
            self._fail_closed(exc)
        seq, chain_hash = self.journal.last_seq(), journal.last_hash()
        # What is alive now is mostly the day's state, which lives on: collect what is not,
        # and move the rest out of the collector's way (the pattern `gc.freeze` documents for
        # forking). Full collections then scan only what came after, instead of the whole
        # state: a pause that no longer grows with the day (250 ms at 145k intents before).
        gc.collect()
        gc.freeze()
        self._froze = True
        reason_read, reason_write = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:  # no memory or process slot: a missed snapshot, tried again
            os.close(reason_read)  # one interval later rather than at every batch
            os.close(reason_write)
            self._log.warning("snapshot_fork_failed", seq=seq, error=str(exc))
            self._since_snapshot = 0
            return
        if pid == 0:  # the child
            code = 1
            try:
                gc.disable()  # no finalizer of a shared object may run here
                # Drop every other inherited descriptor (journal, sockets: a listening socket
                # kept open here would stop a restarted server from binding its port).
                os.closerange(3, reason_write)
                os.closerange(reason_write + 1, _MAX_FD)
                try:  # the digest to attest, or why nothing was stored
                    digest = journal.write_detached(seq, chain_hash, self.engine.snapshot())
                    os.write(reason_write, digest.encode())
                    code = 0
                except JournalError as exc:
                    os.write(reason_write, str(exc).encode()[:_MAX_FAILURE_REASON])
            finally:
                os._exit(code)
        os.close(reason_write)
        os.set_blocking(reason_read, False)
        self._snapshot_child = _SnapshotChild(
            pid=pid, seq=seq, reason_fd=reason_read,
            deadline=time.monotonic() + self.snapshot_deadline_s)
        self._durable_seq = seq
        self._since_snapshot = 0
        faults.crossing("after_snapshot")

    def _reap_snapshot(self, *, wait: bool) -> None:
        """Collect a finished snapshot child (or wait for it) and have the journal adopt its
        snapshot, attesting the digest the child reported: its size sets the next interval.
        A failure is logged with the child's reason, and the previous snapshot stays in use:
        a missed snapshot costs restart time, never correctness."""
        child = self._snapshot_child
        if child is None:
            return
        done, status = self._child_exit(child, wait=wait)
        if done == 0:
            return
        self._snapshot_child = None
        try:
            reason = os.read(child.reason_fd, _MAX_FAILURE_REASON).decode(errors="replace")
        except BlockingIOError:  # nothing written, yet another holder keeps the pipe open
            reason = ""
        finally:
            os.close(child.reason_fd)
        if child.killed:
            reason = f"killed after {self.snapshot_deadline_s:g} s without finishing"
        exit_code = None if status == -1 else os.waitstatus_to_exitcode(status)
        journal = self.journal
        assert isinstance(journal, DetachedSnapshots)
        stored = None
        if exit_code in (None, 0) and reason.startswith(DIGEST_PREFIX):
            faults.crossing("before_snapshot_attested")
            try:
                stored = journal.adopt_detached(child.seq, reason)
            except JournalError as exc:
                reason = str(exc)
        if stored is not None:
            self._last_snapshot_bytes = stored
            self.snapshot_seq = child.seq
            self._log.info("snapshot_written", seq=child.seq, bytes=stored)
        else:
            self._log.warning("snapshot_failed_in_background", seq=child.seq,
                              exit_code=exit_code, reason=reason or "nothing was stored")

    def _child_exit(self, child: _SnapshotChild, *, wait: bool) -> tuple[int, int]:
        """`os.waitpid` of the snapshot child, (0, 0) while it runs; with `wait`, until it
        exits. Past its deadline it is killed; a close gives a killed child `_KILL_GRACE_S` to
        exit and then leaves it (it can only be stuck in the kernel, where waiting would hang
        the close too)."""
        while True:
            try:
                done, status = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                return child.pid, -1  # reaped elsewhere: judged by what was stored
            if done:
                return done, status
            now = time.monotonic()
            if not child.killed and now >= child.deadline:
                self._log.warning("snapshot_child_killed", seq=child.seq, pid=child.pid,
                                  deadline_s=self.snapshot_deadline_s)
                os.kill(child.pid, signal.SIGKILL)
                child.killed = True
                continue
            if not wait or (child.killed and now >= child.deadline + _KILL_GRACE_S):
                return 0, 0
            time.sleep(_POLL_S)

    @property
    def snapshot_interval(self) -> int:
        """Input events between snapshots: `snapshot_every`, or more once the state is large.

        A snapshot costs time in proportion to the engine state, which grows over a trading
        day (decided intents, finished orders). Waiting for a tail of events proportional to
        the last snapshot's size keeps the total snapshot work linear in the run instead of
        quadratic, while a restart still loads one snapshot and replays a tail of comparable
        size."""
        return max(self.snapshot_every, self._last_snapshot_bytes // SNAPSHOT_BYTES_PER_EVENT)

    @in_standard_arithmetic
    def snapshot(self) -> None:
        """Save the engine state at the current end of the journal."""
        if self._stopped:
            return
        faults.crossing("before_snapshot")
        try:
            self.journal.flush()
            seq = self.journal.last_seq()
            state = self.engine.snapshot()
            self.journal.save_snapshot(seq, state)
        except JournalError as exc:
            self._fail_closed(exc)
        self._last_snapshot_bytes = len(state)
        self.snapshot_seq = seq
        self._durable_seq = self.journal.last_seq()
        self._since_snapshot = 0
        faults.crossing("after_snapshot")

    def close(self) -> None:
        try:
            self._reap_snapshot(wait=True)
            if not self._stopped:
                self.journal.flush()
        finally:
            if self._froze:  # what this runtime kept may be collected again
                gc.unfreeze()
            self.journal.close()

    # ------------------------------------------------------------------ views

    def status(self) -> Any:
        return self.engine.status()

    @property
    def awaiting(self) -> dict[str, tuple[int, Dispatch]]:
        return dict(self._awaiting)


@in_standard_arithmetic
def rebuild(journal_url: str) -> Engine:
    """A read-only rebuild for `ordergate status`: latest snapshot + every later input."""
    journal = open_journal(journal_url, durability=Durability.NONE, create=False,
                           reader=True)
    try:
        snapshot = journal.latest_snapshot()
        engine = Engine.restore(snapshot.state) if snapshot is not None else Engine()
        start = snapshot.seq + 1 if snapshot is not None else 1
        for record in journal.read(start):
            if record.kind is RecordKind.INPUT:
                event = journaled_input(record.seq, record.payload)
                engine.handle(event)
        return engine
    finally:
        journal.close()


def decisions_of(report: BatchReport) -> list[Decision]:
    return [item for item in report.emitted if isinstance(item, Decision)]


_MAX_IDENTIFIER = 128


def recovered_fill_id(client_order_id: str, filled_qty: Decimal) -> str:
    """The id of a fill that start-up learns of from the broker instead of from a fill event.
    Built from the client order id, unique in the journal, not the broker's order id: a
    simulator without saved state numbers its orders from 1 again after a restart, and a
    repeated id would have the engine drop the fill as a redelivery. Too long for an
    identifier (a strategy's own 128-character client order id), it is a digest."""
    text = f"{client_order_id}-recovered-{filled_qty}"
    if len(text) > _MAX_IDENTIFIER:
        text = "h" + hashlib.sha256(text.encode()).hexdigest()
    return text


def increment_price(filled_qty: Decimal, avg_price: Decimal, booked_qty: Decimal,
                    booked_notional: Decimal | None, *,
                    limit: PriceLimit | None = None) -> Decimal:
    """The price of the part of an order the broker reports filled (`filled_qty` at the
    average `avg_price`) beyond the `booked_qty` the journal booked for `booked_notional`
    (None: not known), derived from the notionals and rounded as `OrderWatch` does for a live
    poll (`brokers.labels.derived_price`). The broker's average when nothing was booked or the
    notional is not known, and, as a live poll does, when its rounded figures imply no usable
    price: none above zero, or one beyond any real price (`values.MAGNITUDE_LIMIT`: a tiny
    increment over a changed average would otherwise stop every restart on a fill no event can
    carry).

    A price derived from the broker's rounded average past the order's `limit` by no more
    than that rounding is the limit (`brokers.labels.within_limit`); the average itself, when
    nothing was booked, is the broker's own figure and is taken as is. The rounding is half a
    unit in the last place `avg_price` was given with, times `filled_qty`, and as much again
    per unit of `booked_qty` (and half a price step: `PRICE_STEP`) for how far the booked
    notional can fall short of what was filled (for a sell: exceed it). A live poll books its
    parts to keep to the broker's averages, and a part it booked at the limit only books more
    than the part cost, so the booked notional falls short by no more than the rounding of the
    broker's average it last followed."""
    try:
        rounding = half_unit(decimal_places(avg_price))
        if booked_qty == 0:
            return avg_price  # the broker's own figure, not derived: as a live poll books it
        if booked_notional is None:
            return avg_price
        error = filled_qty * rounding + booked_qty * (rounding + PRICE_STEP / 2)
        price = derived_price(filled_qty, avg_price, booked_qty, booked_notional, error=error,
                              limit=limit)
    except ArithmeticError:  # figures too far apart to hold at that step: no price at all
        return avg_price
    return avg_price if price is None else price


@dataclass(frozen=True, slots=True)
class _LostAnswers:
    """What start-up recovery learnt of one order that the journal lost: the order as the
    broker reports it, and the events to book for it (`filled`: a Fill among them)."""

    known: BrokerOrder
    events: list[InputEvent]
    filled: bool


def _in_venue_fill_order(answers: list[_LostAnswers]) -> list[_LostAnswers]:
    """`answers`, given in dispatch order, with the orders that filled in each instrument put
    in the order of their latest fill at the venue (equal times in dispatch order), in the
    places those orders held, when the venue gave that time for every one of them. An
    instrument where one did not keeps its dispatch order, as does everything else: the
    sequence of fills matters within an instrument, and a time known for only some of its
    orders says nothing of where the others' fills came."""
    slots: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        if answer.filled:
            slots.setdefault(answer.known.symbol, []).append(index)
    ordered = list(answers)
    for places in slots.values():
        times = {index: when for index in places
                 if (when := answers[index].known.filled_at) is not None}
        if len(places) < 2 or len(times) < len(places):
            continue
        by_time = sorted(places, key=lambda index: (times[index], index))
        for place, index in zip(places, by_time, strict=True):
            ordered[place] = answers[index]
    return ordered


def _reported_state(order: OrderStatusView, known: BrokerOrder | None) -> BrokerOrder | None:
    """The state of an order the gateway holds open, as the journal now has it, for an adapter
    to follow it from: None while no broker answer is journaled (its first sight at the venue
    is then reported in full); the broker's own figures when recovery just looked it up (its
    average price prices the next fill exactly); else the journal's filled quantity. Always a
    working state: the gateway still waits for what becomes of the order."""
    if not order.acked:
        return None
    working = OrderStatus.PARTIALLY_FILLED if order.filled > 0 else OrderStatus.NEW
    if known is not None:
        return msgspec.structs.replace(known, status=working)
    return BrokerOrder(client_order_id=order.client_order_id, broker_order_id="",
                       symbol=order.symbol, status=working, qty=order.qty,
                       filled_qty=order.filled)
