"""The bridge between asyncio HTTP handlers and the single-writer engine thread.

The engine (inside the Runtime) is a single writer: exactly ONE thread, started here, ever
calls into the Runtime. HTTP handlers hand work to the bridge and await a future. The work of
one event-loop pass is handed to the engine thread together, once every handler that was
ready in that pass has had its turn (so requests that arrived together are batched together,
and the engine thread is woken once, not once per request). The engine thread takes everything
waiting (group commit): all the intents of the batch go to `runtime.process(...)` together,
which journals them, evaluates them, flushes the journal ONCE and dispatches; only then is
every waiting request answered. A decision is therefore never returned before its batch is
durable, and a burst of N concurrent requests costs one flush, not N.

Idempotency on `intent_id` lives here, on the engine thread, so that it cannot race: an
intent whose id already has a decision (from this process or recovered from the journal at
start) is not sent to the engine again; the caller gets the original decision, marked
`replayed`. Two copies of one intent inside the same batch are answered by the first. An
intent that reuses an intent_id already taken by a DIFFERENT intent (another quantity, side,
account...) is refused, with nothing of its request done (`IntentConflict`): answering it with
the other intent's decision would tell the caller an order it never sent was decided. The
decision index is bounded; an intent whose decision it no longer holds is looked up in the
engine's memory of decided intents (`EngineMemory`, kept for two trading days), so that a
late retry too gets the original decision and journals nothing, and a different intent under
the same account, strategy and intent_id is refused as a conflict, as while it is indexed.

A request from the HTTP edge carries a `TimeBound`: a NEW intent (not a retry) stamped too far
ahead of the server's wall clock, or too far behind it, is refused with its whole request
(`IntentOutOfTime`) before anything is journaled. Event time never goes back, so an intent
stamped years ahead would otherwise leave every later intent denied, across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import structlog

from ordergate.journal.base import JournalRecord, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import InputEvent, OutputEvent, ShadowDecision
from ordergate.model.intent import OrderIntent, retry_differences
from ordergate.runtime.loop import BatchReport, Runtime, RuntimeStopped
from ordergate.runtime.timebound import TimeBound as TimeBound
from ordergate.runtime.timebound import intent_out_of_time

log = structlog.get_logger("ordergate.service.bridge")

T = TypeVar("T")

MAX_BATCH_EVENTS = 5000
DEFAULT_INDEX_CAPACITY = 500_000


Emitted = InputEvent | OutputEvent


class BatchRuntime(Protocol):
    """What the bridge needs of the Runtime (`ordergate.runtime.loop.Runtime` provides it)."""

    def process(self, events: Sequence[InputEvent], *,
                on_durable: Callable[[BatchReport], None] | None = None) -> BatchReport:
        """Journal, evaluate and act on a batch; durable (one flush) when it returns.
        `on_durable` is called once the decisions are durable, before any broker call."""
        ...


RecallDecision = Callable[[OrderIntent], "DecisionRecord | None"]
"""The intent the engine decided earlier under an intent's account, strategy and intent id,
with the decision it gave it, or None. Called on the engine thread only."""


class EngineMemory:
    """`RecallDecision` from the engine's own record of decided intents: the intent it
    decided and the decision exactly as it was journaled, without reading the journal.

    Nothing once the runtime has stopped (its journal failed): the engine's memory then holds
    the decisions of the batch that could not be made durable (answered 503 "not durable,
    nothing was done", never journaled, no order sent), and nothing tells them from the
    durable ones. A retry of such an intent is then an intent like any new one, and gets the
    stopped runtime's answer (503); only the decision index (durable decisions) still answers
    retries."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __call__(self, intent: OrderIntent) -> DecisionRecord | None:
        if self._runtime.stopped:
            return None
        state = self._runtime.engine.state
        key = (intent.account, intent.strategy, intent.intent_id)
        decision = state.decided.get(key)
        if decision is None:
            return None
        # An engine image written before decided intents were kept has the decision alone;
        # the engine answers such an intent as a retry (`engine.core`), and so does the bridge.
        earlier = state.decided_intents.get(key) or intent
        # the engine keeps no run per decision: run_id stays "" (not known)
        return DecisionRecord(intent=earlier, decision=decision)


class EngineSkew:
    """The tolerance the enforced policy sets between an intent's own timestamp and event time
    (`max_intent_skew` for the intent's account, strategy and symbol), or None when unset."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def __call__(self, intent: OrderIntent) -> timedelta | None:
        policy = self._runtime.engine.active
        if policy is None:
            return None
        return policy.limits_for(intent.account, intent.strategy, intent.symbol).max_intent_skew


IntentSkew = Callable[[OrderIntent], timedelta | None]
"""The policy's `max_intent_skew` for an intent (see `EngineSkew`). Called on the engine thread
only."""


class IntentOutOfTime(Exception):
    """A new intent of a request is stamped too far from the server's clock (`TimeBound`).
    Nothing of the request that carries it is done. `position` is its index in its request."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position


def _out_of_time(position: int, intent: OrderIntent, bound: TimeBound,
                 skew: timedelta | None) -> IntentOutOfTime | None:
    problem = intent_out_of_time(intent.ts, bound, skew)
    return None if problem is None else IntentOutOfTime(position, problem)


class IntentConflict(Exception):
    """An intent reuses an intent_id already taken by a different intent (decided before, or
    earlier in the same batch). Nothing of the request that carries it is done. `position` is
    the intent's index in its request."""

    def __init__(self, position: int, intent_id: str, fields: tuple[str, ...]) -> None:
        # The fields that differ are named only when the earlier intent is of the same account
        # (the caller's own): another account's intent is not described to this caller.
        differs = f" (it differs in {', '.join(fields)})" if fields else ""
        super().__init__(f"'{intent_id}' already names a different intent{differs}; a retry "
                         "must repeat the intent exactly, and a new intent needs a new "
                         "intent_id")
        self.position = position
        self.intent_id = intent_id


def _conflict(position: int, intent: OrderIntent, earlier: OrderIntent) -> IntentConflict:
    # another account's intent is not described to this caller
    fields = retry_differences(earlier, intent) if earlier.account == intent.account else ()
    return IntentConflict(position, intent.intent_id, fields)


class ServiceUnavailable(Exception):
    """The engine could not make the batch durable or is shut down: the caller gets 503 and
    nothing it asked for has been acted on (fail closed). `error` is the answer's error code;
    `DECIDED_NOT_ANSWERED` is the one exception: the batch was decided and durable, and what
    failed came after (its orders may have been sent)."""

    def __init__(self, message: str, *, error: str = "unavailable") -> None:
        super().__init__(message)
        self.error = error


DECIDED_NOT_ANSWERED = "decided_not_answered"

JOURNAL_STOPPED_WORDS = ("the gateway's journal could not be written; the gateway takes no "
                         "intent, market data or operator command until it restarts on a "
                         "healthy journal")
INTERNAL_ERROR_WORDS = "an internal error stopped it (the server's log says which)"


def client_words(exc: BaseException) -> str:
    """What a client is told of a failure: plain words, never the exception's class or its
    text, which name the server's journal file and record numbers (those go to the log)."""
    return JOURNAL_STOPPED_WORDS if isinstance(exc, RuntimeStopped) else INTERNAL_ERROR_WORDS


# ---------------------------------------------------------------- the decision index


class DecisionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An intent, the decision the gate gave it and, during a policy dry run, what the shadow
    policy would have answered. `run_id` is the run that made the decision (the run_id of its
    journal records): after a restart, an earlier run's. It is "" when not known: a decision
    recalled from the engine's memory of decided intents (`EngineMemory`) says nothing of its
    run."""

    intent: OrderIntent
    decision: Decision
    shadow: ShadowDecision | None = None
    run_id: str = ""


def shadow_differs(record: DecisionRecord) -> bool:
    """Whether the dry-run policy's outcome differs from the enforced one."""
    shadow, decision = record.shadow, record.decision
    return shadow is not None and (
        shadow.decision is not decision.decision or shadow.blocking != decision.blocking
        or shadow.modified_qty != decision.modified_qty)


_record_encoder = msgspec.msgpack.Encoder(decimal_format="string")
# An entry encodes (intent, decision, shadow); its run_id is kept beside, one string shared by
# every decision of a run rather than repeated in each encoded record.
_record_decoder = msgspec.msgpack.Decoder(tuple[OrderIntent, Decision, ShadowDecision | None])


class IndexEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the index keeps of one decision: the record, encoded, and the fields the decisions
    API filters on. Hundreds of thousands of these live for hours; as structs of bytes, strings
    and a datetime (not tracked by the cyclic garbage collector) they add nothing to the
    collector's full passes, which stop every thread while they walk each tracked object."""

    encoded: bytes
    ts: datetime
    symbol: str
    account: str
    decision: str
    monitor: bool
    blocking: str
    codes: tuple[str, ...]
    shadow_differs: bool | None  # None: no shadow decision
    run_id: str = ""

    @classmethod
    def of(cls, record: DecisionRecord) -> IndexEntry:
        intent, decision = record.intent, record.decision
        return cls(encoded=_record_encoder.encode((intent, decision, record.shadow)),
                   ts=intent.ts, symbol=intent.symbol,
                   account=intent.account, decision=decision.decision.value,
                   monitor=decision.monitor, blocking=decision.blocking,
                   codes=tuple(violation.code for violation in decision.violations),
                   shadow_differs=None if record.shadow is None else shadow_differs(record),
                   run_id=record.run_id)

    def record(self) -> DecisionRecord:
        intent, decision, shadow = _record_decoder.decode(self.encoded)
        return DecisionRecord(intent=intent, decision=decision, shadow=shadow,
                              run_id=self.run_id)


class DecisionIndex:
    """Recent decisions by intent_id, in arrival order, bounded to `capacity` records.

    Each record gets a position number (1, 2, ...) in arrival order; pages of the decisions API
    use it as their cursor. Written only by the engine thread; read by HTTP handlers. Records
    are kept encoded (`IndexEntry`) and decoded when read: reads are retries and API queries,
    rare beside the writes.
    """

    def __init__(self, capacity: int = DEFAULT_INDEX_CAPACITY) -> None:
        self._capacity = capacity
        self._by_id: dict[str, IndexEntry] = {}
        self._order: list[str] = []
        self._base = 1  # position number of self._order[0]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, intent_id: str) -> bool:
        return intent_id in self._by_id

    def get(self, intent_id: str) -> DecisionRecord | None:
        entry = self._by_id.get(intent_id)
        return None if entry is None else entry.record()

    @property
    def first_position(self) -> int:
        """The position number of the oldest record still held."""
        return self._base

    def add(self, records: Iterable[DecisionRecord]) -> None:
        entries = [(record.intent.intent_id, IndexEntry.of(record)) for record in records]
        with self._lock:
            for intent_id, entry in entries:
                if intent_id in self._by_id:
                    continue
                self._by_id[intent_id] = entry
                self._order.append(intent_id)
            excess = len(self._order) - self._capacity
            if excess > 0:
                # Drop in chunks so that trimming stays amortized O(1) per record.
                drop = max(excess, self._capacity // 10)
                for intent_id in self._order[:drop]:
                    self._by_id.pop(intent_id, None)
                del self._order[:drop]
                self._base += drop

    def newest_first(self, before: int | None = None) -> Iterator[tuple[int, IndexEntry]]:
        """(position, entry) from the newest, or from just below position `before`."""
        with self._lock:
            base = self._base
            top = len(self._order) if before is None else min(len(self._order), before - base)
            ids = self._order[max(0, top - 100_000):top] if top > 0 else []
            first = base + max(0, top - len(ids))
        by_id = self._by_id
        for offset in range(len(ids) - 1, -1, -1):
            entry = by_id.get(ids[offset])
            if entry is not None:
                yield first + offset, entry

    def load_journal(self, records: Iterable[JournalRecord]) -> int:
        """Rebuild from a journal: pair every journaled intent with its decision, and the
        run that journaled the decision."""
        input_type: Any = InputEvent
        output_type: Any = OutputEvent
        intents: dict[str, OrderIntent] = {}
        found: list[DecisionRecord] = []
        for record in records:
            if record.kind is RecordKind.INPUT and b'"intent"' in record.payload:
                event = msgspec.json.decode(record.payload, type=input_type)
                if isinstance(event, OrderIntent):
                    intents[event.intent_id] = event
            elif record.kind is RecordKind.OUTPUT and b'"decision"' in record.payload:
                output = msgspec.json.decode(record.payload, type=output_type)
                if isinstance(output, Decision):
                    intent = intents.pop(output.intent_id, None)
                    if intent is not None:
                        # interned: the decisions of one run share one string
                        found.append(DecisionRecord(intent=intent, decision=output,
                                                    run_id=sys.intern(record.run_id)))
                elif (isinstance(output, ShadowDecision) and found
                      and found[-1].intent.intent_id == output.intent_id):
                    found[-1] = msgspec.structs.replace(found[-1], shadow=output)
        self.add(found)
        return len(found)


# ---------------------------------------------------------------- work items


class _Work(Generic[T]):
    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()


class _IntentWork(_Work[list[tuple[DecisionRecord, bool]]]):
    __slots__ = ("bound", "intents")

    def __init__(self, loop: asyncio.AbstractEventLoop, intents: list[OrderIntent],
                 bound: TimeBound | None) -> None:
        super().__init__(loop)
        self.intents = intents
        self.bound = bound


class _EventsWork(_Work[list[Emitted]]):
    __slots__ = ("events",)

    def __init__(self, loop: asyncio.AbstractEventLoop, events: list[InputEvent]) -> None:
        super().__init__(loop)
        self.events = events


class _CallWork(_Work[Any]):
    __slots__ = ("fn",)

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> None:
        super().__init__(loop)
        self.fn = fn


BatchListener = Callable[[Sequence[InputEvent], Sequence[Emitted]], None]
"""Called after each batch with its inputs and everything it journaled after them (engine
outputs and broker answers), in journal order."""


class BatchStats(msgspec.Struct, kw_only=True):
    batches: int = 0
    intents: int = 0
    replayed: int = 0
    last_batch_size: int = 0
    last_process_s: float = 0.0
    queue_depth: int = 0


# ---------------------------------------------------------------- the bridge


class EngineBridge:
    """Owns the engine thread. `start()` it, await `submit_intents` / `submit_events` /
    `call`, and `stop()` it. Listeners run on the engine thread after every batch, with the
    batch's inputs and outputs (metrics, alerts, live updates); they must be quick and must
    not call back into the bridge."""

    def __init__(self, runtime: BatchRuntime, *, index: DecisionIndex | None = None,
                 recall: RecallDecision | None = None,
                 skew: IntentSkew | None = None,
                 idle_events: Callable[[], list[InputEvent]] | None = None,
                 idle_interval_s: float = 0.1,
                 clock: Callable[[], float] = time.perf_counter,
                 run_id: str = "") -> None:
        """`recall` answers for intents the index no longer holds (see `EngineMemory`);
        without it, such an intent goes to the engine again. `skew` gives the policy's
        tolerance for an intent's timestamp (see `EngineSkew`, `TimeBound`). `run_id` is
        the run the runtime's journal writes as, carried by the decisions made here."""
        self._runtime = runtime
        self._run_id = run_id
        self.index = index if index is not None else DecisionIndex()
        self._recall = recall
        self._skew = skew
        self._idle_events = idle_events
        self._idle_interval_s = idle_interval_s
        self._clock = clock
        self._queue: queue.SimpleQueue[list[_Work[Any]] | None] = queue.SimpleQueue()
        # Work handed over by handlers during the current pass of each event loop.
        self._staged: dict[asyncio.AbstractEventLoop, list[_Work[Any]]] = {}
        self._listeners: list[BatchListener] = []
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.stats = BatchStats()
        self._settle = _Settler()
        self.last_error: str = ""

    def add_listener(self, listener: BatchListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ordergate-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    # -- called from the event loop

    async def submit_intents(self, intents: list[OrderIntent], *, bound: TimeBound | None = None,
                             ) -> list[tuple[DecisionRecord, bool]]:
        """Decide every intent; each answer is (record, replayed). With `bound`, a request
        holding a new intent stamped outside it is refused whole (IntentOutOfTime). Raises
        ServiceUnavailable, IntentConflict, IntentOutOfTime."""
        return await self._put(_IntentWork(asyncio.get_running_loop(), intents, bound))

    async def submit_events(self, events: list[InputEvent]) -> list[Emitted]:
        """Process operator/control events as a batch of their own; returns what it emitted."""
        return await self._put(_EventsWork(asyncio.get_running_loop(), events))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the engine thread (consistent reads of engine state)."""
        result: T = await self._put(_CallWork(asyncio.get_running_loop(), fn))
        return result

    async def _put(self, work: _Work[T]) -> T:
        if not self.running:
            raise ServiceUnavailable("the engine is not running")
        staged = self._staged.get(work.loop)
        if staged is None:
            # The first work of this loop pass: hand the pass's work over once the handlers
            # that are ready now have run (call_soon runs after them, in order).
            staged = self._staged[work.loop] = []
            work.loop.call_soon(self._hand_over, work.loop)
        staged.append(work)
        return await work.future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._staged.pop(loop))
        if self._stopped.is_set():
            # The engine thread ended (or is ending): whatever it did not take is answered
            # here, so that nothing put after its last look waits forever.
            self._fail_waiting("the engine stopped")

    # -- the engine thread

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            # However the thread ends (even when logging itself fails, e.g. a closed stdout),
            # nobody is left waiting: every queued request is answered 503, and `running` is
            # false so later ones are refused at once.
            self._stopped.set()
            self._fail_waiting("the engine stopped")

    def _serve(self) -> None:
        log.info("engine_thread_started")
        while not self._stopped.is_set():
            try:
                first = self._queue.get(timeout=self._idle_interval_s)
            except queue.Empty:
                self._run_idle()
                continue
            if first is None:
                break
            batch: list[_Work[Any]] = first
            stop_after = False
            pending = _events(batch)
            while pending < MAX_BATCH_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop_after = True
                    break
                batch.extend(more)
                pending += _events(more)
            try:
                self._handle(batch)
            except BaseException as exc:  # outermost loop: escaped every guard, so stop
                # Answer this batch, then end the thread (see _run): the engine's state after
                # such an error is not trusted; a restart rebuilds it from the journal.
                self.last_error = f"{type(exc).__name__}: {exc}"
                # Stopped before anyone hears of it: a caller answered now and retrying at
                # once is refused as "not running" rather than queued behind a dead thread.
                self._stopped.set()
                for work in batch:
                    self._settle.add(work, exc=ServiceUnavailable(
                        "the engine stopped after an internal error (the server's log says "
                        "which); nothing more is taken until the gateway restarts"))
                self._settle.flush()
                log.critical("engine_thread_died", error=self.last_error)
                return
            self._settle.flush()
            if stop_after:
                break
        log.info("engine_thread_stopped")

    def _run_idle(self) -> None:
        """With nothing queued, let event time advance (timers, staleness, broker polling)."""
        if self._idle_events is None:
            return
        try:
            events = self._idle_events()
            if events:
                self._process(events)
        except Exception as exc:  # outermost loop of the engine thread: log and keep serving
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("engine_idle_failed", error=self.last_error)

    def _handle(self, batch: list[_Work[Any]]) -> None:
        intent_work = [w for w in batch if isinstance(w, _IntentWork)]
        if intent_work:
            self._handle_intents(intent_work)
        for work in batch:
            if isinstance(work, _EventsWork):
                self._guarded(work, functools.partial(self._process, work.events))
            elif isinstance(work, _CallWork):
                self._guarded(work, work.fn)

    def _guarded(self, work: _Work[Any], fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Exception as exc:  # outermost loop: the caller gets the failure, we go on
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("engine_work_failed", error=self.last_error)
            self._settle.add(work, exc=ServiceUnavailable(client_words(exc)))
            return
        self._settle.add(work, result=result)

    def _process(self, events: Sequence[InputEvent],
                 on_durable: Callable[[BatchReport], None] | None = None) -> list[Emitted]:
        started = self._clock()
        try:
            outputs = self._runtime.process(events, on_durable=on_durable).emitted
        except RuntimeStopped as stop:
            # What the batch made durable before the journal failed (a policy activated
            # first, its decisions and orders, a mode change) goes to the listeners as any
            # batch's would: nothing else in this process will ever report it.
            if stop.journaled:
                self._tell_listeners(events, stop.journaled)
            raise
        self.stats.last_process_s = self._clock() - started
        self.stats.batches += 1
        self.stats.last_batch_size = len(events)
        self._tell_listeners(events, outputs)
        return outputs

    def _tell_listeners(self, events: Sequence[InputEvent], outputs: list[Emitted]) -> None:
        for listener in self._listeners:
            try:
                listener(events, outputs)
            except Exception as exc:  # a broken listener must never stop trading
                log.error("batch_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _handle_intents(self, works: list[_IntentWork]) -> None:
        index = self.index
        fresh: list[OrderIntent] = []
        fresh_ids: dict[str, OrderIntent] = {}
        recalled: dict[str, DecisionRecord] = {}
        accepted: list[_IntentWork] = []
        for work in works:
            conflict = self._find_conflict(work.intents, fresh_ids, recalled)
            if conflict is not None:
                self._settle.add(work, exc=conflict)
                continue
            new: dict[str, OrderIntent] = {}
            refused: IntentOutOfTime | None = None
            for position, intent in enumerate(work.intents):
                intent_id = intent.intent_id
                # Decided before, but no longer in the bounded index (`recalled` by
                # `_find_conflict`): answer the original decision, and journal nothing (a
                # second intent or decision for the id).
                if (intent_id in index or intent_id in fresh_ids or intent_id in recalled
                        or intent_id in new):
                    continue
                # Only an intent about to be decided is held to the time bound: a retry of
                # one decided before gets its decision, however old.
                if work.bound is not None:
                    skew = None if self._skew is None else self._skew(intent)
                    refused = _out_of_time(position, intent, work.bound, skew)
                    if refused is not None:
                        break
                new[intent_id] = intent
            if refused is not None:
                self._settle.add(work, exc=refused)
                continue
            accepted.append(work)
            fresh.extend(new.values())
            fresh_ids.update(new)
        works = accepted
        if not fresh:
            self._answer(works, {}, recalled)
            return
        answered = False

        def answer(report: BatchReport) -> None:
            # The decisions are durable and nothing has gone to a broker yet: the callers
            # get their answers now, while the orders go out and the broker's answers are
            # journaled (a second flush they need not wait for).
            nonlocal answered
            answered = True
            decided = self._decided(fresh, report.emitted)
            index.add(decided.values())
            self.stats.intents += len(fresh)
            self._answer(works, decided, recalled)
            self._settle.flush()

        try:
            self._process(fresh, on_durable=answer)
        except Exception as exc:  # journal or runtime failure
            self.last_error = f"{type(exc).__name__}: {exc}"
            if answered:
                # The decisions were durable; what failed came after them (answering, the
                # broker round or its journaling). Whoever was not answered yet hears so.
                log.error("batch_failed_after_answering", error=self.last_error,
                          intents=len(fresh))
                late = ServiceUnavailable(f"decided and durable, but answering failed: "
                                          f"{client_words(exc)}; read the decision at "
                                          "GET /v1/decisions/{intent_id}",
                                          error=DECIDED_NOT_ANSWERED)
                for work in works:
                    self._settle.add(work, exc=late)  # an answered one keeps its answer
                return
            log.error("batch_failed", error=self.last_error, intents=len(fresh))
            error = ServiceUnavailable(f"not durable, nothing was done: {client_words(exc)}")
            for work in works:
                self._settle.add(work, exc=error)

    def _find_conflict(self, intents: list[OrderIntent], fresh: dict[str, OrderIntent],
                       recalled: dict[str, DecisionRecord]) -> IntentConflict | None:
        """The first intent of a request whose intent_id names a different intent: one decided
        before (in the index, or in the engine's memory once the index has let it go), one of
        this batch, or an earlier copy in the same request. What the engine remembers of an
        intent is put in `recalled`, to answer a retry of it."""
        index = self.index
        seen: dict[str, OrderIntent] = {}
        for position, intent in enumerate(intents):
            intent_id = intent.intent_id
            earlier = seen.get(intent_id) or fresh.get(intent_id)
            if earlier is None and intent_id in recalled:
                earlier = recalled[intent_id].intent
            if earlier is None and intent_id in index:
                record = index.get(intent_id)
                earlier = None if record is None else record.intent
            if earlier is None and self._recall is not None:
                remembered = self._recall(intent)
                if remembered is not None:
                    recalled[intent_id] = remembered
                    earlier = remembered.intent
            if earlier is not None and earlier is not intent and retry_differences(earlier, intent):
                return _conflict(position, intent, earlier)
            seen.setdefault(intent_id, intent)
        return None

    def _decided(self, fresh: list[OrderIntent],
                 emitted: Sequence[Emitted]) -> dict[str, DecisionRecord]:
        by_id = {intent.intent_id: intent for intent in fresh}
        decided: dict[str, DecisionRecord] = {}
        for output in emitted:
            if isinstance(output, Decision) and output.intent_id in by_id:
                decided[output.intent_id] = DecisionRecord(
                    intent=by_id[output.intent_id], decision=output, run_id=self._run_id)
            elif isinstance(output, ShadowDecision) and output.intent_id in decided:
                decided[output.intent_id] = msgspec.structs.replace(
                    decided[output.intent_id], shadow=output)
        return decided

    def _answer(self, works: list[_IntentWork], decided: dict[str, DecisionRecord],
                recalled: dict[str, DecisionRecord]) -> None:
        """Settle every work: the first copy of an intent in this batch gets the fresh
        decision; every other copy (same request or another one) is a replay of it, as is
        every intent decided before (in the index, or `recalled` from the engine)."""
        index = self.index
        first_answered: set[str] = set()
        for work in works:
            answers: list[tuple[DecisionRecord, bool]] = []
            missing = ""
            for intent in work.intents:
                record = decided.get(intent.intent_id)
                if record is not None and intent.intent_id not in first_answered:
                    answers.append((record, False))
                    first_answered.add(intent.intent_id)
                    continue
                record = index.get(intent.intent_id)
                if record is None:
                    record = recalled.get(intent.intent_id)
                if record is None:
                    missing = intent.intent_id
                    break
                answers.append((record, True))
                self.stats.replayed += 1
            if missing:
                self._settle.add(work, exc=ServiceUnavailable(f"no decision for intent {missing}"))
            else:
                self._settle.add(work, result=answers)

    def _fail_waiting(self, why: str) -> None:
        """Answer 503 to every queued work. Called by the engine thread as it ends and by an
        event loop that hands work over after that (so a settler of its own)."""
        settle = _Settler()
        while True:
            try:
                works = self._queue.get_nowait()
            except queue.Empty:
                return
            for work in works or ():
                settle.add(work, exc=ServiceUnavailable(why))
            settle.flush()


def _events(works: list[_Work[Any]]) -> int:
    """How many events a batch of work puts before the engine (its intents, or one)."""
    return sum(len(work.intents) if isinstance(work, _IntentWork) else 1 for work in works)


_Settlement = tuple[_Work[Any], Any, BaseException | None]


class _Settler:
    """Collects the answers of a batch and hands them to each event loop in ONE wake-up."""

    def __init__(self) -> None:
        self._pending: list[_Settlement] = []

    def add(self, work: _Work[Any], *, result: Any = None,
            exc: BaseException | None = None) -> None:
        self._pending.append((work, result, exc))

    def flush(self) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settlement]] = {}
        for item in self._pending:
            by_loop.setdefault(item[0].loop, []).append(item)
        self._pending = []
        for loop, items in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting for these answers any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, items)


def _settle_all(items: list[_Settlement]) -> None:
    for work, result, exc in items:
        if work.future.done():
            continue
        if exc is not None:
            work.future.set_exception(exc)
        else:
            work.future.set_result(result)


def utc_now() -> datetime:
    """The shell's wall clock, for stamping operator commands (the engine never reads it)."""
    return datetime.now(UTC)
