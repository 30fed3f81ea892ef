"""/v1/health's `data` check counts a quote's age as the engine does (engine behaviour 4 on):
for a symbol bound to `market_hours`, only the time its market has been open. A gateway
holding AAPL overnight stays ready (a supervisor would otherwise page an operator, or restart
a healthy gateway, every night); from the next open a quote must come within
`max_market_data_age`, or the check fails naming the symbol. An engine still at behaviour 3
counts every hour, and so does its health check.

A real gateway (SQLite journal, simulator broker, the HTTP server), fed over HTTP and by the
clock ticks the server's idle loop sends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordergate.model.events import Alert, ClockTick
from ordergate.model.values import utc
from ordergate.policy.loader import parse_policy
from ordergate.runtime import loop
from service.support import (
    FEEDER,
    POLICY,
    T0,
    TRADER,
    Served,
    auth,
    intent,
    start,
    status_of,
)

# AAPL and MSFT trade on XNYS: in March 2026 (EST until the 8th) 14:30 to 21:00 UTC; T0 is
# Monday the 2nd's open. BTC-USD trades around the clock.
MARKET_HOURS_POLICY = POLICY.replace("max_market_data_age: 1d", "max_market_data_age: 10m") + (
    "market_hours: {calendar: XNYS, symbols: [AAPL, MSFT], years: [2026, 2026]}\n")
CLOSE = utc(2026, 3, 2, 21, 0, 0)
NIGHT = utc(2026, 3, 3, 3, 0, 0)
NEXT_OPEN = utc(2026, 3, 3, 14, 30, 0)


class WallClock:
    """The server's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _quote(symbol: str, mid: str, at: datetime) -> dict[str, Any]:
    return {"type": "market", "symbol": symbol, "ts": _stamp(at), "bid": mid, "ask": mid,
            "last": mid}


def _post_quotes(served: Served, clock: WallClock, at: datetime, *symbols: str) -> None:
    clock.now = at
    for symbol in symbols:
        posted = httpx.post(f"{served.url}/v1/market", json=_quote(symbol, "100.00", at),
                            headers=auth(FEEDER), timeout=10.0)
        assert posted.status_code in (200, 202), posted.text


def _tick(served: Served, clock: WallClock, at: datetime) -> list[Alert]:
    """A clock tick at `at`, as the server's idle loop sends it; the alerts it raised."""
    clock.now = at
    emitted = asyncio.run(served.gateway.bridge.submit_events([ClockTick(ts=at)]))
    return [item for item in emitted if isinstance(item, Alert)]


def _health(served: Served) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{served.url}/v1/health", timeout=10.0)
    body: dict[str, Any] = answer.json()
    return answer.status_code, body



def _holding_aapl_after_the_close(tmp_path: Path) -> tuple[Served, WallClock]:
    """A gateway that bought 10 AAPL at Monday's open; AAPL and MSFT quoted last 30 s before
    the close."""
    clock = WallClock(T0 + timedelta(seconds=1))
    served = start(tmp_path, policy=parse_policy(MARKET_HOURS_POLICY), wall_clock=clock)
    bought = httpx.post(f"{served.url}/v1/intents", json=intent("hold-aapl"),
                        headers=auth(TRADER), timeout=10.0)
    assert bought.json()["decision"]["decision"] == "ALLOW", bought.text
    assert len(served.sent()) == 1
    _post_quotes(served, clock, CLOSE - timedelta(seconds=30), "AAPL", "MSFT")
    return served, clock


@pytest.fixture
def holding(tmp_path: Path) -> Iterator[tuple[Served, WallClock]]:
    served, clock = _holding_aapl_after_the_close(tmp_path)
    try:
        yield served, clock
    finally:
        served.stop()


def _holds_aapl(served: Served) -> bool:
    return any(p["symbol"] == "AAPL" and p["qty"] == "10" for p in status_of(served)["positions"])


def test_a_position_held_overnight_leaves_the_gateway_ready(
        holding: tuple[Served, WallClock]) -> None:
    served, clock = holding
    for moment in (CLOSE + timedelta(minutes=11), NIGHT, NEXT_OPEN - timedelta(seconds=1)):
        assert _tick(served, clock, moment) == [], moment  # the engine: not stale either
        code, health = _health(served)
        assert health["checks"]["data"] == {"ok": True, "detail": ""}, moment
        assert (code, health["ready"]) == (200, True), health
    status = status_of(served)
    assert _holds_aapl(served)
    assert status["mode"] == "ACTIVE"
    assert status["headline"] == "Trading normally: no active reason."


def test_in_open_hours_a_quote_older_than_the_limit_is_still_stale(
        holding: tuple[Served, WallClock]) -> None:
    served, clock = holding
    # Five minutes into the session without a quote: within the limit, counted from the open
    # (the close's quote is 17.5 hours old). A BTC quote moves event time without a tick.
    _post_quotes(served, clock, NEXT_OPEN + timedelta(minutes=5), "BTC-USD")
    code, health = _health(served)
    assert (code, health["ready"], health["checks"]["data"]["ok"]) == (200, True, True), health

    _post_quotes(served, clock, NEXT_OPEN + timedelta(minutes=11), "BTC-USD")
    code, health = _health(served)
    assert (code, health["ready"]) == (503, False), health
    assert health["checks"]["data"] == {
        "ok": False, "detail": "stale market data (older than 0:10:00): AAPL, MSFT"}
    assert "Orders for AAPL, MSFT are denied until fresh market data arrives" in (
        status_of(served)["headline"])

    # the engine agrees on its next tick
    stale = [alert for alert in _tick(served, clock, NEXT_OPEN + timedelta(minutes=11))
             if alert.code == "SYS-002"]
    assert [alert.message.split(":")[0] for alert in stale] == ["AAPL"], stale
    code, health = _health(served)
    assert code == 503 and "SYS-002 AAPL" in health["checks"]["data"]["detail"], health

    # a quote of the session makes the data fresh again
    _post_quotes(served, clock, NEXT_OPEN + timedelta(minutes=12), "AAPL", "MSFT")
    code, health = _health(served)
    assert health["checks"]["data"] == {"ok": True, "detail": ""}, health


def test_an_engine_at_behaviour_3_counts_every_hour_and_so_does_health(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "ENGINE_BEHAVIOUR", 3)
    served, clock = _holding_aapl_after_the_close(tmp_path)
    try:
        assert served.gateway.runtime.engine.state.behaviour == 3
        # event time moves into the night without a tick: health judges the data itself
        _post_quotes(served, clock, NIGHT, "BTC-USD")
        code, health = _health(served)
        assert (code, health["ready"]) == (503, False), health
        assert health["checks"]["data"]["detail"] == (
            "stale market data (older than 0:10:00): AAPL, MSFT")
    finally:
        served.stop()
