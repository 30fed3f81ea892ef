"""The broker adapter contract. Only `runtime/dispatch.py` may call `submit` and `cancel`
(invariant 1, proven by an AST test). Adapters are synchronous; the runtime decides which
thread calls them. Adapters raise the `BrokerError` family below and nothing else for broker
trouble; `resilience.errors.classify` turns those into actions.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import msgspec

from ordergate.model.events import Dispatch, InputEvent
from ordergate.model.intent import OrderType, TimeInForce

if TYPE_CHECKING:
    from ordergate.brokers.labels import PriceLimit


class BrokerCapabilities(msgspec.Struct, frozen=True, kw_only=True):
    order_types: frozenset[OrderType]
    time_in_force: frozenset[TimeInForce]
    fractional_qty: bool = False
    reduce_only: bool = False
    post_only: bool = False
    query_by_client_id: bool = True
    cancel_all: bool = False
    max_client_order_id_length: int = 64
    # The venue refuses a second order with a client order id it already holds. Only then may
    # an order whose submit had no answer, and that a lookup cannot find yet, be sent again:
    # elsewhere (a Tradier tag, a Deribit label) a second send could make a second order.
    unique_client_order_id: bool = False
    # How finely `server_time` reads the venue's clock: 0 when it is exact to the millisecond,
    # 1000 when it gives whole seconds (truncated, so the venue's true time lies in
    # [reading, reading + resolution)). Clock sync allows for this step.
    clock_resolution_ms: int = 0


class OrderStatus(enum.StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


class BrokerOrder(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    broker_order_id: str
    symbol: str
    status: OrderStatus
    qty: Decimal
    filled_qty: Decimal = Decimal(0)
    avg_fill_price: Decimal | None = None
    # When the order's latest fill happened, as the venue reports it (UTC); None when nothing
    # filled, the venue does not say, or what it said was not a usable time. Only orders what
    # a restart books of fills no process saw (`Runtime._reconcile_lost_answers`); never
    # an event's time.
    filled_at: datetime | None = None


class BrokerPosition(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    symbol: str
    qty: Decimal
    avg_price: Decimal = Decimal(0)


class SubmitResult(msgspec.Struct, frozen=True, kw_only=True):
    """The broker's synchronous answer to a submit: accepted (with its id) or rejected."""

    accepted: bool
    broker_order_id: str = ""
    reason: str = ""
    code: str = ""  # a rejection's reason code (`model.reasons`), when the venue's is one


class BrokerError(Exception):
    """Broker trouble. `http_status` is set when the broker answered over HTTP. `code`: the
    reason code an order refused for it is rejected with ("broker" when no rule names it)."""

    code = "broker"

    def __init__(self, message: str, *, http_status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after_s = retry_after_s


class BrokerUnavailable(BrokerError):
    """Timeout, connection refused/reset, 5xx: the broker did not give an answer."""


class BrokerRateLimited(BrokerError):
    """429 or the venue's equivalent."""


class BrokerNotSent(BrokerError):
    """The order never left for the venue: something the adapter must do before sending
    failed (a read it needs, say). Nothing was placed, so the order can be rejected outright
    instead of asked after as an order whose submit went unanswered."""


class BrokerAuthError(BrokerError):
    """401/403: credentials wrong, expired or lacking permission."""


class BrokerBadResponse(BrokerError):
    """The answer did not have the shape the adapter expects (provider schema change)."""


class BrokerOrderRejected(BrokerError):
    """The broker refused the order itself (422, insufficient funds, market halted...)."""


class OrderTypeUnsupported(BrokerOrderRejected):
    """Refused before dispatch: the venue does not offer the order type or time in force."""

    code = "ORD-002"


class OrderLabelRefused(BrokerOrderRejected):
    """Refused before dispatch: the client order id does not fit the venue's label field
    (too long, or characters the field cannot carry)."""

    code = "ORD-012"


class BrokerAdapter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> BrokerCapabilities: ...

    def submit(self, order: Dispatch) -> SubmitResult: ...

    def cancel(self, client_order_id: str) -> None: ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order as the broker knows it, or None when the broker has never seen it."""
        ...

    def open_orders(self) -> list[BrokerOrder]: ...

    def positions(self) -> list[BrokerPosition]: ...

    def poll_events(self, until: datetime) -> list[InputEvent]:
        """Broker callbacks (acks, fills, cancels, rejects) with ts <= `until`, in order."""
        ...

    def track(self, client_order_id: str, reported: BrokerOrder | None = None,
              limit: PriceLimit | None = None) -> None:
        """Follow an order the gateway holds open, so `poll_events` reports what becomes of
        it (recovery calls this after a restart). `reported` is the state the gateway already
        knows of it (events start after it); None when it knows nothing yet (the first sight
        of the order at the venue reports everything). `limit` is the price the order may not
        be filled past (`labels.order_limit`): a part-fill the adapter prices from the venue's
        rounded averages is kept within it as far as the rounding allows (`labels.OrderWatch`)."""
        ...

    def server_time(self) -> datetime:
        """The broker's clock, for drift measurement."""
        ...
