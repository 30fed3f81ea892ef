"""A restart while a circuit is open (or a dependency is reported down) starts the breakers,
the Dispatcher's health and clock sync from the reasons the journal replayed into the engine:
once the dependency answers again the reasons clear (journaled healthy events) and an operator
resume loosens the mode, as without the restart. The journal still verifies and replays.

Real GuardedRuntime, SimBroker (with a state file, so it outlives the restart) and SQLite
journal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from ordergate.brokers.base import BrokerUnavailable
from ordergate.brokers.sim import SimConfig
from ordergate.chaos.checks import verify
from ordergate.chaos.harness import ChaosRun, at, intent, quote
from ordergate.chaos.scenarios import _decision
from ordergate.model.events import DependencyStatus
from ordergate.model.intent import Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.resilience.breakers import BreakerBoard, BreakerState
from ordergate.resilience.clock import CLOCK_DRIFT, CLOCK_UNAVAILABLE, ManualClock
from ordergate.runtime.health import ClockWatch


def _restarted(directory: Path, sim: SimConfig, run: ChaosRun, seconds: float) -> ChaosRun:
    """Close `run` and open its journal again (the replay), then start at `seconds`."""
    run.close()
    assert verify(directory / "journal.db").ok
    restarted = ChaosRun.open(directory, sim=sim)
    restarted.guard.start(at(seconds))
    return restarted


def _states(run: ChaosRun) -> dict[str, BreakerState]:
    return {snap.name: snap.state for snap in run.guard.breakers()}


def _held_for(run: ChaosRun) -> set[str]:
    """The dependencies the engine's mode reasons name."""
    return {reason.detail.split(": ")[0] for reason in run.runtime.engine.status().reasons}


def test_restart_with_the_submit_circuit_open_clears_once_the_broker_answers(
        tmp_path: Path) -> None:
    sim = SimConfig(state_path=str(tmp_path / "sim.db"))
    run = ChaosRun.open(tmp_path, sim=sim)
    run.start()
    run.step([quote("AAPL", 1), intent("open", Side.BUY, 100, 1)])
    run.broker.faults.fail_next_submits = 3
    run.step([quote("AAPL", 10), intent("during", Side.BUY, 10, 10)])
    assert run.mode() is Mode.REDUCE_ONLY
    assert _held_for(run) == {"broker_submit", "circuit:broker_submit"}

    run = _restarted(tmp_path, sim, run, 12)
    try:
        assert _held_for(run) == {"broker_submit", "circuit:broker_submit"}  # replayed
        assert _states(run)["broker_submit"] is BreakerState.HALF_OPEN
        for seconds in range(20, 60, 10):
            run.quotes(seconds)
        assert run.reason_codes() == []  # the reconnect probe cleared both
        assert _states(run)["broker_submit"] is BreakerState.CLOSED
        assert run.mode() is Mode.REDUCE_ONLY  # clearing never loosens by itself
        run.resume(60)
        assert run.mode() is Mode.ACTIVE
        run.step([quote("AAPL", 61), intent("open2", Side.BUY, 10, 61)])
        assert _decision(run, "open2") == "ALLOW"
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok


def test_restart_with_a_feed_circuit_open_clears_on_the_next_good_snapshot(
        tmp_path: Path) -> None:
    sim = SimConfig(state_path=str(tmp_path / "sim.db"))
    run = ChaosRun.open(tmp_path, sim=sim)
    run.start()
    run.step([MarketSnapshot(symbol="AAPL", ts=at(10 + n / 10), bid=Decimal(-1),
                             ask=Decimal(-1), last=Decimal(-1)) for n in range(3)])
    assert "circuit:feed:market" in _held_for(run)

    run = _restarted(tmp_path, sim, run, 11)
    try:
        assert _states(run)["feed:market"] is BreakerState.HALF_OPEN
        run.quotes(12)
        assert _states(run)["feed:market"] is BreakerState.CLOSED
        assert "circuit:feed:market" not in _held_for(run)
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok


def test_restart_with_the_clock_reference_down_clears_on_the_next_good_check(
        tmp_path: Path) -> None:
    sim = SimConfig(state_path=str(tmp_path / "sim.db"))
    run = ChaosRun.open(tmp_path, sim=sim)
    run.start()
    for seconds in (2, 3, 4):  # the broker's clock cannot be read: CLK-003, then its circuit
        run.broker.faults.fail_next_reads = 1
        run.quotes(seconds)
    assert {"clock:reference", "circuit:clock"} <= _held_for(run)

    run = _restarted(tmp_path, sim, run, 5)
    try:
        assert _states(run)["clock"] is BreakerState.HALF_OPEN
        run.quotes(6)
        assert not {"clock:reference", "circuit:clock"} & _held_for(run)
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok



def test_recovered_clock_drift_is_cleared_only_by_a_check_that_read_the_reference() -> None:
    local = ManualClock()
    answers: list[bool] = [False, True]

    def reference() -> datetime:
        if not answers.pop(0):
            raise BrokerUnavailable("clock: HTTP 503")
        return local.now()

    watch = ClockWatch(local, reference, BreakerBoard(local))
    watch.recover_unhealthy(CLOCK_DRIFT)
    watch.recover_unhealthy(CLOCK_UNAVAILABLE)
    first = watch.check(local.now())  # the reference fails: drift cannot be judged
    assert [(e.dependency, e.healthy) for e in first
            if isinstance(e, DependencyStatus)] == [("clock:reference", False)]
    second = watch.check(local.now())
    assert sorted((e.dependency, e.healthy) for e in second
                  if isinstance(e, DependencyStatus)) == [("clock:drift", True),
                                                           ("clock:reference", True)]
