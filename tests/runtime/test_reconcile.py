"""Reconciliation finds orphan orders, zombie orders and position mismatches, journals each
with SYS-009 (and an Alert), moves the mode per `on_reconciliation_mismatch`, cancels orders
unknown to the gateway on start when told to, and closes the session cleanly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.base import BrokerOrder, OrderStatus
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import (
    ACCOUNT,
    CHAOS_POLICY,
    OPERATOR,
    ChaosRun,
    at,
    chaos_policy,
    intent,
    quote,
)
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import (
    AccountFunding,
    Command,
    CommandAction,
    Dispatch,
    PolicyDocument,
)
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.modes import Mode
from ordergate.policy.loader import parse_policy
from ordergate.runtime.health import EventClock, GuardedRuntime, GuardSettings
from ordergate.runtime.reconcile import ReconcileSettings

QUIET = GuardSettings(reconcile_every_batches=0, clock_check_every_s=3600)


def _stranger(symbol: str = "MSFT") -> Dispatch:
    return Dispatch(ts=at(1), client_order_id="placed-by-hand", intent_id="by-hand",
                    account=ACCOUNT, strategy="manual", symbol=symbol, side=Side.BUY,
                    qty=Decimal(5), order_type=OrderType.LIMIT, limit_price=Decimal(300))


def _meta(journal: Path, tag: bytes) -> list[dict[str, object]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False,
                          reader=True)
    try:
        return [msgspec.json.decode(record.payload) for record in handle.read()
                if record.kind is RecordKind.META and tag in record.payload]
    finally:
        handle.close()


def test_position_changed_outside_is_journaled_and_moves_the_mode(tmp_path: Path) -> None:
    with ChaosRun.open(tmp_path, settings=QUIET) as run:
        run.start()
        run.step([quote("AAPL", 1), intent("open", Side.BUY, 100, 1)])
        assert run.guard.reconciler.reconcile(at(2)).emitted == []  # agrees: nothing to say
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(40))
        run.guard.reconciler.reconcile(at(3))
        assert run.mode() is Mode.HALTED
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(100))
        run.guard.reconciler.reconcile(at(4))
        assert "SYS-009" not in run.reason_codes()  # resolved: the reason clears...
        assert run.mode() is Mode.HALTED  # ...but only an operator loosens the mode
        facts = JournalFacts.read(run.journal_path)
    raised = facts.unhealthy("SYS-009")
    assert [event.dependency for event in raised] == [f"reconciliation:position:{ACCOUNT}:AAPL"]
    assert "gateway 100, broker 40" in raised[0].detail
    assert any(alert.code == "SYS-009" for alert in facts.alerts)
    assert [e.healthy for e in facts.dependencies if e.dependency.startswith("reconciliation")] \
        == [False, True]


def test_an_orphan_order_at_the_broker_is_found(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.broker.submit(_stranger())
        run.guard.reconciler.reconcile(at(2))
        report = run.guard.reconciler.last
        assert report is not None
        assert [order.client_order_id for order in report.orphans] == ["placed-by-hand"]
        assert run.mode() is Mode.HALTED
        facts = JournalFacts.read(run.journal_path)
    assert any("orphan order placed-by-hand" in e.detail for e in facts.unhealthy("SYS-009"))


class RevivingSim(SimBroker):
    """A simulator whose book shows the orders named in `revived` working again after it
    canceled them (a venue that brings a done order back)."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.revived: list[str] = []

    def open_orders(self) -> list[BrokerOrder]:
        shown = super().open_orders()
        for cid in self.revived:
            order = self.get_order(cid)
            assert order is not None
            shown.append(msgspec.structs.replace(order, status=OrderStatus.NEW))
        return shown


def test_an_order_seen_canceled_and_shown_working_again_is_said_so(tmp_path: Path) -> None:
    """The finding says what happened: the gateway dispatched the order and saw it canceled,
    and the broker shows it working again. Still an orphan, with SYS-009 and its mode."""
    broker = RevivingSim(SimConfig(fill_model=FillModel.NEXT_MARKET))
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), broker,
                                EventClock(), QUIET)
    run = ChaosRun(directory=tmp_path, broker=broker, guard=guard, clock=EventClock())
    try:
        run.start()
        run.step([intent("resting", Side.BUY, 10, 1, limit_price=Decimal(180))])
        (order,) = run.runtime.engine.status().open_orders
        cid = order.client_order_id
        run.request_cancel(cid, 2)
        assert not run.runtime.engine.status().open_orders
        broker.revived.append(cid)
        run.guard.reconciler.reconcile(at(3))
        report = run.guard.reconciler.last
        assert report is not None
        assert [orphan.client_order_id for orphan in report.orphans] == [cid]
        assert run.mode() is Mode.HALTED  # the chaos policy's on_reconciliation_mismatch
        assert run.reason_codes() == ["SYS-009"]
    finally:
        run.close()
    facts = JournalFacts.read(tmp_path / "journal.db")
    (detail,) = [e.detail for e in facts.unhealthy("SYS-009")]
    assert detail == (
        f"orphan order {cid} (AAPL, 10 with 0 filled): the gateway dispatched it (AAPL buy 10, "
        "intent resting) and saw it canceled with 0 filled, the broker shows it working again")


def test_orphans_are_canceled_on_start_when_configured(tmp_path: Path) -> None:
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.submit(_stranger())
    settings = GuardSettings(reconcile=ReconcileSettings(cancel_unknown_on_start=True))
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), broker,
                                EventClock(), settings)
    try:
        guard.start(at(2))
        assert guard.reconciler.last is not None
        assert guard.reconciler.last.canceled == ["placed-by-hand"]
        assert guard.runtime.engine.state.guard.mode is Mode.ACTIVE
    finally:
        guard.close()
    known = broker.get_order("placed-by-hand")
    assert known is not None and known.status is OrderStatus.CANCELED
    [note] = _meta(tmp_path / "journal.db", b"og.orphan_cancel")
    assert note["client_order_id"] == "placed-by-hand"


def test_a_working_order_the_broker_never_heard_of_is_a_zombie(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([intent("resting", Side.BUY, 10, 1, limit_price=Decimal(180))])
        assert len(run.runtime.engine.status().open_orders) == 1
    # The broker lost its book (a new account, a wiped simulator): same journal, empty broker.
    # It keeps a book (a state file): an in-memory simulator's orders end at start-up instead.
    wiped = msgspec.structs.replace(sim, state_path=str(tmp_path / "wiped.sim"))
    SimBroker(wiped).close()  # wiped earlier: a state file made at this start holds no book
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(),
                                SimBroker(wiped), EventClock(), QUIET)
    try:
        guard.start(at(2))
        assert guard.reconciler.last is not None
        assert len(guard.reconciler.last.zombies) == 1
        assert guard.runtime.engine.state.guard.mode is Mode.HALTED
    finally:
        guard.close()


def test_session_close_cancels_day_orders_and_journals_a_summary(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        day = intent("day-order", Side.BUY, 10, 1, limit_price=Decimal(180))
        gtc = msgspec.structs.replace(intent("gtc-order", Side.BUY, 10, 1,
                                             limit_price=Decimal(181)), tif=TimeInForce.GTC)
        run.step([day, gtc])
        run.guard.session_close(at(10))
        working = [order.intent_id for order in run.runtime.engine.status().open_orders]
        assert working == ["gtc-order"]
        assert run.mode() is Mode.ACTIVE
    [summary] = _meta(tmp_path / "journal.db", b"og.session_close")
    assert len(summary["day_orders_canceled"]) == 1  # type: ignore[arg-type]
    assert summary["mode"] == "ACTIVE" and summary["mismatches"] == 0


def test_the_day_roll_runs_session_close_by_itself(tmp_path: Path) -> None:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        day = intent("day-order", Side.BUY, 10, 1, limit_price=Decimal(180))
        gtc = msgspec.structs.replace(intent("gtc-order", Side.BUY, 10, 1,
                                             limit_price=Decimal(181)), tif=TimeInForce.GTC)
        run.step([day, gtc])
        assert _meta(tmp_path / "journal.db", b"og.session_close") == []
        # the next event comes after the trading day rolled (hours later): no one calls
        # session_close, the guard does it on the roll
        run.step([quote("AAPL", 12 * 3600)])
        working = [order.intent_id for order in run.runtime.engine.status().open_orders]
        assert working == ["gtc-order"]
    [summary] = _meta(tmp_path / "journal.db", b"og.session_close")
    assert len(summary["day_orders_canceled"]) == 1  # type: ignore[arg-type]


def test_a_policy_that_changes_the_day_roll_calendar_closes_no_session(tmp_path: Path) -> None:
    """Activating a policy with another `day_roll_calendar` moves the next roll without rolling
    the day: the day's DAY orders keep working and no session-close summary is journaled."""
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([intent("day-order", Side.BUY, 10, 1, limit_price=Decimal(180))])
        roll_before = run.runtime.engine.state.next_roll_at
        calendar = parse_policy(CHAOS_POLICY.replace(
            "engine:\n", "engine:\n  day_roll_calendar: XNYS\n"), "chaos on XNYS")
        run.step([
            PolicyDocument(ts=at(60), policy_hash=calendar.hash, document=calendar.document),
            Command(ts=at(60), action=CommandAction.ACTIVATE_POLICY, policy_hash=calendar.hash,
                    operator=OPERATOR, reason="roll the day at the NYSE close"),
        ])
        assert run.runtime.engine.active is not None
        assert run.runtime.engine.active.hash == calendar.hash
        assert run.runtime.engine.state.next_roll_at != roll_before  # the roll moved...
        working = [order.intent_id for order in run.runtime.engine.status().open_orders]
        assert working == ["day-order"]  # ...and the day's orders were left alone
    assert _meta(tmp_path / "journal.db", b"og.session_close") == []


def test_a_start_up_reconciliation_that_rolls_the_day_closes_the_session(tmp_path: Path) -> None:
    """A gateway restarted the next day whose start-up reconciliation journals the first
    events past the day's end (an orphan order at the broker, here) rolls the day there, and
    the session close follows it, as it follows a batch that rolls the day."""
    broker = SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET))
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    guard = GuardedRuntime.open(journal, chaos_policy(), broker, EventClock(), QUIET)
    try:
        guard.start(at(0))
        guard.process([AccountFunding(ts=at(0), account=ACCOUNT, cash=Decimal(1_000_000)),
                       quote("AAPL", 0),
                       intent("day-order", Side.BUY, 10, 1, limit_price=Decimal(180))])
    finally:
        guard.close()
    broker.submit(_stranger())  # placed by hand overnight: the reconciliation will say so
    guard = GuardedRuntime.open(journal, chaos_policy(), broker, EventClock(), QUIET)
    try:
        rolled_before = guard.runtime.engine.state.days_rolled
        guard.start(at(12 * 3600))
        assert guard.runtime.engine.state.days_rolled == rolled_before + 1
        assert guard.runtime.engine.status().open_orders == ()
    finally:
        guard.close()
    [summary] = _meta(tmp_path / "journal.db", b"og.session_close")
    assert len(summary["day_orders_canceled"]) == 1  # type: ignore[arg-type]


def test_the_close_after_a_roll_keeps_the_new_days_orders(tmp_path: Path) -> None:
    """One batch that rolls the day and then places a DAY order on the new day: the close
    cancels yesterday's DAY order only."""
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET)
    with ChaosRun.open(tmp_path, sim=sim, settings=QUIET) as run:
        run.start()
        run.step([intent("yesterday", Side.BUY, 10, 1, limit_price=Decimal(180))])
        next_day = 12 * 3600
        run.step([quote("AAPL", next_day),
                  intent("today", Side.BUY, 10, next_day, limit_price=Decimal(181))])
        working = [order.intent_id for order in run.runtime.engine.status().open_orders]
        assert working == ["today"]
    [summary] = _meta(tmp_path / "journal.db", b"og.session_close")
    assert len(summary["day_orders_canceled"]) == 1  # type: ignore[arg-type]


def test_an_orphan_whose_cancel_the_broker_refuses_on_start_is_raised_not_counted_canceled(
        tmp_path: Path) -> None:
    """`cancel_unknown_on_start` with a venue that refuses the cancel: the orphan is still
    working there, so it is journaled as a SYS-009 orphan (with an Alert and the mode) naming
    the refusal, and the pass's note does not list it as canceled."""
    from tests.runtime.test_cancel_refused import REASON, RefusingSim

    broker = RefusingSim(SimConfig(fill_model=FillModel.NEXT_MARKET))
    broker.submit(_stranger())
    settings = GuardSettings(reconcile=ReconcileSettings(cancel_unknown_on_start=True))
    guard = GuardedRuntime.open(f"sqlite:///{tmp_path / 'journal.db'}", chaos_policy(), broker,
                                EventClock(), settings)
    try:
        guard.start(at(2))
        assert guard.reconciler.last is not None
        assert guard.reconciler.last.canceled == []
        assert guard.runtime.engine.state.guard.mode is Mode.HALTED  # the chaos policy's
    finally:
        guard.close()
    known = broker.get_order("placed-by-hand")
    assert known is not None and known.status is OrderStatus.NEW  # still working there
    [note] = _meta(tmp_path / "journal.db", b"og.reconcile")
    assert (note["orphans"], note["canceled"]) == (["placed-by-hand"], [])
    facts = JournalFacts.read(tmp_path / "journal.db")
    [raised] = facts.unhealthy("SYS-009")
    assert raised.dependency == "reconciliation:orphan:placed-by-hand"
    assert raised.detail == (
        "orphan order placed-by-hand (MSFT, 5 with 0 filled): working at the broker, never "
        f"dispatched by the gateway; the broker refused its cancel at start-up: {REASON}")
    assert any(alert.code == "SYS-009" for alert in facts.alerts)
