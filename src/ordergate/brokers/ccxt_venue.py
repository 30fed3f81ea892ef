"""Crypto derivatives venues through ccxt; Deribit first.

ccxt signs and sends the venue's own API methods (Deribit's JSON-RPC over HTTP:
`private/buy`, `private/get_order_state_by_label`, ...) and raises its exception family from
the venue's error codes; this module chooses the parameters and maps every answer. The
venue's own methods are used rather than ccxt's unified order calls because the gateway
needs the venue's exact semantics: amounts in the venue's contract units, `reduce_only`,
`post_only`, and our client order id carried in Deribit's `label` (at most 64 characters,
checked before dispatch). Answers are parsed with decimals, never floats.

An order at the venue without a label (placed by hand) is named `og-untagged-<Deribit order
id>`: distinct for each such order, and never one of the gateway's ids (derived ids are "og-"
and hex digits, an intent's own may not start with "og-"). Lookups and cancels by that name
reach exactly that order, by its Deribit id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt
import msgspec
import structlog

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerCapabilities,
    BrokerOrder,
    BrokerOrderRejected,
    BrokerPosition,
    BrokerRateLimited,
    BrokerUnavailable,
    OrderStatus,
    SubmitResult,
)
from ordergate.brokers.config import MIN_TIMEOUT_S, Secret
from ordergate.brokers.labels import (
    UNTAGGED_PREFIX,
    OrderWatch,
    PriceLimit,
    decimal_text,
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

log = structlog.get_logger("ordergate.brokers.deribit")

VENUE = "deribit"
# ccxt logs each request's headers (API key id and signature) at debug level: keep it quiet.
_WIRE_LOG = logging.getLogger("ordergate.brokers.deribit.wire")
_WIRE_LOG.setLevel(logging.INFO)
LABEL_MAX = 64

CAPABILITIES = BrokerCapabilities(
    order_types=frozenset(OrderType),
    time_in_force=frozenset(TimeInForce),
    fractional_qty=True,
    reduce_only=True,
    post_only=True,
    query_by_client_id=True,
    cancel_all=False,
    max_client_order_id_length=LABEL_MAX,
)

_ORDER_TYPE = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop_market",
    OrderType.STOP_LIMIT: "stop_limit",
}
_TIF = {
    TimeInForce.DAY: "good_til_day",
    TimeInForce.GTC: "good_til_cancelled",
    TimeInForce.IOC: "immediate_or_cancel",
    TimeInForce.FOK: "fill_or_kill",
}
_STATE = {
    "open": OrderStatus.NEW,
    "untriggered": OrderStatus.NEW,
    "triggered": OrderStatus.NEW,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


class _Order(msgspec.Struct, kw_only=True):
    order_id: str
    instrument_name: str
    order_state: str
    amount: Decimal
    filled_amount: Decimal = Decimal(0)
    average_price: Decimal | None = None
    label: str = ""
    creation_timestamp: int = 0
    # when the order last changed (ms): checked where it is read, a bad one is left out
    last_update_timestamp: Any = None


class _Placed(msgspec.Struct, kw_only=True):
    order: _Order


class _Position(msgspec.Struct, kw_only=True):
    instrument_name: str
    size: Decimal
    average_price: Decimal = Decimal(0)


def currency_of(instrument_name: str) -> str:
    """Deribit's `currency` for an instrument: BTC-PERPETUAL -> BTC, BTC_USDC-PERPETUAL -> USDC."""
    head = instrument_name.split("-", 1)[0]
    return head.split("_", 1)[1] if "_" in head else head


def _decimal_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=json_constant)


class CcxtVenue:
    """One Deribit (sub)account through `ccxt.deribit`.

    `currencies` are the currencies whose open orders and positions are read, and where an
    order is looked for by label. `post_only` makes every limit order post-only (rejected by
    the venue rather than taking liquidity).
    """

    def __init__(self, *, api_key: Secret, secret: Secret, account: str, base_url: str,
                 timeout_s: float = 10.0, currencies: tuple[str, ...] = ("BTC", "ETH"),
                 post_only: bool = False, client_rate_limit: bool = True,
                 paper: bool | None = None) -> None:
        if not currencies:
            raise ValueError("currencies: at least one Deribit currency is needed")
        if not timeout_s >= MIN_TIMEOUT_S:
            raise ValueError(f"timeout_s: expected at least {MIN_TIMEOUT_S:g} s (ccxt counts"
                             f" whole milliseconds), got {timeout_s}")
        self._account = account
        self._paper = paper
        self._base_url = base_url.rstrip("/")
        self._currencies = currencies
        self._post_only = post_only
        self._exchange = ccxt.deribit({
            "apiKey": api_key.reveal(),
            "secret": secret.reveal(),
            "timeout": int(timeout_s * 1000),
            "enableRateLimit": client_rate_limit,
            "logger": _WIRE_LOG,
        })
        self._exchange.urls["api"] = {"rest": self._base_url}
        # Decimal, not float, for every number in the venue's answers (exact money).
        self._exchange.on_json_response = _decimal_json
        self._watch = OrderWatch(VENUE)
        self._instrument: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"CcxtVenue(venue={VENUE!r}, account={self._account!r}, url={self._base_url!r})"

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
        params = self._order_params(order)
        method = (self._exchange.privateGetBuy if order.side is Side.BUY
                  else self._exchange.privateGetSell)
        # Known before the send: a lookup by label after an unanswered submit asks its
        # currency first.
        self._instrument[order.client_order_id] = order.symbol
        with self._watch.submitting(order.client_order_id,
                                     order_limit(order.side, order.limit_price)):
            result = self._call("submit", method, params)
            with response_shape(VENUE, "submit"):
                placed = msgspec.convert(result, _Placed, strict=False).order
        log.info("broker_submitted", venue=VENUE, client_order_id=order.client_order_id,
                 intent_id=order.intent_id, broker_order_id=placed.order_id)
        return SubmitResult(accepted=True, broker_order_id=placed.order_id)

    def cancel(self, client_order_id: str) -> None:
        if not client_order_id:
            # cancel_by_label with an empty label would cancel every order placed without one
            raise BrokerOrderRejected(f"{VENUE}: cancel: an empty client order id names no"
                                      " order (an order without a label is og-untagged-<id>)")
        unlabelled = self._unlabelled(client_order_id)
        if unlabelled is not None:
            self._call("cancel", self._exchange.privateGetCancel,
                       {"order_id": unlabelled.broker_order_id})
            log.info("broker_cancel_requested", venue=VENUE, client_order_id=client_order_id,
                     broker_order_id=unlabelled.broker_order_id)
            return
        for currency in self._currencies_for(client_order_id):
            result = self._call("cancel", self._exchange.privateGetCancelByLabel,
                                {"label": client_order_id, "currency": currency})
            if (isinstance(result, bool) or not isinstance(result, int | Decimal)
                    or (isinstance(result, Decimal) and not result.is_finite())):
                raise BrokerBadResponse(f"{VENUE}: cancel {client_order_id}: expected a count"
                                        f" of cancelled orders, got {result!r}")
            if result > 0:
                log.info("broker_cancel_requested", venue=VENUE, client_order_id=client_order_id)
                return
        raise BrokerOrderRejected(
            f"{VENUE}: cancel {client_order_id}: no open order carries this label")

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        if not client_order_id:
            return None  # an order without a label is named og-untagged-<id>, never ""
        unlabelled = self._unlabelled(client_order_id)
        if unlabelled is not None:
            return unlabelled
        for currency in self._currencies_for(client_order_id):
            result = self._call("get_order", self._exchange.privateGetGetOrderStateByLabel,
                                {"label": client_order_id, "currency": currency})
            with response_shape(VENUE, "get_order"):
                found = msgspec.convert(result, list[_Order], strict=False)
            if not found:
                continue
            found.sort(key=lambda row: (row.creation_timestamp, row.order_id))
            if len(found) > 1:
                log.error("broker_label_on_several_orders", venue=VENUE,
                          client_order_id=client_order_id, count=len(found))
            return _to_broker_order(found[0], "get_order")
        return None

    def open_orders(self) -> list[BrokerOrder]:
        orders: list[BrokerOrder] = []
        for currency in self._currencies:
            result = self._call("open_orders", self._exchange.privateGetGetOpenOrdersByCurrency,
                                {"currency": currency})
            with response_shape(VENUE, "open_orders"):
                rows = msgspec.convert(result, list[_Order], strict=False)
            orders.extend(_to_broker_order(row, "open_orders") for row in rows)
        return orders

    def positions(self) -> list[BrokerPosition]:
        positions: list[BrokerPosition] = []
        for currency in self._currencies:
            result = self._call("positions", self._exchange.privateGetGetPositions,
                                {"currency": currency})
            with response_shape(VENUE, "positions"):
                rows = msgspec.convert(result, list[_Position], strict=False)
            for row in rows:
                subject = f"positions: position {row.instrument_name}"
                venue_number(VENUE, subject, "size", row.size, signed=True)
                venue_number(VENUE, subject, "average_price", row.average_price)
                if row.size != 0:
                    positions.append(BrokerPosition(
                        account=self._account, symbol=row.instrument_name, qty=row.size,
                        avg_price=row.average_price))
        return positions

    def poll_events(self, until: datetime) -> list[InputEvent]:
        """Events for the orders this adapter follows, from their current state at the venue."""
        return self._watch.poll(self.get_order, until)

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        """Follow an order the gateway holds open (after a restart) from `reported` on."""
        if reported is not None and reported.symbol:
            self._instrument[client_order_id] = reported.symbol
        self._watch.track(client_order_id, known=reported, limit=limit)

    def server_time(self) -> datetime:
        result = self._call("server_time", self._exchange.publicGetGetTime, {})
        if not isinstance(result, int) or isinstance(result, bool) or not 0 < result <= _LAST_MS:
            raise BrokerBadResponse(f"{VENUE}: server_time: expected milliseconds since the "
                                    f"Unix epoch, got {result!r}")
        return _EPOCH + timedelta(milliseconds=result)

    # ------------------------------------------------------------------ mapping

    def _order_params(self, order: Dispatch) -> dict[str, str]:
        require_label(order.client_order_id, venue=VENUE, field="label", max_length=LABEL_MAX)
        require_supported(VENUE, order.order_type, order.tif, CAPABILITIES.order_types,
                          CAPABILITIES.time_in_force)
        params = {
            "instrument_name": order.symbol,
            "amount": decimal_text(order.qty),
            "type": _ORDER_TYPE[order.order_type],
            "label": order.client_order_id,
            "time_in_force": _TIF[order.tif],
        }
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if order.limit_price is None:
                raise BrokerOrderRejected(f"{VENUE}: {order.client_order_id}:"
                                          f" {order.order_type} order without limit_price")
            params["price"] = decimal_text(order.limit_price)
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if order.stop_price is None:
                raise BrokerOrderRejected(f"{VENUE}: {order.client_order_id}:"
                                          f" {order.order_type} order without stop_price")
            params["trigger_price"] = decimal_text(order.stop_price)
            params["trigger"] = "last_price"
        if order.reduce_only:
            params["reduce_only"] = "true"
        if self._post_only and order.order_type is OrderType.LIMIT:
            params["post_only"] = "true"
            params["reject_post_only"] = "true"
        return params

    def _unlabelled(self, client_order_id: str) -> BrokerOrder | None:
        """The venue order without a label that `client_order_id` names (module doc), or None
        when it names none (then it is looked for as a label)."""
        if not client_order_id.startswith(UNTAGGED_PREFIX):
            return None
        order_id = client_order_id.removeprefix(UNTAGGED_PREFIX)
        with self._errors("get_order"):
            try:
                response = self._exchange.privateGetGetOrderState({"order_id": order_id})
            except ccxt.OrderNotFound:
                return None
        if not isinstance(response, dict) or "result" not in response:
            raise BrokerBadResponse(f"{VENUE}: get_order: answer has no 'result'")
        with response_shape(VENUE, "get_order"):
            row = msgspec.convert(response["result"], _Order, strict=False)
        if row.label:  # labelled after all: the name is that label, not this order's
            return None
        return _to_broker_order(row, "get_order")

    def _currencies_for(self, client_order_id: str) -> list[str]:
        instrument = self._instrument.get(client_order_id)
        first = [currency_of(instrument)] if instrument else []
        return first + [c for c in self._currencies if c not in first]

    def _call(self, what: str, method: Callable[[dict[str, str]], Any],
              params: dict[str, str]) -> Any:
        with self._errors(what):
            response = method(params)
        if not isinstance(response, dict) or "result" not in response:
            raise BrokerBadResponse(f"{VENUE}: {what}: answer has no 'result'")
        return response["result"]

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """ccxt's exception family as the BrokerError family. Order matters: subclasses first.
        ccxt's messages quote the request URL, so a password in `base_url` is masked."""
        try:
            yield
        except ccxt.AuthenticationError as exc:  # includes PermissionDenied
            raise BrokerAuthError(f"{VENUE}: {what}: {_said(exc)}") from exc
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            headers = getattr(self._exchange, "last_response_headers", None)
            raise BrokerRateLimited(f"{VENUE}: {what}: {_said(exc)}", http_status=429,
                                    retry_after_s=parse_retry_after(headers)) from exc
        except ccxt.OnMaintenance as exc:
            raise BrokerUnavailable(f"{VENUE}: {what}: venue in maintenance: {_said(exc)}") from exc
        except (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, ccxt.NetworkError) as exc:
            raise BrokerUnavailable(f"{VENUE}: {what}: {type(exc).__name__}: {_said(exc)}") from exc
        except (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest) as exc:
            raise BrokerOrderRejected(f"{VENUE}: {what}: {_said(exc)}") from exc
        except ccxt.BadResponse as exc:
            raise BrokerBadResponse(f"{VENUE}: {what}: {_said(exc)}") from exc
        except ccxt.ExchangeError as exc:
            # An error the venue did not classify: the outcome is unknown, so the caller must
            # ask before acting again (never assume rejected).
            raise BrokerUnavailable(f"{VENUE}: {what}: unclassified venue error: "
                                    f"{_said(exc)}") from exc
        except ccxt.BaseError as exc:
            raise BrokerBadResponse(f"{VENUE}: {what}: {type(exc).__name__}: {_said(exc)}") from exc
        except ValueError as exc:
            # The HTTP stack refusing a setting (a timeout it cannot use, a malformed URL):
            # no answer came and asking again will not bring one.
            raise BrokerBadResponse(f"{VENUE}: {what}: the request could not be made:"
                                    f" {type(exc).__name__}: {redact_url(str(exc))}") from exc


def _said(exc: ccxt.BaseError) -> str:
    return redact_url(str(exc))


def _to_broker_order(row: _Order, what: str) -> BrokerOrder:
    status = _STATE.get(row.order_state)
    if status is None:
        raise BrokerBadResponse(f"{VENUE}: {what}: unknown order_state '{row.order_state}'")
    subject = f"{what}: order {row.label or UNTAGGED_PREFIX + row.order_id}"
    venue_number(VENUE, subject, "amount", row.amount)
    venue_number(VENUE, subject, "filled_amount", row.filled_amount)
    if row.average_price is not None:
        venue_number(VENUE, subject, "average_price", row.average_price)
    # The time of the order's last change is that of its last fill only while nothing but
    # fills can have followed them (ccxt reads it so too, as `lastTradeTimestamp`): not once
    # the order was cancelled or rejected.
    filled_at = (_fill_time(subject, row.last_update_timestamp)
                 if row.filled_amount > 0 and status in (OrderStatus.NEW, OrderStatus.FILLED)
                 else None)
    if status is OrderStatus.NEW and row.filled_amount > 0:
        status = OrderStatus.PARTIALLY_FILLED
    if status is OrderStatus.CANCELED and row.filled_amount >= row.amount > 0:
        status = OrderStatus.FILLED
    return BrokerOrder(client_order_id=row.label or f"{UNTAGGED_PREFIX}{row.order_id}",
                       broker_order_id=row.order_id, symbol=row.instrument_name,
                       status=status, qty=row.amount,
                       filled_qty=row.filled_amount, avg_fill_price=row.average_price,
                       filled_at=filled_at)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def _fill_time(subject: str, raw: object) -> datetime | None:
    """Deribit's `last_update_timestamp` (whole milliseconds since the Unix epoch) as a UTC
    time; None when absent. A value that is no such time (not a whole positive number, or
    beyond the calendar) is logged and left out rather than failing the answer: it only orders
    what a restart books of fills no process saw (`BrokerOrder.filled_at`)."""
    if raw is None:
        return None
    field = f"{subject}: last_update_timestamp"
    if isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value() \
            and 0 < raw <= _LAST_MS:
        raw = int(raw)  # a number written with a fraction of zeros ("1709564130123.0")
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= _LAST_MS:
        return _EPOCH + timedelta(milliseconds=raw)
    log.warning("broker_bad_fill_time", venue=VENUE, field=field, value=repr(raw)[:80],
                error=f"{VENUE}: {field}: expected whole milliseconds since the Unix epoch,"
                      f" got {raw!r}")
    return None
