"""A gateway restarted on its journal with a simulator that keeps no state (no broker state
file) ends the working orders the earlier process left at the old simulator: the new one has
never heard of them and never will fill or cancel them. They are journaled as canceled, with
a reason that says why, so their reservations are freed and the status tells the truth. A
broker that does keep its book is not second-guessed this way, and an order journaled but
never sent is still sent after the restart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, fork_run, journaled_outputs, wait_exit, write_jsonl
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.gateway import Gateway
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import Dispatch, Fill, OrderCanceled
from ordergate.runtime.loop import SIM_RESTARTED_REASON, decode_input, rebuild

ACCOUNT = "DEMO-1"


def _at(minute: int, second: int = 0) -> str:
    return f"2026-03-02T14:{minute:02d}:{second:02d}Z"


def _market(minute: int, price: str) -> dict[str, Any]:
    cents = Decimal("0.01")
    return {"symbol": "AAPL", "ts": _at(minute), "bid": str(Decimal(price) - cents),
            "ask": str(Decimal(price) + cents), "last": price, "volume": "100000"}


def _limit_buy(intent_id: str, price: str, minute: int) -> dict[str, Any]:
    return {"intent_id": intent_id, "ts": _at(minute, 1), "account": ACCOUNT,
            "strategy": "trend", "symbol": "AAPL", "side": "buy", "qty": "10",
            "order_type": "limit", "limit_price": price}


def _journaled_inputs(journal: Path) -> list[Any]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [decode_input(r.payload) for r in handle.read() if r.kind is RecordKind.INPUT]
    finally:
        handle.close()


def _rest_a_limit_buy(journal: Path, broker: SimBroker | None = None) -> str:
    """One process: a limit buy at 180 with the market at 190 rests at the broker."""
    with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                      broker=broker) as gateway:
        gateway.fund(ACCOUNT, "1000000", ts=_at(30))
        gateway.on_market(_market(30, "190"))
        decision = gateway.submit(_limit_buy("lim1", "180", 30))
        assert decision.decision.value == "ALLOW"
        [order] = gateway.status().open_orders
        return order.client_order_id


def test_working_order_left_at_a_stateless_simulator_is_canceled_on_restart(
        tmp_path: Path) -> None:
    journal = tmp_path / "gw.db"
    client_order_id = _rest_a_limit_buy(journal)
    with Gateway.open(demo_policy_path(), journal=str(journal), clock="event") as gateway:
        assert gateway.status().open_orders == ()
        # The price crosses the old limit: nothing fills, since nothing is working any more.
        gateway.on_market(_market(40, "170"))
        status = gateway.status()
    assert status.open_orders == ()
    assert not [p for p in status.positions if p.qty]
    canceled = [e for e in _journaled_inputs(journal) if isinstance(e, OrderCanceled)]
    assert [(e.client_order_id, e.reason) for e in canceled] == \
        [(client_order_id, SIM_RESTARTED_REASON)]
    assert "restarted without its state" in SIM_RESTARTED_REASON
    # The cancel is journaled: a rebuild from the journal alone agrees.
    assert rebuild(f"sqlite:///{journal}").status().open_orders == ()


def test_unknown_order_at_a_broker_that_keeps_its_book_stays_open(tmp_path: Path) -> None:
    """A broker with a book of its own that does not show an order is a mismatch for
    reconciliation to report, not something start-up may settle by itself."""
    journal = tmp_path / "gw.db"
    first = SimBroker(SimConfig(state_path=str(tmp_path / "first.sim")))
    client_order_id = _rest_a_limit_buy(journal, first)
    first.close()
    # Another book altogether, made by an earlier process: it keeps orders across restarts
    # but has never seen this one. (A state file made by this start is a simulator without
    # state: tests/brokers/test_sim_new_state_file.py.)
    SimBroker(SimConfig(state_path=str(tmp_path / "other.sim"))).close()
    other = SimBroker(SimConfig(state_path=str(tmp_path / "other.sim")))
    assert other.keeps_orders_across_restarts
    try:
        with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                          broker=other) as gateway:
            working = [o.client_order_id for o in gateway.status().open_orders]
    finally:
        other.close()
    assert working == [client_order_id]
    assert not [e for e in _journaled_inputs(journal) if isinstance(e, OrderCanceled)]


def test_working_order_at_a_simulator_with_its_state_is_kept(tmp_path: Path) -> None:
    journal, state = tmp_path / "gw.db", str(tmp_path / "sim.db")
    first = SimBroker(SimConfig(state_path=state))
    client_order_id = _rest_a_limit_buy(journal, first)
    first.close()
    again = SimBroker(SimConfig(state_path=state))
    try:
        with Gateway.open(demo_policy_path(), journal=str(journal), clock="event",
                          broker=again) as gateway:
            assert [o.client_order_id for o in gateway.status().open_orders] == \
                [client_order_id]
            gateway.on_market(_market(40, "170"))
            status = gateway.status()
    finally:
        again.close()
    assert status.open_orders == ()
    assert [(p.symbol, p.qty) for p in status.positions if p.qty] == [("AAPL", Decimal(10))]


def test_order_journaled_but_never_sent_is_sent_to_the_new_simulator(tmp_path: Path) -> None:
    """A crash between journaling a dispatch and submitting it: the restarted run (a new
    simulator, no state file) sends it, and it fills; it is not canceled as forgotten."""
    journal, events = tmp_path / "j.db", tmp_path / "events.jsonl"
    write_jsonl(events, [
        {"type": "account", "account": ACCOUNT, "cash": "1000000", "ts": _at(30)},
        {"type": "market", **_market(30, "190")},
        {"type": "intent", **_limit_buy("lim1", "195", 30)},  # marketable: fills on receipt
    ])
    args = ["run", "--quiet", "--policy", str(demo_policy_path()), "--journal", str(journal),
            str(events)]
    assert wait_exit(fork_run(args, "before_submit:1")) == -9
    assert not [e for e in _journaled_inputs(journal) if isinstance(e, Fill)]
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    inputs = _journaled_inputs(journal)
    assert not [e for e in inputs if isinstance(e, OrderCanceled)]
    [dispatch] = journaled_outputs(journal, Dispatch)
    assert [(e.client_order_id, e.qty) for e in inputs if isinstance(e, Fill)] == \
        [(dispatch.client_order_id, Decimal(10))]
    status = rebuild(f"sqlite:///{journal}").status()
    assert status.open_orders == ()
    assert [(p.symbol, p.qty) for p in status.positions if p.qty] == [("AAPL", Decimal(10))]
