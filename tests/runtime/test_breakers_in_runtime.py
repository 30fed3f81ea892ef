"""Circuit breakers inside the runtime, on an injected clock: failures open the broker_submit
circuit (journaled SYS-007 CIRCUIT_OPEN_broker_submit, mode REDUCE_ONLY), nothing is sent
while it is open, a failed probe escalates it to the next tier, a good one closes it, and
five failed submits or reconnects in a row halt trading. The board is readable for status."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import ACCOUNT, at, chaos_policy, intent, quote
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.resilience.breakers import BreakerState
from ordergate.resilience.clock import ManualClock
from ordergate.runtime.dispatch import SUBMIT_DEPENDENCY
from ordergate.runtime.health import GuardedRuntime, GuardSettings

SETTINGS = GuardSettings(reconcile_every_batches=0, clock_check_every_s=3600,
                         probe_every_s=1, storm_threshold=5)


class Stage:
    def __init__(self, directory: Path) -> None:
        self.clock = ManualClock(start=at(0))
        self.broker = SimBroker(SimConfig())
        self.guard = GuardedRuntime.open(f"sqlite:///{directory / 'journal.db'}",
                                         chaos_policy(), self.broker, self.clock, SETTINGS)
        self.journal = directory / "journal.db"
        self.seconds = 0.0

    def at(self, seconds: float, events: list[InputEvent]) -> None:
        self.clock.advance(seconds - self.seconds)
        self.seconds = seconds
        self.broker.advance(at(seconds))
        self.guard.process(events)

    def mode(self) -> Mode:
        return self.guard.runtime.engine.state.guard.mode

    def submit_state(self) -> tuple[BreakerState, int | None, int]:
        [snap] = [s for s in self.guard.breakers() if s.name == SUBMIT_DEPENDENCY]
        return snap.state, snap.tier, snap.opens


def _healthy(directory: Path) -> Stage:
    stage = Stage(directory)
    stage.guard.start(at(0))
    stage.at(0, [AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                 quote("AAPL", 0)])
    stage.at(1, [quote("AAPL", 1), intent("open", Side.BUY, 100, 1)])
    return stage


def _opened(directory: Path) -> Stage:
    """Three failed submits (the order, its resubmission, one retry) open the circuit; the
    still unresolved order is not sent again but held: asked about, never refused as "not
    sent" (its outcome is unknown)."""
    stage = _healthy(directory)
    stage.broker.faults.fail_next_submits = 3
    stage.at(2, [quote("AAPL", 2), intent("during", Side.BUY, 10, 2)])
    stage.at(3, [quote("AAPL", 3)])
    return stage


def test_failures_open_the_submit_circuit_and_tighten_the_mode(tmp_path: Path) -> None:
    stage = _opened(tmp_path)
    try:
        assert stage.submit_state() == (BreakerState.OPEN, 0, 1)
        assert stage.mode() is Mode.REDUCE_ONLY
        reasons = {r.code for r in stage.guard.runtime.engine.status().reasons}
        assert "SYS-007" in reasons
        held = [order.intent_id for _, order in stage.guard.runtime.awaiting.values()]
        assert held == ["during"]  # unresolved, its reservation kept
        sent = len(stage.broker.submissions())
        stage.at(4, [quote("AAPL", 4), intent("reduce", Side.SELL, 10, 4,
                                                limit_price=Decimal(189))])
        assert len(stage.broker.submissions()) == sent  # refused while open
    finally:
        stage.guard.close()
    facts = JournalFacts.read(tmp_path / "journal.db")
    assert [e.detail for e in facts.unhealthy("SYS-007")] == ["CIRCUIT_OPEN_broker_submit"]
    assert len(facts.circuit_refused) == 1  # the reducing one; the unresolved one is held


def test_a_failed_probe_escalates_and_a_good_one_closes(tmp_path: Path) -> None:
    stage = _opened(tmp_path)
    try:
        stage.broker.faults.fail_next_reads = 2  # the held order's lookup, then the probe
        stage.at(63, [quote("AAPL", 63)])  # open 60 s -> half-open -> the probe fails
        assert stage.submit_state() == (BreakerState.OPEN, 1, 2)
        stage.at(63 + 899, [quote("AAPL", 962)])
        assert stage.submit_state()[0] is BreakerState.OPEN  # tier 1 holds for 900 s
        stage.at(63 + 901, [quote("AAPL", 964)])
        assert stage.submit_state()[0] is BreakerState.CLOSED
        sent = len(stage.broker.submissions())
        stage.at(965, [quote("AAPL", 965), intent("reduce", Side.SELL, 10, 965,
                                                    limit_price=Decimal(189))])
        assert len(stage.broker.submissions()) == sent + 1
        assert stage.mode() is Mode.REDUCE_ONLY  # closing the circuit never loosens the mode
    finally:
        stage.guard.close()
    facts = JournalFacts.read(tmp_path / "journal.db")
    closed = [e for e in facts.dependencies if e.healthy and e.dependency == "circuit:"
              + SUBMIT_DEPENDENCY]
    assert [e.detail for e in closed] == ["CIRCUIT_CLOSED_broker_submit"]


def test_five_failed_submits_or_reconnects_in_a_row_halt(tmp_path: Path) -> None:
    stage = _healthy(tmp_path)
    try:
        stage.broker.faults.fail_next_submits = 100  # the broker is unreachable
        stage.broker.faults.fail_next_reads = 100
        stage.at(2, [quote("AAPL", 2), intent("during", Side.BUY, 10, 2)])
        assert stage.guard.broker_health.failures_in_row == 1  # the submit
        seconds = 2
        while stage.mode() is not Mode.HALTED and seconds < 20:
            seconds += 1
            stage.at(seconds, [quote("AAPL", seconds)])  # one reconnect probe per second
        assert stage.mode() is Mode.HALTED
        assert stage.guard.broker_health.failures_in_row == 5
        held = [r.detail for r in stage.guard.runtime.engine.status().reasons
                if r.code == "MOD-001"]
        assert held and held[0].startswith("disconnect storm: 5 ")
        assert len(set(stage.broker.submissions())) == 2  # "open" and "during" only
    finally:
        stage.guard.close()
