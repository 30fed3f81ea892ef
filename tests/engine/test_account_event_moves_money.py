"""An account event for an account already funded (engine behaviour 5 on) moves money, it is
no profit or loss: the cash moves to the event's figure and the day-start equity and the
high-water mark move by the same change, so the day's PnL and the drawdown stay what they were,
and an info Alert says so. A balance sync of the cash already held changes nothing. Behaviour 4
started both marks again at the new equity on every account event; its journals replay so."""

from __future__ import annotations

from engine.harness import D, Harness, decision_of, encode, of_type
from ordergate.engine.core import ACCOUNT_CASH, Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import AccountFunding, Alert, AlertSeverity
from ordergate.model.intent import Side

DAILY_LOSS = {"max_daily_loss": "1000"}


def _replays(world: Harness) -> None:
    engine = Engine()
    assert [encode(engine.handle(event)) for event in world.log] == [
        encode(outputs) for outputs in world.outputs]


def _fund(world: Harness, cash: str, **marks: str) -> list[Alert]:
    event = AccountFunding(ts=world.now, account="A", cash=D(cash),
                           **{name: D(value) for name, value in marks.items()})
    return of_type(world.send(event), Alert)


def _down_900(world: Harness) -> None:
    """Long 100 bought at 100 from 100,000 of cash, marked at 91: equity 99,100, the day's loss
    and the drawdown 900 each."""
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100", price="100")
    world.quote("X", "91")


def _loss_and_drawdown(world: Harness) -> tuple[object, object]:
    record = world.state.accounts["A"]
    return record.day_start_equity - record.equity, record.high_water_mark - record.equity


def _audit_pair(*, sync: bool) -> Harness:
    """The audit's two runs: buy 100 at 100, mark 91, buy 100 more at 91 (cash 80,900), with or
    without a balance sync of that same cash, then mark 87 (equity 98,300, the day down 1,700)."""
    world = Harness(DAILY_LOSS)
    _down_900(world)
    more = world.accepted(qty="100")
    world.fill(more.client_order_id, "100", price="91")
    assert world.state.accounts["A"].cash == D(80900)
    if sync:
        assert _fund(world, "80900") == []
    world.quote("X", "87")
    return world


def test_a_balance_sync_of_the_cash_already_held_decides_as_without_it() -> None:
    synced, plain = _audit_pair(sync=True), _audit_pair(sync=False)
    for world in (synced, plain):
        assert world.state.accounts["A"].equity == D(98300)
        assert _loss_and_drawdown(world) == (D(1700), D(1700))
        decision = decision_of(world.intent(Side.BUY, qty="100"))
        assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "LOS-001")
        _replays(world)


def test_a_deposit_mid_day_keeps_the_days_loss_and_the_drawdown() -> None:
    world = Harness(DAILY_LOSS)
    _down_900(world)
    (alert,) = _fund(world, "140000")  # 50,000 paid in: cash 90,000 -> 140,000
    assert (alert.severity, alert.code) == (AlertSeverity.INFO, ACCOUNT_CASH)
    assert alert.message == (
        "cash of A set from 90000 to 140000 by an account event: day-start equity and "
        "high-water mark moved by the same amount")
    record = world.state.accounts["A"]
    assert (record.equity, record.day_start_equity, record.high_water_mark) == (
        D(149100), D(150000), D(150000))
    assert _loss_and_drawdown(world) == (D(900), D(900))
    world.quote("X", "83")  # the day down 1,700 in all, whatever was paid in
    decision = decision_of(world.intent(Side.BUY, qty="1"))
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "LOS-001")
    _replays(world)


def test_a_withdrawal_mid_day_is_no_loss() -> None:
    world = Harness(DAILY_LOSS)
    _down_900(world)
    (alert,) = _fund(world, "40000")  # 50,000 taken out
    assert alert.message.startswith("cash of A set from 90000 to 40000 by an account event")
    assert _loss_and_drawdown(world) == (D(900), D(900))
    assert decision_of(world.intent(Side.BUY, qty="1")).decision is DecisionKind.ALLOW
    _replays(world)


def test_marks_the_event_gives_are_taken_as_given() -> None:
    world = Harness(DAILY_LOSS)
    _down_900(world)
    (alert,) = _fund(world, "140000", day_start_equity="149100")
    assert alert.message.endswith(
        "day-start equity set as the event gives it, high-water mark moved by the same amount")
    assert _loss_and_drawdown(world) == (D(0), D(900))
    (alert,) = _fund(world, "150000", day_start_equity="160000", high_water_mark="170000")
    assert alert.message.endswith(
        "day-start equity and high-water mark set as the event gives them")
    record = world.state.accounts["A"]
    assert (record.day_start_equity, record.high_water_mark) == (D(160000), D(170000))
    _replays(world)


def test_a_behaviour_4_journal_replays_its_account_events_resetting_the_marks() -> None:
    world = Harness(DAILY_LOSS, behaviour=4)
    _down_900(world)
    assert _fund(world, "140000") == []
    record = world.state.accounts["A"]
    assert (record.day_start_equity, record.high_water_mark) == (D(149100), D(149100))
    world.quote("X", "83")
    # the day's loss counted from the deposit (800), not from the day's start (1,700)
    assert decision_of(world.intent(Side.BUY, qty="1")).decision is DecisionKind.ALLOW
    _replays(world)
