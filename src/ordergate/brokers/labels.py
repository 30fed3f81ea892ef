"""How an order is named at a venue, and how its observed states become engine events.

Venues carry our deterministic client order id in a field of their own (Alpaca
`client_order_id`, Deribit `label`, Tradier `tag`), each with its own length and character
rules. An id that does not fit is refused before dispatch, never truncated: a truncated id
would no longer find the order again after a restart, and two orders could share one.

REST venues report an order's state, not its history. `OrderWatch` remembers the last state
seen of each order an adapter sent and turns a newer state into the events the engine needs:
one OrderAck, one Fill per increase of the filled quantity, then OrderCanceled or OrderReject.
An order is followed from before its submit is sent (a submit without an answer may still have
reached the venue) until it is finished, and no event it observed is ever dropped.

A venue reports an order's cumulative filled quantity and average price, rounded; the price of
each part-fill is what the venue's cumulative notional adds to what was booked before, over the
part, and carries the averages' rounding multiplied by the cumulative quantities over the
part's own (`derived_price`). A derived price past the order's limit by no more than that
rounding is booked at the limit (`within_limit`): the venue cannot have filled past it, and the
engine alerts critically on any fill that lies past it. What booking at the limit left out of
the venue's notional is carried into the next part's price, so what is booked keeps to the
venue's figures, and a restart deriving from the journal's bookings errs no more than a poll.

Every number a venue answers is checked where the adapter reads it (`venue_number`): finite
(no NaN, no Infinity, whether sent as a string or a bare JSON literal), within what the engine
takes in, and not negative where it cannot be. An answer that is not is BrokerBadResponse naming
the venue, the order and the field, the broker failure the runtime fails closed on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import msgspec
import structlog

from ordergate.brokers.base import (
    BrokerBadResponse,
    BrokerNotSent,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerRateLimited,
    OrderLabelRefused,
    OrderStatus,
    OrderTypeUnsupported,
)
from ordergate.model.events import (
    DependencyStatus,
    Fill,
    InputEvent,
    OrderAck,
    OrderCanceled,
    OrderReject,
)
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.reasons import REPORTED
from ordergate.model.values import MAGNITUDE_LIMIT, STANDARD, InvalidValue, require_finite

log = structlog.get_logger("ordergate.brokers")

PRICE_STEP = Decimal("1e-9")
# How an order found at a venue without our label (placed by hand) is named: by the venue's
# own order id under a prefix none of ours can carry (derived ids are `og-` and hex digits,
# explicit ones may not start with `og-`), so two such orders are never one id.
UNTAGGED_PREFIX = "og-untagged-"
TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})
# A filled quantity that goes down (a trade bust or correction at the venue) is reported to the
# engine as a broker/gateway disagreement under this dependency, per order (`OrderWatch`).
FILLS_DEPENDENCY = "broker_fills"
FILLED_QTY_DECREASED = "SYS-009"


def require_label(
    client_order_id: str,
    *,
    venue: str,
    field: str,
    max_length: int,
    pattern: re.Pattern[str] | None = None,
    allowed: str = "",
) -> str:
    """The id, unchanged, when the venue can carry it; else BrokerOrderRejected (pre-dispatch)."""
    if len(client_order_id) > max_length:
        raise OrderLabelRefused(
            f"{venue}: client_order_id '{client_order_id}' is {len(client_order_id)} characters;"
            f" the venue's {field} holds at most {max_length}. Refused before dispatch"
            " (ids are never truncated)"
        )
    if pattern is not None and not pattern.fullmatch(client_order_id):
        raise OrderLabelRefused(
            f"{venue}: client_order_id '{client_order_id}' cannot be carried in the venue's"
            f" {field} ({allowed}). Refused before dispatch"
        )
    return client_order_id


def require_supported(venue: str, order_type: OrderType, tif: TimeInForce,
                      order_types: frozenset[OrderType],
                      time_in_force: frozenset[TimeInForce]) -> None:
    """Refuse, never emulate, an order type or time in force the venue does not offer."""
    if order_type not in order_types:
        raise OrderTypeUnsupported(f"{venue}: order_type '{order_type}' is not supported")
    if tif not in time_in_force:
        raise OrderTypeUnsupported(f"{venue}: time in force '{tif}' is not supported")


def decimal_text(value: Decimal) -> str:
    """A decimal as plain positional text ('0.00001', never '1E-5'), as venues parse it."""
    return format(value, "f")


def parse_decimal(venue: str, field: str, raw: object) -> Decimal:
    """A venue's number or numeric string as an exact Decimal; BrokerBadResponse otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise BrokerBadResponse(f"{venue}: {field}: expected a number, got {raw!r}")
    try:
        value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
    except InvalidOperation as exc:
        raise BrokerBadResponse(f"{venue}: {field}: expected a number, got {raw!r}") from exc
    if not value.is_finite():
        raise BrokerBadResponse(f"{venue}: {field}: expected a finite number, got {raw!r}")
    return value


def venue_number(venue: str, subject: str, field: str, value: Decimal, *,
                 signed: bool = False) -> Decimal:
    """A number read from a venue's answer, checked as every decimal the engine takes in is
    (finite, within its magnitude and digits: `values.require_finite`) and, unless `signed`,
    not negative. `subject` says whose it is ("get_order: order og-1"); a number that fails is
    BrokerBadResponse naming the venue, the subject and the field (the venue's own name)."""
    try:
        require_finite(field, value)
    except InvalidValue as exc:
        raise BrokerBadResponse(f"{venue}: {subject}: {exc}") from None
    if not signed and value < 0:
        raise BrokerBadResponse(
            f"{venue}: {subject}: {field}: expected a non-negative decimal, got '{value}'")
    return value


def json_constant(name: str) -> Decimal:
    """`parse_constant` for a venue's JSON: a bare NaN, Infinity or -Infinity literal is read as
    the Decimal it spells (never a float), so the field check names the field that held it."""
    return Decimal(name)


def parse_timestamp(venue: str, field: str, raw: object) -> datetime:
    """An RFC 3339 string (fractions beyond microseconds dropped) as a UTC datetime."""
    if not isinstance(raw, str):
        raise BrokerBadResponse(f"{venue}: {field}: expected an RFC 3339 timestamp, got {raw!r}")
    text = raw.strip().replace("Z", "+00:00").replace("z", "+00:00")
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
    if match is not None and match.group(2) is not None:
        text = match.group(1) + match.group(2)[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BrokerBadResponse(
            f"{venue}: {field}: expected an RFC 3339 timestamp, got {raw!r}") from exc
    if parsed.tzinfo is None:
        raise BrokerBadResponse(f"{venue}: {field}: timestamp {raw!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # '0001-01-01T00:00:00+01:00' is before year 1 in UTC
        raise BrokerBadResponse(
            f"{venue}: {field}: timestamp {raw!r} is out of range in UTC") from exc


def fill_time(venue: str, field: str, raw: object) -> datetime | None:
    """A venue's RFC 3339 fill time as a UTC time; None when absent. A value that is no such
    time is logged and left out rather than failing the answer: it only orders what a restart
    books of fills no process saw (`BrokerOrder.filled_at`)."""
    if raw is None:
        return None
    try:
        return parse_timestamp(venue, field, raw)
    except BrokerBadResponse as exc:
        log.warning("broker_bad_fill_time", venue=venue, field=field, value=repr(raw)[:80],
                    error=str(exc))
        return None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds when the venue gave it as a number; None otherwise."""
    if not headers:
        return None
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@contextmanager
def response_shape(venue: str, what: str) -> Iterator[None]:
    """Turn a venue answer that does not have the expected shape into BrokerBadResponse."""
    try:
        yield
    except msgspec.ValidationError as exc:
        raise BrokerBadResponse(f"{venue}: {what}: unexpected response shape: {exc}") from exc


class PriceLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The price an order may not be filled past: its limit price, from above for a buy and
    from below for a sell."""

    side: Side
    price: Decimal

    def past(self, price: Decimal) -> Decimal:
        """How far `price` lies past the limit (zero or less: within it)."""
        return price - self.price if self.side is Side.BUY else self.price - price


def order_limit(side: Side, limit_price: Decimal | None) -> PriceLimit | None:
    """The limit an order with this side and limit price (None: a market or stop order) may
    not be filled past."""
    return None if limit_price is None else PriceLimit(side=side, price=limit_price)


def decimal_places(average: Decimal) -> int:
    """The exponent of the last decimal place `average` was given with (-4 for 99.9967)."""
    exponent = average.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: refused where venue numbers are read
        raise InvalidOperation(f"average price {average} is not a finite number")
    return exponent


def half_unit(exponent: int) -> Decimal:
    """Half a unit in the decimal place `exponent`: how far a venue's rounding to that place can
    have moved a figure (0.00005 for an average given to 4 decimals)."""
    return Decimal(5).scaleb(exponent - 1)


def within_limit(price: Decimal, rounding: Decimal, limit: PriceLimit | None) -> Decimal:
    """`price`, derived from a venue's rounded averages and true to within `rounding`, as it is
    to be booked: at the limit when it lies past it by no more than `rounding` (the venue cannot
    have filled past its limit, and within the rounding the limit is the best estimate of what
    the part cost); as derived otherwise, for the engine to alert on when it lies further past
    (`FILL_PRICE`: the venue broke the limit)."""
    if limit is not None and 0 < limit.past(price) <= rounding:
        return limit.price
    return price


def derived_price(filled_qty: Decimal, average: Decimal, booked_qty: Decimal,
                  booked_notional: Decimal, *, error: Decimal,
                  limit: PriceLimit | None) -> Decimal | None:
    """The price of the part of an order filled beyond the `booked_qty` booked for
    `booked_notional`, the venue reporting `filled_qty` at its rounded `average`: the venue's
    notional less what was booked, over the part, kept to the venues' finest price step
    (`PRICE_STEP`). `error` is how far that difference of notionals can be off what the part
    cost: the venue's rounding of `average` times `filled_qty`, plus how far the booked
    notional can be off what the booked quantity cost. Past the order's `limit` by no more than
    `error` over the part (and half a step) the part is booked at the limit (`within_limit`).
    None when the rounded figures imply no usable price: none above zero, or one beyond any
    real price (`MAGNITUDE_LIMIT`). Raises ArithmeticError for figures too far apart to hold at
    that step."""
    part = filled_qty - booked_qty
    derived = (filled_qty * average - booked_notional) / part
    if not 0 < derived < MAGNITUDE_LIMIT:
        return None
    price = Decimal(format(derived.quantize(PRICE_STEP).normalize(), "f"))
    if price <= 0:
        return None
    return within_limit(price, error / part + PRICE_STEP / 2, limit)


class _Seen(msgspec.Struct, kw_only=True):
    broker_order_id: str
    acked: bool = False
    filled_qty: Decimal = Decimal(0)
    # the venue's notional (filled quantity x its rounded average); None when the gateway took
    # over an order whose average fill price it does not know
    filled_notional: Decimal | None = Decimal(0)
    # what the fills reported for it add up to (quantity x price), taken to be the venue's
    # notional where the following began from a known state; None with `filled_notional`
    booked_notional: Decimal | None = Decimal(0)
    # the finest decimal place the order's average prices have been given with (None: none
    # seen yet): a venue rounds one order's averages to one place, and writes fewer decimals
    # only by dropping trailing zeros (100 for 100.0000)
    avg_exponent: int | None = None
    # the price the order may not be filled past (None: a market or stop order, or not known)
    limit: PriceLimit | None = None
    status: OrderStatus = OrderStatus.NEW
    # the lower filled quantity last reported as a decrease (a bust), so it is reported once
    decrease_reported: Decimal | None = None


def fill_id(client_order_id: str, cumulative_qty: Decimal) -> str:
    """Deterministic, so the same observed fill always has the same id (redelivery is harmless):
    normalized in `STANDARD` (28 digits), not the caller's context, where 6 digits would give
    1.23456789 and 1.23457 one id and the engine would drop the second fill."""
    quantity = cumulative_qty.normalize(STANDARD)
    digest = hashlib.sha256(f"{client_order_id}|{quantity}".encode()).hexdigest()
    return f"fill-{digest[:32]}"


class OrderWatch:
    """The last state seen of each order an adapter is following. `venue` names the adapter's
    venue in what it reports."""

    def __init__(self, venue: str = "venue") -> None:
        self._venue = venue
        self._seen: dict[str, _Seen] = {}
        # Events observed by a poll that then had to raise: the next poll returns them first.
        self._undelivered: list[InputEvent] = []

    def track(self, client_order_id: str, broker_order_id: str = "",
              known: BrokerOrder | None = None, limit: PriceLimit | None = None) -> None:
        """Follow an order from now on. With `known`, events start after that state (the caller
        has already reported it); without, the first observation reports everything. `limit`
        is the price the order may not be filled past (`order_limit`): a part-fill priced from
        the venue's rounded averages is kept within it as far as the rounding allows."""
        seen = _Seen(broker_order_id=broker_order_id, limit=limit)
        if known is not None:
            seen.broker_order_id = known.broker_order_id or broker_order_id
            seen.acked = True
            seen.filled_qty = known.filled_qty
            if known.avg_fill_price is not None:
                seen.filled_notional = known.filled_qty * known.avg_fill_price
                seen.booked_notional = seen.filled_notional
                seen.avg_exponent = decimal_places(known.avg_fill_price)
            elif known.filled_qty > 0:
                seen.filled_notional = seen.booked_notional = None
            seen.status = known.status
        self._seen[client_order_id] = seen

    @contextmanager
    def submitting(self, client_order_id: str,
                   limit: PriceLimit | None = None) -> Iterator[None]:
        """Follow an order from before its submit is sent: a submit that gets no answer may
        have reached the venue, and a later poll reports the order once the venue shows it.
        Only a definitive answer that nothing was placed ends the following this began: a
        refusal of the order (BrokerOrderRejected), a rate limit (BrokerRateLimited: the venue
        did not take the request) or a submit that never left (BrokerNotSent). An order
        already followed (an unanswered submit sent again) keeps what was seen of it. `limit`
        as for `track`."""
        added = client_order_id not in self._seen
        if added:
            self._seen[client_order_id] = _Seen(broker_order_id="", limit=limit)
        try:
            yield
        except (BrokerOrderRejected, BrokerRateLimited, BrokerNotSent):
            if added:
                del self._seen[client_order_id]
            raise

    def broker_order_id(self, client_order_id: str) -> str | None:
        seen = self._seen.get(client_order_id)
        return seen.broker_order_id if seen is not None and seen.broker_order_id else None

    def working(self) -> list[str]:
        """Client ids of followed orders that are not finished, in the order they were tracked."""
        return [cid for cid, seen in self._seen.items() if seen.status not in TERMINAL]

    def poll(self, lookup: Callable[[str], BrokerOrder | None], ts: datetime) -> list[InputEvent]:
        """Events for every followed order that changed, from `lookup` (the venue's current
        state of an order by client id, None while the venue does not show it: it is skipped
        and followed on). A bad answer for one order (BrokerBadResponse: a malformed number,
        an impossible state) does not stop the others, and the bad order is asked again by a
        later poll. Whenever this raises (a bad answer, the venue failing, anything else), the
        events already observed are kept and returned by the next poll, before the venue is
        asked again: the watch has moved past them, so dropping them would lose them for good."""
        if self._undelivered:
            kept, self._undelivered = self._undelivered, []
            return kept
        events: list[InputEvent] = []
        bad_answer: BrokerBadResponse | None = None
        delivered = False
        try:
            for cid in self.working():
                try:
                    order = lookup(cid)
                    if order is not None:
                        events.extend(self.observe(order, ts))
                except BrokerBadResponse as exc:
                    log.error("broker_bad_order_answer", venue=self._venue, client_order_id=cid,
                              error=str(exc))
                    bad_answer = bad_answer or exc
            if bad_answer is not None:
                raise bad_answer
            delivered = True
        finally:
            if not delivered:
                self._undelivered = events
        return events

    def observe(self, order: BrokerOrder, ts: datetime) -> list[InputEvent]:
        """Events for what changed since the last observation of `order`, stamped `ts`: its
        OrderAck, a Fill for an increase of its filled quantity (booked before a terminal
        status reported with it: a venue may report executions together with 'rejected'), a
        decrease of it (a trade bust) as a SYS-009 DependencyStatus pair for the operator,
        then OrderCanceled or OrderReject. A bad answer raises BrokerBadResponse and changes
        nothing the watch remembers."""
        cid = order.client_order_id
        subject = f"order {cid}"
        venue_number(self._venue, subject, "qty", order.qty)
        venue_number(self._venue, subject, "filled_qty", order.filled_qty)
        if order.avg_fill_price is not None:
            venue_number(self._venue, subject, "avg_fill_price", order.avg_fill_price)
        if order.status is OrderStatus.FILLED and (
                order.filled_qty <= 0 or order.filled_qty < order.qty):
            # Taken as finished it would never be looked at again, its fills never reported.
            raise BrokerBadResponse(
                f"{self._venue}: order {cid}: reported filled with {order.filled_qty} of"
                f" {order.qty} executed")
        seen = self._seen.get(cid)
        if seen is None:
            seen = _Seen(broker_order_id=order.broker_order_id)
        # Everything is computed before `seen` changes, so a bad answer loses no event.
        fill: Fill | None = None
        notional, booked, avg_exponent = (seen.filled_notional, seen.booked_notional,
                                          seen.avg_exponent)
        if order.filled_qty > seen.filled_qty:
            try:
                fill = self._fill(order, seen, ts)
                notional = order.filled_qty * (order.avg_fill_price or Decimal(0))
                # before this fill unknown, what is booked is taken as the venue's from here on
                booked = notional if seen.booked_notional is None else (
                    seen.booked_notional + fill.qty * fill.price)
                avg_exponent = self._finest(seen, order.avg_fill_price or Decimal(0))
            except ArithmeticError as exc:
                raise BrokerBadResponse(
                    f"{self._venue}: order {cid}: filled_qty {order.filled_qty} at"
                    f" avg_fill_price {order.avg_fill_price} cannot be booked:"
                    f" {type(exc).__name__}") from exc
        decreased = (order.filled_qty < seen.filled_qty
                     and order.filled_qty != seen.decrease_reported)
        self._seen[cid] = seen
        events: list[InputEvent] = []
        rejected = order.status is OrderStatus.REJECTED
        # A rejected order that executed nothing was never taken: it gets its reject alone.
        if not seen.acked and (not rejected or fill is not None):
            events.append(OrderAck(ts=ts, client_order_id=cid,
                                   broker_order_id=order.broker_order_id))
            seen.acked = True
        seen.broker_order_id = order.broker_order_id or seen.broker_order_id
        if fill is not None:
            events.append(fill)
            seen.filled_qty = order.filled_qty
            seen.filled_notional = notional
            seen.booked_notional = booked
            seen.avg_exponent = avg_exponent
        if decreased:
            events.extend(self._decrease(order, seen, ts))
            seen.decrease_reported = order.filled_qty
        if order.status is OrderStatus.CANCELED and seen.status is not OrderStatus.CANCELED:
            events.append(OrderCanceled(ts=ts, client_order_id=cid, reason="canceled at venue"))
        if rejected and seen.status is not OrderStatus.REJECTED:
            events.append(OrderReject(ts=ts, client_order_id=cid, reason="rejected by venue"))
        seen.status = order.status
        return events

    def _decrease(self, order: BrokerOrder, seen: _Seen, ts: datetime) -> list[InputEvent]:
        """A filled quantity that went down: the venue busted or corrected executions the
        engine has booked, and no event can take a fill back. Reported as a broker/gateway
        disagreement (SYS-009: an Alert, and the mode the policy's on_reconciliation_mismatch
        asks for, kept until an operator resumes), then marked reported at once
        (`model.reasons.REPORTED`: no Alert says it is healthy again): nothing the gateway
        sees later says the books were put right, and a reason left standing would hold the
        mode for good. Reconciliation then shows the position difference itself."""
        cid = order.client_order_id
        log.error("broker_filled_qty_decreased", venue=self._venue, client_order_id=cid,
                  seen=str(seen.filled_qty), now=str(order.filled_qty))
        dependency = f"{FILLS_DEPENDENCY}:{cid}"
        return [
            DependencyStatus(
                ts=ts, dependency=dependency, healthy=False, code=FILLED_QTY_DECREASED,
                detail=(f"{self._venue} reports order {cid} filled {order.filled_qty}, less than"
                        f" the {seen.filled_qty} the gateway booked (a trade bust or correction"
                        " at the venue); the booked fills stand: check the position with the"
                        " venue")),
            DependencyStatus(ts=ts, dependency=dependency, healthy=True,
                             code=FILLED_QTY_DECREASED, detail=REPORTED),
        ]

    @staticmethod
    def _finest(seen: _Seen, average: Decimal) -> int:
        """The finest decimal place of the order's averages, `average` among them."""
        exponent = decimal_places(average)
        return exponent if seen.avg_exponent is None else min(exponent, seen.avg_exponent)

    def _fill(self, order: BrokerOrder, seen: _Seen, ts: datetime) -> Fill:
        delta = order.filled_qty - seen.filled_qty
        avg = order.avg_fill_price
        if avg is None or avg <= 0:
            raise BrokerBadResponse(
                f"{self._venue}: order {order.client_order_id}: filled quantity rose to"
                f" {order.filled_qty} without a positive average fill price")
        rounding = half_unit(self._finest(seen, avg))
        if seen.filled_qty == 0:
            # The first part: the average is the venue's own figure for all it executed, with
            # no derivation whose rounding could push it past the limit (an average of prices
            # within a limit, rounded at the limit's precision, stays within it). How many
            # decimals the venue printed ("100" for 100.0000) says nothing of its rounding, so
            # a first average past the limit is booked as reported: a breach the engine alerts.
            price = avg
        elif seen.filled_notional is None or seen.booked_notional is None:
            price = avg  # what was filled before is not known: the venue's figure, as is
        else:
            # Venues round their averages (both taken to the order's finest place), so the price
            # of an increment derived from two of them carries that rounding, and what was
            # booked differs from the venue's earlier notional by what a part booked at the
            # limit left out. When they imply no usable increment price, the average, the
            # venue's own figure, is used rather than an invented one.
            error = ((order.filled_qty + seen.filled_qty) * rounding
                     + abs(seen.filled_notional - seen.booked_notional))
            derived = derived_price(order.filled_qty, avg, seen.filled_qty,
                                    seen.booked_notional, error=error, limit=seen.limit)
            price = avg if derived is None else derived
        try:
            return Fill(ts=ts, client_order_id=order.client_order_id,
                        fill_id=fill_id(order.client_order_id, order.filled_qty),
                        qty=delta, price=price)
        except InvalidValue as exc:
            raise BrokerBadResponse(
                f"{self._venue}: order {order.client_order_id}: filled quantity {seen.filled_qty}"
                f" -> {order.filled_qty} at average {avg} gives no valid fill: {exc}") from exc
