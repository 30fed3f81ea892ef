"""An order whose submit had no answer and whose resend was held (broker_submit circuit open)
stays held across a restart: it is only asked about and declared lost after the wait, never
sent late. Start-up, which runs before any breaker watches it, sends no unseen order again
while the replayed engine holds the broker_submit circuit open.

Real GuardedRuntime, a simulator that keeps its book in a file, SQLite journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ordergate.brokers.sim import SimConfig
from ordergate.chaos.checks import verify
from ordergate.chaos.harness import ChaosRun, at, intent, quote
from ordergate.chaos.scenarios import _cid
from ordergate.model.events import OrderReject
from ordergate.model.intent import Side
from ordergate.runtime.dispatch import LOST_CODE
from ordergate.runtime.sources import UnresolvedDispatch, decode_note, note_encoder

SUBMIT_CIRCUIT = "dependency:circuit:broker_submit"


def _open(directory: Path) -> ChaosRun:
    return ChaosRun.open(directory, sim=SimConfig(state_path=str(directory / "sim.db")))


def _stage(directory: Path) -> ChaosRun:
    """A position of 100, and two submit timeouts counted by the circuit."""
    run = _open(directory)
    run.start()
    run.step([quote("AAPL", 1), intent("open", Side.BUY, 100, 1)])
    run.broker.faults.fail_next_submits = 2
    run.step([quote("AAPL", 10), intent("x1", Side.BUY, 10, 10)])
    return run


def _submit_breaker(run: ChaosRun) -> str:
    [state] = [s.state.value for s in run.guard.breakers() if s.name == "broker_submit"]
    return state


def _rejects(run: ChaosRun, cid: str) -> list[OrderReject]:
    return [event for report in run.reports for event in report.emitted
            if isinstance(event, OrderReject) and event.client_order_id == cid]


def _wait_until_lost(run: ChaosRun, cid: str, start: int) -> None:
    """Batches every 10 s: the order stays awaited through the wait, then is declared lost."""
    for seconds in range(start, start + 60, 10):
        run.quotes(seconds)
        assert cid in run.runtime.awaiting and _rejects(run, cid) == []
    for seconds in range(start + 60, start + 80, 10):
        run.quotes(seconds)
    [lost] = _rejects(run, cid)
    assert lost.code == LOST_CODE and "never sent again" in lost.reason
    assert cid not in run.runtime.awaiting


def test_an_order_whose_resend_was_held_is_not_sent_after_a_restart(tmp_path: Path) -> None:
    run = _stage(tmp_path)
    cid = _cid("y1")
    try:
        run.broker.faults.fail_next_submits = 1  # opens the circuit; the venue never saw y1
        run.step([quote("AAPL", 11), intent("y1", Side.SELL, 50, 11)])
        run.quotes(20)
        assert cid in run.runtime.awaiting and run.broker.submissions().count(cid) == 1
    finally:
        run.close()
    run = _open(tmp_path)  # inside the circuit's open period, the broker answering again
    try:
        run.guard.start(at(21))
        assert run.broker.submissions().count(cid) == 1
        _wait_until_lost(run, cid, 30)
        assert run.broker.submissions().count(cid) == 1  # never sent late
        assert run.position() == 110
        assert {p.symbol: p.qty for p in run.broker.positions()} == {"AAPL": Decimal(110)}
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok


def test_a_held_order_stays_held_after_a_restart_once_the_circuit_closed(
        tmp_path: Path) -> None:
    run = _stage(tmp_path)
    cid = _cid("y1")
    try:
        # y1's submit opens the circuit; reads fail too, so its resend is held only at t=20,
        # when it is already unresolved (the journal notes the hold then).
        run.broker.faults.fail_next_submits = 1
        run.broker.faults.fail_next_reads = 1000
        run.step([quote("AAPL", 11), intent("y1", Side.SELL, 50, 11)])
        assert not run.runtime.dispatcher.resend_is_held(cid)
        run.broker.faults.fail_next_reads = 0
        for seconds in range(20, 80, 5):
            run.quotes(seconds)
        assert run.runtime.dispatcher.resend_is_held(cid)
        assert _submit_breaker(run) == "CLOSED"
        assert SUBMIT_CIRCUIT not in [c.key for c in run.runtime.engine.state.guard.conditions()]
        assert cid in run.runtime.awaiting and run.broker.submissions().count(cid) == 1
    finally:
        run.close()
    run = _open(tmp_path)
    try:
        assert run.runtime.dispatcher.resend_is_held(cid)
        run.guard.start(at(76))
        _wait_until_lost(run, cid, 80)
        assert run.broker.submissions().count(cid) == 1
        assert run.position() == 110
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok


def test_start_up_sends_nothing_again_while_the_journal_holds_the_submit_circuit_open(
        tmp_path: Path) -> None:
    run = _stage(tmp_path)
    cid = _cid("y1")
    try:
        # The circuit opens on y1's submit; its four lookups fail, so its resend was never
        # considered, let alone held, before the process stops.
        run.broker.faults.fail_next_submits = 1
        run.broker.faults.fail_next_reads = 4
        run.step([quote("AAPL", 11), intent("y1", Side.SELL, 50, 11)])
        assert cid in run.runtime.awaiting
        assert not run.runtime.dispatcher.resend_is_held(cid)
        assert SUBMIT_CIRCUIT in [c.key for c in run.runtime.engine.state.guard.conditions()]
        assert run.broker.faults.fail_next_reads == 0
    finally:
        run.close()
    run = _open(tmp_path)  # the broker answers everything again
    try:
        assert run.broker.submissions().count(cid) == 1  # start-up only asked
        assert run.runtime.dispatcher.resend_is_held(cid)
        run.guard.start(at(12))
        assert _submit_breaker(run) == "HALF_OPEN"
        _wait_until_lost(run, cid, 20)
        # The half-open circuit's probe was never this stale order.
        assert run.broker.submissions().count(cid) == 1
        assert run.position() == 110
    finally:
        run.close()
    assert verify(tmp_path / "journal.db").ok


def test_an_unresolved_note_says_whether_its_resend_was_held() -> None:
    older = b'{"type":"og.unresolved","client_order_id":"og-1","detail":"timeout"}'
    assert decode_note(older) == UnresolvedDispatch(client_order_id="og-1", detail="timeout")
    # A note of an order never held reads as it always did.
    assert note_encoder.encode(UnresolvedDispatch(client_order_id="og-1",
                                                  detail="timeout")) == older
    held = UnresolvedDispatch(client_order_id="og-1", detail="timeout", resend_held=True)
    assert decode_note(note_encoder.encode(held)) == held
