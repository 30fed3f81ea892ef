"""The bundled simulated trading day behind `ordergate demo`.

Deterministic: a seeded PRNG (`random.Random(seed)`, never the global one) drives every
price and every intent, so the same seed always gives the same bytes. The day tells a story
a new user can follow in the summary:

* five symbols (AAPL, MSFT, TSLA, GME, BTC-USD) quote through a US session;
* `trend` is a well-behaved strategy: small orders, a few a minute, with the trend;
* `burst` misbehaves: bursts of orders that hit the throttles, oversized orders, orders in a
  restricted symbol (GME), and in the afternoon a stubborn run of buying into a falling TSLA
  that loses money until the drawdown limit halts trading;
* around late morning the TSLA feed goes quiet (a stale-data episode), so TSLA orders are
  refused until quotes come back; a desk lead then resumes trading with a journaled command.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.model.events import AccountFunding, ClockTick, Command, CommandAction, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

DEMO_SEED = 20260302
DEMO_OPEN = utc(2026, 3, 2, 14, 30)
ACCOUNT = "DEMO-1"
SYMBOLS: tuple[str, ...] = ("AAPL", "MSFT", "TSLA", "GME", "BTC-USD")
START_PRICES: dict[str, Decimal] = {
    "AAPL": Decimal("190.00"),
    "MSFT": Decimal("410.00"),
    "TSLA": Decimal("250.00"),
    "GME": Decimal("24.00"),
    "BTC-USD": Decimal("64000.00"),
}
CENT = Decimal("0.01")
STARTING_CASH = Decimal(1_000_000)


@dataclass(frozen=True)
class DayPlan:
    """The shape of the day; the defaults are the bundled demo."""

    seed: int = DEMO_SEED
    session_open: datetime = DEMO_OPEN
    session_minutes: int = 390
    quote_every_s: int = 4  # one quote per symbol every few seconds
    trend_every_s: int = 45  # one trend intent every ~45 s
    clock_every_s: int = 5  # the gateway's timer
    stale_symbol: str = "TSLA"
    stale_start_min: int = 75  # minutes after the open
    stale_minutes: int = 6
    crash_start_min: int = 270  # the TSLA slide that hurts `burst`
    crash_minutes: int = 40
    crash_depth: Decimal = Decimal("0.14")  # TSLA loses this fraction over the slide

    @property
    def session_close(self) -> datetime:
        return self.session_open + timedelta(minutes=self.session_minutes)


def _quote(symbol: str, ts: datetime, mid: Decimal) -> MarketSnapshot:
    half_spread = max(CENT, (mid * Decimal("0.0002")).quantize(CENT))
    volume = Decimal(1000) if symbol != "BTC-USD" else Decimal(5)
    return MarketSnapshot(
        symbol=symbol, ts=ts, bid=(mid - half_spread).quantize(CENT),
        ask=(mid + half_spread).quantize(CENT), last=mid.quantize(CENT), volume=volume,
    )


class _Prices:
    """Per-symbol random walks in basis points, exact decimals throughout."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.mid = dict(START_PRICES)

    def step(self, symbol: str, extra_bp: int = 0) -> Decimal:
        move_bp = self.rng.randint(-5, 5) + extra_bp
        mid = self.mid[symbol] * (Decimal(10000 + move_bp) / Decimal(10000))
        self.mid[symbol] = max(CENT, mid.quantize(CENT))
        return self.mid[symbol]


def _market_events(plan: DayPlan, rng: random.Random) -> Iterator[tuple[datetime, int, InputEvent]]:
    prices = _Prices(rng)
    stale_from = plan.session_open + timedelta(minutes=plan.stale_start_min)
    stale_until = stale_from + timedelta(minutes=plan.stale_minutes)
    crash_from = plan.session_open + timedelta(minutes=plan.crash_start_min)
    crash_until = crash_from + timedelta(minutes=plan.crash_minutes)
    crash_steps = plan.crash_minutes * 60 // plan.quote_every_s
    # The slide, spread evenly over its quotes, in basis points per quote.
    crash_bp = -int(plan.crash_depth * 10000 / crash_steps)
    ts = plan.session_open
    end = plan.session_close
    step = timedelta(seconds=plan.quote_every_s)
    while ts < end:
        for index, symbol in enumerate(SYMBOLS):
            quote_ts = ts + timedelta(milliseconds=10 * index)
            extra = crash_bp if symbol == "TSLA" and crash_from <= ts < crash_until else 0
            mid = prices.step(symbol, extra)
            if symbol == plan.stale_symbol and stale_from <= ts < stale_until:
                continue  # the feed is silent: no quote at all
            yield quote_ts, 0, _quote(symbol, quote_ts, mid)
        ts += step


class _Intents:
    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def make(self, strategy: str, ts: datetime, symbol: str, side: Side, qty: int,
             tags: dict[str, str] | None = None) -> OrderIntent:
        number = self.count.get(strategy, 0) + 1
        self.count[strategy] = number
        return OrderIntent(
            intent_id=f"{strategy}-{number:06d}", ts=ts, account=ACCOUNT, strategy=strategy,
            symbol=symbol, side=side, qty=Decimal(qty), tags=tags or {},
        )


def _trend_events(plan: DayPlan, rng: random.Random,
                  intents: _Intents) -> Iterator[tuple[datetime, int, InputEvent]]:
    """Small orders that alternate sides per symbol so the book stays near flat."""
    ts = plan.session_open + timedelta(seconds=30, milliseconds=101)
    held: dict[str, int] = dict.fromkeys(SYMBOLS, 0)
    trend_symbols = ("AAPL", "MSFT", "TSLA", "BTC-USD")
    while ts < plan.session_close - timedelta(minutes=5):
        symbol = rng.choice(trend_symbols)
        lot = 1 if symbol == "BTC-USD" else rng.choice((10, 20, 25, 50))
        side = Side.SELL if held[symbol] > 0 and rng.random() < 0.6 else Side.BUY
        qty = min(lot, held[symbol]) if side is Side.SELL else lot
        held[symbol] += qty if side is Side.BUY else -qty
        confidence = f"{rng.uniform(0.5, 0.9):.2f}"
        yield ts, 1, intents.make("trend", ts, symbol, side, qty, {"confidence": confidence})
        ts += timedelta(seconds=plan.trend_every_s + rng.randint(-10, 10), milliseconds=3)


def _burst_events(plan: DayPlan, rng: random.Random,
                  intents: _Intents) -> Iterator[tuple[datetime, int, InputEvent]]:
    """The misbehaving strategy, episode by episode."""
    open_ = plan.session_open
    events: list[tuple[datetime, int, InputEvent]] = []

    def at(minutes: float, millis: int = 0) -> datetime:
        return open_ + timedelta(minutes=minutes, milliseconds=millis + 7)

    # Order bursts: 40 orders in two seconds, every half hour through the morning.
    for start in range(20, 250, 30):
        symbol = rng.choice(("AAPL", "MSFT"))
        for index in range(40):
            ts = at(start, 50 * index)
            side = Side.BUY if index % 2 == 0 else Side.SELL
            # Mostly different sizes; every tenth repeats the last one (a duplicate).
            qty = 5 + index - 1 if index % 10 == 9 else 5 + index
            events.append((ts, 2, intents.make("burst", ts, symbol, side, qty,
                                               {"confidence": "0.99"})))
    # Oversized orders: far past the maximum order size.
    for start in (35, 95, 155, 215):
        ts = at(start, 500)
        events.append((ts, 2, intents.make("burst", ts, "MSFT", Side.BUY, 50_000,
                                           {"confidence": "1.00", "note": "all in"})))
    # A restricted symbol, again and again.
    for start in range(40, 260, 20):
        ts = at(start, 900)
        events.append((ts, 2, intents.make("burst", ts, "GME", Side.BUY, 100)))
    # Orders during the stale-data episode.
    for offset in range(1, plan.stale_minutes):
        ts = at(plan.stale_start_min + offset, 300)
        events.append((ts, 2, intents.make("burst", ts, plan.stale_symbol, Side.BUY, 10)))
    # Buying into the TSLA slide: every minute, a larger clip.
    for offset in range(plan.crash_minutes + 10):
        ts = at(plan.crash_start_min + offset, 200)
        qty = 150 + 10 * offset
        events.append((ts, 2, intents.make("burst", ts, "TSLA", Side.BUY, qty,
                                           {"confidence": "0.97", "note": "buy the dip"})))
    yield from events


def _clock_events(plan: DayPlan) -> Iterator[tuple[datetime, int, InputEvent]]:
    """The gateway's timer: event time advances even when no data arrives, which is how
    a silent feed is noticed."""
    ts = plan.session_open + timedelta(seconds=plan.clock_every_s, milliseconds=5)
    while ts < plan.session_close:
        yield ts, 4, ClockTick(ts=ts)
        ts += timedelta(seconds=plan.clock_every_s)


def _operator_events(plan: DayPlan) -> Iterator[tuple[datetime, int, InputEvent]]:
    resume_at = plan.session_open + timedelta(
        minutes=plan.stale_start_min + plan.stale_minutes + 4, milliseconds=11,
    )
    yield resume_at, 3, Command(
        ts=resume_at, action=CommandAction.RESUME, operator="desk-lead",
        reason="TSLA feed is back and checked against the venue",
    )


def demo_events(plan: DayPlan | None = None) -> list[InputEvent]:
    """Every event of the day in time order (ties broken by source, then creation order)."""
    plan = plan or DayPlan()
    rng = random.Random(plan.seed)
    intents = _Intents()
    funded_at = plan.session_open - timedelta(minutes=1)
    streams: list[tuple[datetime, int, InputEvent]] = [
        (funded_at, 0, AccountFunding(ts=funded_at, account=ACCOUNT, cash=STARTING_CASH)),
    ]
    streams.extend(_market_events(plan, rng))
    streams.extend(_trend_events(plan, rng, intents))
    streams.extend(_burst_events(plan, rng, intents))
    streams.extend(_clock_events(plan))
    streams.extend(_operator_events(plan))
    ordered = sorted(enumerate(streams), key=lambda item: (item[1][0], item[1][1], item[0]))
    return [event for _, (_, _, event) in ordered]


def write_events(path: Path, events: list[InputEvent]) -> None:
    """JSON Lines, one event per line with its `type` field."""
    encoder = msgspec.json.Encoder()
    with path.open("wb") as handle:
        for event in events:
            handle.write(encoder.encode(event))
            handle.write(b"\n")
