"""Tradier (US equities) over its REST API with httpx.

Orders are form-encoded posts to `/v1/accounts/{account}/orders`; our client order id rides
in the order's `tag` (letters, digits and '-' only, at most 255: anything else is refused
before dispatch). Tradier finds orders by its own numeric id, so the adapter keeps a
client-id -> broker-id map and, when an id is not in it (after a restart), looks the order up
by tag in the account's order list. Tradier names a sell that opens a short `sell_short` and
a buy that closes one `buy_to_cover`, so a submit reads the symbol's position first; an order
that would cross from long to short (or back) in one go is refused, since Tradier needs two;
when that read fails, nothing is sent and the submit says so (BrokerNotSent).

An order at Tradier without a tag (placed by hand) is named `og-untagged-<Tradier id>`:
distinct for each such order, and never one of the gateway's ids (derived ids are "og-" and
hex digits, an intent's own may not start with "og-"). Lookups and cancels by that name reach
exactly that order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import structlog

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerCapabilities,
    BrokerError,
    BrokerNotSent,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerPosition,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.config import Secret
from ordergate.brokers.labels import (
    UNTAGGED_PREFIX,
    OrderWatch,
    PriceLimit,
    decimal_text,
    fill_time,
    json_constant,
    order_limit,
    parse_retry_after,
    require_label,
    require_supported,
    response_shape,
    venue_number,
)
from ordergate.journal import redact_url
from ordergate.model.events import Dispatch, InputEvent
from ordergate.model.intent import OrderType, Side, TimeInForce

log = structlog.get_logger("ordergate.brokers.tradier")

VENUE = "tradier"
TAG_MAX = 255
TAG_PATTERN = re.compile(r"[A-Za-z0-9-]+")

CAPABILITIES = BrokerCapabilities(
    order_types=frozenset(OrderType),
    time_in_force=frozenset({TimeInForce.DAY, TimeInForce.GTC}),
    fractional_qty=False,
    reduce_only=False,
    post_only=False,
    query_by_client_id=True,
    cancel_all=False,
    max_client_order_id_length=TAG_MAX,
    # /v1/markets/clock gives whole Unix seconds.
    clock_resolution_ms=1000,
)

_STATUS = {
    "pending": OrderStatus.NEW,
    "open": OrderStatus.NEW,
    "calculated": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.NEW,
    "held": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "expired": OrderStatus.CANCELED,
    "canceled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "error": OrderStatus.REJECTED,
}


class _Order(msgspec.Struct, kw_only=True):
    id: int
    symbol: str
    status: str
    quantity: Decimal
    exec_quantity: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    tag: str = ""
    # when the order last changed: checked where it is read, a bad one is left out
    transaction_date: Any = None


class _OrderEnvelope(msgspec.Struct):
    order: _Order


class _Placed(msgspec.Struct):
    id: int
    status: str


class _PlacedEnvelope(msgspec.Struct):
    order: _Placed


class _Position(msgspec.Struct, kw_only=True):
    symbol: str
    quantity: Decimal
    cost_basis: Decimal = Decimal(0)


class _ClockBody(msgspec.Struct, kw_only=True):
    timestamp: int


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_S = (datetime(9999, 12, 31, tzinfo=UTC) - _UNIX_EPOCH) // timedelta(seconds=1)


class _Clock(msgspec.Struct):
    clock: _ClockBody


class TradierAdapter:
    """One Tradier brokerage account (`broker_account`), serving ordergate account `account`."""

    def __init__(self, *, token: Secret, broker_account: str, account: str, base_url: str,
                 timeout_s: float = 10.0, paper: bool | None = None) -> None:
        self._account = account
        self._paper = paper
        self._broker_account = broker_account
        self._base_url = base_url.rstrip("/")
        # httpx masks the Authorization header in its reprs and never logs it.
        self._http = httpx.Client(
            base_url=self._base_url, timeout=httpx.Timeout(timeout_s),
            headers={"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"})
        self._broker_ids: dict[str, str] = {}
        self._watch = OrderWatch(VENUE)

    def __repr__(self) -> str:
        return (f"TradierAdapter(account={self._account!r},"
                f" broker_account={self._broker_account!r}, url={self._base_url!r})")

    def close(self) -> None:
        self._http.close()

    @property
    def name(self) -> str:
        return VENUE

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def paper(self) -> bool | None:
        """Whether its config trades on paper (None when built without saying): evidence."""
        return self._paper

    @property
    def capabilities(self) -> BrokerCapabilities:
        return CAPABILITIES

    # ------------------------------------------------------------------ orders

    def submit(self, order: Dispatch) -> SubmitResult:
        form = self._order_form(order)
        form["side"] = self._side(order)
        with self._watch.submitting(order.client_order_id,
                                     order_limit(order.side, order.limit_price)):
            body = self._request("submit", "POST", self._path("/orders"), data=form)
            with response_shape(VENUE, "submit"):
                placed = msgspec.convert(body, _PlacedEnvelope, strict=False).order
            if placed.status != "ok":
                raise BrokerOrderRejected(f"{VENUE}: submit {order.client_order_id}: status"
                                          f" '{placed.status}'")
        broker_id = str(placed.id)
        self._broker_ids[order.client_order_id] = broker_id
        log.info("broker_submitted", venue=VENUE, client_order_id=order.client_order_id,
                 intent_id=order.intent_id, broker_order_id=broker_id)
        return SubmitResult(accepted=True, broker_order_id=broker_id)

    def cancel(self, client_order_id: str) -> None:
        found = self.get_order(client_order_id)
        if found is None:
            raise BrokerOrderRejected(f"{VENUE}: cancel {client_order_id}: the venue has no"
                                      " order with this tag", http_status=404)
        self._request("cancel", "DELETE", self._path(f"/orders/{found.broker_order_id}"))
        log.info("broker_cancel_requested", venue=VENUE, client_order_id=client_order_id,
                 broker_order_id=found.broker_order_id)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        broker_id = self._broker_ids.get(client_order_id)
        if broker_id is None:
            for row in self._list_orders("get_order"):
                if _client_order_id(row) == client_order_id:
                    self._broker_ids[client_order_id] = str(row.id)
                    return _to_broker_order(row, "get_order")
            return None
        try:
            body = self._request("get_order", "GET", self._path(f"/orders/{broker_id}"),
                                 params={"includeTags": "true"})
        except BrokerError as exc:
            if exc.http_status == 404:
                return None
            raise
        with response_shape(VENUE, "get_order"):
            row = msgspec.convert(body, _OrderEnvelope, strict=False).order
        order = _to_broker_order(row, "get_order")
        # Tradier answers by its id; keep our id even if the tag was not echoed.
        return msgspec.structs.replace(order, client_order_id=client_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        orders = (_to_broker_order(row, "open_orders") for row in self._list_orders("open_orders"))
        return [o for o in orders
                if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]

    def positions(self) -> list[BrokerPosition]:
        body = self._request("positions", "GET", self._path("/positions"))
        rows = _unwrap(body, "positions", "position", "positions")
        with response_shape(VENUE, "positions"):
            parsed = msgspec.convert(rows, list[_Position], strict=False)
        positions = []
        for row in parsed:
            subject = f"positions: position {row.symbol}"
            venue_number(VENUE, subject, "quantity", row.quantity, signed=True)
            venue_number(VENUE, subject, "cost_basis", row.cost_basis, signed=True)
            if row.quantity != 0:
                positions.append(BrokerPosition(account=self._account, symbol=row.symbol,
                                                qty=row.quantity,
                                                avg_price=abs(row.cost_basis / row.quantity)))
        return positions

    def poll_events(self, until: datetime) -> list[InputEvent]:
        """Events for the orders this adapter follows, from their current state at the venue."""
        return self._watch.poll(self.get_order, until)

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        """Follow an order the gateway holds open (after a restart) from `reported` on."""
        if reported is not None and reported.broker_order_id:
            self._broker_ids[client_order_id] = reported.broker_order_id
        self._watch.track(client_order_id, known=reported, limit=limit)

    def server_time(self) -> datetime:
        body = self._request("server_time", "GET", "/v1/markets/clock")
        with response_shape(VENUE, "clock"):
            clock = msgspec.convert(body, _Clock, strict=False)
        seconds = clock.clock.timestamp
        if not 0 < seconds <= _LAST_S:  # beyond the calendar: no time to compare clocks with
            raise BrokerBadResponse(f"{VENUE}: clock: timestamp: expected seconds since the "
                                    f"Unix epoch, got {seconds!r}")
        return _UNIX_EPOCH + timedelta(seconds=seconds)

    # ------------------------------------------------------------------ mapping

    def _path(self, tail: str) -> str:
        return f"/v1/accounts/{self._broker_account}{tail}"

    def _order_form(self, order: Dispatch) -> dict[str, str]:
        require_label(order.client_order_id, venue=VENUE, field="tag", max_length=TAG_MAX,
                      pattern=TAG_PATTERN, allowed="letters, digits and '-' only")
        require_supported(VENUE, order.order_type, order.tif, CAPABILITIES.order_types,
                          CAPABILITIES.time_in_force)
        # No venue-side reduce-only flag: the gateway's own check is the guarantee (see the
        # Alpaca adapter); the side mapping below still refuses an order that would cross zero.
        if order.qty != order.qty.to_integral_value():
            raise BrokerOrderRejected(
                f"{VENUE}: {order.client_order_id}: quantity {order.qty} is fractional;"
                " Tradier trades whole shares")
        form = {
            "class": "equity",
            "symbol": order.symbol,
            "quantity": decimal_text(order.qty.to_integral_value()),
            "type": order.order_type.value,
            "duration": order.tif.value,
            "tag": order.client_order_id,
        }
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if order.limit_price is None:
                raise BrokerOrderRejected(f"{VENUE}: {order.client_order_id}:"
                                          f" {order.order_type} order without limit_price")
            form["price"] = decimal_text(order.limit_price)
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if order.stop_price is None:
                raise BrokerOrderRejected(f"{VENUE}: {order.client_order_id}:"
                                          f" {order.order_type} order without stop_price")
            form["stop"] = decimal_text(order.stop_price)
        return form

    def _side(self, order: Dispatch) -> str:
        try:
            held = sum((p.qty for p in self.positions() if p.symbol == order.symbol),
                       Decimal(0))
        except BrokerError as exc:
            # Nothing went out: the order can be refused outright, not asked after as one
            # whose submit went unanswered.
            raise BrokerNotSent(
                f"{VENUE}: submit {order.client_order_id}: not sent, the position read that"
                f" chooses its side failed: {exc}", http_status=exc.http_status,
                retry_after_s=exc.retry_after_s) from exc
        if order.side is Side.BUY:
            if held >= 0:
                return "buy"
            if order.qty <= -held:
                return "buy_to_cover"
        else:
            if held <= 0:
                return "sell_short"
            if order.qty <= held:
                return "sell"
        raise BrokerOrderRejected(
            f"{VENUE}: {order.client_order_id}: {order.side} {order.qty} {order.symbol} would"
            f" cross the position of {held} through zero; Tradier needs one order to close and"
            " another to open")

    def _list_orders(self, what: str) -> list[_Order]:
        body = self._request(what, "GET", self._path("/orders"), params={"includeTags": "true"})
        rows = _unwrap(body, "orders", "order", what)
        with response_shape(VENUE, what):
            return msgspec.convert(rows, list[_Order], strict=False)

    def _request(self, what: str, method: str, path: str, *,
                 params: dict[str, str] | None = None,
                 data: dict[str, str] | None = None) -> Any:
        with _transport_errors(what):
            response = self._http.request(method, path, params=params, data=data)
        status = response.status_code
        if status >= 400:
            _raise_for_status(what, response)
        try:
            # a bare NaN or Infinity literal reads as that Decimal, for the field check to name
            return json.loads(response.content, parse_float=Decimal,
                              parse_constant=json_constant)
        except ValueError as exc:
            raise BrokerBadResponse(f"{VENUE}: {what}: answer is not JSON"
                                    f" (HTTP {status})", http_status=status) from exc


def _unwrap(body: Any, outer: str, inner: str, what: str) -> list[Any]:
    """Tradier's collections: {outer: {inner: [..]}}, {outer: {inner: {..}}} for one item, and
    {outer: "null"} for none."""
    if not isinstance(body, dict) or outer not in body:
        raise BrokerBadResponse(f"{VENUE}: {what}: answer has no '{outer}'")
    collection = body[outer]
    if collection in ("null", None):
        return []
    if not isinstance(collection, dict) or inner not in collection:
        raise BrokerBadResponse(f"{VENUE}: {what}: '{outer}' has no '{inner}'")
    items = collection[inner]
    return items if isinstance(items, list) else [items]


def _client_order_id(row: _Order) -> str:
    """Our id for a venue order: its tag, or for an order without one (placed by hand) a name
    of its own built from Tradier's id, so two such orders never share one."""
    return row.tag or f"{UNTAGGED_PREFIX}{row.id}"


def _to_broker_order(row: _Order, what: str) -> BrokerOrder:
    status = _STATUS.get(row.status)
    if status is None:
        raise BrokerBadResponse(f"{VENUE}: {what}: unknown order status '{row.status}'")
    subject = f"{what}: order {_client_order_id(row)}"
    venue_number(VENUE, subject, "quantity", row.quantity)
    venue_number(VENUE, subject, "exec_quantity", row.exec_quantity)
    venue_number(VENUE, subject, "avg_fill_price", row.avg_fill_price)
    # The time of the order's last change is that of its last fill only while nothing but
    # fills can have followed them: not once it was canceled, expired or rejected.
    last_change_a_fill = row.exec_quantity > 0 and status not in (OrderStatus.CANCELED,
                                                                  OrderStatus.REJECTED)
    return BrokerOrder(client_order_id=_client_order_id(row), broker_order_id=str(row.id),
                       symbol=row.symbol, status=status, qty=row.quantity,
                       filled_qty=row.exec_quantity,
                       avg_fill_price=row.avg_fill_price if row.exec_quantity > 0 else None,
                       filled_at=(fill_time(VENUE, f"{subject}: transaction_date",
                                            row.transaction_date)
                                  if last_change_a_fill else None))


def _raise_for_status(what: str, response: httpx.Response) -> None:
    status = response.status_code
    detail = redact_url(_error_text(response))
    text = f"{VENUE}: {what}: HTTP {status}: {detail}"
    if status in (401, 403):
        raise BrokerAuthError(text, http_status=status)
    if status == 429:
        raise BrokerRateLimited(text, http_status=status,
                                retry_after_s=parse_retry_after(response.headers))
    if status >= 500:
        raise BrokerUnavailable(text, http_status=status)
    if status in (400, 404, 409, 422):
        raise BrokerOrderRejected(text, http_status=status)
    raise BrokerBadResponse(text, http_status=status)


def _error_text(response: httpx.Response) -> str:
    """Tradier's {"errors": {"error": [..]}} as one line; other bodies shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or "no message"
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        errors = body["errors"].get("error")
        if isinstance(errors, list):
            return "; ".join(str(e) for e in errors)
        if errors is not None:
            return str(errors)
    return str(body)[:200]


@contextmanager
def _transport_errors(what: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BrokerUnavailable(f"{VENUE}: {what}: timed out") from exc
    except httpx.TransportError as exc:
        # an error may quote the URL, and with it a password in `base_url`
        raise BrokerUnavailable(f"{VENUE}: {what}: {type(exc).__name__}: "
                                f"{redact_url(str(exc))}") from exc
