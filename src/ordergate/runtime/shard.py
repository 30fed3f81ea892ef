"""One gateway process owning one shard: lease, fenced journal, recovery, heartbeat, failover.

A shard is a PostgreSQL journal stream (an account or a group of accounts) with a single
writer. `ShardGateway.run()`:

1. takes the shard's `ShardLease` (a PostgreSQL advisory lock), waiting while another
   process holds it: this is how a standby waits for the owner to die;
2. opens the stream's journal with the lease's epoch, so every append is fenced: once a
   newer owner was granted a higher epoch, an older one can never add a record again;
3. rebuilds the shard by replaying its journal (`Runtime.open_on`: snapshot + tail, the last
   batch's actions re-performed idempotently against the broker, which is asked by
   deterministic client order id, never blindly re-sent);
4. continues the events source after the last line any owner journaled from it;
5. heartbeats the lease every `lease_ttl_s / 3` from a small thread, from acquisition to
   release (so a long replay does not lose the lease); a lost lease stops the gateway before
   its next batch. Between batches, on the same cadence, with a firm store, it publishes its
   gross exposure and journals what the store says (`FirmState`) when it changed. It also
   publishes its gross after every batch that changed it and when it stops, so the firm cap
   counts a shard that has finished; a shard that dies keeps its last published gross.

When the owner dies (SIGKILL included) PostgreSQL ends its session and frees the lock; a
hung owner's session is ended by the server after `lease_ttl_s` without a heartbeat. A
standby polling `acquire` then takes the lease within `poll_s` of that.

Firm-wide limits (`runtime.firm`) reach the engine only as journaled input events:
`FirmState` (kill switch, other shards' gross) at heartbeats, and `FirmRateLimited` right
before an intent the firm order-rate window had no room for. Each source batch's intents
are reserved in ONE Redis script before the batch is journaled; the slot of an intent the
engine then denied is released only by the input that took it (not by a later input reusing
its intent_id, whose DUP-003 denial must not free the first intent's slot). A Redis failure
opens the `redis` circuit breaker, whose `DependencyStatus(SYS-007)` is journaled, its detail
saying which store and what went wrong: the engine fails closed.
While the circuit is open, intents are not reserved (no new risk passes REDUCE_ONLY, and
throttles never stop a risk-reducing intent anyway).

A firm store that lost its data (restarted empty, flushed, replaced: `FirmReading.lost`) is
journaled as `DependencyStatus(redis, unhealthy, SYS-007)` saying so in words, with its Alert
and mode change (REDUCE_ONLY under the default policy settings): the other shards' exposure is
unknown until they report again, and a shard that stopped never will. The exchange that found
it has already put this shard's own gross back. The reason clears at the next exchange that
finds the store whole, but the mode stays until an operator resumes (the engine never loosens a
mode by itself): the hold is the operator's to lift, with `firm status` listing the shards
known before the loss that have not reported since. A kill switch this shard knows engaged is
never released by a missing key, nor by the release note of an earlier kill (a store that went
back in time): the store engages it again (`FirmStore.exchange`), and only `firm unkill`'s
release note covering its number releases it. A store that came back holding older data (an
older snapshot, a lagging replica) is a loss of data too, said so. Each exchange tells the
store whether this shard trades again (its mode is ACTIVE), so the store's `lost` note
(`LossNote`: which kind of loss, found by which shard at what event time), which `firm status`
shows, goes once every shard known before has reported and been resumed.

Injected events carry event time (the engine's clock, or the batch's first timestamp),
never the wall clock, so a file-driven shard stays reproducible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import structlog

from ordergate.brokers.base import BrokerAdapter
from ordergate.journal import Durability, Journal, JournalError, RecordKind, open_journal
from ordergate.journal.lease import LeaseUnavailable, ShardLease
from ordergate.journal.urls import Backend, parse_journal_url, with_stream
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import DependencyStatus, FirmRateLimited, FirmState, InputEvent
from ordergate.model.intent import OrderIntent
from ordergate.model.modes import Mode
from ordergate.model.values import ZERO, describe_error
from ordergate.policy.loader import Policy
from ordergate.resilience.breakers import (
    CIRCUIT_OPEN,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    EscalationTier,
)
from ordergate.resilience.clock import SystemClock
from ordergate.runtime.firm import (
    REDIS_DEPENDENCY,
    FirmRate,
    FirmReading,
    FirmStore,
    FirmUnavailable,
    FirmUrlError,
    Reservation,
    ReserveResult,
    check_redis_url,
)
from ordergate.runtime.health import open_proven
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.runtime.policy_choice import PolicyReplacement
from ordergate.runtime.runfile import batch_inputs
from ordergate.runtime.sources import (
    BadLine,
    SourceMark,
    decode_note,
    new_event,
)
from ordergate.runtime.timebound import line_ahead_of_clock

log = structlog.get_logger("ordergate.runtime.shard")

DEFAULT_LEASE_TTL_S = 6.0
_SCAN_WINDOW = 2048
_REDIS_REASON = f"dependency:{REDIS_DEPENDENCY}"  # the engine's key for the firm store's reason
LEASE_RETRY_FIRST_S = 0.5  # a standby asks again this long after a connection error, ...
LEASE_RETRY_MAX_S = 5.0  # ... doubling up to this
_event_decoder = msgspec.json.Decoder(InputEvent)


LOSS_EMPTIED = "emptied"
"""A `LossNote.loss`: the firm store came back empty (restarted without persistence, flushed,
replaced)."""
LOSS_WENT_BACK = "went_back"
"""A `LossNote.loss`: the firm store came back holding older data (an older snapshot, a replica
that lagged behind), found by its write count going backwards or a later kill missing."""
EVENT_CLOCK = "event"
"""A `LossNote.clock`: `at` is the finding shard's event time (the time its journal gives the
finding, which follows its events), not a wall clock."""


class LossNote(msgspec.Struct, frozen=True, kw_only=True, tag="og.firm_loss",
               tag_field="type"):
    """What the gateway that finds the firm store's loss leaves in the store (its `lost` note,
    `FirmStore.record_loss`; the first note stays), for `firm status`: the kind of loss, the
    shard that found it, and when, on the clock `clock` names."""

    loss: str  # LOSS_EMPTIED or LOSS_WENT_BACK
    found_by: str
    at: datetime
    clock: str  # EVENT_CLOCK


_loss_note_decoder = msgspec.json.Decoder(LossNote)


def read_loss_note(text: str) -> LossNote | None:
    """The store's `lost` note as this version writes it, or None for a note of another form
    (an earlier version's words, 'found by shard east at 2026-03-02T15:00:00Z')."""
    try:
        return _loss_note_decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class ShardError(Exception):
    """The shard cannot be served (wrong journal backend, lease not obtained)."""


class LeaseLost(Exception):
    """Another process owns the shard now; this one must stop writing and acting."""


@dataclass(frozen=True, slots=True)
class FirmSettings:
    redis_url: str
    prefix: str
    rate: FirmRate | None = None
    timeout_s: float = 0.5


@dataclass(slots=True)
class ShardConfig:
    journal_url: str  # postgresql://...; the stream is the shard
    shard: str
    events: Path
    durability: Durability = Durability.BATCH
    batch_size: int = 256
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    acquire_timeout_s: float | None = None  # None: wait for the lease as long as it takes
    follow: bool = False  # keep reading lines appended to `events` until stopped
    idle_poll_s: float = 0.05
    snapshot_every: int = 50_000
    firm: FirmSettings | None = None
    run_id: str | None = None
    replace_policy: PolicyReplacement | None = None  # see `runtime.policy_choice`


@dataclass(slots=True)
class ShardStats:
    epoch: int = 0
    lease_wait_s: float = 0.0
    recovery_s: float = 0.0
    first_line: int = 1
    last_line: int = 0
    batches: int = 0
    heartbeats: int = 0
    firm_states: int = 0
    firm_rate_limited: int = 0
    bad_line: BadLine | None = None
    stopped_by: str = ""


def shard_url(journal_url: str, shard: str) -> str:
    """`journal_url` (PostgreSQL) with its stream set to `shard`."""
    location = parse_journal_url(journal_url)
    if location.backend is not Backend.POSTGRES:
        raise ShardError(f"{location.redacted}: a shard needs a PostgreSQL journal "
                         "(postgresql://...): its lease is a PostgreSQL advisory lock")
    return with_stream(journal_url, shard)


def next_source_line(journal: Journal, source: str) -> int:
    """The first line of `source` (a file name) no owner of this journal has journaled: after
    the newest `SourceMark` of that source, plus the INPUT records that followed it."""
    high = journal.last_seq()
    while high >= 1:
        low = max(1, high - _SCAN_WINDOW + 1)
        found: tuple[int, SourceMark] | None = None
        for record in journal.read(low, high):
            if record.kind is RecordKind.META:
                note = decode_note(record.payload)
                if isinstance(note, SourceMark) and note.source == source:
                    found = (record.seq, note)
        if found is not None:
            seq, mark = found
            inputs, _ = batch_inputs(journal, seq)
            return mark.line + inputs
        high = low - 1
    return 1


class LineFollower:
    """Complete lines of a JSON Lines file from `start_line` on, as they appear: a line is
    read only once its newline is written, so a writer mid-line is never seen half way."""

    def __init__(self, path: Path, start_line: int) -> None:
        self._path = path
        self._handle = path.open("rb")
        self._next = 1
        self._pending = b""
        while self._next < start_line:
            raw = self._handle.readline()
            if not raw.endswith(b"\n"):
                self._pending = raw
                break
            self._next += 1
        self._skip_to = start_line

    def available(self, limit: int) -> Iterator[tuple[int, InputEvent | BadLine | None]]:
        """Up to `limit` complete lines now in the file (fewer at its current end)."""
        produced = 0
        while produced < limit:
            raw = self._handle.readline()
            if not raw:
                return
            if not raw.endswith(b"\n"):
                self._pending += raw
                return
            raw, self._pending = self._pending + raw, b""
            number = self._next
            self._next += 1
            if number < self._skip_to:
                continue
            produced += 1
            stripped = raw.strip()
            if not stripped:
                yield number, None
                continue
            try:
                event = _event_decoder.decode(stripped)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                yield number, BadLine(str(self._path), number, describe_error(exc))
            else:
                yield number, new_event(str(self._path), number, event)

    def close(self) -> None:
        self._handle.close()


def wait_for_lease(lease: ShardLease, *, timeout_s: float | None = None,
                   stopping: Callable[[], bool] = lambda: False,
                   on_standby: Callable[[], None] | None = None) -> int | None:
    """Take `lease`, waiting as standby while another process holds it (said once, in the log
    and through `on_standby`): its epoch, or None once `timeout_s` passed (None: wait as long
    as it takes) or `stopping()` said so. Waits in short chunks so a stop is seen soon.

    Once the database has answered (this process has been a standby: another process held the
    lease), a connection error that asking again may cure (`LeaseUnavailable`: the database
    restarted, dropped or refused the connection) does not end the wait: each is logged with
    when the next attempt is, and the wait goes on with backoff (LEASE_RETRY_FIRST_S doubling
    up to LEASE_RETRY_MAX_S). Before that it is raised at once: a journal URL that points
    nowhere (a wrong host or port) fails the same way, and waiting would hide the mistake
    behind a standby that never serves. One that cannot heal (authentication, a missing
    database or role, a journal schema of another version) raises `JournalError`, as does the
    last connection error when `timeout_s` runs out after it."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    announced = False
    answered = False  # the database has answered a request for the lease
    backoff = LEASE_RETRY_FIRST_S
    while not stopping():
        chunk = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        try:
            epoch = lease.acquire(timeout_s=chunk)
        except LeaseUnavailable as exc:
            if not answered:
                raise
            if deadline is not None and time.monotonic() + backoff >= deadline:
                raise
            log.warning("shard.lease_wait_retry", shard=lease.stream, error=str(exc),
                        retry_in_s=backoff,
                        detail="the journal database could not be asked for the lease; "
                               "the standby keeps waiting")
            _sleep_unless(stopping, backoff)
            backoff = min(backoff * 2, LEASE_RETRY_MAX_S)
            continue
        answered = True
        backoff = LEASE_RETRY_FIRST_S
        if epoch is not None:
            return epoch
        if deadline is not None and time.monotonic() >= deadline:
            return None
        if not announced:
            log.info("shard.standby", shard=lease.stream,
                     detail="another process owns the shard")
            if on_standby is not None:
                on_standby()
            announced = True
    return None


def _sleep_unless(stopping: Callable[[], bool], seconds: float) -> None:
    """Sleep `seconds`, in short steps, ending early once `stopping()` says so."""
    until = time.monotonic() + seconds
    while not stopping():
        left = until - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))


class LeaseKeeper:
    """Heartbeats a held lease every `interval_s` on its own thread (the lease's connection is
    used by nobody else) until stopped; `lost` says why the lease was lost ('' while held),
    and `on_lost` (if given) is called with that, once, from the keeper's thread."""

    def __init__(self, lease: ShardLease, interval_s: float, *,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self._lease = lease
        self._interval_s = interval_s
        self._on_lost = on_lost
        self._halt = threading.Event()
        self.lost = ""
        self.beats = 0
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease.stream}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._halt.wait(self._interval_s):
            try:
                self._lease.heartbeat()
            except JournalError as exc:
                self.lost = str(exc)
                log.error("shard.lease_lost", stream=self._lease.stream, error=self.lost)
                if self._on_lost is not None:
                    self._on_lost(self.lost)
                return
            self.beats += 1


class ShardGateway:
    """Serve one shard until the source ends (or, following, until `stop()`)."""

    def __init__(self, config: ShardConfig, policy: Policy,
                 broker_factory: Callable[[], BrokerAdapter], *,
                 on_batch: Callable[[BatchReport], None] | None = None) -> None:
        self.config = config
        self.policy = policy
        self._broker_factory = broker_factory
        self._on_batch = on_batch
        self._url = shard_url(config.journal_url, config.shard)
        if config.firm is not None:
            try:
                check_redis_url(config.firm.redis_url)  # before any lease or journal record
            except FirmUrlError as exc:
                raise ShardError(f"firm redis_url: {exc}") from None
        self._stop = False
        self.stats = ShardStats()
        self.runtime: Runtime | None = None
        self._lease: ShardLease | None = None
        self._keeper: LeaseKeeper | None = None
        self._firm: FirmStore | None = None
        self._breaker: CircuitBreaker | None = None
        self._next_beat = 0.0
        self._firm_pending = False  # no event time yet to stamp a FirmState with
        self._published: Decimal | None = None  # the gross this shard last published
        self._firm_shards: tuple[str, ...] = ()  # the shards the last exchange saw
        self._log = log.bind(shard=config.shard)

    def stop(self) -> None:
        """Finish the current batch and return from `run()` (safe from a signal handler)."""
        self._stop = True

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> ShardStats:
        config = self.config
        lease = ShardLease(self._url, config.shard, ttl_s=config.lease_ttl_s)
        self._lease = lease
        broker: BrokerAdapter | None = None
        try:
            epoch = self._acquire(lease)
            started = time.monotonic()
            adapter = self._broker_factory()
            broker = adapter  # closed by `_close`, whatever happens next
            journal = open_journal(self._url, durability=config.durability,
                                   run_id=config.run_id, epoch=epoch)
            # As `serve` and `run` do: never act on a journal whose chain cannot be proven (an
            # edited or unreadable record, records cut from the end). Checked here, once the
            # lease is held, so a standby that takes over is checked when it does; on a large
            # journal the check runs beside the replay, and nothing is appended or sent before
            # its verdict. Raises StartRefused.
            self.runtime = open_proven(journal, self._url, lambda on_replayed: Runtime.open_on(
                journal, self.policy, adapter, snapshot_every=config.snapshot_every,
                source=config.events, on_batch=self._on_batch,
                replace_policy=config.replace_policy, on_replayed=on_replayed))
            first = next_source_line(journal, config.events.name)
            self.stats.recovery_s = time.monotonic() - started
            self.stats.first_line = first
            self.stats.last_line = first - 1
            self._log.info("shard.recovered", epoch=epoch, next_line=first,
                           last_seq=journal.last_seq(), recovery_s=self.stats.recovery_s)
            if config.firm is not None:
                self._firm = FirmStore(config.firm.redis_url, config.shard,
                                       prefix=config.firm.prefix,
                                       timeout_s=config.firm.timeout_s)
                interval = max(config.lease_ttl_s / 3, 0.05)
                self._breaker = CircuitBreaker(REDIS_DEPENDENCY, SystemClock(), BreakerPolicy(
                    tiers=(EscalationTier(failures=1, window_s=60, open_s=interval),)))
            self._serve(first)
            self._publish_at_stop()
        finally:
            self._close(broker)
        return self.stats

    def _acquire(self, lease: ShardLease) -> int:
        config = self.config
        started = time.monotonic()
        epoch = wait_for_lease(lease, timeout_s=config.acquire_timeout_s,
                               stopping=lambda: self._stop)
        if epoch is not None:
            self.stats.epoch = epoch
            self.stats.lease_wait_s = time.monotonic() - started
            self._log.info("shard.lease_acquired", epoch=epoch,
                           waited_s=self.stats.lease_wait_s)
            self._keeper = LeaseKeeper(lease, config.lease_ttl_s / 3)
            self._keeper.start()
            return epoch
        raise ShardError(f"shard '{config.shard}': another process holds its lease"
                         + ("" if self._stop else
                            f" (waited {config.acquire_timeout_s} s)"))

    def _close(self, broker: BrokerAdapter | None) -> None:
        try:
            if self.runtime is not None:
                try:
                    self.runtime.close()
                except JournalError as exc:
                    # A fenced or broken journal has nothing more to lose; say so and go on.
                    self._log.warning("shard.journal_close_failed", error=str(exc))
        finally:
            closer = getattr(broker, "close", None)
            if callable(closer):
                closer()
            if self._firm is not None:
                self._firm.close()
            if self._keeper is not None:
                self._keeper.stop()
                self.stats.heartbeats = self._keeper.beats
            if self._lease is not None:
                self._lease.release()

    # ------------------------------------------------------------------ the loop

    def _serve(self, first: int) -> None:
        config = self.config
        runtime = self.runtime
        assert runtime is not None
        follower = LineFollower(config.events, first)
        try:
            self._beat(None, force=True)
            while not self._stop:
                batch: list[InputEvent] = []
                batch_line = self.stats.last_line + 1
                ended = False
                for number, item in follower.available(config.batch_size):
                    self.stats.last_line = number
                    if isinstance(item, BadLine):
                        self._process(batch, batch_line)
                        self.stats.bad_line = item
                        self.stats.stopped_by = "bad_line"
                        return
                    if item is None:
                        ended = True  # a blank line ends a batch (lines stay consecutive)
                        break
                    if config.follow:
                        problem = self._ahead_of_clock(item)
                        if problem:
                            self._process(batch, batch_line)
                            self.stats.bad_line = BadLine(str(config.events), number, problem)
                            self.stats.stopped_by = "bad_line"
                            return
                    batch.append(item)
                if batch:
                    self._beat(batch[0].ts, force=self._firm_pending)
                    self._process(batch, batch_line)
                    continue
                if ended:
                    continue
                if not config.follow:
                    self.stats.stopped_by = "end_of_source"
                    return
                self._beat(None)
                time.sleep(config.idle_poll_s)
            self.stats.stopped_by = "stopped"
        finally:
            follower.close()

    def _ahead_of_clock(self, event: InputEvent) -> str | None:
        """Why a followed line is refused for a `ts` too far ahead of the wall clock, or None
        (`runtime.timebound.line_ahead_of_clock`). Checked before the line is journaled."""
        skew = None
        if isinstance(event, OrderIntent):
            runtime = self.runtime
            assert runtime is not None
            policy = runtime.deciding_policy or self.policy
            skew = policy.limits_for(event.account, event.strategy,
                                     event.symbol).max_intent_skew
        return line_ahead_of_clock(event.ts, datetime.now(UTC), skew)

    def _process(self, batch: list[InputEvent], line: int) -> None:
        if not batch:
            return
        runtime = self.runtime
        assert runtime is not None
        reserved = self._reserve(batch)
        owned = None if reserved is None else self._owned_slots(reserved)
        report = runtime.process(batch, source=self.config.events.name, line=line)
        self.stats.batches += 1
        if self._on_batch is not None:
            self._on_batch(report)
        if owned is not None:
            self._release_denied(owned, report)
        self._publish_after_batch()

    # ------------------------------------------------------------------ heartbeat and firm

    def _beat(self, hint: datetime | None, *, force: bool = False) -> None:
        """Stop at once if the lease was lost; poll the firm store when due (every
        lease_ttl_s / 3, like the lease heartbeat)."""
        keeper = self._keeper
        assert keeper is not None
        if keeper.lost:
            raise LeaseLost(f"shard '{self.config.shard}': {keeper.lost}")
        now = time.monotonic()
        if not force and now < self._next_beat:
            return
        self._next_beat = now + self.config.lease_ttl_s / 3
        if self._firm is not None:
            self._poll_firm(hint)

    def _event_time(self, hint: datetime | None) -> datetime | None:
        runtime = self.runtime
        assert runtime is not None
        state = runtime.engine.state
        if state.started:
            return state.now if hint is None else max(state.now, hint)
        return hint

    def _poll_firm(self, hint: datetime | None) -> None:
        firm, breaker, runtime = self._firm, self._breaker, self.runtime
        assert firm is not None and breaker is not None and runtime is not None
        ts = self._event_time(hint)
        self._firm_pending = ts is None
        if ts is None:
            return  # nothing has happened yet: asked again with the first event
        if not breaker.allow():
            return
        state = runtime.engine.state
        gross = own_gross(runtime)
        known = state.firm
        keep = ""  # a kill switch this shard knows engaged (with its number): kept if the
        if known is not None and known.kill:  # store lost it or went back to before it
            keep = known.detail or "firm kill switch engaged"
        try:
            reading = firm.exchange(gross, seen_before=known is not None, keep_kill=keep,
                                    resumed=state.mode is Mode.ACTIVE)
        except FirmUnavailable as exc:
            self._redis_failed(ts, exc)
            return
        self._published = gross
        if reading.lost:
            self._store_lost(ts, reading)
        else:
            self._redis_ok(ts, whole=True)
        self._firm_shards = reading.names
        kill, detail = reading.kill, reading.kill_detail
        if not kill:
            # released: who released it last and why. A switch this shard knows engaged is
            # never released by a missing key (the store engages it again): only by a note
            if known is not None and known.kill and not reading.release_detail:
                kill, detail = True, known.detail
            else:
                detail = reading.release_detail
        event = FirmState(ts=ts, kill=kill, gross_exposure=reading.others_gross,
                          shard=self.config.shard, detail=detail)
        if known is not None and (known.kill, known.gross_exposure, known.detail) == \
                (event.kill, event.gross_exposure, event.detail):
            return
        if event.kill and (known is None or not known.kill):
            self._log.warning("shard.firm_kill", detail=event.detail)
        elif known is not None and known.kill and not event.kill:
            self._log.warning("shard.firm_kill_released", detail=event.detail)
        self._inject([event])
        self.stats.firm_states += 1

    def _redis_failed(self, ts: datetime, exc: FirmUnavailable) -> None:
        breaker = self._breaker
        assert breaker is not None
        self._log.error("shard.redis_unavailable", error=str(exc))
        status = breaker.record_failure()
        if status is not None:
            # said in words: which store, and what went wrong with it
            self._inject([msgspec.structs.replace(
                status, ts=ts, detail=f"{exc.words}; firm limits fail closed until it "
                                      "answers again")])

    def _redis_ok(self, ts: datetime, *, whole: bool = False) -> None:
        """The store answered: a circuit closing is journaled. When an exchange also found it
        `whole` (not lost), a reason the engine still lists for the store (a loss found by an
        earlier exchange, or a reason replayed from the journal by a new process whose
        breaker starts closed) is cleared. Clearing it never loosens the mode: an operator
        resumes."""
        breaker, runtime = self._breaker, self.runtime
        assert breaker is not None and runtime is not None
        status = breaker.record_success()
        if status is not None:
            # said in words, as its opening was; the engine adds that the mode stays held
            self._inject([msgspec.structs.replace(
                status, ts=ts, detail=f"the firm limits store at {self._store_where()}")])
        elif whole and breaker.state is BreakerState.CLOSED and \
                runtime.engine.state.guard.has(_REDIS_REASON):
            # what it lost is not back: the engine's Alert says new risk stays refused until
            # an operator resumes (engine behaviour 5 on), not that the store is healthy
            self._inject([DependencyStatus(
                ts=ts, dependency=REDIS_DEPENDENCY, healthy=True, code=CIRCUIT_OPEN,
                detail=f"the firm limits store at {self._store_where()} holds this shard's "
                       "exposure again")])

    def _store_where(self) -> str:
        firm = self._firm
        assert firm is not None
        return firm.where

    def _store_lost(self, ts: datetime, reading: FirmReading) -> None:
        """Journal that the firm store lost its data (see the module doc): the reason, in
        words, with the Alert and mode change the engine makes of it."""
        firm, breaker, runtime = self._firm, self._breaker, self.runtime
        assert firm is not None and breaker is not None and runtime is not None
        shard = self.config.shard
        missing = [name for name in self._firm_shards
                   if name != shard and name not in reading.names]
        if reading.went_back:
            detail = (f"the firm limits store at {firm.where} lost its data (it came back "
                      "holding older data: restored from an older snapshot, or a replica that "
                      "lagged behind); other gateways' exposure is unknown until they report "
                      "again")
        else:
            detail = (f"the firm limits store at {firm.where} lost its data (restarted empty "
                      "or flushed); other gateways' exposure is unknown until they report "
                      "again")
        if missing:
            detail += f" (not reported since: {', '.join(missing)})"
        detail += "; new risk is refused until an operator resumes"
        if reading.kill:
            detail += f"; the firm kill switch stays engaged ({reading.kill_detail})"
        self._log.error("shard.firm_store_lost", detail=detail)
        note = LossNote(loss=LOSS_WENT_BACK if reading.went_back else LOSS_EMPTIED,
                        found_by=shard, at=ts, clock=EVENT_CLOCK)
        try:
            firm.record_loss(msgspec.json.encode(note).decode(), self._firm_shards)
        except FirmUnavailable as exc:
            self._log.warning("shard.firm_loss_not_recorded", error=str(exc))
        events: list[InputEvent] = []
        # A reason already listed for the store (the circuit that was open while it restarted)
        # is cleared first, so the loss is listed as its own reason and announced.
        closed = breaker.record_success()
        if closed is not None:
            events.append(msgspec.structs.replace(
                closed, ts=ts, detail=f"the firm limits store at {firm.where}"))
        elif runtime.engine.state.guard.has(_REDIS_REASON):
            events.append(DependencyStatus(ts=ts, dependency=REDIS_DEPENDENCY, healthy=True,
                                           code=CIRCUIT_OPEN,
                                           detail=f"the firm limits store at {firm.where}"))
        events.append(DependencyStatus(ts=ts, dependency=REDIS_DEPENDENCY, healthy=False,
                                       code=CIRCUIT_OPEN, detail=detail))
        self._inject(events)

    def _inject(self, events: list[InputEvent]) -> None:
        """Journal what the firm store said and hand over what it caused (a mode change, an
        alert) like a source batch's outputs, in journal order: `run` reports its injected
        batches the same way, so stdout and the summary miss nothing."""
        runtime = self.runtime
        assert runtime is not None
        report = runtime.inject(events, origin="firm")
        if self._on_batch is not None:
            self._on_batch(report)

    def _reserve(self, batch: list[InputEvent]) -> ReserveResult | None:
        """Reserve firm-rate slots for the batch's intents; journal the refusals first."""
        settings, firm, breaker, runtime = (self.config.firm, self._firm, self._breaker,
                                            self.runtime)
        if settings is None or settings.rate is None or firm is None or breaker is None:
            return None
        assert runtime is not None
        intents = [event for event in batch if isinstance(event, OrderIntent)]
        if not intents or not breaker.allow():
            return None
        ts = self._event_time(batch[0].ts)
        assert ts is not None
        rate = settings.rate
        try:
            result = firm.reserve(intents, rate)
        except FirmUnavailable as exc:
            self._redis_failed(ts, exc)
            return None
        self._redis_ok(ts)
        refused: list[InputEvent] = [
            FirmRateLimited(ts=ts, account=item.intent.account,
                            strategy=item.intent.strategy, intent_id=item.intent.intent_id,
                            count=result.count, max_count=rate.max_orders, window=rate.window)
            for item in result.reservations if not item.granted
        ]
        if refused:
            self.stats.firm_rate_limited += len(refused)
            self._inject(refused)
        return result

    def _owned_slots(self, reserved: ReserveResult) -> list[Reservation | None]:
        """Per intent of the batch, in order, its reservation if this input owns the slot: it
        took a new one, or (a retry after a crash between reserving and journaling) it is the
        first input of the batch for an intent the engine has not decided yet. A later input
        reusing the intent_id owns nothing: its denial (DUP-003) must not free the slot of the
        intent that holds it."""
        runtime = self.runtime
        assert runtime is not None
        decided = runtime.engine.state.decided
        seen: set[str] = set()
        owned: list[Reservation | None] = []
        for item in reserved.reservations:
            intent = item.intent
            first = item.member not in seen
            seen.add(item.member)
            undecided = (intent.account, intent.strategy, intent.intent_id) not in decided
            owns = item.granted and (item.fresh or (first and undecided))
            owned.append(item if owns else None)
        return owned

    def _release_denied(self, owned: list[Reservation | None], report: BatchReport) -> None:
        """Give back the slots owned by intents the engine denied. The engine answers every
        intent of the batch with one decision, in input order (a repeated or retried intent_id
        too), so the batch's intents and decisions pair up one to one; a decision names no
        account, so pairing by intent_id could free another account's slot. Should they not
        pair up (the runtime stopped mid-batch), nothing is given back: the slots expire with
        the window, which only errs on the safe side."""
        firm = self._firm
        assert firm is not None
        decisions = [item for item in report.emitted if isinstance(item, Decision)]
        if len(decisions) != len(owned) or any(
                decision.intent_id != slot.intent.intent_id
                for slot, decision in zip(owned, decisions, strict=True) if slot is not None):
            self._log.warning("shard.firm_release_skipped", intents=len(owned),
                              decisions=len(decisions))
            return
        members = [slot.member for slot, decision in zip(owned, decisions, strict=True)
                   if slot is not None and decision.decision is DecisionKind.DENY]
        if not members:
            return
        try:
            firm.release(members)
        except FirmUnavailable as exc:
            # The slots expire with the window; the next heartbeat reports Redis' health.
            self._log.warning("shard.firm_release_failed", error=str(exc))

    def _publish_after_batch(self) -> None:
        """Publish this shard's gross when a batch changed it, so the other shards' firm cap
        counts it at their next heartbeat even if this shard never beats again. Only while the
        circuit is closed: an open circuit's probe is the heartbeat's full exchange."""
        firm, breaker, runtime = self._firm, self._breaker, self.runtime
        if firm is None or breaker is None or runtime is None:
            return
        if breaker.state is not BreakerState.CLOSED:
            return
        try:
            same_store = self._publish(firm, runtime)
        except FirmUnavailable as exc:
            ts = self._event_time(None)
            if ts is not None:
                self._redis_failed(ts, exc)
            return
        if not same_store:
            self._next_beat = 0.0  # the next beat exchanges, which says what became of it

    def _publish_at_stop(self) -> None:
        """Leave this shard's final gross in the firm store: its positions outlive the process.
        Only after a clean end (source ended, stopped, bad line): never after the lease was
        lost, when the new owner publishes the shard's gross."""
        firm, runtime, keeper = self._firm, self.runtime, self._keeper
        if firm is None or runtime is None or keeper is None or keeper.lost:
            return
        try:
            if not self._publish(firm, runtime):
                # not the store it saw (it lost its data): an exchange journals that and puts
                # this shard's gross back
                self._poll_firm(None)
        except FirmUnavailable as exc:
            self._log.warning("shard.firm_publish_at_stop_failed", error=str(exc))
            return
        if self._published != own_gross(runtime):
            self._log.warning("shard.firm_publish_at_stop_failed",
                              error=f"no exchange with the firm limits store at {firm.where} "
                                    "succeeded, so this shard's gross is not published there")
            return
        self._log.info("shard.firm_gross_published", gross=str(self._published))

    def _publish(self, firm: FirmStore, runtime: Runtime) -> bool:
        """Publish this shard's gross unless the store already holds it, only into the store
        the last exchange saw: False (nothing written) when it is not that one. Raises
        `FirmUnavailable` when the store could not be written."""
        gross = own_gross(runtime)
        if gross == self._published:
            return True
        if not firm.publish(gross):
            return False
        self._published = gross
        return True


def own_gross(runtime: Runtime) -> Decimal:
    """This shard's gross exposure, as published to the firm store."""
    return sum((record.gross for record in runtime.engine.state.accounts.values()), ZERO)


__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "EVENT_CLOCK",
    "LOSS_EMPTIED",
    "LOSS_WENT_BACK",
    "FirmSettings",
    "LeaseKeeper",
    "LeaseLost",
    "LineFollower",
    "LossNote",
    "ShardConfig",
    "ShardError",
    "ShardGateway",
    "ShardStats",
    "next_source_line",
    "own_gross",
    "read_loss_note",
    "shard_url",
    "wait_for_lease",
]
