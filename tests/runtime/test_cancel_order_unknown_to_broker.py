"""A cancel of an order the broker has never heard of (a zombie: working in the gateway,
unknown to the broker) ends it in the gateway, journaled as canceled with a reason that says
why, so its reservation is freed, the next reconciliation agrees and the operator can resume.
An order whose submit outcome is still unknown is never ended this way, even when the cancel
comes first thing after a restart: it may yet appear at the venue.

Real GuardedRuntime, SimBroker (with a state file) and SQLite journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.base import BrokerCapabilities
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.chaos.harness import (
    ACCOUNT,
    ChaosRun,
    at,
    chaos_policy,
    intent,
    quote,
)
from ordergate.chaos.scenarios import _cid
from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import OrderCanceled, OrderReject
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.runtime.dispatch import LOST_CODE
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings
from ordergate.runtime.loop import decode_input

QUIET = GuardSettings(reconcile_every_batches=0, clock_check_every_s=3600)


def _reopen(directory: Path, sim: SimConfig, kind: type[SimBroker] = SimBroker) -> ChaosRun:
    """A process on the journal in `directory`, with a `kind` built from `sim` as the broker."""
    broker = kind(sim)
    clock = EventClock()
    guard = GuardedRuntime.open(f"sqlite:///{directory / 'journal.db'}", chaos_policy(),
                                broker, clock, QUIET)
    return ChaosRun(directory=directory, broker=broker, guard=guard, clock=clock)


def _canceled(run: ChaosRun, cid: str) -> list[OrderCanceled]:
    return [event for report in run.reports for event in report.emitted
            if isinstance(event, OrderCanceled) and event.client_order_id == cid]


def _working_buy(run: ChaosRun) -> Decimal:
    return sum((p.working_buy for p in run.runtime.engine.status().positions
                if p.account == ACCOUNT), Decimal(0))


def _journal_verifies(directory: Path) -> bool:
    journal = open_journal(f"sqlite:///{directory / 'journal.db'}",
                           durability=Durability.NONE, create=False, reader=True)
    try:
        return verify_journal(journal).ok
    finally:
        journal.close()


def test_cancel_of_a_zombie_order_ends_it_and_the_gateway_can_resume(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as first:
        first.start()
        first.step([intent("resting", Side.BUY, 10, 1, limit_price=Decimal(180))])
        [order] = first.runtime.engine.status().open_orders
        cid = order.client_order_id
        assert _working_buy(first) == 10
    # The broker lost its book (a wiped simulator that keeps a state file): a zombie.
    wiped = msgspec.structs.replace(sim, state_path=str(tmp_path / "w.sim"))
    SimBroker(wiped).close()  # wiped earlier: a state file made at this start holds no book
    run = _reopen(tmp_path, wiped)
    try:
        run.guard.start(at(2))
        assert run.guard.reconciler.last is not None
        assert run.guard.reconciler.last.zombies == [cid]
        assert run.mode() is Mode.HALTED
        run.request_cancel(cid, 3)
        [ended] = _canceled(run, cid)
        assert f"no order {cid} at sim" in ended.reason and "chaos" in ended.reason
        assert run.runtime.engine.status().open_orders == ()
        assert _working_buy(run) == 0  # the reservation is freed
        run.guard.reconciler.reconcile(at(4))
        assert run.guard.reconciler.last.zombies == []
        assert "SYS-009" not in run.reason_codes()
        run.resume(5)
        assert run.mode() is Mode.ACTIVE
    finally:
        run.close()
    assert _journal_verifies(tmp_path)


class TagSim(SimBroker):
    """A simulator that, like a venue matching orders by a tag or label, would take a second
    order with the same client order id: an unanswered order is only ever asked about."""

    @property
    def capabilities(self) -> BrokerCapabilities:
        return msgspec.structs.replace(super().capabilities, unique_client_order_id=False)


def _journaled(directory: Path, cid: str) -> list[OrderCanceled | OrderReject]:
    """The cancels and rejects of `cid` in the journal's inputs."""
    journal = open_journal(f"sqlite:///{directory / 'journal.db'}",
                           durability=Durability.NONE, create=False, reader=True)
    try:
        events = [decode_input(record.payload) for record in journal.read()
                  if record.kind is RecordKind.INPUT]
    finally:
        journal.close()
    return [e for e in events
            if isinstance(e, OrderCanceled | OrderReject) and e.client_order_id == cid]


def test_cancel_of_an_unresolved_order_never_ends_it_even_replayed_after_a_restart(
        tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET, state_path=str(tmp_path / "book.sim"))
    cid = _cid("unsure")
    first = _reopen(tmp_path, sim, TagSim)
    try:
        first.start()
        first.broker.faults.fail_next_submits = 1  # no answer; the venue never takes it
        first.step([quote("AAPL", 1),
                    intent("unsure", Side.BUY, 10, 1, limit_price=Decimal(180))])
        assert cid in first.runtime.awaiting and first.broker.get_order(cid) is None
        first.request_cancel(cid, 2)
        assert _canceled(first, cid) == []  # it may yet appear at the venue
    finally:
        first.close()
    # The restart performs the journaled cancel again, before it asks about the order.
    run = _reopen(tmp_path, sim, TagSim)
    try:
        run.guard.start(at(3))
        assert _journaled(tmp_path, cid) == []
        assert [o.client_order_id for o in run.runtime.engine.status().open_orders] == [cid]
        assert _working_buy(run) == 10  # still reserved
        # The existing wait ends it: declared lost once the venue has not shown it for 60 s.
        for seconds in range(10, 90, 10):
            run.quotes(seconds)
        [lost] = _journaled(tmp_path, cid)
        assert isinstance(lost, OrderReject) and lost.code == LOST_CODE
        assert _working_buy(run) == 0
    finally:
        run.close()
    assert _journal_verifies(tmp_path)
