"""The engine's mutable books: orders, per-(account, symbol) positions with their cached
exposure, accounts, and the resting-price ladder used for self-match prevention.

These are mutable on purpose (the engine updates them in place on the hot path) and are
msgspec structs so a snapshot encodes them directly.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right, insort
from datetime import datetime
from decimal import Decimal

import msgspec

from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.values import QUOTIENT, ZERO

# The ladder price of a working market order (`resting_price`): a buy crosses any
# sell, a sell any buy. Every limit price is positive and finite, so these two are known as
# market orders wherever a resting price is read (`gate.rules.sanity.self_match`).
MARKET_BUY_PRICE = Decimal("Infinity")
MARKET_SELL_PRICE = ZERO


class OrderStatus(enum.StrEnum):
    WORKING = "working"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


class OrderRecord(msgspec.Struct, kw_only=True, gc=False):
    """An accepted order. While WORKING its `remaining` quantity is reserved against caps."""

    client_order_id: str
    intent_id: str
    account: str
    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    remaining: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    reduce_only: bool = False
    created: datetime
    status: OrderStatus = OrderStatus.WORKING
    acked: bool = False
    broker_order_id: str = ""
    cancel_requested: bool = False
    filled: Decimal = ZERO


class FillSeen(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What a booked fill said, kept by its fill id (engine behaviour 3 on): a fill that
    comes again with the same order, quantity and price is a redelivery; with anything else
    the id was reused for another execution."""

    client_order_id: str
    qty: Decimal
    price: Decimal


def resting_price(order: OrderRecord) -> Decimal | None:
    """Where a working order sits on the book for a later order of the same account to trade
    against (self-match prevention), or None while it is not on the book: the resting
    semantics of engine behaviour 2 on (`engine.state.ENGINE_BEHAVIOUR`).

    A limit order rests at its limit. A market order trades at any price: while it works it
    crosses every opposite order of the account, so a buy counts at +infinity and a sell
    at 0 (`MARKET_BUY_PRICE`, `MARKET_SELL_PRICE`; no limit price is either).

    A stop or stop-limit order is not on the book until the market reaches its stop, and
    the engine is never told when that happens: an OrderAck carries no trigger state and
    no adapter reports one (ccxt's "untriggered" and "triggered" both map to a working
    order). The one proof the engine gets is a fill: an order that has executed has
    triggered, and what remains works at its limit (stop-limit) or as a market order
    (stop). Until then it does not count as resting. That is the conservative side for a
    protective stop: counting it would deny every opposite order of the account
    (`self_match: deny`) or cancel the stop-loss itself (`cancel_resting`), leaving the
    position unprotected, to prevent a trade that cannot happen while the stop waits.
    A stop whose stop price the market had already crossed at submission triggers at
    once; it counts from its first fill, as the engine keeps no trigger state to know it
    earlier."""
    order_type = order.order_type
    if order_type is OrderType.LIMIT:
        return order.limit_price
    if order_type is OrderType.MARKET:
        return MARKET_BUY_PRICE if order.side is Side.BUY else MARKET_SELL_PRICE
    if not order.filled:
        return None  # a stop not known to have triggered: not on the book
    if order_type is OrderType.STOP_LIMIT:
        return order.limit_price
    return MARKET_BUY_PRICE if order.side is Side.BUY else MARKET_SELL_PRICE


def limit_resting_price(order: OrderRecord) -> Decimal | None:
    """`resting_price` as engine behaviour 1 read it (journals written before behaviour 2
    replay under it): a limit or stop-limit order with a limit price rests at that limit from
    its acceptance on, triggered or not; nothing else rests."""
    if order.order_type is OrderType.LIMIT or order.order_type is OrderType.STOP_LIMIT:
        return order.limit_price
    return None


class Book(msgspec.Struct, kw_only=True, gc=False):
    """One account's position in one symbol, its working totals and its cached
    contributions to the account's totals (so updates subtract the old and add the new)."""

    account: str
    symbol: str
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    working_buy: Decimal = ZERO
    working_sell: Decimal = ZERO
    gross: Decimal = ZERO
    net_long: Decimal = ZERO
    net_short: Decimal = ZERO
    market_value: Decimal = ZERO
    unrealized: Decimal = ZERO

    @property
    def empty(self) -> bool:
        return self.qty == 0 and self.working_buy == 0 and self.working_sell == 0

    def execute(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """Apply an execution to the position; return the realized PnL (before fees)."""
        signed = qty if side is Side.BUY else -qty
        position = self.qty
        if position == 0 or (position > 0) == (signed > 0):
            size = abs(position)
            # a division: 28 digits in any behaviour (`model.values.QUOTIENT`)
            self.avg_price = QUOTIENT.divide(size * self.avg_price + qty * price, size + qty)
            self.qty = position + signed
            return ZERO
        closing = min(qty, abs(position))
        direction = 1 if position > 0 else -1
        realized = (price - self.avg_price) * closing * direction
        self.qty = position + signed
        if self.qty == 0:
            self.avg_price = ZERO
        elif (self.qty > 0) != (position > 0):
            self.avg_price = price  # flipped: the remainder opened at this price
        return realized


class AccountRecord(msgspec.Struct, kw_only=True, gc=False):
    """Cash, PnL and equity marks of an account, and its exposure totals (sums of its books)."""

    account: str
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    market_value: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    day_start_equity: Decimal = ZERO
    high_water_mark: Decimal = ZERO
    gross: Decimal = ZERO
    net_long: Decimal = ZERO
    net_short: Decimal = ZERO
    funded: bool = False

    @property
    def equity(self) -> Decimal:
        return self.cash + self.market_value


def _price(entry: tuple[Decimal, str]) -> Decimal:
    return entry[0]


def _best_buy(buys: list[tuple[Decimal, str]], *, markets: bool) -> Decimal | None:
    if not buys:
        return None
    best = buys[-1][0]
    if best != MARKET_BUY_PRICE or markets:
        return best
    below = bisect_left(buys, MARKET_BUY_PRICE, key=_price)  # market buys sort last
    return buys[below - 1][0] if below else None


def _best_sell(sells: list[tuple[Decimal, str]], *, markets: bool) -> Decimal | None:
    if not sells:
        return None
    best = sells[0][0]
    if best != MARKET_SELL_PRICE or markets:
        return best
    above = bisect_right(sells, MARKET_SELL_PRICE, key=_price)  # market sells sort first
    return sells[above][0] if above < len(sells) else None


class Ladder:
    """Resting prices of one account's working orders in one symbol (`resting_price`: limit
    orders at their limit, market orders at +infinity / 0; `limit_resting_price` under
    engine behaviour 1), kept sorted: the best buy is the
    highest, the best sell the lowest, and the orders an incoming order would cross are a
    contiguous slice (bisect; insertion is O(log n) to find plus a memmove)."""

    __slots__ = ("buys", "sells")

    def __init__(self) -> None:
        self.buys: list[tuple[Decimal, str]] = []
        self.sells: list[tuple[Decimal, str]] = []

    def __bool__(self) -> bool:
        return bool(self.buys or self.sells)

    def _side(self, side: Side) -> list[tuple[Decimal, str]]:
        return self.buys if side is Side.BUY else self.sells

    def add(self, side: Side, price: Decimal, client_order_id: str) -> None:
        insort(self._side(side), (price, client_order_id))

    def remove(self, side: Side, price: Decimal, client_order_id: str) -> None:
        entries = self._side(side)
        index = bisect_left(entries, (price, client_order_id))
        if index < len(entries) and entries[index] == (price, client_order_id):
            del entries[index]

    def best(self, side: Side | None = None) -> tuple[Decimal | None, Decimal | None]:
        """The highest buy and the lowest sell, as limit prices (working market orders left
        out: a decision's record, which journals these two, reads as it always did). With
        `side`, the side of an order being judged for self-matching, the other side's figure
        counts its working market orders too (+infinity for a buy, 0 for a sell): the order
        would trade against them."""
        return (_best_buy(self.buys, markets=side is Side.SELL),
                _best_sell(self.sells, markets=side is Side.BUY))

    def crossing(self, side: Side, price: Decimal | None) -> list[str]:
        """Resting orders on the other side an order at `price` (None: market) would hit,
        best price first, ties by client order id."""
        if side is Side.BUY:
            sells = self.sells
            end = len(sells) if price is None else bisect_right(sells, (price, "\x7f"))
            return [coid for _, coid in sells[:end]]
        buys = self.buys
        start = 0 if price is None else bisect_left(buys, (price, ""))
        return [coid for _, coid in reversed(buys[start:])]
