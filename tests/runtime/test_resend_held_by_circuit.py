"""An order whose submit had no answer, when the broker_submit circuit opens on that very
failure: its resend is held, but the order is never rejected as "not sent" (the venue may hold
it). It stays unresolved with its reservation, is asked about every batch, ends known when the
venue shows it, is never sent late once the circuit closes, and is declared lost only after
the wait. A first submit refused by the open circuit is still rejected 'circuit_open'.

Real GuardedRuntime, SimBroker and SQLite journal (the chaos stage)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ordergate.brokers.base import BrokerOrder
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.chaos.checks import JournalFacts, verify
from ordergate.chaos.harness import ChaosRun, chaos_policy, chaos_settings, intent, quote
from ordergate.chaos.scenarios import _cid
from ordergate.model.events import OrderReject
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.runtime.dispatch import CIRCUIT_OPEN_CODE, LOST_CODE
from ordergate.runtime.health import EventClock, GuardedRuntime


class LaggingSim(SimBroker):
    """A simulator whose order lookups lag behind its book: the next `lag[cid]` lookups of
    `cid` miss ("not visible yet")."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.lag: dict[str, int] = {}

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        if self.lag.get(client_order_id, 0) > 0:
            self.lag[client_order_id] -= 1
            return None
        return super().get_order(client_order_id)


def _stage(directory: Path) -> ChaosRun:
    broker = LaggingSim(SimConfig())
    clock = EventClock()
    guard = GuardedRuntime.open(f"sqlite:///{directory / 'journal.db'}", chaos_policy(),
                                broker, clock, chaos_settings())
    run = ChaosRun(directory=directory, broker=broker, guard=guard, clock=clock)
    run.start()
    run.step([quote("AAPL", 1), intent("open", Side.BUY, 100, 1)])
    # Two plain timeouts (the venue never takes these): the circuit counts two failures.
    broker.faults.fail_next_submits = 2
    run.step([quote("AAPL", 10), intent("x1", Side.BUY, 10, 10)])
    return run


def _rejects(run: ChaosRun, cid: str) -> list[OrderReject]:
    return [event for report in run.reports for event in report.emitted
            if isinstance(event, OrderReject) and event.client_order_id == cid]


def test_an_order_the_venue_took_while_the_circuit_opened_on_it_is_never_rejected(
        tmp_path: Path) -> None:
    run = _stage(tmp_path)
    broker = run.broker
    assert isinstance(broker, LaggingSim)
    cid = _cid("y1")
    try:
        # The third submit opens the circuit: the venue takes the order, the answer is lost
        # and its first lookup misses.
        broker.faults.fail_next_submits = 1
        broker.faults.accept_before_failing = True
        broker.lag[cid] = 1
        run.step([quote("AAPL", 11), intent("y1", Side.SELL, 50, 11)])
        assert broker.get_order(cid) is not None  # the venue holds it (and filled it)
        assert _rejects(run, cid) == []
        for seconds in range(20, 100, 10):
            run.quotes(seconds)
        assert _rejects(run, cid) == []
        assert run.position() == 60
        assert {p.symbol: p.qty for p in broker.positions()} == {"AAPL": Decimal(60)}
        assert "SYS-009" not in run.reason_codes()
        assert run.mode() is Mode.REDUCE_ONLY
        assert broker.submissions().count(cid) == 1  # never sent again
    finally:
        run.close()
    facts = JournalFacts.read(tmp_path / "journal.db")
    assert cid not in facts.circuit_refused
    assert verify(tmp_path / "journal.db").ok


def test_an_unseen_order_whose_resend_was_held_is_never_sent_late_and_is_declared_lost(
        tmp_path: Path) -> None:
    run = _stage(tmp_path)
    broker = run.broker
    cid = _cid("y1")
    try:
        broker.faults.fail_next_submits = 1  # the venue never sees it
        run.step([quote("AAPL", 11), intent("y1", Side.SELL, 50, 11)])
        assert cid in run.runtime.awaiting and _rejects(run, cid) == []
        # A new order while the circuit is open was never sent: that one is 'circuit_open'.
        run.step([quote("AAPL", 12), intent("y2", Side.SELL, 10, 12,
                                            limit_price=Decimal(189))])
        assert [r.code for r in _rejects(run, _cid("y2"))] == [CIRCUIT_OPEN_CODE]
        for seconds in range(20, 70, 10):
            run.quotes(seconds)
        assert cid in run.runtime.awaiting  # still waiting: the venue might show it
        assert _rejects(run, cid) == []
        for seconds in range(70, 130, 10):
            run.quotes(seconds)
        [lost] = _rejects(run, cid)
        assert lost.code == LOST_CODE and "never sent again" in lost.reason
        assert cid not in run.runtime.awaiting
        # The circuit closed in between, and the held order was still not sent late.
        assert [s.state.value for s in run.guard.breakers() if s.name == "broker_submit"] \
            == ["CLOSED"]
        assert broker.submissions().count(cid) == 1
        assert "SYS-009" not in run.reason_codes()
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok
