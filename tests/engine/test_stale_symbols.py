"""`Engine.stale_symbols`, the one-pass answer /v1/health's data check asks for, names exactly
the symbols `Engine.staleness` (the words of the engine's SYS-002 alerts) and `is_stale` call
stale: for market-hours symbols whose market is open, closed, opened without a quote, or
outside the resolved years; on calendars with a lunch break or sessions that meet (24/5,
24/7); and for symbols without market hours and engines still at behaviour 3.

Each example sets the quotes and event time directly: a query reads them and nothing else, and
a feed could not send quotes older than ones already stored."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness import D, Harness
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

BOUND = ("A", "B", "C")
UNBOUND = ("D", "E")
CALENDARS = ("XNYS", "XHKG", "24/5", "24/7")
# 2026 is resolved; the days before it are not (every hour counts there)
FIRST = utc(2025, 12, 27, 0, 0, 0)
SPAN = int(timedelta(days=40).total_seconds())
LIMITS = (timedelta(minutes=1), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=20))
# quote ages in seconds, some exactly a limit (not stale yet)
AGES = st.one_of(st.integers(0, 10 * 86_400),
                 st.sampled_from([int(limit.total_seconds()) for limit in LIMITS]))


@cache
def _world(calendar: str, behaviour: int) -> Harness:
    return Harness({"max_market_data_age": "1m"}, symbols=BOUND + UNBOUND,
                   market_hours={"calendar": calendar, "symbols": list(BOUND),
                                 "years": [2026, 2026]},
                   behaviour=behaviour)


@settings(max_examples=300, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), behaviour=st.sampled_from((3, ENGINE_BEHAVIOUR)),
       now=st.integers(0, SPAN), ages=st.lists(AGES, min_size=5, max_size=5),
       limit=st.sampled_from(LIMITS))
def test_stale_symbols_names_what_staleness_words(calendar: str, behaviour: int, now: int,
                                                  ages: list[int], limit: timedelta) -> None:
    world = _world(calendar, behaviour)
    engine, state = world.engine, world.state
    state.clock = FIRST + timedelta(seconds=now)
    for symbol, age in zip(BOUND + UNBOUND, ages, strict=True):
        state.markets[symbol] = MarketSnapshot(symbol=symbol, ts=state.clock - timedelta(
            seconds=age), bid=D(99), ask=D(101), last=D(100))
    worded = sorted(symbol for symbol, snapshot in state.markets.items()
                    if engine.staleness(symbol, snapshot, limit) is not None)
    judged = sorted(symbol for symbol, snapshot in state.markets.items()
                    if engine.is_stale(symbol, snapshot, limit))
    assert engine.stale_symbols(limit) == worded == judged


def test_a_closed_market_leaves_its_symbols_fresh_and_others_stale() -> None:
    """The cases the health check meets most: the night after XNYS's close, and the open."""
    world = Harness({"max_market_data_age": "1m"}, symbols=(),
                    market_hours={"calendar": "XNYS", "symbols": list(BOUND),
                                  "years": [2026, 2026]})
    world.now = utc(2026, 1, 9, 20, 59, 30)  # Friday, 30 s before the close
    for symbol in BOUND + UNBOUND:
        world.quote(symbol, "100")
    world.now = utc(2026, 1, 10, 3, 0, 0)
    world.tick()
    assert world.engine.stale_symbols(timedelta(minutes=1)) == ["D", "E"]
    world.now = utc(2026, 1, 12, 14, 31, 0)  # Monday: one minute into the session
    world.tick()
    assert world.engine.stale_symbols(timedelta(minutes=1)) == ["D", "E"]
    world.now = utc(2026, 1, 12, 14, 31, 1)
    world.quote("B", "100")
    world.tick()
    assert world.engine.stale_symbols(timedelta(minutes=1)) == ["A", "C", "D", "E"]
