"""Reconciliation sees what a lost broker message or a working order used to hide, names a
zombie order by what it is, and a finding resolved across a restart clears so an operator
can resume. Every journal written here replays byte for byte."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import (
    ACCOUNT,
    ChaosRun,
    at,
    chaos_policy,
    intent,
    quote,
)
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, open_journal
from ordergate.model.events import DependencyStatus, InputEvent
from ordergate.model.intent import Side, TimeInForce
from ordergate.model.modes import Mode
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings

QUIET = GuardSettings(reconcile_every_batches=0, clock_check_every_s=3600)


def _resting(intent_id: str, side: Side, qty: int, seconds: float, price: str) -> InputEvent:
    return msgspec.structs.replace(intent(intent_id, side, qty, seconds,
                                          limit_price=Decimal(price)), tif=TimeInForce.GTC)


def _mismatches(run: ChaosRun) -> list[str]:
    return [reason.detail for reason in run.runtime.engine.status().reasons
            if reason.code == "SYS-009"]


def _replays(journal: Path) -> None:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report


def test_a_fill_the_broker_never_reports_is_raised_after_the_grace(tmp_path: Path) -> None:
    sim = SimConfig(state_path=str(tmp_path / "broker.sim"))
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), _resting("L1", Side.BUY, 100, 1.5, "180.00")])
        cid = run.runtime.engine.status().open_orders[0].client_order_id
        # the market reaches the limit: the broker fills, and its fill message is lost
        run.broker.on_market(quote("AAPL", 2, Decimal("179.00")))
        assert run.broker.poll_events(at(2)) != []
        for second in (3, 4, 61):
            run.guard.reconciler.reconcile(at(second))
            # within the grace (event time since the broker first said so) a fill in flight
            # looks the same
            assert _mismatches(run) == []
        run.guard.reconciler.reconcile(at(63))  # 60 s after it was first seen
        assert run.mode() is Mode.HALTED
        (detail,) = _mismatches(run)
        assert f"reconciliation:unbooked:{cid}" in detail
        assert "AAPL buy 100, intent L1" in detail
        assert "filled with 100 filled" in detail
    # a restart asks the broker about every working order and books the lost fill; its
    # start-up reconciliation then clears the finding
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.guard.start(at(65))
        assert _mismatches(run) == []
        assert run.position() == 100
        run.resume(66)
        assert run.mode() is Mode.ACTIVE
    _replays(tmp_path / "journal.db")


def test_a_fill_slower_than_several_passes_raises_nothing(tmp_path: Path) -> None:
    # a venue (or the simulator's latency) takes seconds to deliver the fill while the
    # reconciler passes several times: no false alarm, no halt
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), _resting("L1", Side.BUY, 100, 1.5, "180.00")])
        run.broker.on_market(quote("AAPL", 2, Decimal("179.00")))
        for second in (2, 2.5, 3, 10, 30):
            run.guard.reconciler.reconcile(at(second))
        assert _mismatches(run) == []
        run.quotes(31)  # the fill arrives
        run.guard.reconciler.reconcile(at(90))
        assert _mismatches(run) == []
        assert run.position() == 100
        assert run.mode() is Mode.ACTIVE


def test_a_fill_still_in_flight_raises_nothing(tmp_path: Path) -> None:
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), _resting("L1", Side.BUY, 100, 1.5, "180.00")])
        run.broker.on_market(quote("AAPL", 2, Decimal("179.00")))
        run.guard.reconciler.reconcile(at(2))  # the broker says filled, the fill is pending
        run.quotes(3)  # the next poll delivers it
        run.guard.reconciler.reconcile(at(4))
        assert _mismatches(run) == []
        assert run.position() == 100
        assert run.mode() is Mode.ACTIVE


def test_a_working_order_no_longer_hides_a_position_changed_outside(tmp_path: Path) -> None:
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), _resting("L1", Side.BUY, 10, 1.5, "150.00")])
        run.guard.reconciler.reconcile(at(2))
        assert _mismatches(run) == []
        # 100 AAPL arrive from outside the gateway while its buy of 10 rests
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(100), Decimal(190))
        run.guard.reconciler.reconcile(at(3))
        assert run.mode() is Mode.HALTED
        (detail,) = _mismatches(run)
        assert "gateway 0, broker 100 (its working orders there explain 0 to 10)" in detail
        # what the resting order could have filled unheard is not a mismatch: it clears
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(10), Decimal(150))
        run.guard.reconciler.reconcile(at(4))
        assert _mismatches(run) == []
    _replays(tmp_path / "journal.db")


def test_a_mismatch_resolved_across_a_restart_clears_and_resume_works(tmp_path: Path) -> None:
    sim = SimConfig(state_path=str(tmp_path / "broker.sim"))
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), intent("b1", Side.BUY, 100, 1.5)])
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(40), Decimal(190))
        run.guard.reconciler.reconcile(at(2))
        assert run.mode() is Mode.HALTED
    # fixed at the broker while the gateway was down
    broker = SimBroker(sim)
    broker.set_position(ACCOUNT, "AAPL", Decimal(100), Decimal(190))
    broker.close()
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        assert _mismatches(run) != []  # replayed from the journal
        run.guard.start(at(3))  # its start-up reconciliation agrees with the broker
        assert _mismatches(run) == []
        run.resume(4)
        assert run.mode() is Mode.ACTIVE
    facts = JournalFacts.read(tmp_path / "journal.db")
    assert [(event.dependency, event.healthy) for event in facts.dependencies
            if event.dependency.startswith("reconciliation")] == [
        (f"reconciliation:position:{ACCOUNT}:AAPL", False),
        (f"reconciliation:position:{ACCOUNT}:AAPL", True)]
    _replays(tmp_path / "journal.db")


def test_an_unreadable_broker_resolved_across_a_restart_clears(tmp_path: Path) -> None:
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.start()
        run.runtime.inject([DependencyStatus(
            ts=at(1), dependency="reconciliation:broker", healthy=False, code="SYS-011",
            detail="cannot read the broker's orders and positions to reconcile: down")],
            origin="reconcile")
        assert "SYS-011" in run.reason_codes()
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.guard.start(at(2))
        assert "SYS-011" not in run.reason_codes()
    _replays(tmp_path / "journal.db")


def test_a_zombie_order_is_named_by_symbol_side_quantity_and_intent(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([intent("resting", Side.BUY, 10, 1, limit_price=Decimal(180))])
        cid = run.runtime.engine.status().open_orders[0].client_order_id
    wiped = msgspec.structs.replace(sim, state_path=str(tmp_path / "wiped.sim"))
    SimBroker(wiped).close()  # wiped earlier: a state file made at this start holds no book
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(),
                                SimBroker(wiped), EventClock(), QUIET)
    try:
        guard.start(at(2))
        (detail,) = [reason.detail for reason in guard.runtime.engine.status().reasons
                     if reason.code == "SYS-009"]
    finally:
        guard.close()
    assert f"zombie order {cid} (AAPL buy 10, intent resting): working in the gateway" in detail
    _replays(tmp_path / "journal.db")
