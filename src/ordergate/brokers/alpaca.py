"""Alpaca (US equities) through the official alpaca-py SDK.

The SDK sends and authenticates; this module decides what is sent and what an answer means.
Answers are read raw and parsed into exact decimals here (alpaca-py models carry floats).
The SDK's own sleep-and-retry on 429/504 is switched off: a retried submit is a possible
duplicate, and the gateway owns every retry decision (`resilience.retry`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import pydantic
import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
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
from ordergate.brokers.config import Secret
from ordergate.brokers.labels import (
    OrderWatch,
    PriceLimit,
    fill_time,
    order_limit,
    parse_retry_after,
    parse_timestamp,
    require_label,
    require_supported,
    response_shape,
    venue_number,
)
from ordergate.journal import redact_url
from ordergate.model.events import Dispatch, InputEvent
from ordergate.model.intent import OrderType, Side, TimeInForce

log = structlog.get_logger("ordergate.brokers.alpaca")

VENUE = "alpaca"
CLIENT_ORDER_ID_MAX = 48
# Alpaca answers 403 both for bad keys and, with this code, for an order the account cannot
# afford: the second is an order rejection, not a credentials problem.
_INSUFFICIENT_BUYING_POWER = 40310000

CAPABILITIES = BrokerCapabilities(
    order_types=frozenset(OrderType),
    time_in_force=frozenset(TimeInForce),
    fractional_qty=True,
    reduce_only=False,
    post_only=False,
    query_by_client_id=True,
    cancel_all=False,
    max_client_order_id_length=CLIENT_ORDER_ID_MAX,
    unique_client_order_id=True,  # a second one is refused: 422 "client_order_id must be unique"
)

# Alpaca's order statuses (docs.alpaca.markets, "Order Lifecycle"). Only filled, canceled,
# expired, replaced and rejected end an order. `done_for_day` is a pause, not an end: a GTC
# order (or one placed for a later session) gets no updates until the next trading day, then
# works and fills again, so it stays working here and keeps being polled. `calculated` is the
# same pause while the venue settles the day. `replaced` ends this order: what was left of it
# lives on as a new order with its own id (the gateway never replaces, so that one is
# someone else's and shows up as an orphan).
_STATUS = {
    "new": OrderStatus.NEW,
    "accepted": OrderStatus.NEW,
    "pending_new": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.NEW,
    "pending_cancel": OrderStatus.NEW,
    "pending_replace": OrderStatus.NEW,
    "calculated": OrderStatus.NEW,
    "held": OrderStatus.NEW,
    "stopped": OrderStatus.NEW,
    "suspended": OrderStatus.NEW,
    "pending_review": OrderStatus.NEW,
    "done_for_day": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


class _Order(msgspec.Struct, kw_only=True):
    id: str
    client_order_id: str
    symbol: str
    status: str
    qty: Decimal | None = None
    filled_qty: Decimal | None = None
    filled_avg_price: Decimal | None = None
    filled_at: Any = None  # checked where it is read: a bad one is left out, not a bad answer


class _Position(msgspec.Struct, kw_only=True):
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal = Decimal(0)
    side: str = "long"


class _Clock(msgspec.Struct, kw_only=True):
    timestamp: str


class _TimeoutSession(requests.Session):
    """requests has no default timeout; without one a hung connection blocks forever."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(method, url, *args, **kwargs)


class AlpacaAdapter:
    """One Alpaca account. `paper` picks the paper or live endpoint unless `base_url` is given."""

    def __init__(self, *, api_key: Secret, secret_key: Secret, account: str, paper: bool,
                 base_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._account = account
        self._paper = paper
        self._client = TradingClient(api_key=api_key.reveal(), secret_key=secret_key.reveal(),
                                     paper=paper, raw_data=True, url_override=base_url or None)
        self._client._session = _TimeoutSession(timeout_s)
        self._client._retry = 0
        self._client._retry_codes = []
        url = self._client._base_url
        self._base_url = str(url.value if isinstance(url, enum.Enum) else url)
        self._watch = OrderWatch(VENUE)

    def __repr__(self) -> str:
        return (f"AlpacaAdapter(account={self._account!r}, paper={self._paper},"
                f" url={self._base_url!r})")

    @property
    def name(self) -> str:
        return VENUE

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def paper(self) -> bool:
        """Whether its config trades on paper: evidence."""
        return self._paper

    @property
    def capabilities(self) -> BrokerCapabilities:
        return CAPABILITIES

    # ------------------------------------------------------------------ orders

    def submit(self, order: Dispatch) -> SubmitResult:
        request = self._order_request(order)
        with self._watch.submitting(order.client_order_id,
                                     order_limit(order.side, order.limit_price)):
            with _errors("submit"):
                raw = self._client.submit_order(request)
            placed = self._parse_order(raw, "submit")
        log.info("broker_submitted", venue=VENUE, client_order_id=order.client_order_id,
                 intent_id=order.intent_id, broker_order_id=placed.broker_order_id)
        return SubmitResult(accepted=True, broker_order_id=placed.broker_order_id)

    def cancel(self, client_order_id: str) -> None:
        found = self.get_order(client_order_id)
        if found is None:
            raise BrokerOrderRejected(
                f"{VENUE}: cancel {client_order_id}: the venue has no order with this"
                " client_order_id", http_status=404)
        with _errors("cancel"):
            self._client.cancel_order_by_id(found.broker_order_id)
        log.info("broker_cancel_requested", venue=VENUE, client_order_id=client_order_id,
                 broker_order_id=found.broker_order_id)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        try:
            with _errors("get_order"):
                raw = self._client.get_order_by_client_id(client_order_id)
        except BrokerError as exc:
            if exc.http_status == 404:
                return None
            raise
        return self._parse_order(raw, "get_order")

    def open_orders(self) -> list[BrokerOrder]:
        with _errors("open_orders"):
            raw = self._client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN,
                                                           limit=500))
        if not isinstance(raw, list):
            raise BrokerBadResponse(f"{VENUE}: open_orders: expected a list, got {type(raw)}")
        return [self._parse_order(item, "open_orders") for item in raw]

    def positions(self) -> list[BrokerPosition]:
        with _errors("positions"):
            raw = self._client.get_all_positions()
        with response_shape(VENUE, "positions"):
            rows = msgspec.convert(raw, list[_Position], strict=False)
        result = []
        for row in rows:
            subject = f"positions: position {row.symbol}"
            venue_number(VENUE, subject, "qty", row.qty, signed=True)
            venue_number(VENUE, subject, "avg_entry_price", row.avg_entry_price)
            qty = -abs(row.qty) if row.side == "short" else row.qty
            result.append(BrokerPosition(account=self._account, symbol=row.symbol, qty=qty,
                                         avg_price=row.avg_entry_price))
        return result

    def poll_events(self, until: datetime) -> list[InputEvent]:
        """Events for the orders this adapter follows, from their current state at the venue."""
        return self._watch.poll(self.get_order, until)

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        """Follow an order the gateway holds open (after a restart) from `reported` on."""
        self._watch.track(client_order_id, known=reported, limit=limit)

    def server_time(self) -> datetime:
        with _errors("server_time"):
            raw = self._client.get_clock()
        with response_shape(VENUE, "clock"):
            clock = msgspec.convert(raw, _Clock, strict=False)
        return parse_timestamp(VENUE, "clock.timestamp", clock.timestamp)

    # ------------------------------------------------------------------ mapping

    def _order_request(self, order: Dispatch) -> OrderRequest:
        require_label(order.client_order_id, venue=VENUE, field="client_order_id",
                      max_length=CLIENT_ORDER_ID_MAX)
        require_supported(VENUE, order.order_type, order.tif, CAPABILITIES.order_types,
                          CAPABILITIES.time_in_force)
        # `reduce_only` has no venue-side flag for equities: the gateway itself guarantees the
        # reduction (the gate accepted the intent only because it shrinks the position, counting
        # every working order), so the order goes out without the flag. Refusing it would stop
        # exactly the risk-reducing orders that capital supremacy says must pass.
        fields: dict[str, Any] = {
            "symbol": order.symbol,
            "qty": _exact_float("qty", order.qty),
            "side": AlpacaSide.BUY if order.side is Side.BUY else AlpacaSide.SELL,
            "time_in_force": AlpacaTif(order.tif.value),
            "client_order_id": order.client_order_id,
        }
        request_type: type[OrderRequest] = MarketOrderRequest
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            fields["limit_price"] = _exact_float("limit_price", _required(order, "limit_price"))
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            fields["stop_price"] = _exact_float("stop_price", _required(order, "stop_price"))
        if order.order_type is OrderType.LIMIT:
            request_type = LimitOrderRequest
        elif order.order_type is OrderType.STOP:
            request_type = StopOrderRequest
        elif order.order_type is OrderType.STOP_LIMIT:
            request_type = StopLimitOrderRequest
        try:
            return request_type(**fields)
        except pydantic.ValidationError as exc:
            raise BrokerOrderRejected(
                f"{VENUE}: {order.client_order_id}: not a valid Alpaca order: {exc}") from exc

    @staticmethod
    def _parse_order(raw: object, what: str) -> BrokerOrder:
        with response_shape(VENUE, what):
            parsed = msgspec.convert(raw, _Order, strict=False)
        status = _STATUS.get(parsed.status)
        if status is None:
            raise BrokerBadResponse(f"{VENUE}: {what}: unknown order status '{parsed.status}'")
        subject = f"{what}: order {parsed.client_order_id}"
        qty = venue_number(VENUE, subject, "qty", parsed.qty or Decimal(0))
        filled = venue_number(VENUE, subject, "filled_qty", parsed.filled_qty or Decimal(0))
        avg = parsed.filled_avg_price
        if avg is not None:
            venue_number(VENUE, subject, "filled_avg_price", avg)
        if status is OrderStatus.NEW and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        filled_at = (fill_time(VENUE, f"{subject}: filled_at", parsed.filled_at)
                     if filled > 0 else None)
        return BrokerOrder(client_order_id=parsed.client_order_id, broker_order_id=parsed.id,
                           symbol=parsed.symbol, status=status, qty=qty,
                           filled_qty=filled, avg_fill_price=avg, filled_at=filled_at)


def _required(order: Dispatch, field: str) -> Decimal:
    value: Decimal | None = getattr(order, field)
    if value is None:
        raise BrokerOrderRejected(
            f"{VENUE}: {order.client_order_id}: {order.order_type} order without {field}")
    return value


def _exact_float(field: str, value: Decimal) -> float:
    """alpaca-py's request models take floats: refuse any value a float would not carry exactly
    to the wire (the JSON text of the float must read back as the same decimal)."""
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise BrokerOrderRejected(
            f"{VENUE}: {field}: {value} cannot be sent exactly (at most 15 significant digits)")
    return as_float


def _api_error_body(exc: APIError) -> tuple[int | None, str]:
    try:
        body = json.loads(str(exc))
    except ValueError:
        return None, redact_url(str(exc)[:200])
    if not isinstance(body, dict):
        return None, redact_url(str(exc)[:200])
    code = body.get("code")
    return (code if isinstance(code, int) else None), redact_url(str(body.get("message", "")))


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """alpaca-py and requests exceptions as the BrokerError family."""
    try:
        yield
    except APIError as exc:
        status = exc.status_code
        code, message = _api_error_body(exc)
        text = f"{VENUE}: {what}: HTTP {status}: {message or 'no message'}"
        if status == 401:
            raise BrokerAuthError(text, http_status=status) from exc
        if status == 403:
            if code == _INSUFFICIENT_BUYING_POWER:
                raise BrokerOrderRejected(text, http_status=status) from exc
            raise BrokerAuthError(text, http_status=status) from exc
        if status == 429:
            response = exc.response
            headers = response.headers if response is not None else None
            raise BrokerRateLimited(text, http_status=status,
                                    retry_after_s=parse_retry_after(headers)) from exc
        if status is not None and status >= 500:
            raise BrokerUnavailable(text, http_status=status) from exc
        if status in (400, 404, 409, 422):
            raise BrokerOrderRejected(text, http_status=status) from exc
        raise BrokerBadResponse(text, http_status=status) from exc
    except requests.exceptions.JSONDecodeError as exc:
        raise BrokerBadResponse(f"{VENUE}: {what}: answer is not JSON") from exc
    except requests.exceptions.Timeout as exc:
        raise BrokerUnavailable(f"{VENUE}: {what}: timed out") from exc
    except requests.exceptions.RequestException as exc:
        # requests quotes the URL, and with it a password in `base_url`
        raise BrokerUnavailable(f"{VENUE}: {what}: {type(exc).__name__}: "
                                f"{redact_url(str(exc))}") from exc
    except pydantic.ValidationError as exc:
        raise BrokerBadResponse(f"{VENUE}: {what}: unexpected response shape: "
                                f"{redact_url(str(exc))}") from exc
