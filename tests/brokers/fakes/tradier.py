"""A small Tradier brokerage API (documentation.tradier.com): orders, positions, clock.

Bearer-token auth; orders are form posts; collections come back in Tradier's shapes
({"orders": {"order": [..]}}, a bare object for one item, "null" for none); validation
errors are HTTP 400 {"errors": {"error": [..]}}. Market orders fill at once at
`prices[symbol]`; others rest until `fill()` or a cancel.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .server import Faults

TOKEN = "tradier-token-do-not-print"
ACCOUNT = "VA000001"
NOW_S = 1709565330
WORKING = ("open", "partially_filled", "pending")


def _errors(status: int, *messages: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": {"error": list(messages)}}, status_code=status,
                        headers=headers)


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _collection(outer: str, inner: str, rows: list[dict[str, Any]]) -> JSONResponse:
    if not rows:
        return JSONResponse({outer: "null"})
    return JSONResponse({outer: {inner: rows[0] if len(rows) == 1 else rows}})


@dataclass
class TradierState:
    faults: Faults = field(default_factory=Faults)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    cost_basis: dict[str, Decimal] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(228175))

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def by_tag(self, tag: str) -> dict[str, Any]:
        (order,) = [o for o in self.orders.values() if o["tag"] == tag]
        return order

    def fill(self, tag: str, qty: str, price: str) -> None:
        self._execute(self.by_tag(tag), Decimal(qty), Decimal(price))

    def _execute(self, order: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        done = Decimal(str(order["exec_quantity"]))
        avg = Decimal(str(order["avg_fill_price"]))
        total = done + qty
        order["avg_fill_price"] = _num((done * avg + qty * price) / total)
        order["exec_quantity"] = _num(total)
        order["last_fill_price"] = _num(price)
        order["last_fill_quantity"] = _num(qty)
        order["remaining_quantity"] = _num(Decimal(str(order["quantity"])) - total)
        order["status"] = ("filled" if total == Decimal(str(order["quantity"]))
                           else "partially_filled")
        signed = qty if order["side"] in ("buy", "buy_to_cover") else -qty
        symbol = order["symbol"]
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + signed
        self.cost_basis[symbol] = self.positions[symbol] * price


def build(state: TradierState) -> Starlette:
    async def guard(request: Request, form: dict[str, str] | None = None) -> Response | None:
        state.requests.append((request.method, request.url.path, form or {}))
        faults = state.faults
        mode = faults.take()
        if mode == "timeout":
            await faults.stall()
            if state.faults is not faults:
                # The state was reset while this request stalled: the test that sent it is
                # over, and its late landing must not leak into the next test.
                return PlainTextResponse("reset while stalled", status_code=503)
        elif mode == "401":
            return PlainTextResponse("Invalid Access Token", status_code=401)
        elif mode == "403":
            return PlainTextResponse("Forbidden", status_code=403)
        elif mode == "422":
            return _errors(422, "Backoffice rejected override of the order.")
        elif mode == "429":
            return PlainTextResponse("Quota Violation", status_code=429,
                                     headers={"Retry-After": "3"})
        elif mode in ("500", "503"):
            return PlainTextResponse("Service Unavailable", status_code=int(mode))
        elif mode == "bad_shape":
            return JSONResponse({"surprise": []})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return PlainTextResponse("Invalid Access Token", status_code=401)
        if request.url.path.startswith("/v1/accounts/") \
                and request.path_params.get("account") != ACCOUNT:
            return PlainTextResponse("Forbidden", status_code=403)
        return None

    async def create_order(request: Request) -> Response:
        # Read first: a stalled request still lands, as at Tradier.
        form = dict(parse_qsl((await request.body()).decode()))
        if (failure := await guard(request, form)) is not None:
            return failure
        tag = form.get("tag", "")
        if len(tag) > 255 or (tag and not all(c.isalnum() or c == "-" for c in tag)):
            return _errors(400, "Invalid tag")
        if form.get("duration") not in ("day", "gtc", "pre", "post"):
            return _errors(400, "Invalid duration")
        if form.get("type") in ("limit", "stop_limit") and not form.get("price"):
            return _errors(400, "Price is required for limit orders")
        held = state.positions.get(form["symbol"], Decimal(0))
        qty = Decimal(form["quantity"])
        side = form["side"]
        if (side == "sell" and qty > held) or (side == "buy_to_cover" and qty > -held) \
                or (side == "sell_short" and held > 0) or (side == "buy" and held < 0):
            return _errors(400, f"Invalid side {side} for the current position")
        order_id = next(state.ids)
        order = {
            "id": order_id, "type": form["type"], "symbol": form["symbol"], "side": side,
            "quantity": _num(qty), "status": "open", "duration": form["duration"],
            "price": float(form.get("price", 0) or 0), "avg_fill_price": 0,
            "exec_quantity": 0, "last_fill_price": 0, "last_fill_quantity": 0,
            "remaining_quantity": _num(qty), "create_date": "2024-03-04T15:15:30.000Z",
            "transaction_date": "2024-03-04T15:15:30.000Z", "class": "equity", "tag": tag,
        }
        state.orders[order_id] = order
        if form["type"] == "market":
            state._execute(order, qty, state.prices.get(form["symbol"], Decimal(100)))
        return JSONResponse({"order": {"id": order_id, "status": "ok",
                                       "partner_id": "c4998eb7-06e8-4820-a7ab-55d9760065fb"}})

    async def list_orders(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        rows = list(state.orders.values())
        if request.query_params.get("includeTags") != "true":
            rows = [{k: v for k, v in row.items() if k != "tag"} for row in rows]
        return _collection("orders", "order", rows)

    async def one_order(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        order = state.orders.get(int(request.path_params["order_id"]))
        if order is None:
            return _errors(404, "Order not found")
        if request.method == "DELETE":
            if order["status"] not in WORKING:
                return _errors(400, "Order already in finalized state: " + order["status"])
            order["status"] = "canceled"
            return JSONResponse({"order": {"id": order["id"], "status": "ok"}})
        return JSONResponse({"order": order})

    async def positions(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        rows = [{"cost_basis": _num(state.cost_basis[symbol]),
                 "date_acquired": "2024-03-04T15:15:30.000Z", "id": index,
                 "quantity": _num(qty), "symbol": symbol}
                for index, (symbol, qty) in enumerate(state.positions.items()) if qty != 0]
        return _collection("positions", "position", rows)

    async def clock(request: Request) -> Response:
        if (failure := await guard(request)) is not None:
            return failure
        return JSONResponse({"clock": {"date": "2024-03-04", "description":
                                       "Market is open from 09:30 to 16:00",
                                       "state": "open", "timestamp": int(time.time()),
                                       "next_change": "16:00", "next_state": "postmarket"}})

    return Starlette(routes=[
        Route("/v1/accounts/{account}/orders", create_order, methods=["POST"]),
        Route("/v1/accounts/{account}/orders", list_orders, methods=["GET"]),
        Route("/v1/accounts/{account}/orders/{order_id}", one_order, methods=["GET", "DELETE"]),
        Route("/v1/accounts/{account}/positions", positions, methods=["GET"]),
        Route("/v1/markets/clock", clock, methods=["GET"]),
    ])
