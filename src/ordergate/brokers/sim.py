"""A deterministic broker for paper trading, replay and tests.

Same inputs, same fills, always: time is event time (market snapshots and each order's `ts`),
and the only randomness is a PRNG seeded from the config and owned by the instance. Broker
callbacks (acks, rejects, fills, cancels) are queued with their event time and handed out by
`poll_events(until)` in (ts, sequence) order.

Fill models:
* `immediate`: orders trade on receipt against the last snapshot seen for their symbol. A
  market order fills at its mid (plus adverse slippage). A limit order fills at its limit price
  if it is marketable against that snapshot's touch (buy limit >= ask, sell limit <= bid);
  otherwise it rests and fills, at its limit, on the first later snapshot whose touch reaches
  it. With no snapshot seen yet for the symbol, a limit order fills at its limit on receipt
  (nothing says it could not) and a market order waits for the first snapshot.
* `next_market`: orders fill against the next market snapshot at or after their `ts`: market
  orders at its mid (plus slippage), limit orders when that price is marketable (never worse
  than the limit).

With `max_participation_pct`, in either model, a snapshot's volume times that share is all
that can trade on it (shared by the orders on the symbol, oldest first, fills on receipt
included): partial fills, the remainder rests for the next snapshots. Unknown volume (or no
snapshot yet) trades nothing. IOC cancels what a snapshot with a usable price did not fill;
FOK cancels unless it fills in full.

Stop orders rest until the last trade (or mid) touches the stop, then act as market or limit.
Order-level rejects (unsupported type, injected rejects) arrive as `OrderReject` events after
the ack latency, or synchronously as `SubmitResult(accepted=False)` with `sync_rejects`.
A halted symbol (fault hook) raises `BrokerOrderRejected("market halted ...")` like a REST 422.

With `follow_sessions` (the guard of `ordergate run` and `serve` gives it the gateway's trading
days), a DAY order never trades at or after the end of the trading day it was sent in: it stays
working, unfilled, until it is canceled (the gateway's session close cancels it right after the
batch that rolled the day, which may already have shown the simulator the next day's quotes).
Without it a DAY order trades until canceled.

With `state_path`, the book is committed (incrementally) to a small SQLite file after every mutating
call, so a gateway process can be killed and restarted and still talk to the same broker.

Arithmetic: fill prices, fees and average prices are worked out in the caller's decimal
context, which the runtime sets to `model.values.STANDARD` around every batch and its recovery
(`runtime.loop`), so they never follow an embedding program's own context; a test driving a
simulator by hand computes in its own (Decimal's default unless it changed it). The order view
the guard's reconciliation reads outside a batch (`get_order`, `open_orders`) divides in
`STANDARD` itself.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import random
import sqlite3
import stat
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import structlog

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerCapabilities,
    BrokerError,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerPosition,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.config import BrokerConfigError
from ordergate.brokers.labels import PriceLimit
from ordergate.model.events import Dispatch, Fill, InputEvent, OrderAck, OrderCanceled, OrderReject
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import STANDARD, InvalidValue

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
_BPS = Decimal(10_000)
_WORKING = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
DUPLICATE_REASON = "duplicate client_order_id"
_UNSUPPORTED = "ORD-002"  # the code of a refused order type or time in force
_MAX_ID_LENGTH = 128  # an Identifier's bound (model.intent)


class SimStateError(BrokerConfigError):
    """The simulated broker's state file (`SimConfig.state_path`, `--broker-state`) cannot be
    used; the message names the file and why."""


_CANNOT_HOLD = "cannot hold the simulated broker's state"
_SQLITE_HEADER = b"SQLite format 3\x00"


def _refuse_state_file(path: str) -> None:
    """Refuse, before SQLite opens it, a state path that is not a file or is a file but no
    SQLite database (SQLite says only "unable to open" or "file is not a database", and makes
    a database of an empty or missing file, as the simulator wants)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SimStateError(f"{path}: {_CANNOT_HOLD}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(found.st_mode):
        raise SimStateError(f"{path}: {_CANNOT_HOLD}: it is a directory; give it a file (a new "
                            "one is made when none is there)")
    if not stat.S_ISREG(found.st_mode):
        raise SimStateError(f"{path}: {_CANNOT_HOLD}: it is not a regular file (a pipe or a "
                            "device)")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise SimStateError(f"{path}: {_CANNOT_HOLD}: {exc.strerror or exc}") from None
    if header and header != _SQLITE_HEADER:
        raise SimStateError(f"{path}: {_CANNOT_HOLD}: it is not an SQLite database (the "
                            "state file is one the simulator made; a new one is made when "
                            "none is there)")


class FillModel(enum.StrEnum):
    IMMEDIATE = "immediate"
    NEXT_MARKET = "next_market"


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = "sim"
    fill_model: FillModel = FillModel.IMMEDIATE
    slippage_bps: Decimal = ZERO
    fee_bps: Decimal = ZERO
    max_participation_pct: Decimal | None = None  # None: no volume cap
    ack_latency: timedelta = timedelta(0)
    fill_latency: timedelta = timedelta(0)
    order_types: frozenset[OrderType] = frozenset(OrderType)
    time_in_force: frozenset[TimeInForce] = frozenset(TimeInForce)
    fractional_qty: bool = True
    reject_every_nth: int = 0  # 0: never; N: the Nth, 2Nth... order received is rejected
    reject_symbols: frozenset[str] = frozenset()
    reject_probability: float = 0.0  # drawn from the seeded PRNG
    reject_reason: str = "rejected by the simulator"
    sync_rejects: bool = False
    seed: int = 0
    clock_offset: timedelta = timedelta(0)
    state_path: str | None = None

    def __post_init__(self) -> None:
        for field in ("slippage_bps", "fee_bps"):
            value: Decimal = getattr(self, field)
            if not value.is_finite() or not ZERO <= value < _BPS:
                raise InvalidValue(f"{field}: expected a decimal in [0, 10000), got '{value}'")
        pct = self.max_participation_pct
        if pct is not None and (not pct.is_finite() or not ZERO < pct <= 100):
            raise InvalidValue(f"max_participation_pct: expected (0, 100], got '{pct}'")
        for field in ("ack_latency", "fill_latency"):
            if getattr(self, field) < timedelta(0):
                raise InvalidValue(f"{field}: expected a non-negative duration")
        if self.reject_every_nth < 0:
            raise InvalidValue(f"reject_every_nth: expected >= 0, got {self.reject_every_nth}")
        if not 0.0 <= self.reject_probability <= 1.0:
            raise InvalidValue(
                f"reject_probability: expected [0, 1], got {self.reject_probability}")


class SubmitFault(enum.StrEnum):
    UNAVAILABLE = "unavailable"  # BrokerUnavailable (timeout, 5xx)
    RATE_LIMITED = "rate_limited"  # BrokerRateLimited, HTTP 429
    AUTH = "auth"  # BrokerAuthError, HTTP 401


class SimFaults(msgspec.Struct, kw_only=True):
    """Fault hooks for chaos tests. Mutate freely; counters count down as they fire."""

    fail_next_submits: int = 0
    submit_fault: SubmitFault = SubmitFault.UNAVAILABLE
    accept_before_failing: bool = False  # the order is taken, then the answer is lost
    retry_after_s: float | None = None
    fail_next_reads: int = 0  # get_order / open_orders / positions / server_time
    drop_next_acks: int = 0
    late_fill_next_cancels: int = 0  # the canceled remainder fills after the cancel event
    halted_symbols: set[str] = msgspec.field(default_factory=set)


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FAULT = "fault"


class SubmissionAttempt(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    ts: datetime
    outcome: SubmitOutcome
    reason: str = ""


BrokerEvent = OrderAck | OrderReject | Fill | OrderCanceled


class _Pending(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime
    seq: int
    event: BrokerEvent


class _Order(msgspec.Struct, kw_only=True):
    number: int  # arrival order among received orders
    dispatch: Dispatch
    broker_order_id: str
    status: OrderStatus
    ack_ts: datetime
    filled_qty: Decimal = ZERO
    filled_value: Decimal = ZERO
    fills: int = 0
    triggered: bool = False
    # the event time of its latest fill (None: none yet, or saved before this was kept)
    last_fill_ts: datetime | None = None


class _Holding(msgspec.Struct, kw_only=True):
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO


class _Meta(msgspec.Struct, kw_only=True):
    """The book's scalars and small maps, persisted as one row."""

    holdings: dict[str, dict[str, _Holding]]
    quotes: dict[str, MarketSnapshot]
    now: datetime | None
    seq: int
    received: int
    rng_state: tuple[int, tuple[int, ...], float | None]
    faults: SimFaults
    clock_offset: timedelta
    # Volume already taken from each symbol's latest snapshot under the participation cap.
    volume_taken: dict[str, Decimal] = {}


class _Book(msgspec.Struct, kw_only=True):
    orders: dict[str, _Order] = {}  # arrival order
    submissions: list[SubmissionAttempt] = []
    pending: list[_Pending] = []  # sorted by (ts, seq)
    holdings: dict[str, dict[str, _Holding]] = {}
    quotes: dict[str, MarketSnapshot] = {}
    volume_taken: dict[str, Decimal] = {}
    now: datetime | None = None
    seq: int = 0
    received: int = 0
    faults: SimFaults = msgspec.field(default_factory=SimFaults)
    clock_offset: timedelta = timedelta(0)


def fill_id(client_order_id: str, number: int) -> str:
    """The id of an order's `number`th fill. Built from the client order id (unique in a
    journal), not from the simulator's own order counter: a simulator without saved state
    starts counting again after a restart, and the engine would drop its fills as
    redeliveries of the journaled ones. A client order id too long to take the suffix within
    an identifier's 128 characters is replaced by its digest."""
    suffix = f"-{number}"
    if len(client_order_id) + len(suffix) > _MAX_ID_LENGTH:
        client_order_id = "h" + hashlib.sha256(client_order_id.encode()).hexdigest()
    return client_order_id + suffix


def _valid_price(value: Decimal | None) -> bool:
    return value is not None and value.is_finite() and value > 0


def reference_price(snapshot: MarketSnapshot) -> Decimal | None:
    """Mid of a sane bid/ask, else the last trade, else None."""
    bid, ask = snapshot.bid, snapshot.ask
    if bid is not None and ask is not None and _valid_price(bid) and _valid_price(ask) \
            and bid <= ask:
        return (bid + ask) / 2
    return snapshot.last if _valid_price(snapshot.last) else None


def touch_price(snapshot: MarketSnapshot, side: Side) -> Decimal | None:
    """What an order of `side` trades against at once: the ask (buy) or bid (sell) of a sane
    quote, else the last trade, else None."""
    bid, ask = snapshot.bid, snapshot.ask
    if bid is not None and ask is not None and _valid_price(bid) and _valid_price(ask) \
            and bid <= ask:
        return ask if side is Side.BUY else bid
    return snapshot.last if _valid_price(snapshot.last) else None


class SimBroker:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self._lock = threading.RLock()
        self._rng = random.Random(self.config.seed)
        self._book = _Book(clock_offset=self.config.clock_offset)
        # Working orders per symbol in arrival order, so a quote looks only at the orders that
        # can trade on it instead of every order ever received. Built lazily from the book
        # (after a restore too); orders that stopped working are pruned when met.
        self._working_index: dict[str, dict[str, None]] | None = None
        # When the trading day holding a time ends (`follow_sessions`), and that end for each
        # DAY order asked about.
        self._day_end: Callable[[datetime], datetime] | None = None
        self._day_ends: dict[str, datetime] = {}
        self._db: sqlite3.Connection | None = None
        # What changed since the last commit (see `_commit`).
        self._dirty_orders: set[str] = set()
        self._pending_added: list[_Pending] = []
        self._pending_removed: list[int] = []
        self._saved_submissions = 0
        # The state file was made (or found holding no book) by this start: it holds nothing
        # an earlier process sent (see `keeps_orders_across_restarts`).
        self._state_made_now = False
        if self.config.state_path is not None:
            self._open_state(self.config.state_path)

    # ------------------------------------------------------------ identity and fault hooks

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def capabilities(self) -> BrokerCapabilities:
        return BrokerCapabilities(
            order_types=self.config.order_types, time_in_force=self.config.time_in_force,
            fractional_qty=self.config.fractional_qty, query_by_client_id=True,
            max_client_order_id_length=128, unique_client_order_id=True,
        )

    @property
    def keeps_orders_across_restarts(self) -> bool:
        """Does a new process find the orders an earlier one sent here? Only with a state
        file it found holding a book: an in-memory simulator, or one whose state file this
        start made (a new `--broker-state` path, say), starts empty and never answers for
        the journal's working orders (start-up recovery ends them,
        `Runtime._reconcile_lost_answers`, with `forgotten_orders_reason`)."""
        return self.config.state_path is not None and not self._state_made_now

    @property
    def forgotten_orders_reason(self) -> str | None:
        """Why this simulator holds none of the working orders a gateway's earlier process
        sent, when its state file is new: journaled as their cancel reason, naming the file.
        None without a state file (`runtime.loop.SIM_RESTARTED_REASON` says why) or with
        one it found holding a book."""
        if not self._state_made_now:
            return None
        return (f"the paper simulator was restarted with a new broker state file "
                f"({self.config.state_path}, made at this start, so not the one the order was "
                f"sent to): it never held this order")

    @property
    def faults(self) -> SimFaults:
        return self._book.faults

    @faults.setter
    def faults(self, value: SimFaults) -> None:
        with self._lock:
            self._book.faults = value
            self._commit()

    @property
    def clock_offset(self) -> timedelta:
        return self._book.clock_offset

    @clock_offset.setter
    def clock_offset(self, value: timedelta) -> None:
        with self._lock:
            self._book.clock_offset = value
            self._commit()

    def follow_sessions(self, day_end: Callable[[datetime], datetime] | None) -> None:
        """Keep DAY orders to their trading day: `day_end(ts)` is when the trading day holding
        `ts` ends (the gateway's day roll, so the simulator's days are the engine's). A DAY
        order sent at `ts` never trades at or after `day_end(ts)`; it stays working until
        canceled, as the gateway's session close does. None: DAY orders trade until canceled.
        The rule is not part of the saved state: whoever opens the simulator gives it (the
        same rule gives the same answers)."""
        with self._lock:
            self._day_end = day_end
            self._day_ends.clear()

    # ------------------------------------------------------------ inputs

    def on_market(self, snapshot: MarketSnapshot) -> None:
        """Feed a price. Working orders on the symbol may fill against it. A snapshot older
        than the newest one held for its symbol is ignored, as the engine ignores it: filling
        at a price the gateway never marked at would make the fills disagree with the marks."""
        with self._lock:
            held = self._book.quotes.get(snapshot.symbol)
            if held is not None and snapshot.ts < held.ts:
                return
            self._advance(snapshot.ts)
            self._book.quotes[snapshot.symbol] = snapshot
            self._match_snapshot(snapshot)
            self._commit()

    def advance(self, ts: datetime) -> None:
        """Move the broker's event time forward without market data (never backwards)."""
        with self._lock:
            self._advance(ts)
            self._commit()

    def submit(self, order: Dispatch) -> SubmitResult:
        with self._lock:
            self._advance(order.ts)
            faults = self._book.faults
            if faults.fail_next_submits > 0:
                faults.fail_next_submits -= 1
                if faults.accept_before_failing:
                    # The caller sees the lost answer, not a reject the broker may have sent.
                    with contextlib.suppress(BrokerOrderRejected):
                        self._receive(order)
                else:
                    self._record(order, SubmitOutcome.FAULT, faults.submit_fault.value)
                self._commit()
                raise self._fault_error(faults)
            try:
                return self._receive(order)
            finally:
                self._commit()

    def cancel(self, client_order_id: str) -> None:
        with self._lock:
            order = self._book.orders.get(client_order_id)
            if order is None:
                raise BrokerOrderRejected(f"cancel: unknown order '{client_order_id}'",
                                          http_status=404)
            if order.status not in _WORKING:
                raise BrokerOrderRejected(
                    f"cancel: order '{client_order_id}' is not working ({order.status.value})",
                    http_status=422)
            now = self._book.now if self._book.now is not None else order.dispatch.ts
            ts = max(now + self.config.ack_latency, order.ack_ts)
            remaining = order.dispatch.qty - order.filled_qty
            order.status = OrderStatus.CANCELED
            self._schedule(OrderCanceled(ts=ts, client_order_id=client_order_id,
                                         reason="canceled on request"))
            faults = self._book.faults
            if faults.late_fill_next_cancels > 0:
                price = order.dispatch.limit_price or self._latest_price(order.dispatch.symbol)
                if price is not None:
                    faults.late_fill_next_cancels -= 1
                    self._execute(order, remaining, price, ts + self.config.fill_latency)
            self._commit()

    def set_position(self, account: str, symbol: str, qty: Decimal,
                     avg_price: Decimal = ZERO) -> None:
        """Change a position behind the gateway's back (reconciliation tests)."""
        with self._lock:
            self._book.holdings.setdefault(account, {})[symbol] = _Holding(
                qty=qty, avg_price=avg_price)
            self._commit()

    # ------------------------------------------------------------ reads

    def poll_events(self, until: datetime) -> list[InputEvent]:
        with self._lock:
            pending = self._book.pending
            count = 0
            while count < len(pending) and pending[count].ts <= until:
                count += 1
            if count == 0:
                return []
            ready: list[InputEvent] = [item.event for item in pending[:count]]
            self._pending_removed.extend(item.seq for item in pending[:count])
            del pending[:count]
            self._commit()
            return ready

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        """Nothing to do: the simulator's book reports every order it holds."""

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        with self._lock:
            self._read_fault()
            order = self._book.orders.get(client_order_id)
            return None if order is None else self._view(order)

    def open_orders(self) -> list[BrokerOrder]:
        """Working orders in arrival order. Read through the per-symbol index: reconciliation
        asks on a schedule, and every order ever received would make each answer grow."""
        with self._lock:
            self._read_fault()
            working = [entry for symbol in self._working_index_built()
                       for entry in self._working_entries(symbol)]
            working.sort(key=lambda entry: entry.number)
            return [self._view(entry) for entry in working]

    def positions(self) -> list[BrokerPosition]:
        with self._lock:
            self._read_fault()
            return [
                BrokerPosition(account=account, symbol=symbol, qty=h.qty, avg_price=h.avg_price)
                for account in sorted(self._book.holdings)
                for symbol, h in sorted(self._book.holdings[account].items())
                if h.qty != 0
            ]

    def server_time(self) -> datetime:
        with self._lock:
            self._read_fault()
            if self._book.now is None:
                raise BrokerUnavailable("server_time: the simulator has seen no event yet")
            return self._book.now + self._book.clock_offset

    def submissions(self) -> list[str]:
        """Client order ids of every submit call, in arrival order, duplicates included."""
        with self._lock:
            return [attempt.client_order_id for attempt in self._book.submissions]

    def submission_log(self) -> list[SubmissionAttempt]:
        with self._lock:
            return list(self._book.submissions)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._book.pending)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------ order handling

    def _receive(self, order: Dispatch) -> SubmitResult:
        book, config = self._book, self.config
        client_id = order.client_order_id
        if client_id in book.orders:
            self._record(order, SubmitOutcome.DUPLICATE, DUPLICATE_REASON)
            return SubmitResult(accepted=False, reason=DUPLICATE_REASON)
        book.received += 1
        broker_id = f"{config.name}-{book.received:08d}"
        entry = _Order(number=book.received, dispatch=order, broker_order_id=broker_id,
                       status=OrderStatus.NEW, ack_ts=order.ts + config.ack_latency)
        book.orders[client_id] = entry
        if self._working_index is not None:
            self._working_index.setdefault(order.symbol, {})[client_id] = None
        self._dirty_orders.add(client_id)

        if order.symbol in book.faults.halted_symbols:
            entry.status = OrderStatus.REJECTED
            reason = f"market halted: {order.symbol}"
            self._record(order, SubmitOutcome.REJECTED, reason)
            raise BrokerOrderRejected(reason, http_status=422)
        reason, code = self._reject_reason(order, book.received)
        if reason:
            entry.status = OrderStatus.REJECTED
            self._record(order, SubmitOutcome.REJECTED, reason)
            if config.sync_rejects:
                return SubmitResult(accepted=False, broker_order_id=broker_id, reason=reason,
                                    code=code)
            self._schedule(OrderReject(ts=entry.ack_ts, client_order_id=client_id,
                                       reason=reason, code=code))
            return SubmitResult(accepted=True, broker_order_id=broker_id)

        self._record(order, SubmitOutcome.ACCEPTED)
        if book.faults.drop_next_acks > 0:
            book.faults.drop_next_acks -= 1
        else:
            self._schedule(OrderAck(ts=entry.ack_ts, client_order_id=client_id,
                                    broker_order_id=broker_id))
        if config.fill_model is FillModel.IMMEDIATE:
            self._fill_on_receipt(entry)
        return SubmitResult(accepted=True, broker_order_id=broker_id)

    def _reject_reason(self, order: Dispatch, number: int) -> tuple[str, str]:
        """Why the order is refused ("" when it is not), and the reason code of that refusal
        ("ORD-002" for an order type or time in force the simulator is set not to offer, as
        a venue adapter refuses one; "" otherwise)."""
        config = self.config
        if order.order_type not in config.order_types:
            return f"order type '{order.order_type.value}' is not supported", _UNSUPPORTED
        if order.tif not in config.time_in_force:
            return f"time in force '{order.tif.value}' is not supported", _UNSUPPORTED
        if not config.fractional_qty and order.qty != order.qty.to_integral_value():
            return f"fractional quantity '{order.qty}' is not supported", ""
        needs_limit = order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (order.limit_price is not None) or \
                needs_stop != (order.stop_price is not None):
            return f"prices do not fit order type '{order.order_type.value}'", ""
        if order.symbol in config.reject_symbols:
            return config.reject_reason, ""
        if config.reject_every_nth and number % config.reject_every_nth == 0:
            return config.reject_reason, ""
        if config.reject_probability > 0 and self._rng.random() < config.reject_probability:
            return config.reject_reason, ""
        return "", ""

    def _fill_on_receipt(self, entry: _Order) -> None:
        order = entry.dispatch
        fill_ts = order.ts + max(self.config.ack_latency, self.config.fill_latency)
        quote = self._book.quotes.get(order.symbol)
        if self._day_over(entry, fill_ts if quote is None else max(fill_ts, quote.ts)):
            return
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if quote is None or not self._stop_touched(entry, quote):
                return  # rests until a snapshot touches the stop
            entry.triggered = True
            self._dirty_orders.add(order.client_order_id)
        if quote is None:
            # No market seen for the symbol: nothing to say a limit order could not trade, so
            # it fills at its limit; a market order has no price and waits for a snapshot. Under
            # a participation cap there is no volume to trade against either: it waits too.
            if order.limit_price is not None and self.config.max_participation_pct is None:
                self._execute(entry, order.qty, order.limit_price, fill_ts)
            return
        available = self._volume_left(quote)
        taken = self._trade(entry, quote, available, fill_ts)
        if available is not None:
            self._book.volume_taken[order.symbol] = \
                self._book.volume_taken.get(order.symbol, ZERO) + taken

    def _match_snapshot(self, snapshot: MarketSnapshot) -> None:
        config = self.config
        self._book.volume_taken.pop(snapshot.symbol, None)
        available = self._volume_left(snapshot)
        taken = ZERO
        for entry in self._working_entries(snapshot.symbol):
            order = entry.dispatch
            if order.ts > snapshot.ts:
                continue
            ts = max(snapshot.ts, order.ts + max(config.ack_latency, config.fill_latency))
            if self._day_over(entry, ts):
                continue
            if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and not entry.triggered:
                if not self._stop_touched(entry, snapshot):
                    continue
                entry.triggered = True
                self._dirty_orders.add(order.client_order_id)
            self._dirty_orders.add(order.client_order_id)
            qty = self._trade(entry, snapshot, None if available is None else available - taken,
                              ts)
            taken += qty
        if available is not None:
            self._book.volume_taken[snapshot.symbol] = taken

    def _day_over(self, entry: _Order, ts: datetime) -> bool:
        """Has the trading day of this DAY order ended by `ts` (`follow_sessions`)? It may no
        longer trade then."""
        day_end = self._day_end
        if day_end is None or entry.dispatch.tif is not TimeInForce.DAY:
            return False
        client_id = entry.dispatch.client_order_id
        end = self._day_ends.get(client_id)
        if end is None:
            end = self._day_ends[client_id] = day_end(entry.dispatch.ts)
        return ts >= end

    def _volume_left(self, snapshot: MarketSnapshot) -> Decimal | None:
        """What the participation cap still lets trade on `snapshot` (None: no cap)."""
        pct = self.config.max_participation_pct
        if pct is None:
            return None
        volume = snapshot.volume
        if volume is None or not volume.is_finite() or volume <= 0:
            return ZERO  # unknown or bad volume: nothing can be said to trade
        left = volume * pct / 100 - self._book.volume_taken.get(snapshot.symbol, ZERO)
        return max(left, ZERO)

    def _trade(self, entry: _Order, snapshot: MarketSnapshot, available: Decimal | None,
               ts: datetime) -> Decimal:
        """Trade a working order against `snapshot` (at most `available`), then apply its time
        in force. Returns the quantity filled."""
        order = entry.dispatch
        if reference_price(snapshot) is None:
            return ZERO  # no usable price: the order waits, IOC/FOK included
        price = self._fill_price(order, snapshot)
        remaining = order.qty - entry.filled_qty
        qty = remaining if price is not None else ZERO
        if available is not None:
            qty = min(qty, available)
        if not self.config.fractional_qty:
            qty = qty.to_integral_value(rounding="ROUND_FLOOR")
        if order.tif is TimeInForce.FOK and qty < remaining:
            self._expire(entry, ts, "fill or kill: not fully fillable")
            return ZERO
        if qty > 0 and price is not None:
            self._execute(entry, qty, price, ts)
        else:
            qty = ZERO
        if order.tif is TimeInForce.IOC and entry.status in _WORKING:
            self._expire(entry, ts, "immediate or cancel: remainder canceled")
        return qty

    def _fill_price(self, order: Dispatch, snapshot: MarketSnapshot) -> Decimal | None:
        """The price `order` trades at against `snapshot`, or None if it is not marketable."""
        ref = reference_price(snapshot)
        if ref is None:
            return None
        limit = order.limit_price
        if limit is None:
            return self._slipped(ref, order.side)
        buy = order.side is Side.BUY
        if self.config.fill_model is FillModel.IMMEDIATE:
            # The touch decides and the order gets its own limit, on receipt or resting.
            touch = touch_price(snapshot, order.side)
            if touch is None or (limit < touch if buy else limit > touch):
                return None
            return limit
        if ref > limit if buy else ref < limit:
            return None
        price = self._slipped(ref, order.side)
        return min(price, limit) if buy else max(price, limit)

    def _working_index_built(self) -> dict[str, dict[str, None]]:
        if self._working_index is None:
            index: dict[str, dict[str, None]] = {}
            for client_id, entry in self._book.orders.items():
                if entry.status in _WORKING:
                    index.setdefault(entry.dispatch.symbol, {})[client_id] = None
            self._working_index = index
        return self._working_index

    def _working_entries(self, symbol: str) -> list[_Order]:
        """The symbol's working orders in arrival order; those that stopped working since
        (filled, canceled, rejected) leave the index here."""
        candidates = self._working_index_built().get(symbol)
        if not candidates:
            return []
        orders = self._book.orders
        working: list[_Order] = []
        for client_id in list(candidates):
            entry = orders[client_id]
            if entry.status in _WORKING:
                working.append(entry)
            else:
                del candidates[client_id]
        return working

    def _stop_touched(self, entry: _Order, snapshot: MarketSnapshot) -> bool:
        order = entry.dispatch
        trigger = snapshot.last if _valid_price(snapshot.last) else reference_price(snapshot)
        if trigger is None or order.stop_price is None:
            return False
        return trigger >= order.stop_price if order.side is Side.BUY \
            else trigger <= order.stop_price

    def _slipped(self, ref: Decimal, side: Side) -> Decimal:
        return ref * (1 + side.sign * self.config.slippage_bps / _BPS)

    def _latest_price(self, symbol: str) -> Decimal | None:
        quote = self._book.quotes.get(symbol)
        return reference_price(quote) if quote is not None else None

    def _execute(self, entry: _Order, qty: Decimal, price: Decimal, ts: datetime) -> None:
        order = entry.dispatch
        entry.filled_qty += qty
        entry.filled_value += qty * price
        entry.fills += 1
        entry.last_fill_ts = ts
        if entry.status is not OrderStatus.CANCELED or entry.filled_qty == order.qty:
            entry.status = (OrderStatus.FILLED if entry.filled_qty == order.qty
                            else OrderStatus.PARTIALLY_FILLED)
        self._schedule(Fill(
            ts=ts, client_order_id=order.client_order_id,
            fill_id=fill_id(order.client_order_id, entry.fills), qty=qty, price=price,
            fee=qty * price * self.config.fee_bps / _BPS,
        ))
        holding = self._book.holdings.setdefault(order.account, {}).setdefault(
            order.symbol, _Holding())
        delta = qty * order.side.sign
        new_qty = holding.qty + delta
        if holding.qty == 0 or (holding.qty > 0) == (delta > 0):
            holding.avg_price = (abs(holding.qty) * holding.avg_price + qty * price) / abs(new_qty)
        elif new_qty == 0:
            holding.avg_price = ZERO
        elif (new_qty > 0) != (holding.qty > 0):
            holding.avg_price = price  # flipped through zero: the remainder opened at price
        holding.qty = new_qty

    def _expire(self, entry: _Order, ts: datetime, reason: str) -> None:
        entry.status = OrderStatus.CANCELED
        self._schedule(OrderCanceled(ts=ts, client_order_id=entry.dispatch.client_order_id,
                                     reason=reason))

    # ------------------------------------------------------------ bookkeeping

    def _advance(self, ts: datetime) -> None:
        if self._book.now is None or ts > self._book.now:
            self._book.now = ts

    def _record(self, order: Dispatch, outcome: SubmitOutcome, reason: str = "") -> None:
        self._book.submissions.append(SubmissionAttempt(
            client_order_id=order.client_order_id, ts=order.ts, outcome=outcome, reason=reason))

    def _schedule(self, event: BrokerEvent) -> None:
        self._book.seq += 1
        item = _Pending(ts=event.ts, seq=self._book.seq, event=event)
        pending = self._book.pending
        index = len(pending)
        while index > 0 and (pending[index - 1].ts, pending[index - 1].seq) > (item.ts, item.seq):
            index -= 1
        pending.insert(index, item)
        self._pending_added.append(item)
        self._dirty_orders.add(event.client_order_id)

    def _read_fault(self) -> None:
        faults = self._book.faults
        if faults.fail_next_reads > 0:
            faults.fail_next_reads -= 1
            self._commit()
            raise BrokerUnavailable("simulated read failure", http_status=503)

    @staticmethod
    def _fault_error(faults: SimFaults) -> BrokerError:
        if faults.submit_fault is SubmitFault.RATE_LIMITED:
            return BrokerRateLimited("simulated rate limit", http_status=429,
                                     retry_after_s=faults.retry_after_s)
        if faults.submit_fault is SubmitFault.AUTH:
            return BrokerAuthError("simulated authentication failure", http_status=401)
        return BrokerUnavailable("simulated submit timeout", http_status=504)

    @staticmethod
    def _view(entry: _Order) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=entry.dispatch.client_order_id,
            broker_order_id=entry.broker_order_id, symbol=entry.dispatch.symbol,
            status=entry.status, qty=entry.dispatch.qty, filled_qty=entry.filled_qty,
            avg_fill_price=(STANDARD.divide(entry.filled_value, entry.filled_qty)
                            if entry.filled_qty else None),
            filled_at=entry.last_fill_ts,
        )

    # ------------------------------------------------------------ persistence
    # Incremental: each commit writes the orders that changed, the new submission attempts,
    # the events scheduled or handed out, and one small row of scalars. Restoring reads them
    # back into exactly the same book.

    def _open_state(self, path: str) -> None:
        _refuse_state_file(path)
        try:
            db = sqlite3.connect(path, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SimStateError(f"{path}: {_CANNOT_HOLD}: {exc}") from None
        try:
            rows = self._read_state(path, db)
        except BaseException:
            db.close()
            raise
        self._db = db
        if rows is None:
            self._state_made_now = True
            try:
                self._commit()
            except sqlite3.Error as exc:  # a file it may read but not write, say
                self.close()
                raise SimStateError(f"{path}: {_CANNOT_HOLD}: {exc}") from None
            return
        meta, orders, submissions, pending = rows
        pending.sort(key=lambda item: (item.ts, item.seq))
        self._book = _Book(
            orders={o.dispatch.client_order_id: o for o in orders}, submissions=submissions,
            pending=pending, holdings=meta.holdings, quotes=meta.quotes,
            volume_taken=meta.volume_taken, now=meta.now,
            seq=meta.seq, received=meta.received, faults=meta.faults,
            clock_offset=meta.clock_offset,
        )
        self._saved_submissions = len(submissions)
        self._working_index = None
        if meta.rng_state is not None:
            self._rng.setstate(meta.rng_state)
        log.info("sim_state_restored", path=path, orders=len(orders), pending=len(pending))

    @staticmethod
    def _read_state(path: str, db: sqlite3.Connection) -> tuple[
            _Meta, list[_Order], list[SubmissionAttempt], list[_Pending]] | None:
        """The book saved in the state database `db` (None when it holds none yet), its tables
        made when missing. A database that holds another program's tables (a journal's, say)
        is refused before anything is written into it."""
        try:
            others = sorted(name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")
                if not name.startswith(("sim_", "sqlite_")))
            if others:
                what = ("an ordergate journal" if any(name.startswith("journal_")
                                                      for name in others)
                        else f"a database of something else (tables {', '.join(others[:5])})")
                raise SimStateError(f"{path}: {_CANNOT_HOLD}: it is {what}; give the "
                                    "simulated broker a file of its own (a new one is made "
                                    "when none is there)")
            # WAL with synchronous=NORMAL: a commit survives the death of this process, which
            # is what "the same broker after a restart" needs; power loss is not simulated.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.execute("CREATE TABLE IF NOT EXISTS sim_meta (id INTEGER PRIMARY KEY, "
                           "body BLOB)")
                db.execute("CREATE TABLE IF NOT EXISTS sim_orders (client_order_id TEXT "
                           "PRIMARY KEY, number INTEGER NOT NULL, body BLOB NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS sim_submissions (n INTEGER PRIMARY "
                           "KEY, body BLOB NOT NULL)")
                db.execute("CREATE TABLE IF NOT EXISTS sim_pending (seq INTEGER PRIMARY KEY, "
                           "body BLOB NOT NULL)")
            row = db.execute("SELECT body FROM sim_meta WHERE id = 1").fetchone()
            if row is None:
                return None
            meta = msgspec.json.decode(row[0], type=_Meta)
            orders = [msgspec.json.decode(body, type=_Order) for (body,) in db.execute(
                "SELECT body FROM sim_orders ORDER BY number")]
            submissions = [msgspec.json.decode(body, type=SubmissionAttempt) for (body,) in
                           db.execute("SELECT body FROM sim_submissions ORDER BY n")]
            pending = [msgspec.json.decode(body, type=_Pending) for (body,) in db.execute(
                "SELECT body FROM sim_pending")]
        except sqlite3.Error as exc:
            raise SimStateError(f"{path}: {_CANNOT_HOLD}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise BrokerError(f"{path}: simulator state is unreadable: {exc}") from exc
        return meta, orders, submissions, pending

    def _commit(self) -> None:
        book = self._book
        if self._db is None:
            self._dirty_orders.clear()
            self._pending_added.clear()
            self._pending_removed.clear()
            return
        meta = _Meta(holdings=book.holdings, quotes=book.quotes,
                     volume_taken=book.volume_taken, now=book.now, seq=book.seq,
                     received=book.received, rng_state=self._rng.getstate(), faults=book.faults,
                     clock_offset=book.clock_offset)
        encode = msgspec.json.encode
        with self._db as db:
            db.execute("INSERT OR REPLACE INTO sim_meta (id, body) VALUES (1, ?)",
                       (encode(meta),))
            db.executemany(
                "INSERT OR REPLACE INTO sim_orders (client_order_id, number, body) "
                "VALUES (?, ?, ?)",
                [(cid, book.orders[cid].number, encode(book.orders[cid]))
                 for cid in sorted(self._dirty_orders)])
            db.executemany(
                "INSERT INTO sim_submissions (n, body) VALUES (?, ?)",
                [(n, encode(book.submissions[n]))
                 for n in range(self._saved_submissions, len(book.submissions))])
            db.executemany("INSERT INTO sim_pending (seq, body) VALUES (?, ?)",
                           [(item.seq, encode(item)) for item in self._pending_added])
            db.executemany("DELETE FROM sim_pending WHERE seq = ?",
                           [(seq,) for seq in self._pending_removed])
        self._saved_submissions = len(book.submissions)
        self._dirty_orders.clear()
        self._pending_added.clear()
        self._pending_removed.clear()
