"""A real broker adapter (alpaca-py's `AlpacaAdapter`) against a local Alpaca API in its 429
mode, driven through the embedding API and its guard on an injected clock:

* a burst of orders meets HTTP 429s: the third failure opens the broker_submit circuit
  (journaled SYS-007 CIRCUIT_OPEN_broker_submit), the mode moves to REDUCE_ONLY (the
  policy's `on_dependency_down`), and from then on no order reaches the venue (counted at
  the venue), not even the storm's unanswered orders once the venue answers again;
* once the open period has passed on the injected clock, a reconnect probe closes the
  circuit (journaled CIRCUIT_CLOSED_broker_submit); after an operator resumes, orders flow;
* a 401 (the keys were revoked) halts trading at once, and nothing more is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.brokers.fakes.alpaca import KEY_ID, SECRET, AlpacaState, build
from tests.brokers.fakes.server import ServerThread

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.config import Secret
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import ACCOUNT, CHAOS_POLICY
from ordergate.gateway import Gateway
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import AccountFunding, Command
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.resilience.breakers import BreakerSnapshot, BreakerState
from ordergate.resilience.clock import ManualClock
from ordergate.runtime.dispatch import SUBMIT_DEPENDENCY
from ordergate.runtime.health import HALT_OPERATOR, GuardSettings

# The fake venue's clock reads 2024-03-04T15:15:30.123Z and stands still; the gateway's
# injected clock starts there, so the one clock check (at the first batch) finds no drift.
T0 = datetime(2024, 3, 4, 15, 15, 30, tzinfo=UTC)
PRICE = Decimal("190.00")
# the desk runs on an injected clock fixed in the past, while the venue tells its real time:
# clock drift has its own tests, this one is about the rate-limit storm
SETTINGS = GuardSettings(probe_every_s=1, clock_check_every_s=3600,
                         reconcile_every_batches=0, check_clock=False)
STATE = AlpacaState()


def order_posts() -> int:
    """Order submissions that reached the venue (whatever it answered)."""
    return sum(1 for method, path, _ in STATE.requests
               if method == "POST" and path == "/v2/orders")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ServerThread(build(STATE))
    url = server.start()
    yield url
    server.stop()


@dataclass
class Desk:
    """One gateway on the Alpaca adapter, with the injected clock kept on event time."""

    gateway: Gateway
    clock: ManualClock
    journal: Path
    seconds: float = 0.0

    def at(self, seconds: float) -> datetime:
        if seconds > self.seconds:
            self.clock.advance(seconds - self.seconds)
            self.seconds = seconds
        return T0 + timedelta(seconds=seconds)

    def quote(self, seconds: float) -> None:
        self.gateway.on_market(MarketSnapshot(
            symbol="AAPL", ts=self.at(seconds), bid=PRICE - Decimal("0.05"),
            ask=PRICE + Decimal("0.05"), last=PRICE, volume=Decimal(10_000)))

    def order(self, intent_id: str, side: Side, qty: int, seconds: float,
              limit_price: Decimal | None = None) -> Decision:
        self.quote(seconds)
        return self.gateway.submit(OrderIntent(
            intent_id=intent_id, ts=self.at(seconds + 0.5), account=ACCOUNT,
            strategy="storm", symbol="AAPL", side=side, qty=Decimal(qty),
            order_type=OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
            limit_price=limit_price))

    def reduce(self, intent_id: str, seconds: float) -> Decision:
        """A priced (limit) sell of 10: risk-reducing, so it passes in REDUCE_ONLY and while
        a dependency is down."""
        return self.order(intent_id, Side.SELL, 10, seconds, limit_price=PRICE - 1)

    def mode(self) -> Mode:
        return self.gateway.mode

    def breaker(self, name: str = SUBMIT_DEPENDENCY) -> BreakerSnapshot:
        [snapshot] = [b for b in self.gateway.breakers() if b.name == name]
        return snapshot

    def reason_codes(self) -> set[str]:
        return {reason.code for reason in self.gateway.status().reasons}


@pytest.fixture
def desk(base_url: str, tmp_path: Path) -> Iterator[Desk]:
    STATE.reset()
    STATE.prices["AAPL"] = PRICE
    adapter = AlpacaAdapter(api_key=Secret(KEY_ID), secret_key=Secret(SECRET),
                            account=ACCOUNT, paper=True, base_url=base_url, timeout_s=2.0)
    clock = ManualClock(start=T0)
    journal = tmp_path / "journal.db"
    gateway = Gateway.open(CHAOS_POLICY, journal=journal, broker=adapter, clock=clock,
                           guard=SETTINGS)
    desk = Desk(gateway=gateway, clock=clock, journal=journal)
    try:
        gateway.process([AccountFunding(ts=desk.at(0), account=ACCOUNT,
                                        cash=Decimal(1_000_000))])
        opened = desk.order("open", Side.BUY, 100, 1)
        assert opened.decision is DecisionKind.ALLOW
        assert [p.qty for p in gateway.status().positions] == [100]  # filled at the venue
        yield desk
    finally:
        gateway.close()


def probes() -> int:
    """Clock reads at the venue: the reconnect probes (and the one clock check)."""
    return sum(1 for _, path, _ in STATE.requests if path == "/v2/clock")


def test_a_429_storm_opens_the_submit_circuit_and_a_probe_closes_it(desk: Desk) -> None:
    assert desk.mode() is Mode.ACTIVE
    posts = order_posts()
    STATE.faults.set("429")  # every request is rate limited until cleared
    desk.quote(2)
    burst = desk.gateway.submit_many([OrderIntent(
        intent_id=f"burst-{n}", ts=desk.at(2.5), account=ACCOUNT, strategy="storm",
        symbol="AAPL", side=Side.BUY, qty=Decimal(10)) for n in range(5)])
    # All five were allowed before the venue said no; the third 429 opened the circuit, so
    # the last two never reached the venue.
    assert [d.decision for d in burst] == [DecisionKind.ALLOW] * 5
    assert order_posts() == posts + 3
    submit = desk.breaker()
    assert submit.state is BreakerState.OPEN and submit.tier == 0
    assert submit.opened_until == T0 + timedelta(seconds=2.5 + 60)
    assert desk.mode() is Mode.REDUCE_ONLY
    assert "SYS-007" in desk.reason_codes()

    # While open, reconnect probes keep asking (and keep meeting 429s); a storm of 429s is
    # not a disconnect storm, so it never halts.
    asked = probes()
    emitted = desk.gateway.tick(desk.at(10))
    assert probes() > asked
    assert not [e for e in emitted if isinstance(e, Command)]
    assert desk.mode() is Mode.REDUCE_ONLY

    # The venue answers again, but the circuit is still open: the orders the storm left
    # unanswered are found unseen and held (their outcome is unknown), never sent late.
    STATE.faults.set(None)
    desk.gateway.tick(desk.at(20))
    assert desk.breaker().state is BreakerState.OPEN
    assert order_posts() == posts + 3

    # The open period passes on the injected clock: the next probe closes the circuit.
    asked = probes()
    desk.gateway.tick(desk.at(70))
    assert probes() == asked + 1
    assert desk.breaker().state is BreakerState.CLOSED
    assert "SYS-007" not in {r.code for r in desk.gateway.status().reasons
                             if "broker_submit" in r.detail}
    assert desk.mode() is Mode.REDUCE_ONLY  # closing a circuit never loosens the mode
    assert order_posts() == posts + 3

    # The reads circuit escalated during the storm (10 failures in 600 s: open 900 s); once
    # it has closed too, an operator resumes and orders reach the venue again.
    desk.quote(1000)
    desk.gateway.tick(desk.at(1000.1))
    assert all(b.state is BreakerState.CLOSED for b in desk.gateway.breakers())
    assert desk.gateway.resume("ops-carol", "rate limit storm over").mode is Mode.ACTIVE
    decision = desk.order("after", Side.BUY, 10, 1001)
    assert decision.decision is DecisionKind.ALLOW
    assert order_posts() == posts + 4

    desk.gateway.close()
    facts = JournalFacts.read(desk.journal)
    assert "CIRCUIT_OPEN_broker_submit" in [e.detail for e in facts.unhealthy("SYS-007")]
    closed = [e.detail for e in facts.dependencies
              if e.healthy and e.dependency == "circuit:" + SUBMIT_DEPENDENCY]
    assert closed == ["CIRCUIT_CLOSED_broker_submit"]
    assert len(facts.circuit_refused) == 2  # two of the burst; the unanswered three are held


def test_a_401_from_the_venue_halts_and_nothing_more_is_sent(desk: Desk) -> None:
    STATE.faults.set("401")
    decision = desk.order("revoked", Side.BUY, 10, 2)
    assert decision.decision is DecisionKind.ALLOW
    assert desk.mode() is Mode.HALTED
    halts = [reason for reason in desk.gateway.status().reasons
             if reason.actor == HALT_OPERATOR]
    assert halts and "AUTH" in halts[0].detail

    posts = order_posts()
    STATE.faults.set(None)  # even once the venue would answer, the halt holds
    refused = desk.order("after-halt", Side.BUY, 10, 3)
    assert refused.decision is DecisionKind.DENY
    assert order_posts() == posts
    assert desk.mode() is Mode.HALTED
