"""A small Deribit API v2 (docs.deribit.com): JSON-RPC over HTTP GET.

`/api/v2/private/<method>?<params>` with `Authorization: deri-hmac-sha256 id=..,ts=..,sig=..,
nonce=..` (signature checked as Deribit documents it), answers
`{"jsonrpc": "2.0", "result": ...}` or `{"jsonrpc": "2.0", "error": {"code", "message"}}`.
Market orders fill at once at `prices[instrument]`; others rest until `fill()` or a cancel.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .server import Faults

CLIENT_ID = "deribit-client-id"
CLIENT_SECRET = "deribit-client-secret-do-not-print"
NOW_MS = 1709565330123


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _result(result: Any) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "result": result, "usIn": NOW_MS * 1000,
                         "usOut": NOW_MS * 1000 + 5, "usDiff": 5, "testnet": True})


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None,
           data: dict[str, str] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if data:
        error["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "error": error, "testnet": True},
                        status_code=status, headers=headers)


def currency_of(instrument: str) -> str:
    head = instrument.split("-", 1)[0]
    return head.split("_", 1)[1] if "_" in head else head


@dataclass
class DeribitState:
    faults: Faults = field(default_factory=Faults)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    avg_price: dict[str, Decimal] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def by_label(self, label: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["label"] == label]

    def fill(self, label: str, amount: str, price: str) -> None:
        (order,) = self.by_label(label)
        self._execute(order, Decimal(amount), Decimal(price))

    def _execute(self, order: dict[str, Any], amount: Decimal, price: Decimal) -> None:
        filled = Decimal(str(order["filled_amount"]))
        avg = Decimal(str(order["average_price"]))
        total = filled + amount
        order["average_price"] = _num((filled * avg + amount * price) / total)
        order["filled_amount"] = _num(total)
        order["order_state"] = "filled" if total == Decimal(str(order["amount"])) else "open"
        signed = amount if order["direction"] == "buy" else -amount
        name = order["instrument_name"]
        self.positions[name] = self.positions.get(name, Decimal(0)) + signed
        self.avg_price[name] = price


def _authorized(request: Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("deri-hmac-sha256 "):
        return False
    parts = dict(p.split("=", 1) for p in header[len("deri-hmac-sha256 "):].split(","))
    if parts.get("id") != CLIENT_ID:
        return False
    uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    payload = f"{parts['ts']}\n{parts['nonce']}\n{request.method}\n{uri}\n\n"
    expected = hmac.new(CLIENT_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("sig", ""))


def build(state: DeribitState) -> Starlette:
    async def guard(request: Request, private: bool) -> Response | None:
        state.requests.append((request.url.path.rsplit("/", 1)[-1],
                               dict(request.query_params)))
        faults = state.faults
        mode = faults.take()
        if mode == "timeout":
            await faults.stall()
            if state.faults is not faults:
                # The state was reset while this request stalled: the test that sent it is
                # over, and its late landing must not leak into the next test.
                return PlainTextResponse("reset while stalled", status_code=503)
        elif mode == "401":
            return _error(401, 13009, "unauthorized")
        elif mode == "403":
            return _error(403, 13021, "forbidden")
        elif mode == "422":
            return _error(400, 10009, "not_enough_funds")
        elif mode == "429":
            return _error(429, 10028, "too_many_requests", headers={"Retry-After": "1.5"})
        elif mode == "500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        elif mode == "503":
            return _error(503, 11051, "system_maintenance")
        elif mode == "bad_shape":
            return _result({"unexpected": 1})
        if private and not _authorized(request):
            return _error(400, 13009, "unauthorized")
        return None

    def place(direction: str, q: dict[str, str]) -> Response:
        label = q.get("label", "")
        if len(label) > 64:
            return _error(400, -32602, "Invalid params",
                          data={"reason": "string is too long", "param": "label"})
        amount = Decimal(q["amount"])
        order_type = q.get("type", "limit")
        order_id = f"ETH-{next(state.ids)}" if q["instrument_name"].startswith("ETH") \
            else f"{next(state.ids)}"
        order = {
            "order_id": order_id, "label": label, "instrument_name": q["instrument_name"],
            "direction": direction, "amount": _num(amount), "filled_amount": 0,
            "average_price": 0, "price": float(q.get("price", 0)) or "market_price",
            "order_type": order_type, "time_in_force": q.get("time_in_force", "good_til_cancelled"),
            "order_state": "untriggered" if order_type.startswith("stop") else "open",
            "reduce_only": q.get("reduce_only") == "true",
            "post_only": q.get("post_only") == "true",
            "creation_timestamp": NOW_MS, "last_update_timestamp": NOW_MS,
            "api": True, "web": False, "replaced": False, "is_liquidation": False,
        }
        state.orders[order_id] = order
        if order_type == "market":
            price = state.prices.get(q["instrument_name"], Decimal(50000))
            state._execute(order, amount, price)
        return _result({"order": order, "trades": []})

    async def private(request: Request) -> Response:
        if (failure := await guard(request, private=True)) is not None:
            return failure
        method = request.path_params["method"]
        q = dict(request.query_params)
        if method in ("buy", "sell"):
            return place(method, q)
        if method == "get_order_state_by_label":
            return _result([o for o in state.by_label(q["label"])
                            if currency_of(o["instrument_name"]) == q["currency"]])
        if method == "cancel_by_label":
            count = 0
            for order in state.by_label(q["label"]):
                if (currency_of(order["instrument_name"]) == q.get("currency", "")
                        and order["order_state"] in ("open", "untriggered")):
                    order["order_state"] = "cancelled"
                    count += 1
            return _result(count)
        if method == "get_order_state":
            order = state.orders.get(q.get("order_id", ""))
            if order is None:
                return _error(400, 10004, "order_not_found")
            return _result(order)
        if method == "cancel":
            order = state.orders.get(q.get("order_id", ""))
            if order is None:
                return _error(400, 10004, "order_not_found")
            if order["order_state"] not in ("open", "untriggered"):
                return _error(400, 11044, "not_open_order")
            order["order_state"] = "cancelled"
            return _result(order)
        if method == "get_open_orders_by_currency":
            return _result([o for o in state.orders.values()
                            if currency_of(o["instrument_name"]) == q["currency"]
                            and o["order_state"] in ("open", "untriggered")])
        if method == "get_positions":
            return _result([
                {"instrument_name": name, "size": _num(size), "direction":
                 "buy" if size > 0 else "sell", "average_price": _num(state.avg_price[name]),
                 "kind": "future", "size_currency": 0.001}
                for name, size in state.positions.items()
                if currency_of(name) == q["currency"]])
        return _error(400, -32601, "Method not found")

    async def public(request: Request) -> Response:
        if (failure := await guard(request, private=False)) is not None:
            return failure
        if request.path_params["method"] == "get_time":
            return _result(int(time.time() * 1000))  # the venue's real clock
        return _error(400, -32601, "Method not found")

    return Starlette(routes=[
        Route("/api/v2/private/{method}", private, methods=["GET"]),
        Route("/api/v2/public/{method}", public, methods=["GET"]),
    ])
