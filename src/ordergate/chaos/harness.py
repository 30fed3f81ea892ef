"""The stage a chaos scenario plays on: the REAL runtime (SQLite journal, engine, Dispatcher,
`GuardedRuntime` with breakers, clock sync and reconciliation) on a `SimBroker` whose fault
hooks the scenario pulls. Time is event time (`EventClock`): a scenario's "60 seconds later"
costs nothing, and the same scenario gives the same journal on any machine.

Each `step` records what the safety checks need to see from outside the journal: how many
orders reached the broker during the step and whether the broker_submit circuit was open
for the whole of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import (
    AccountFunding,
    CancelRequest,
    ClockTick,
    Command,
    CommandAction,
    InputEvent,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.policy.loader import Policy, parse_policy
from ordergate.resilience.breakers import BreakerState
from ordergate.runtime.dispatch import SUBMIT_DEPENDENCY
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.runtime.reconcile import ReconcileSettings

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ACCOUNT = "CHAOS-1"
OPERATOR = "ops-chaos"

CHAOS_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: chaos
  description: The policy the fault-injection scenarios run under.
engine:
  on_stale_data: REDUCE_ONLY
  on_bad_data: REDUCE_ONLY
  on_clock_fault: REDUCE_ONLY
  on_dependency_down: REDUCE_ONLY
  on_reconciliation_mismatch: HALTED
defaults:
  max_market_data_age: 5s
  max_order_qty: 1000
  max_position_qty: 5000
  market_collar_pct: 5
  rate_strategy: {max: 50, window: 1s}
"""

PRICES = {"AAPL": Decimal("190.00"), "MSFT": Decimal("410.00")}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def chaos_policy() -> Policy:
    return parse_policy(CHAOS_POLICY, "chaos policy")


def quote(symbol: str, seconds: float, price: Decimal | None = None,
          volume: Decimal = Decimal(10_000)) -> MarketSnapshot:
    mid = price if price is not None else PRICES[symbol]
    return MarketSnapshot(symbol=symbol, ts=at(seconds), bid=mid - Decimal("0.05"),
                          ask=mid + Decimal("0.05"), last=mid, volume=volume)


def intent(intent_id: str, side: Side, qty: int, seconds: float, symbol: str = "AAPL",
           limit_price: Decimal | None = None, strategy: str = "chaos") -> OrderIntent:
    return OrderIntent(
        intent_id=intent_id, ts=at(seconds), account=ACCOUNT, strategy=strategy,
        symbol=symbol, side=side, qty=Decimal(qty),
        order_type=OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
        limit_price=limit_price)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One batch as seen from outside: broker submit attempts during it, the mode before and
    after, and whether the broker_submit circuit was open throughout."""

    ts: datetime
    attempts: int
    circuit_open: bool
    mode_before: Mode
    mode_after: Mode


@dataclass(slots=True)
class ChaosRun:
    """A live gateway for one scenario. Close it (or use it as a context manager)."""

    directory: Path
    broker: SimBroker
    guard: GuardedRuntime
    clock: EventClock
    faults_at: list[tuple[str, datetime]] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    reports: list[BatchReport] = field(default_factory=list)

    @classmethod
    def open(cls, directory: Path, *, sim: SimConfig | None = None,
             settings: GuardSettings | None = None, policy: Policy | None = None) -> ChaosRun:
        directory.mkdir(parents=True, exist_ok=True)
        broker = SimBroker(sim if sim is not None else SimConfig())
        clock = EventClock()
        guard = GuardedRuntime.open(
            f"sqlite:///{directory / 'journal.db'}",
            policy if policy is not None else chaos_policy(), broker, clock,
            settings if settings is not None else chaos_settings())
        return cls(directory=directory, broker=broker, guard=guard, clock=clock)

    @property
    def runtime(self) -> Runtime:
        return self.guard.runtime

    @property
    def journal_path(self) -> Path:
        return self.directory / "journal.db"

    def mode(self) -> Mode:
        return self.runtime.engine.state.guard.mode

    def reason_codes(self) -> list[str]:
        return [reason.code for reason in self.runtime.engine.status().reasons]

    def position(self, symbol: str = "AAPL") -> Decimal:
        for item in self.runtime.engine.status().positions:
            if item.account == ACCOUNT and item.symbol == symbol:
                return item.qty
        return Decimal(0)

    def submissions(self) -> list[str]:
        return self.broker.submissions()

    def fault(self, name: str, seconds: float) -> None:
        """Note when a fault was injected (deadlines count from here)."""
        self.faults_at.append((name, at(seconds)))

    # ------------------------------------------------------------ driving

    def step(self, events: Sequence[InputEvent]) -> BatchReport:
        if not events:
            return BatchReport()
        latest = max(event.ts for event in events)
        self.clock.observe(latest)
        # The broker's clock runs with the world's, whatever the gateway is shown.
        self.broker.advance(latest)
        breaker = self.guard.board.get(SUBMIT_DEPENDENCY)
        open_before = breaker.state is BreakerState.OPEN
        mode_before = self.mode()
        attempts_before = len(self.broker.submission_log())
        report = self.guard.process(events)
        self.steps.append(StepRecord(
            ts=latest, attempts=len(self.broker.submission_log()) - attempts_before,
            circuit_open=open_before and breaker.state is BreakerState.OPEN,
            mode_before=mode_before, mode_after=self.mode()))
        self.reports.append(report)
        return report

    def start(self, cash: Decimal = Decimal(1_000_000)) -> None:
        """Fund the account, show both symbols, run the start-up checks."""
        self.guard.start(at(0))
        self.step([AccountFunding(ts=at(0), account=ACCOUNT, cash=cash),
                   *(quote(symbol, 0) for symbol in PRICES)])

    def quotes(self, seconds: float) -> BatchReport:
        return self.step([quote(symbol, seconds) for symbol in PRICES])

    def tick(self, seconds: float) -> BatchReport:
        return self.step([ClockTick(ts=at(seconds))])

    def request_cancel(self, client_order_id: str, seconds: float) -> BatchReport:
        return self.step([CancelRequest(ts=at(seconds), client_order_id=client_order_id,
                                        account=ACCOUNT, requested_by="chaos")])

    def resume(self, seconds: float, reason: str = "fault cleared, checked") -> BatchReport:
        return self.step([Command(ts=at(seconds), action=CommandAction.RESUME,
                                  operator=OPERATOR, reason=reason)])

    def flatten(self, seconds: float) -> BatchReport:
        return self.step([Command(ts=at(seconds), action=CommandAction.FLATTEN,
                                  operator=OPERATOR, reason="chaos: flatten")])

    def close(self) -> None:
        self.guard.close()
        self.broker.close()

    def __enter__(self) -> ChaosRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chaos_settings() -> GuardSettings:
    """Look often: every batch may probe, check the clock and reconcile."""
    return GuardSettings(storm_threshold=5, max_clock_drift_ms=1000, clock_check_every_s=1.0,
                         probe_every_s=5.0, reconcile_every_batches=1,
                         reconcile=ReconcileSettings(cancel_unknown_on_start=False))
