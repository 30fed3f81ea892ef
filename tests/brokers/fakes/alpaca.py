"""A small Alpaca Trading API v2 (docs.alpaca.markets/reference): orders, positions, clock.

Market orders fill at once at `prices[symbol]`; limit and stop orders rest until `fill()`
or a cancel. Auth is the APCA-API-KEY-ID / APCA-API-SECRET-KEY header pair.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .server import Faults

KEY_ID = "PKTESTKEYID0000000"
SECRET = "alpaca-secret-value-do-not-print"
NOW = "2024-03-04T10:15:30.123456789-05:00"


def _error(status: int, code: int, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


@dataclass
class AlpacaState:
    faults: Faults = field(default_factory=Faults)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by broker id
    positions: dict[str, Decimal] = field(default_factory=dict)
    avg_price: dict[str, Decimal] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    buying_power: Decimal = Decimal(1_000_000)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        for order in self.orders.values():
            if order["client_order_id"] == client_order_id:
                return order
        return None

    def fill(self, client_order_id: str, qty: str, price: str) -> None:
        """Execute `qty` more of a resting order at `price` (test hook)."""
        order = self.by_client_id(client_order_id)
        assert order is not None
        self._execute(order, Decimal(qty), Decimal(price))

    def _execute(self, order: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        filled = Decimal(order["filled_qty"])
        avg = Decimal(order["filled_avg_price"] or 0)
        total = filled + qty
        order["filled_avg_price"] = str((filled * avg + qty * price) / total)
        order["filled_qty"] = str(total)
        order["status"] = "filled" if total == Decimal(order["qty"]) else "partially_filled"
        signed = qty if order["side"] == "buy" else -qty
        symbol = order["symbol"]
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + signed
        self.avg_price[symbol] = price


def build(state: AlpacaState) -> Starlette:
    async def guard(request: Request, record: dict[str, Any] | None = None) -> Response | None:
        state.requests.append((request.method, request.url.path,
                               record if record is not None else dict(request.query_params)))
        faults = state.faults
        mode = faults.take()
        if mode == "timeout":
            await faults.stall()
            if state.faults is not faults:
                # The state was reset while this request stalled: the test that sent it is
                # over, and its late landing must not leak into the next test.
                return PlainTextResponse("reset while stalled", status_code=503)
        elif mode == "401":
            return _error(401, 40110000, "request is not authorized")
        elif mode == "403":
            return JSONResponse({"message": "forbidden"}, status_code=403)
        elif mode == "422":
            return _error(422, 40010001, "invalid order")
        elif mode == "429":
            return _error(429, 42910000, "rate limit exceeded",
                          headers={"Retry-After": "2", "X-RateLimit-Remaining": "0"})
        elif mode in ("500", "503"):
            return _error(int(mode), 50010000, "internal server error")
        elif mode == "bad_shape":
            return JSONResponse({"unexpected": True})
        if (request.headers.get("APCA-API-KEY-ID") != KEY_ID
                or request.headers.get("APCA-API-SECRET-KEY") != SECRET):
            return _error(401, 40110000, "request is not authorized")
        return None

    async def create_order(request: Request) -> Response:
        body = await request.json()  # read first: a stalled request still lands, as at Alpaca
        if (failure := await guard(request, body)) is not None:
            return failure
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if len(client_order_id) > 48:
            return _error(422, 40010001, "client_order_id must be no more than 48 characters")
        if state.by_client_id(client_order_id) is not None:
            return _error(422, 40010001, "client_order_id must be unique")
        qty = Decimal(str(body["qty"]))
        order_type = body["type"]
        if order_type in ("limit", "stop_limit") and body.get("limit_price") is None:
            return _error(422, 40010001, "limit_price is required")
        price = Decimal(str(body.get("limit_price") or state.prices.get(body["symbol"], 100)))
        if body["side"] == "buy" and qty * price > state.buying_power:
            return _error(403, 40310000, "insufficient buying power")
        order_id = str(uuid.uuid4())
        order = {
            "id": order_id, "client_order_id": client_order_id,
            "created_at": NOW, "updated_at": NOW, "submitted_at": NOW,
            "filled_at": None, "expired_at": None, "canceled_at": None, "failed_at": None,
            "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": body["symbol"],
            "asset_class": "us_equity", "notional": None, "qty": str(qty),
            "filled_qty": "0", "filled_avg_price": None, "order_class": "",
            "order_type": order_type, "type": order_type, "side": body["side"],
            "time_in_force": body["time_in_force"],
            "limit_price": None if body.get("limit_price") is None else str(body["limit_price"]),
            "stop_price": None if body.get("stop_price") is None else str(body["stop_price"]),
            "status": "accepted", "extended_hours": False, "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }
        state.orders[order_id] = order
        if order_type == "market":
            state._execute(order, qty, Decimal(str(state.prices.get(body["symbol"], "100"))))
        else:
            order["status"] = "new"
        return JSONResponse(order)

    async def list_orders(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        status = request.query_params.get("status", "open")
        working = {"new", "accepted", "partially_filled", "pending_new"}
        rows = [o for o in state.orders.values()
                if status == "all" or (o["status"] in working) == (status == "open")]
        return JSONResponse(rows)

    async def by_client_order_id(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        client_order_id = request.query_params.get("client_order_id", "")
        order = state.by_client_id(client_order_id)
        if order is None:
            return _error(404, 40410000, f"order not found for {client_order_id}")
        return JSONResponse(order)

    async def cancel_order(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        order = state.orders.get(request.path_params["order_id"])
        if order is None:
            return _error(404, 40410000, "order not found")
        if order["status"] in ("filled", "canceled", "expired", "rejected"):
            return _error(422, 42210000, "order is not cancelable")
        order["status"] = "canceled"
        order["canceled_at"] = NOW
        return Response(status_code=204)

    async def positions(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        rows = [{"asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": symbol,
                 "exchange": "NASDAQ", "asset_class": "us_equity", "qty": str(qty),
                 "avg_entry_price": str(state.avg_price[symbol]),
                 "side": "long" if qty > 0 else "short",
                 "market_value": str(qty * state.avg_price[symbol])}
                for symbol, qty in state.positions.items() if qty != 0]
        return JSONResponse(rows)

    async def clock(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        # the venue's real clock, as a broker tells it (gateways check their drift against it)
        return JSONResponse({"timestamp": datetime.now(UTC).isoformat(), "is_open": True,
                             "next_open": "2024-03-05T09:30:00-05:00",
                             "next_close": "2024-03-04T16:00:00-05:00"})

    return Starlette(routes=[
        Route("/v2/orders", create_order, methods=["POST"]),
        Route("/v2/orders", list_orders, methods=["GET"]),
        Route("/v2/orders:by_client_order_id", by_client_order_id, methods=["GET"]),
        Route("/v2/orders/{order_id}", cancel_order, methods=["DELETE"]),
        Route("/v2/positions", positions, methods=["GET"]),
        Route("/v2/clock", clock, methods=["GET"]),
    ])
