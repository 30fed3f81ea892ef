"""The engine's state and its `GateView`.

Aggregates are maintained incrementally so every view method is O(1) or O(log n): each
(account, symbol) `Book` caches its contribution to the account's exposure, market value
and unrealized PnL, and any change to its position, working quantity or mark replaces that
contribution in the account totals. `holders` indexes which accounts have a book in a
symbol, so a market update touches only those.

Nothing here reads a clock: `now` is the timestamp of the event being handled and never
goes backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from ordergate.engine.ids import PREFIX, derive_client_order_id
from ordergate.engine.modes import ModeGuard
from ordergate.engine.records import (
    AccountRecord,
    Book,
    FillSeen,
    Ladder,
    OrderRecord,
    OrderStatus,
    limit_resting_price,
    resting_price,
)
from ordergate.engine.retention import RetainedMap, RetainedSet
from ordergate.engine.windows import EPOCH, DuplicateWindow, RateWindows, WindowKind
from ordergate.gate.exposure import reference_price
from ordergate.gate.rules.integrity import invalid_fields
from ordergate.gate.view import (
    ActiveReason,
    ExposureTotals,
    IntentQuery,
    IntentReads,
    RateScope,
)
from ordergate.model.decision import Decision
from ordergate.model.events import FirmRateLimited, FirmState, KillScope
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import ZERO

# The engine's behaviour epoch: what it does with inputs it was written for. A journal replays
# under the behaviour it was written with: an engine starts at 1 and only a journaled
# `EngineUpgrade` raises it (the runtime journals one at start-up, `runtime.loop`), so an
# input journaled before a change of behaviour is decided again as it was then.
#   1: the behaviour before epochs were journaled. A limit or stop-limit order rests at its
#      limit as soon as it is accepted, nothing else rests (`limit_resting_price`);
#      re-enabling a strategy keeps its fill history; `self_match: cancel_resting` cancels
#      without a note on the decision.
#   2: an untriggered stop or stop-limit does not rest, one known triggered (a fill) rests at
#      its limit or as a market order, and a working market order rests at +infinity / 0
#      (`resting_price`); re-enabling a strategy restarts its repeated-execution count
#      (`forget_fills`); an intent allowed under `cancel_resting` names the orders it
#      cancels in an ORD-010 violation (`core.with_self_match_cancels`).
#   3: a fill is checked against its own order and the market (`lifecycle.on_fill`): one
#      past its order's limit price (a critical Alert, however little: a part-fill priced
#      from the venue's rounded averages is kept within the limit where it is derived,
#      `brokers.labels.within_limit`), or more than ten times above or below the symbol's
#      mark, is booked with an Alert (FILL_PRICE); a fill id seen again for another order,
#      or with another quantity or price, is booked as the new execution it is and raises
#      SYS-009 like an over-fill, where behaviour 2 dropped it as a redelivery
#      (`fill_contents`).
#   4: the age of a `market_hours` symbol's market data counts only the time its market has
#      been open (`core.Engine.staleness`): a clock tick while it is closed raises no SYS-002
#      (behaviour 3 tightened the mode overnight for a position held after the close), and
#      from the open the age is the time since the open until a quote arrives.
#   5: a dependency reason cleared by a healthy DependencyStatus that only marks it reported
#      (`model.reasons.REPORTED`, a trade bust) raises no Alert (behaviour 4 said it was
#      healthy again), and any other clearance's info Alert says what the dependency said and,
#      while the mode stays held, until when (`core.Engine._answered_words`).
#      A monitor-mode policy's `cancel_rate` refuses no cancel and its `drawdown_kill` halts
#      nothing; an Alert says what each would have done (`core.Engine._drawdown_would_halt`).
#      Activating a policy checks every funded account's drawdown under it at once
#      (`core.Engine.activate`), so an enforcing drawdown_kill already exceeded (a monitor
#      policy made enforcing, a lower max_drawdown_pct) halts then; behaviour 4 waited for
#      the next mark change or fill.
#      An account event for an account already funded moves its cash and shifts its day-start
#      equity and high-water mark by the same change (money moved is no profit or loss), with
#      an info Alert, unless the event gives them (`EngineState.fund`); behaviour 4 started
#      both again at the new equity on every account event, wiping the day's loss.
#      The engine's sums and products are exact (`model.values.EXACT`, set by
#      `core.Engine.handle`): behaviour 4 rounded them to 28 digits, so a figure of 10**29
#      swallowed an account's smaller exposure for good, and an order worth
#      1,000,000.0000000000000000000002 passed a 1,000,000 cap; divisions (remainders and
#      percentages too) keep 28 digits. A percentage too large for evidence's 4 places is
#      written out whole, where behaviour 4 denied the intent SYS-008 (`gate.context.pct_text`).
ENGINE_BEHAVIOUR = 5


def too_new(behaviour: int) -> str:
    return (f"engine behaviour {behaviour}: written by a newer version of ordergate (this one "
            f"knows behaviours 1 to {ENGINE_BEHAVIOUR}); open it with the version that wrote it")


class EngineTooNew(Exception):
    """A journal or snapshot names an engine behaviour this version does not know: a newer
    version wrote it. Not a ValueError, so the engine never quarantines it as a bad input
    (that would halt and go on, appending to the newer version's journal): whatever opens
    or replays the journal stops, saying so."""
# where each behaviour puts a working order on its account's ladder (None: not on it)
_RESTING_PRICES: dict[int, Callable[[OrderRecord], Decimal | None]] = {
    1: limit_resting_price,
    2: resting_price,
    3: resting_price,
    4: resting_price,
    5: resting_price,
}

# Condition keys whose codes the gate sees as integrity reasons (global fail-closed
# conditions). Data faults are per symbol: the gate checks the symbol's own snapshot.
INTEGRITY_PREFIXES = ("dependency:", "reconciliation:", "config:")

_RATE_KIND = {
    RateScope.GLOBAL: WindowKind.GLOBAL,
    RateScope.ACCOUNT: WindowKind.ACCOUNT,
    RateScope.STRATEGY: WindowKind.STRATEGY,
    RateScope.SYMBOL: WindowKind.SYMBOL,
}

# the mid of a quote, as `gate.exposure.reference_price` computes it
_HALF = Decimal("0.5")

_NO_EXPOSURE = ExposureTotals(gross=ZERO, net_long=ZERO, net_short=ZERO)


def kill_key(scope: KillScope, key: str) -> str:
    return f"{scope.value}:{'' if scope is KillScope.FIRM else key}"


class OrderIdInUse(ValueError):
    """An order was to be added under a client order id already working: the engine never
    sends a second order under one id (the gate denies it, DUP-001; flatten picks a free id).
    A ValueError, so the engine answers the event that led here by halting (`Engine.handle`)
    instead of tracking two orders as one."""


class KillRecord(msgspec.Struct, frozen=True, kw_only=True):
    scope: KillScope
    key: str
    operator: str
    reason: str
    since: datetime


class DisabledStrategy(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    strategy: str
    fills: int
    window: timedelta
    since: datetime


class EngineState:
    """Everything the engine knows. Implements `ordergate.gate.view.ScreenedView` (a
    `GateView` with `read_intent`)."""

    def __init__(self) -> None:
        self.clock: datetime = EPOCH
        self.started = False
        # the behaviour epoch (`ENGINE_BEHAVIOUR`) and its resting price, set together by
        # `set_behaviour`: the hot path calls the one function, never asks the epoch
        self.behaviour = 1
        self.resting_price = _RESTING_PRICES[1]
        self.guard = ModeGuard()
        self.kills: dict[str, KillRecord] = {}
        self.disabled: dict[tuple[str, str], DisabledStrategy] = {}
        self.markets: dict[str, MarketSnapshot] = {}
        self.marks: dict[str, Decimal] = {}
        self.books: dict[tuple[str, str], Book] = {}
        self.holders: dict[str, dict[str, None]] = {}
        self.accounts: dict[str, AccountRecord] = {}
        self.open_orders: dict[str, OrderRecord] = {}
        self.done: RetainedMap[str, OrderRecord] = RetainedMap()
        # (account, strategy, intent_id) of every order in open_orders or done whose client
        # order id is the one derived from them, to that id: the gate asks whether an intent
        # without a client order id would reuse one (DUP-001) without hashing its key
        self.derived_ids: dict[tuple[str, str, str], str] = {}
        # ids in open_orders or done that look derived but are not derived from their own
        # order's key (explicit "og-" ids, refused since; only old journals hold them): while
        # any is held, an intent's derived id is computed and looked up instead
        self.foreign_derived_ids: dict[str, None] = {}
        self.ladders: dict[tuple[str, str], Ladder] = {}
        self.windows = RateWindows()
        self.duplicates = DuplicateWindow()
        self.fill_ids: RetainedSet[str] = RetainedSet()
        # what each fill id said, for the fills booked under behaviour 3 on: a redelivery
        # repeats one of them, a reused id says something else (`lifecycle.on_fill`)
        self.fill_contents: RetainedMap[str, tuple[FillSeen, ...]] = RetainedMap()
        self.decided: RetainedMap[tuple[str, str, str], Decision] = RetainedMap()
        # the intent each decision answered: a retry repeats it, a different intent under
        # the same intent_id is refused (DUP-003)
        self.decided_intents: RetainedMap[tuple[str, str, str], OrderIntent] = RetainedMap()
        # limits hashes already journaled in a LimitsRecord (each value is journaled once)
        self.limits_journaled: dict[str, None] = {}
        self.counters: dict[str, int] = {}
        self.next_roll_at: datetime | None = None
        # trading days rolled by this process (not in snapshots): the shell compares it
        # before and after a batch to run the session close; `next_roll_at` also moves
        # when a policy changes the day-roll calendar, which closes no session
        self.days_rolled = 0
        self.flatten_seq = 0
        # the firm-wide store's last journaled answer; None until a gateway journals one
        self.firm: FirmState | None = None
        # firm-rate refusals waiting for their intent (journaled right before it)
        self.firm_rate_limited: dict[tuple[str, str, str], FirmRateLimited] = {}
        # `account`'s last answer per account, with the record values it was built from
        self._account_marks: dict[
            str, tuple[Decimal, Decimal, Decimal, Decimal, Decimal, AccountState]
        ] = {}

    # ------------------------------------------------------------------ GateView

    @property
    def now(self) -> datetime:
        return self.clock

    @property
    def mode(self) -> Mode:
        return self.guard.mode

    def integrity_reasons(self) -> tuple[ActiveReason, ...]:
        if not self.guard.any():
            return ()  # asked for every intent; almost always nothing is listed
        return tuple(
            ActiveReason(code=condition.code, detail=condition.detail, actor=condition.actor,
                         since=condition.since)
            for condition in self.guard.conditions()
            if condition.key.startswith(INTEGRITY_PREFIXES)
        )

    def operator_kill(self, account: str, strategy: str, symbol: str) -> bool:
        kills = self.kills
        if not kills:
            return False
        return (
            kill_key(KillScope.FIRM, "") in kills
            or kill_key(KillScope.ACCOUNT, account) in kills
            or kill_key(KillScope.STRATEGY, strategy) in kills
            or kill_key(KillScope.SYMBOL, symbol) in kills
        )

    def firm_kill(self) -> bool:
        # The shared (cross-gateway) kill switch lives in Redis; it reaches the engine only
        # as journaled FirmState events.
        firm = self.firm
        return firm is not None and firm.kill

    def market(self, symbol: str) -> MarketSnapshot | None:
        return self.markets.get(symbol)

    def account(self, account: str) -> AccountState | None:
        record = self.accounts.get(account)
        if record is None:
            return None
        # The marks as the last answer gave them, while the record still holds the very same
        # values (Decimals are immutable and every change assigns a new one; equity is cash +
        # market_value): the gate asks for every intent, and the marks move far less often.
        # One tuple, replaced whole, so a reader on another thread never mixes two answers.
        cash, market_value = record.cash, record.market_value
        day_start, high_water, realized = (
            record.day_start_equity, record.high_water_mark, record.realized_pnl
        )
        known = self._account_marks.get(account)
        if (
            known is not None and known[0] is cash and known[1] is market_value
            and known[2] is day_start and known[3] is high_water and known[4] is realized
        ):
            return known[5]
        marks = AccountState(
            account=record.account,
            cash=cash,
            equity=record.equity,
            day_start_equity=day_start,
            high_water_mark=high_water,
            realized_pnl=realized,
        )
        self._account_marks[account] = (cash, market_value, day_start, high_water, realized, marks)
        return marks

    def position(self, account: str, symbol: str) -> Decimal:
        book = self.books.get((account, symbol))
        return ZERO if book is None else book.qty

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        book = self.books.get((account, symbol))
        return (ZERO, ZERO) if book is None else (book.working_buy, book.working_sell)

    def exposure(self, account: str) -> ExposureTotals:
        record = self.accounts.get(account)
        if record is None:
            return _NO_EXPOSURE
        return ExposureTotals(
            gross=record.gross, net_long=record.net_long, net_short=record.net_short
        )

    def order_count(self, scope: RateScope, key: str, window: timedelta) -> int:
        return self.windows.count(_RATE_KIND[scope], key, self.clock, window)

    def cancel_count(self, account: str, window: timedelta) -> int:
        return self.windows.count(WindowKind.CANCEL, account, self.clock, window)

    def client_order_id_seen(self, client_order_id: str) -> bool:
        return client_order_id in self.open_orders or client_order_id in self.done

    def fingerprint_seen(self, fingerprint: str, window: timedelta) -> bool:
        return self.duplicates.seen(fingerprint, self.clock, window)

    def resting_prices(self, account: str, symbol: str, side: Side | None = None
                       ) -> tuple[Decimal | None, Decimal | None]:
        ladder = self.ladders.get((account, symbol))
        return (None, None) if ladder is None else ladder.best(side)

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        return (account, strategy) in self.disabled

    def shared_exposure_gross(self) -> Decimal | None:
        # The other shards' gross as last journaled, plus this shard's own, always current.
        firm = self.firm
        if firm is None:
            return None
        own = sum((record.gross for record in self.accounts.values()), ZERO)
        return firm.gross_exposure + own

    def derived_id_in_use(self, intent: OrderIntent) -> bool:
        """`client_order_id_seen` of the id derived for `intent` (which names none), answered
        from `derived_ids` instead of hashing the intent's key."""
        if self.foreign_derived_ids:
            return self.client_order_id_seen(
                derive_client_order_id(intent.account, intent.strategy, intent.intent_id))
        return (intent.account, intent.strategy, intent.intent_id) in self.derived_ids

    def client_order_id_in_use(self, intent: OrderIntent) -> bool:
        """`client_order_id_seen` of the id the intent's order would get: its own, or the one
        derived from (account, strategy, intent_id)."""
        client_order_id = intent.client_order_id
        if client_order_id is None:
            return self.derived_id_in_use(intent)
        return client_order_id in self.open_orders or client_order_id in self.done

    def read_intent(
        self, intent: OrderIntent, fingerprint: str, query: IntentQuery
    ) -> IntentReads:
        """`ScreenedView.read_intent`: the methods above for one intent, in one call."""
        account, strategy, symbol = intent.account, intent.strategy, intent.symbol
        want_account, want_exposure, want_resting, want_firm_gross = query[:4]
        duplicate_span = query.duplicate_span
        clock = self.clock
        book = self.books.get((account, symbol))
        if book is None:
            position = working_buy = working_sell = ZERO
        else:
            position, working_buy, working_sell = book.qty, book.working_buy, book.working_sell
        count_global, count_account, count_strategy, count_symbol = self.windows.order_counts(
            account, strategy, symbol, clock, query)
        client_order_id = intent.client_order_id
        resting_buy = resting_sell = None
        if want_resting:
            ladder = self.ladders.get((account, symbol))
            if ladder is not None:
                resting_buy, resting_sell = ladder.best(intent.side)
        guard = self.guard
        firm = self.firm
        return (
            clock, guard.mode, self.integrity_reasons() if guard.any() else (),
            bool(self.kills) and self.operator_kill(account, strategy, symbol),
            firm is not None and firm.kill, self.markets.get(symbol),
            self.account(account) if want_account else None,
            position, working_buy, working_sell,
            self.exposure(account) if want_exposure else None,
            count_global, count_account, count_strategy, count_symbol,
            (client_order_id in self.open_orders or client_order_id in self.done)
            if client_order_id is not None else self.derived_id_in_use(intent),
            query.duplicate_window is not None
            and self.duplicates.seen_within(fingerprint, clock, duplicate_span),
            resting_buy, resting_sell,
            bool(self.disabled) and (account, strategy) in self.disabled,
            self.shared_exposure_gross() if want_firm_gross else None,
        )

    # ------------------------------------------------------------------ time

    def advance(self, ts: datetime) -> None:
        """Move event time forward; an older timestamp keeps `now`."""
        if not self.started or ts > self.clock:
            self.clock = ts
            self.started = True

    # ------------------------------------------------------------------ accounts and books

    def account_record(self, account: str) -> AccountRecord:
        record = self.accounts.get(account)
        if record is None:
            record = self.accounts[account] = AccountRecord(account=account)
        return record

    def book(self, account: str, symbol: str) -> Book:
        key = (account, symbol)
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = Book(account=account, symbol=symbol)
            self.holders.setdefault(symbol, {})[account] = None
            self.account_record(account)
        return book

    def _drop_book_if_empty(self, book: Book) -> None:
        if not book.empty:
            return
        del self.books[(book.account, book.symbol)]
        holders = self.holders[book.symbol]
        del holders[book.account]
        if not holders:
            del self.holders[book.symbol]

    def refresh(self, book: Book) -> AccountRecord:
        """Recompute one book's contributions at the current mark and replace them in its
        account's totals; raise the high-water mark if equity made a new high."""
        mark = self.marks.get(book.symbol)
        if mark is None:
            # No trustworthy mark yet: value at the position's own entry price.
            mark = book.avg_price
        qty = book.qty
        # `gate.exposure.symbol_exposure`, inlined: this runs for every holder on every
        # mark change, and the struct it builds would be thrown away at once
        long_side = qty + book.working_buy
        short_side = qty - book.working_sell
        # max(abs(long_side), abs(short_side)) without the call: the first of equals wins,
        # as with max, so the result keeps the same exponent (snapshots compare bytes)
        larger = abs(long_side)
        other = abs(short_side)
        if other > larger:
            larger = other
        gross = larger * mark
        net_long = long_side * mark
        net_short = short_side * mark
        market_value = qty * mark
        unrealized = qty * (mark - book.avg_price) if qty else ZERO
        record = self.accounts[book.account]
        record.gross += gross - book.gross
        record.net_long += net_long - book.net_long
        record.net_short += net_short - book.net_short
        record.market_value += market_value - book.market_value
        record.unrealized_pnl += unrealized - book.unrealized
        book.gross, book.net_long, book.net_short = gross, net_long, net_short
        book.market_value, book.unrealized = market_value, unrealized
        equity = record.cash + record.market_value
        if equity > record.high_water_mark:
            record.high_water_mark = equity
        if not qty and book.empty:
            self._drop_book_if_empty(book)
        return record

    def fund(self, account: str, cash: Decimal) -> AccountRecord:
        """Set an account's cash. The first time (and for every account event before behaviour
        5) the day-start equity and high-water mark start at the equity this leaves. Once the
        account is funded, under behaviour 5 on, money moved in or out is no profit or loss:
        both marks move by the change, so the day's PnL and the drawdown stay as they were."""
        record = self.account_record(account)
        if record.funded and self.behaviour >= 5:
            moved = cash - record.cash
            record.cash = cash
            record.day_start_equity += moved
            record.high_water_mark += moved
            return record
        record.cash = cash
        record.funded = True
        record.day_start_equity = record.equity
        record.high_water_mark = record.equity
        return record

    def roll_day(self) -> None:
        self.days_rolled += 1
        for record in self.accounts.values():
            record.day_start_equity = record.equity
        # two trading days of history: see engine/retention.py
        for order in self.done.rotate().values():
            self._forget_id(order)
        self.fill_ids.rotate()
        self.fill_contents.rotate()
        self.decided.rotate()
        self.decided_intents.rotate()

    # ------------------------------------------------------------------ market

    def set_market(self, snapshot: MarketSnapshot) -> tuple[str, list[AccountRecord]]:
        """Store the snapshot; on a valid one, revalue every account holding the symbol at
        the gate's reference price (the same mark the gate projects with).
        Returns the fault ("" when valid) and the accounts revalued."""
        symbol = snapshot.symbol
        self.markets[symbol] = snapshot
        bid, ask, last, volume = snapshot.bid, snapshot.ask, snapshot.last, snapshot.volume
        if (
            bid is not None and ask is not None and bid.is_finite() and ask.is_finite()
            and ZERO < bid <= ask and (last is None or (last.is_finite() and last > ZERO))
            and (volume is None or (volume.is_finite() and volume >= ZERO))
        ):
            # a clean two-sided quote, the usual snapshot: `invalid_fields` would find
            # nothing and `reference_price` would answer the mid
            mark = (bid + ask) * _HALF
        else:
            fault = invalid_fields(snapshot)
            if fault:
                return fault, []
            found = reference_price(bid, ask, last)
            if found is None:
                return "", []
            mark = found
        marks = self.marks
        if marks.get(symbol) == mark:
            return "", []
        marks[symbol] = mark
        holders = self.holders.get(symbol)
        if not holders:
            return "", []
        books = self.books
        refresh = self.refresh
        return "", [refresh(books[(account, symbol)]) for account in list(holders)]

    # ------------------------------------------------------------------ orders

    def ladder(self, account: str, symbol: str) -> Ladder | None:
        return self.ladders.get((account, symbol))

    def add_order(self, order: OrderRecord, *, derived: bool = False) -> AccountRecord:
        """Accept an order: it is working and its quantity is reserved from now on.
        `derived`: its client order id is the one derived from its own (account, strategy,
        intent_id), as the caller knows (otherwise an "og-" id is checked)."""
        client_order_id = order.client_order_id
        if client_order_id in self.open_orders:
            raise OrderIdInUse(
                f"client_order_id {client_order_id}: an order is already working under it "
                f"(intent {self.open_orders[client_order_id].intent_id}); intent "
                f"{order.intent_id} was not sent")
        self.open_orders[client_order_id] = order
        self._track_id(order, derived)
        book = self.book(order.account, order.symbol)
        if order.side is Side.BUY:
            book.working_buy += order.remaining
        else:
            book.working_sell += order.remaining
        self.rest(order)
        return self.refresh(book)

    def release(self, order: OrderRecord, qty: Decimal) -> Book:
        """Take `qty` (at most the remaining) off the order's reservation; close the order
        bookkeeping when nothing remains. The caller refreshes the book."""
        qty = min(qty, order.remaining)
        order.remaining -= qty
        book = self.book(order.account, order.symbol)
        if order.side is Side.BUY:
            book.working_buy -= qty
        else:
            book.working_sell -= qty
        return book

    def close(self, order: OrderRecord, status: OrderStatus) -> AccountRecord:
        """Move a working order to the done set with its final status, freeing whatever of
        its reservation remains."""
        book = self.release(order, order.remaining)
        order.status = status
        del self.open_orders[order.client_order_id]
        self.done[order.client_order_id] = order
        price = self.resting_price(order)
        if price is not None:
            # absent when the fill that proved a stop triggered also completed it
            key = (order.account, order.symbol)
            ladder = self.ladders.get(key)
            if ladder is not None:
                ladder.remove(order.side, price, order.client_order_id)
                if not ladder:
                    del self.ladders[key]
        return self.refresh(book)

    def rest(self, order: OrderRecord) -> None:
        """Put a working order on its account's ladder at its resting price, if it has one
        (once: on acceptance, on restore, or when a stop's first fill shows it triggered)."""
        price = self.resting_price(order)
        if price is None:
            return
        key = (order.account, order.symbol)
        ladder = self.ladders.get(key)
        if ladder is None:
            ladder = self.ladders[key] = Ladder()
        ladder.add(order.side, price, order.client_order_id)

    def _track_id(self, order: OrderRecord, derived: bool) -> None:
        """Index an order entering open_orders (or restored into done) in `derived_ids`."""
        client_order_id = order.client_order_id
        if not derived:
            if not client_order_id.startswith(PREFIX):
                return
            derived = client_order_id == derive_client_order_id(
                order.account, order.strategy, order.intent_id)
        if derived:
            self.derived_ids[(order.account, order.strategy, order.intent_id)] = client_order_id
        else:
            self.foreign_derived_ids[client_order_id] = None

    def _forget_id(self, order: OrderRecord) -> None:
        """An order left done for good (its generation rotated out): unindex its id."""
        client_order_id = order.client_order_id
        if client_order_id in self.open_orders:
            return  # the same id working again (only an old journal's duplicate): still used
        key = (order.account, order.strategy, order.intent_id)
        if self.derived_ids.get(key) == client_order_id:
            del self.derived_ids[key]
        else:
            self.foreign_derived_ids.pop(client_order_id, None)

    def rebuild_order_ids(self) -> None:
        """`derived_ids` and `foreign_derived_ids` from open_orders and done (a restore)."""
        self.derived_ids.clear()
        self.foreign_derived_ids.clear()
        for orders in (self.done.previous, self.done.current, self.open_orders):
            for order in orders.values():
                self._track_id(order, False)

    def forget_fills(self, key: str) -> None:
        """Drop the fill series of one "account|strategy" key (`lifecycle.fill_key`): an
        operator re-enabled the strategy, so its repeated-execution count starts from zero.
        The series is part of `windows`' snapshot image, so a restored engine has it dropped
        too."""
        self.windows.drop(WindowKind.FILL, key)

    def set_behaviour(self, behaviour: int) -> None:
        """Run under behaviour epoch `behaviour` (`ENGINE_BEHAVIOUR`) from now on: its resting
        semantics are chosen once here and the ladders rebuilt under them."""
        if behaviour not in _RESTING_PRICES:
            raise EngineTooNew(too_new(behaviour))
        self.behaviour = behaviour
        self.resting_price = _RESTING_PRICES[behaviour]
        self.rebuild_ladders()

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def rebuild_ladders(self) -> None:
        self.ladders.clear()
        for order in self.open_orders.values():
            self.rest(order)
