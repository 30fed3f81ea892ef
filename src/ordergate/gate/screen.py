"""The screen of a compiled plan: the context, and which rows could break for this intent.

Most intents break nothing, and for them the rule loop was the gate's cost: a Python call per
row, each reading its limit through two attribute lookups and recomputing what its
neighbours computed. `screen` reads the view as `build_context` does, into locals, and asks
every row's "could this break?" question inline, on those locals and on limits taken out of
`ResolvedLimits` once, when the plan is compiled (`ScreenLimits`). It returns the context
and the rows whose question it could not answer "no"; the gate runs only those rows' checks,
which build the violations (or find nothing broke after all). A clean intent costs one call
and no Violation; a denied one runs only the rules that break.

The promises, each held by a property test (tests/gate/test_screen.py) over generated worlds
and limits placed on the boundaries:
* the context equals `build_context`'s, digit for digit;
* soundness: a row the screen leaves out returns None for that context. Each test below is
  its rule's own "return None" condition, as `not (<condition>)`, with the same Decimal
  expressions on the same operands, so no rounding and no raised InvalidOperation can
  differ; where two rules or the context compute the same expression it is computed once;
* so a screened plan decides byte for byte as the full table (tests/gate/test_plan.py too).

Rows that break for every intent under their limits (policy kill switch, a required but
missing instrument, no max_market_data_age, a restricted symbol, not a canary) have no
screen: a plan with one of them checks every row (`plan.Plan.screen` is None).
"""
from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from ordergate.gate.context import (
    HUNDRED,
    ZERO,
    RuleContext,
    fingerprint,
)
from ordergate.gate.rules import (
    clock,
    duplicate,
    exposure,
    hours,
    integrity,
    kill,
    liquidity,
    loss,
    mode,
    sanity,
    throttle,
)
from ordergate.gate.table import RULES, Check, Rule
from ordergate.gate.view import ExposureTotals, IntentQuery, ScreenedView, intent_query
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import QUOTIENT
from ordergate.policy.limits import RateLimit, ResolvedLimits, SelfMatch, TradingSessions

Row = tuple[Check, Rule]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
# Enum members bound once: reading a member off its Enum class costs ~0.2 µs on CPython 3.11.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_HALTED = Mode.HALTED
_REDUCE_ONLY = Mode.REDUCE_ONLY
_HALF = Decimal("0.5")  # `gate.exposure.reference_price`'s mid
# a remainder is a division: 28 digits in any behaviour, as `rules.sanity` takes it
_remainder = QUOTIENT.remainder


def _row(check: Check) -> Row:
    """The table's row for a rule function (a function has exactly one row)."""
    (rule,) = (rule for rule in RULES if rule.check is check)
    return check, rule


_KIL_002 = _row(kill.operator_kill_switch)
_KIL_003 = _row(kill.firm_kill_switch)
_MOD_001 = _row(mode.halted)
_MOD_002 = _row(mode.reduce_only)
_SYS_001 = _row(integrity.market_data_missing)
_SYS_002 = _row(integrity.market_data_stale)
_SYS_003 = _row(integrity.market_data_invalid)
_SYS_005_MARKS = _row(integrity.account_marks_missing)
_SYS_008 = _row(integrity.risk_inputs_invalid)
_CLK_001 = _row(clock.intent_timestamp_skew)
_LOS_001 = _row(loss.daily_loss_limit)
_LOS_002 = _row(loss.daily_loss_pct)
_LOS_003 = _row(loss.max_drawdown)
_DUP_001 = _row(duplicate.duplicate_client_order_id)
_DUP_002 = _row(duplicate.duplicate_order)
_ORD_001 = _row(sanity.order_type_not_allowed)
_ORD_003 = _row(sanity.price_missing)
_ORD_004 = _row(sanity.price_tick)
_ORD_005 = _row(sanity.qty_lot)
_ORD_006 = _row(sanity.max_order_qty)
_ORD_007 = _row(sanity.max_order_value)
_ORD_008 = _row(sanity.price_collar)
_ORD_010 = _row(sanity.self_match)
_ORD_011 = _row(sanity.reduce_only_would_increase)
_THR_001 = _row(throttle.rate_global)
_THR_002 = _row(throttle.rate_account)
_THR_003 = _row(throttle.rate_strategy)
_THR_004 = _row(throttle.rate_symbol)
_THR_006 = _row(throttle.strategy_disabled)
_EXP_001 = _row(exposure.position_qty_cap)
_EXP_002 = _row(exposure.position_value_cap)
_EXP_003 = _row(exposure.gross_exposure_cap)
_EXP_004 = _row(exposure.net_exposure_cap)
_EXP_005 = _row(exposure.firm_gross_exposure_cap)
_LIQ_001 = _row(liquidity.volume_participation)
_MKT_001 = _row(hours.market_closed)

# The rows a screen never asks about: under limits where they apply they break every intent.
ALWAYS_BREAK: frozenset[Check] = frozenset({
    kill.policy_kill_switch, integrity.instrument_unknown, integrity.market_data_age_missing,
    sanity.restricted_symbol, hours.canary_not_allowed,
})


class SessionClock:
    """`hours.market_closed`'s "is the market open at `now`", remembering the last open span.

    The rule bisects the session opens on the epoch second of `now` and is open when that
    second is before the found session's close. Every second from that open up to the next
    open or the close, whichever is first, bisects to the same session and is before its
    close, so the answer is the same for any `now` in the span: two datetime comparisons.
    The span is one tuple, replaced whole, so a reader never sees half of an update."""

    __slots__ = ("_open", "sessions")

    def __init__(self, sessions: TradingSessions) -> None:
        self.sessions = sessions
        self._open: tuple[datetime, datetime] = (_EPOCH, _EPOCH)  # an empty span

    def is_open(self, now: datetime) -> bool:
        open_from, open_until = self._open
        if open_from <= now < open_until:
            return True
        epoch_seconds = (now - _EPOCH) // _ONE_SECOND
        opens, closes = self.sessions.opens, self.sessions.closes
        index = bisect_right(opens, epoch_seconds) - 1
        if not (index >= 0 and epoch_seconds < closes[index]):
            return False
        until = closes[index]
        if index + 1 < len(opens) and opens[index + 1] < until:
            until = opens[index + 1]
        self._open = (
            _EPOCH + timedelta(seconds=opens[index]), _EPOCH + timedelta(seconds=until)
        )
        return True


# What one market snapshot tells every intent, whatever its limits: the snapshot, the valid
# two-sided quote `reference_price` prefers as (bid, ask, mid) or None, the reference price,
# whether `integrity.market_data_invalid` breaks on it, and its volume when that is finite and
# positive (what `liquidity.volume_participation` can judge by) else None. A plain tuple: it
# is built whenever a snapshot is first judged.
MarketFacts = tuple[
    MarketSnapshot, tuple[Decimal, Decimal, Decimal] | None, Decimal | None, bool,
    Decimal | None,
]


def market_facts(snapshot: MarketSnapshot) -> MarketFacts:
    """The `MarketFacts` of a snapshot, with the rules' own expressions. The screen works them
    out where it first needs the snapshot, as it always did, so the one thing here that can
    raise (the mid of a quote so large it overflows) raises at the same point."""
    bid, ask, last, volume = snapshot.bid, snapshot.ask, snapshot.last, snapshot.volume
    # `reference_price`, inlined: `quote` is the valid two-sided quote it prefers
    quote: tuple[Decimal, Decimal, Decimal] | None = None
    reference: Decimal | None = None
    if (
        bid is not None and ask is not None and bid.is_finite() and ask.is_finite()
        and ZERO < bid <= ask
    ):
        reference = (bid + ask) * _HALF
        quote = bid, ask, reference
    elif last is not None and last.is_finite() and last > ZERO:
        reference = last
    # a valid two-sided quote already passed the tests on bid and ask
    invalid = not (
        (quote is not None or (
            (bid is None or (bid.is_finite() and bid > ZERO))
            and (ask is None or (ask.is_finite() and ask > ZERO))
            and (bid is None or ask is None or bid <= ask)
        ))
        and (last is None or (last.is_finite() and last > ZERO))
        and (volume is None or (volume.is_finite() and volume >= ZERO))
    )
    usable_volume = (
        None if volume is None or not volume.is_finite() or volume <= ZERO else volume
    )
    return snapshot, quote, reference, invalid, usable_volume


# `MarketFacts` by symbol, each kept while the view returns that same snapshot object (a
# snapshot is immutable, and the memo holds it so its identity cannot be reused). Most
# intents of a symbol meet the snapshot the previous one met, and the facts were a sizeable
# part of the screen; they do not depend on limits, so the plans of one `PlanCache` share a
# memo. Replacing an entry is one store, so a reader on another thread sees the old facts
# or the new, never half.
MarketMemo = dict[str, MarketFacts]
# The loss and drawdown rows that break (`_loss_rows`) by account, each kept with the equity
# marks and the three loss limits they were worked out on, while the view returns that same
# marks object and the plan holds those same limit objects (each immutable, and held by the
# entry so no identity is reused). The engine's state answers the same marks object until
# one of its values changes (`EngineState.account`), and the loss rows were a sizeable part
# of the screen; the plans of one `PlanCache` share the memo, and the plans of one account
# mostly share its loss limits. One tuple, replaced whole, as for `MarketMemo`.
LossMemo = dict[
    str,
    tuple[AccountState, Decimal | None, Decimal | None, Decimal | None, tuple[Row, ...]],
]
# The figures of an (account, symbol) that do not depend on the intent, by (account, symbol):
# the position and working quantities the view answered, the sides with working orders filled
# (`position + working_buy`, `position - working_sell`), and, once worked out at a mark, that
# mark, the symbol's contribution before the intent (`symbol_exposure`) and the absolute
# sizes of the two sides. Kept while the view answers those same Decimal objects and mark
# (each immutable, and held by the entry so no identity is reused): the engine's state
# answers the same objects until an order or fill of that account and symbol changes them,
# or a new quote the mark. Only finite figures are kept, so an entry found needs no
# `is_finite` tests. They depend on no limit, so the plans of one `PlanCache` share the memo;
# one tuple, replaced whole, as for `MarketMemo`.
ContributionFacts = tuple[Decimal, ExposureTotals, Decimal, Decimal]
BookFacts = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, ContributionFacts | None]
BookMemo = dict[tuple[str, str], BookFacts]
# a memo holds at most this many symbols; past it, it starts over
_MEMO_LIMIT = 10_000
# the max_count of an unset rate limit: the count of an unset limit is 0, which is below it,
# so the throttle tests need no "is it set" test of their own
_NO_RATE_LIMIT = 1


class ScreenLimits(NamedTuple):
    """The limits a screen reads, taken out of `ResolvedLimits` once per plan (a tuple: the
    screen unpacks it into locals in one step), and the memo of `MarketFacts` by symbol that
    it shares with the other plans of its cache (see `MarketMemo`), and the same for the loss
    rows (`LossMemo`) and the figures of each account's symbols (`BookMemo`)."""

    max_market_data_age: timedelta
    needs_day_start: bool
    needs_high_water: bool
    needs_sides: bool
    max_intent_skew: timedelta | None
    max_daily_loss: Decimal | None
    max_daily_loss_pct: Decimal | None
    max_drawdown_pct: Decimal | None
    duplicate_window: timedelta | None
    allowed_order_types: tuple[OrderType, ...] | None
    tick_size: Decimal | None
    lot_size: Decimal | None
    max_order_qty: Decimal | None
    max_order_value: Decimal | None
    price_collar_pct: Decimal | None
    market_collar_pct: Decimal | None
    self_match_deny: bool
    # each rate limit's max_count; `_NO_RATE_LIMIT` when unset (its count is 0 then)
    max_global: int
    max_account: int
    max_strategy: int
    max_symbol: int
    max_position_qty: Decimal | None
    max_position_value: Decimal | None
    max_gross_exposure: Decimal | None
    max_net_exposure: Decimal | None
    max_firm_gross_exposure: Decimal | None
    max_volume_participation_pct: Decimal | None
    sessions: SessionClock | None
    query: IntentQuery
    markets: MarketMemo
    losses: LossMemo
    books: BookMemo


def screen_limits(
    limits: ResolvedLimits, markets: MarketMemo, losses: LossMemo, books: BookMemo
) -> ScreenLimits | None:
    """The screen's limits, or None when a row that always breaks applies (no screen).
    `markets` is the memo the screen keeps its `MarketFacts` in, `losses` its loss rows,
    `books` its `BookFacts`."""
    if any(
        rule.check in ALWAYS_BREAK and (rule.applies is None or rule.applies(limits))
        for rule in RULES
    ):
        return None
    max_age = limits.max_market_data_age
    assert max_age is not None  # else SYS-005 always breaks, handled above
    instrument = limits.instrument
    allowed = limits.allowed_order_types
    needs_totals = (
        limits.max_gross_exposure is not None or limits.max_net_exposure is not None
        or limits.max_firm_gross_exposure is not None
    )
    needs_day_start = limits.max_daily_loss is not None or limits.max_daily_loss_pct is not None
    needs_high_water = limits.max_drawdown_pct is not None
    self_match_deny = limits.self_match is SelfMatch.DENY
    return ScreenLimits(
        max_market_data_age=max_age,
        needs_day_start=needs_day_start,
        needs_high_water=needs_high_water,
        needs_sides=needs_totals or limits.max_position_qty is not None
        or limits.max_position_value is not None,
        max_intent_skew=limits.max_intent_skew,
        max_daily_loss=limits.max_daily_loss,
        max_daily_loss_pct=limits.max_daily_loss_pct,
        max_drawdown_pct=limits.max_drawdown_pct,
        duplicate_window=limits.duplicate_window,
        # sorted by name so equal sets give equal plans in any process
        allowed_order_types=None if allowed is None else tuple(sorted(allowed)),
        tick_size=None if instrument is None else instrument.tick_size,
        lot_size=None if instrument is None else instrument.lot_size,
        max_order_qty=limits.max_order_qty,
        max_order_value=limits.max_order_value,
        price_collar_pct=limits.price_collar_pct,
        market_collar_pct=limits.market_collar_pct,
        self_match_deny=self_match_deny,
        max_global=_max_count(limits.rate_global),
        max_account=_max_count(limits.rate_account),
        max_strategy=_max_count(limits.rate_strategy),
        max_symbol=_max_count(limits.rate_symbol),
        max_position_qty=limits.max_position_qty,
        max_position_value=limits.max_position_value,
        max_gross_exposure=limits.max_gross_exposure,
        max_net_exposure=limits.max_net_exposure,
        max_firm_gross_exposure=limits.max_firm_gross_exposure,
        max_volume_participation_pct=limits.max_volume_participation_pct,
        sessions=None if limits.sessions is None else SessionClock(limits.sessions),
        query=intent_query(
            account=needs_day_start or needs_high_water, exposure=needs_totals,
            resting=self_match_deny, firm_gross=limits.max_firm_gross_exposure is not None,
            duplicate_window=limits.duplicate_window,
            rate_global=_window(limits.rate_global), rate_account=_window(limits.rate_account),
            rate_strategy=_window(limits.rate_strategy), rate_symbol=_window(limits.rate_symbol),
        ),
        markets=markets,
        losses=losses,
        books=books,
    )


def _window(rate: RateLimit | None) -> timedelta | None:
    return None if rate is None else rate.window


def _max_count(rate: RateLimit | None) -> int:
    return _NO_RATE_LIMIT if rate is None else rate.max_count


def screen(
    intent: OrderIntent, view: ScreenedView, limits: ResolvedLimits, screened: ScreenLimits
) -> tuple[RuleContext, list[Row]]:
    """The context `build_context` would build, and the rows, in table order, that could break
    for it (see the module docstring). Reads the view in one call (`read_intent`), which
    answers what `build_context` and the rows' checks would ask."""
    (
        max_age, needs_day_start, needs_high_water, needs_sides, max_skew,
        max_daily_loss, max_daily_loss_pct, max_drawdown_pct, duplicate_window, allowed, tick,
        lot, max_order_qty, max_order_value, price_collar_pct, market_collar_pct,
        self_match_deny, max_global, max_account, max_strategy, max_symbol, max_position_qty,
        max_position_value, max_gross, max_net, max_firm_gross, max_participation, sessions,
        query, market_memo, loss_memo, book_memo,
    ) = screened
    qty = intent.qty
    order_type = intent.order_type
    limit_price, stop_price = intent.limit_price, intent.stop_price
    buying = intent.side is _BUY
    key = "" if duplicate_window is None else fingerprint(intent)
    (
        now, trading_mode, integrity_reasons, operator_killed, firm_killed, market, marks,
        position, working_buy, working_sell, totals, count_global, count_account,
        count_strategy, count_symbol, client_order_id_seen, fingerprint_seen, best_buy,
        best_sell, disabled, shared,
    ) = view.read_intent(intent, key, query)
    suspects: list[Row] = []
    add = suspects.append

    # -- the context's values (`build_context`), with the checks that share their work

    # the snapshot's facts, worked out once per snapshot (see `MarketMemo`)
    if market is None:
        quote = reference = usable_volume = None
        invalid = False
    else:
        facts = market_memo.get(intent.symbol)
        if facts is None or facts[0] is not market:
            facts = market_facts(market)
            if len(market_memo) >= _MEMO_LIMIT:
                market_memo.clear()
            market_memo[intent.symbol] = facts
        _, quote, reference, invalid, usable_volume = facts

    if order_type is _LIMIT or order_type is _STOP_LIMIT:
        # `limit_valuation_price`, inlined
        valuation_price: Decimal | None = limit_price
        priced = limit_price is not None
        if (
            not buying and limit_price is not None and reference is not None
            and reference > limit_price
        ):
            valuation_price = reference
    elif order_type is _STOP:
        # `stop_valuation_price`, inlined
        if stop_price is None or (reference is not None and reference > stop_price):
            valuation_price = reference
        else:
            valuation_price = stop_price
        priced = False
    else:
        valuation_price = reference
        priced = False
    order_value = None if valuation_price is None else qty * valuation_price

    # the (account, symbol)'s figures worked out for an earlier intent, while the view answers
    # the same position, working quantities and mark (see `BookMemo`); they need the sides
    book: BookFacts | None = None
    if needs_sides:
        book_key = (intent.account, intent.symbol)
        book = book_memo.get(book_key)
        if book is not None and not (
            book[0] is position and book[1] is working_buy and book[2] is working_sell
        ):
            book = None
    known_book = book

    invariant_detail = ""
    if book is None and not (
        position.is_finite() and working_buy.is_finite() and working_sell.is_finite()
    ):  # a book's figures are finite
        invariant_detail = (
            f"position={position} working_buy={working_buy} working_sell={working_sell}"
        )
        position = working_buy = working_sell = ZERO
        risk_reducing = False
    elif not position:
        risk_reducing = False
    else:
        # `is_risk_reducing`, inlined with the same operations (its `position == 0` test is
        # the branch above)
        signed_qty = qty if buying else -qty
        long_position = position > ZERO
        if (signed_qty > ZERO) == long_position:
            risk_reducing = False
        else:
            risk_reducing = abs(signed_qty) + (
                working_sell if long_position else working_buy
            ) <= abs(position)

    # the symbol's sides with working orders filled, shared by the position caps and the
    # contributions below (computed only when one of them is set, as the rules do)
    if needs_sides:
        if book is None:
            long_side = position + working_buy
            short_side = position - working_sell
            book = (position, working_buy, working_sell, long_side, short_side, None)
        else:
            long_side, short_side = book[3], book[4]
    before = after = None
    if reference is None:
        totals = None  # `build_context` reads the totals only for a symbol with a mark
    elif totals is not None:
        if totals.gross.is_finite() and totals.net_long.is_finite() and (
            totals.net_short.is_finite()
        ):
            # `symbol_exposure` before and `projected_contribution` after the intent, with
            # the same operations, sharing what they compute alike: the side the intent does
            # not move is the same expression on the same operands before and after
            assert book is not None  # the totals are read for a cap, and every cap needs sides
            known_contribution = book[5]
            if known_contribution is not None and known_contribution[0] is reference:
                _, before, long_size, short_size = known_contribution
            else:
                larger = long_size = abs(long_side)  # max(|long|, |short|), first of equals
                short_size = abs(short_side)
                if short_size > larger:
                    larger = short_size
                before = ExposureTotals(
                    gross=larger * reference, net_long=long_side * reference,
                    net_short=short_side * reference,
                )
                book = (position, working_buy, working_sell, long_side, short_side,
                        (reference, before, long_size, short_size))
            if buying:
                long_after = position + (working_buy + qty)
                larger = abs(long_after)
                if short_size > larger:
                    larger = short_size
                after = ExposureTotals(
                    gross=larger * reference, net_long=long_after * reference,
                    net_short=before.net_short,
                )
            else:
                short_after = position - (working_sell + qty)
                larger = long_size
                other = abs(short_after)
                if other > larger:
                    larger = other
                after = ExposureTotals(
                    gross=larger * reference, net_long=before.net_long,
                    net_short=short_after * reference,
                )
        else:
            exposure_detail = (
                f"exposure gross={totals.gross} net_long={totals.net_long} "
                f"net_short={totals.net_short}"
            )
            invariant_detail = (
                f"{invariant_detail} {exposure_detail}" if invariant_detail else exposure_detail
            )
            totals = None
    if book is not None and book is not known_book and not invariant_detail:
        if len(book_memo) >= _MEMO_LIMIT:
            book_memo.clear()
        book_memo[book_key] = book

    # -- the rows, in table order; each test is `not (<its rule's "return None" condition>)`

    # kill switches and mode
    if operator_killed:
        add(_KIL_002)
    if firm_killed:
        add(_KIL_003)
    if trading_mode is _HALTED:
        add(_MOD_001)
    if trading_mode is _REDUCE_ONLY and not risk_reducing:
        add(_MOD_002)

    # data integrity
    if reference is None:  # no snapshot, or no usable price in it
        add(_SYS_001)
    if market is not None:
        if not (now - market.ts <= max_age):
            add(_SYS_002)
        if invalid:
            add(_SYS_003)
    day_start_missing = high_water_missing = False
    if needs_day_start or needs_high_water:
        if marks is not None:
            day_start_missing = marks.day_start_equity <= ZERO
            high_water_missing = marks.high_water_mark <= ZERO
        if marks is None or (needs_day_start and day_start_missing) or (
            needs_high_water and high_water_missing
        ):
            add(_SYS_005_MARKS)
    if invariant_detail:
        add(_SYS_008)
    if max_skew is not None and not (abs(intent.ts - now) <= max_skew):
        add(_CLK_001)

    # loss and drawdown: what the marks and the loss limits imply, worked out once for them
    # (see `LossMemo`); `day_start_missing` and `high_water_missing` follow from the marks
    if marks is not None:
        known = loss_memo.get(intent.account)
        if (
            known is not None and known[0] is marks and known[1] is max_daily_loss
            and known[2] is max_daily_loss_pct and known[3] is max_drawdown_pct
        ):
            loss_rows = known[4]
        else:
            loss_rows = _loss_rows(
                marks, max_daily_loss, max_daily_loss_pct, max_drawdown_pct, day_start_missing,
                high_water_missing,
            )
            if len(loss_memo) >= _MEMO_LIMIT:
                loss_memo.clear()
            loss_memo[intent.account] = (
                marks, max_daily_loss, max_daily_loss_pct, max_drawdown_pct, loss_rows
            )
        if loss_rows:
            suspects.extend(loss_rows)

    # duplicates
    if client_order_id_seen:
        add(_DUP_001)
    if fingerprint_seen:
        add(_DUP_002)

    # order sanity
    if allowed is not None:
        for allowed_type in allowed:  # identity scan: hashing an Enum member is slow
            if allowed_type is order_type:
                break
        else:
            add(_ORD_001)
    needs_limit = order_type is _LIMIT or order_type is _STOP_LIMIT
    needs_stop = order_type is _STOP or order_type is _STOP_LIMIT
    if (limit_price is not None) != needs_limit or (stop_price is not None) != needs_stop:
        add(_ORD_003)
    if tick is not None and not (
        (limit_price is None or _remainder(limit_price, tick) == ZERO)
        and (stop_price is None or _remainder(stop_price, tick) == ZERO)
    ):
        add(_ORD_004)
    if lot is not None and _remainder(qty, lot) != ZERO:
        add(_ORD_005)
    if max_order_qty is not None and not (qty <= max_order_qty):
        add(_ORD_006)
    if max_order_value is not None and order_value is not None and not (
        order_value <= max_order_value
    ):
        add(_ORD_007)
    if order_type is _MARKET or order_type is _STOP:
        # a market order's collar needs the valid two-sided quote and bounds its far side; a
        # stop is collared so only once the market has crossed it (it triggers at once)
        if market_collar_pct is not None and (order_type is _MARKET or (
            stop_price is not None and reference is not None
            and (stop_price <= reference if buying else stop_price >= reference)
        )) and (quote is None or not (
            abs(quote[1 if buying else 0] - quote[2]) * HUNDRED
            <= market_collar_pct * quote[2]
        )):
            add(_ORD_008)
    elif (
        price_collar_pct is not None and reference is not None and limit_price is not None
        and not (abs(limit_price - reference) * HUNDRED <= price_collar_pct * reference)
    ):
        add(_ORD_008)
    if self_match_deny:
        if buying:
            if not (best_sell is None or (limit_price is not None and limit_price < best_sell)):
                add(_ORD_010)
        elif not (best_buy is None or (limit_price is not None and limit_price > best_buy)):
            add(_ORD_010)
    if intent.reduce_only and not risk_reducing:
        add(_ORD_011)

    # throttles: the intent would be one more (count + 1 <= max_count, on integers)
    if not (count_global < max_global):
        add(_THR_001)
    if not (count_account < max_account):
        add(_THR_002)
    if not (count_strategy < max_strategy):
        add(_THR_003)
    if not (count_symbol < max_symbol):
        add(_THR_004)
    if disabled:
        add(_THR_006)

    # exposure; the moved side is `_side_after` of rules/exposure.py, same association
    if max_position_qty is not None or (
        max_position_value is not None and reference is not None
    ):
        moved = abs(long_side + qty) if buying else abs(short_side - qty)
        if max_position_qty is not None and not (moved <= max_position_qty):
            add(_EXP_001)
        if max_position_value is not None and reference is not None and not (
            moved * reference <= max_position_value
        ):
            add(_EXP_002)
    if totals is not None and before is not None and after is not None:
        if max_gross is not None and not (
            totals.gross - before.gross + after.gross <= max_gross
        ):
            add(_EXP_003)
        if max_net is not None:
            net_long = totals.net_long - before.net_long + after.net_long
            net_short = totals.net_short - before.net_short + after.net_short
            larger = abs(net_long)  # max(abs(net_long), abs(net_short)), first of equals
            other = abs(net_short)
            if other > larger:
                larger = other
            if not (larger <= max_net):
                add(_EXP_004)
    if max_firm_gross is not None and before is not None and after is not None and (
        shared is None or not shared.is_finite()
        or not (shared - before.gross + after.gross <= max_firm_gross)
    ):
        add(_EXP_005)

    # liquidity and market hours
    if max_participation is not None and (
        usable_volume is None or not (qty * HUNDRED <= max_participation * usable_volume)
    ):
        add(_LIQ_001)
    if sessions is not None and not sessions.is_open(now):
        add(_MKT_001)

    return RuleContext(
        intent, view, limits, trading_mode, market, reference, valuation_price, order_value,
        position, working_buy, working_sell, risk_reducing, priced, marks, invariant_detail,
        totals, before, after, integrity_reasons, key, count_global, count_account,
        count_strategy, count_symbol,
    ), suspects


def _loss_rows(
    marks: AccountState, max_daily_loss: Decimal | None, max_daily_loss_pct: Decimal | None,
    max_drawdown_pct: Decimal | None, day_start_missing: bool, high_water_missing: bool,
) -> tuple[Row, ...]:
    """The loss and drawdown rows that could break on these marks, in table order."""
    rows: list[Row] = []
    day_start = marks.day_start_equity
    if max_daily_loss is not None or max_daily_loss_pct is not None:
        loss = day_start - marks.equity
        if max_daily_loss is not None and not (loss < max_daily_loss):
            rows.append(_LOS_001)
        if max_daily_loss_pct is not None and not day_start_missing and not (
            loss * HUNDRED < max_daily_loss_pct * day_start
        ):
            rows.append(_LOS_002)
    high_water = marks.high_water_mark
    if max_drawdown_pct is not None and not high_water_missing and not (
        (high_water - marks.equity) * HUNDRED <= max_drawdown_pct * high_water
    ):
        rows.append(_LOS_003)
    return tuple(rows)

