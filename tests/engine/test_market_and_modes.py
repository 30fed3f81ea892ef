"""Market data, dependencies and the mode: fail closed, tighten automatically, loosen only
by an operator or the reset window."""

from __future__ import annotations

from engine.harness import D, Harness, decision_of, of_type, policy_document
from ordergate.model.decision import DecisionKind
from ordergate.model.events import Alert, CommandAction, ModeChanged, PolicyDocument
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.policy.loader import Policy


def test_invalid_market_data_raises_an_integrity_reason_and_tightens_per_policy() -> None:
    world = Harness(engine={"on_bad_data": "HALTED"})
    outputs = world.quote("X", "100", bid=D("NaN"))
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.HALTED and change.reasons[0].code == "SYS-003"
    assert decision_of(world.intent()).decision is DecisionKind.DENY


def test_valid_data_clears_the_reason_but_does_not_loosen_the_mode() -> None:
    world = Harness()
    world.quote("X", "100", ask=D("-1"))
    assert world.state.mode is Mode.REDUCE_ONLY
    outputs = world.quote("X", "100")
    assert of_type(outputs, ModeChanged) == []
    assert world.state.mode is Mode.REDUCE_ONLY
    assert world.state.guard.reasons() == ()


def test_reset_window_loosens_after_the_condition_cleared_for_that_long() -> None:
    world = Harness(engine={"reset_window": "30s"})
    world.quote("X", "100", last=D(0))
    world.advance(1)
    world.quote("X", "100")
    assert world.tick(29) == []
    outputs = world.tick(1)
    (change,) = of_type(outputs, ModeChanged)
    assert (change.previous, change.mode, change.actor) == (
        Mode.REDUCE_ONLY, Mode.ACTIVE, "reset_window")


def test_stale_data_is_detected_on_clock_ticks_for_held_symbols() -> None:
    world = Harness({"max_market_data_age": "5s"}, engine={"on_stale_data": "HALTED"})
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "10")
    assert world.tick(5) == []
    outputs = world.tick(1)
    assert [alert.code for alert in of_type(outputs, Alert)] == ["SYS-002"]
    assert world.state.mode is Mode.HALTED


def test_older_market_snapshot_does_not_replace_a_newer_one() -> None:
    world = Harness()
    world.advance(10)
    world.quote("X", "120")
    world.now -= world.now - world.now.replace(second=1)
    world.quote("X", "80")
    snapshot = world.state.market("X")
    assert snapshot is not None and snapshot.last == D(120)
    assert world.state.now.second == 10  # event time never goes backwards


def test_mark_to_market_updates_equity_high_water_mark_and_exposure() -> None:
    world = Harness(cash="10000")
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "10", price="100")
    world.quote("X", "120")
    record = world.state.accounts["A"]
    assert record.equity == D(10200)
    assert record.high_water_mark == D(10200)
    assert record.unrealized_pnl == D(200)
    assert world.state.exposure("A").gross == D(1200)


def test_drawdown_beyond_limit_halts_with_los_003() -> None:
    world = Harness({"max_drawdown_pct": "5", "drawdown_kill": True}, cash="10000")
    dispatch = world.accepted(qty="100")
    world.fill(dispatch.client_order_id, "100", price="100")
    assert of_type(world.quote("X", "95"), ModeChanged) == []  # exactly 5 %: not beyond
    outputs = world.quote("X", "94.9")
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.HALTED and change.reasons[0].code == "LOS-003"


def test_dependency_down_adds_its_reason_and_healthy_removes_only_that_reason() -> None:
    world = Harness(engine={"on_clock_fault": "HALTED"})
    world.dependency("broker_submit", False, "SYS-007")
    assert world.state.mode is Mode.REDUCE_ONLY
    world.dependency("clock", False, "CLK-002")
    assert world.state.mode is Mode.HALTED
    assert [r.code for r in world.state.integrity_reasons()] == ["SYS-007", "CLK-002"]
    denied = decision_of(world.intent(Side.BUY, qty="1"))
    assert denied.decision is DecisionKind.DENY
    world.dependency("clock", True)
    assert [r.code for r in world.state.integrity_reasons()] == ["SYS-007"]
    assert world.state.mode is Mode.HALTED


def test_automatic_transitions_only_tighten() -> None:
    world = Harness(engine={"on_dependency_down": "HALTED", "on_bad_data": "REDUCE_ONLY"})
    world.dependency("journal", False, "SYS-006")
    assert world.state.mode is Mode.HALTED
    outputs = world.quote("X", "100", bid=D("Infinity"))
    assert of_type(outputs, ModeChanged) == []
    assert world.state.mode is Mode.HALTED


def test_resume_needs_operator_and_reason_and_keeps_unresolved_conditions() -> None:
    world = Harness()
    world.command(CommandAction.HALT, operator="ops1", reason="incident")
    world.dependency("broker_submit", False, "SYS-007")
    refused = world.command(CommandAction.RESUME, operator="ops1")
    assert [alert.code for alert in of_type(refused, Alert)] == ["COMMAND_REFUSED"]
    assert world.state.mode is Mode.HALTED
    outputs = world.command(CommandAction.RESUME, operator="ops1", reason="fixed")
    (change,) = of_type(outputs, ModeChanged)
    assert change.mode is Mode.REDUCE_ONLY and change.actor == "ops1"
    world.dependency("broker_submit", True)
    world.command(CommandAction.RESUME, operator="ops1", reason="broker back")
    assert world.state.mode is Mode.ACTIVE


def test_drawdown_resume_requires_two_different_operators() -> None:
    world = Harness({"max_drawdown_pct": "5", "drawdown_kill": True},
                    engine={"resume_requires_two_operators": True}, cash="10000")
    dispatch = world.accepted(qty="100")
    world.fill(dispatch.client_order_id, "100", price="100")
    world.quote("X", "90")
    assert world.state.mode is Mode.HALTED
    world.command(CommandAction.RESUME, operator="ops1", reason="reviewed")
    world.command(CommandAction.RESUME, operator="ops1", reason="really")
    assert world.state.mode is Mode.HALTED
    outputs = world.command(CommandAction.RESUME, operator="ops2", reason="agree")
    assert of_type(outputs, ModeChanged)[0].mode is Mode.ACTIVE
    # drawdown is measured from the accepted loss on: the next tick does not re-halt
    world.quote("X", "89.9")
    assert world.state.mode is Mode.ACTIVE


def test_one_operator_cannot_drop_the_two_operator_rule_while_its_halt_waits() -> None:
    # Swapping in a policy without the rule and resuming alone would end a drawdown halt on
    # one operator's word: the activation is refused until two operators have resumed.
    world = Harness({"max_drawdown_pct": "5", "drawdown_kill": True},
                    engine={"resume_requires_two_operators": True}, cash="10000")
    dispatch = world.accepted(qty="100")
    world.fill(dispatch.client_order_id, "100", price="100")
    world.quote("X", "90")
    world.command(CommandAction.RESUME, operator="ops1", reason="reviewed")
    loose = Policy.from_document(policy_document(
        {"max_drawdown_pct": "5", "drawdown_kill": True},
        engine={"resume_requires_two_operators": False}))
    world.send(PolicyDocument(ts=world.now, policy_hash=loose.hash, document=loose.document))
    refused = world.command(CommandAction.ACTIVATE_POLICY, policy_hash=loose.hash,
                            operator="ops1", reason="loosen")
    assert world.engine.active.hash == world.policy.hash
    assert [a.code for a in of_type(refused, Alert)] == ["POLICY_REJECTED"]
    assert "two operators" in of_type(refused, Alert)[0].message
    world.command(CommandAction.RESUME, operator="ops1", reason="alone")
    assert world.state.mode is Mode.HALTED
    world.command(CommandAction.RESUME, operator="ops2", reason="agree")
    assert world.state.mode is Mode.ACTIVE
    # the halt is over: the same policy may now be activated
    world.command(CommandAction.ACTIVATE_POLICY, policy_hash=loose.hash, operator="ops1",
                  reason="loosen")
    assert world.engine.active.hash == loose.hash


def test_day_roll_at_midnight_utc_resets_day_start_equity() -> None:
    world = Harness(cash="10000")
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "10", price="100")
    world.quote("X", "110")
    assert world.state.accounts["A"].day_start_equity == D(10000)
    world.tick(10 * 3600 - 1)  # 23:59:59
    assert world.state.accounts["A"].day_start_equity == D(10000)
    world.quote("X", "110")
    world.tick(1)
    assert world.state.accounts["A"].day_start_equity == D(10100)



def test_day_rolls_at_the_session_close_of_the_configured_calendar() -> None:
    # T0 is Monday 2026-01-05 14:00 UTC; XNYS closes at 21:00 UTC in January.
    world = Harness(engine={"day_roll_calendar": "XNYS"}, cash="10000")
    dispatch = world.accepted(qty="10")
    world.fill(dispatch.client_order_id, "10", price="100")
    world.quote("X", "110")
    world.tick(7 * 3600 - 1)
    assert world.state.accounts["A"].day_start_equity == D(10000)
    world.quote("X", "110")
    world.tick(1)
    assert world.state.accounts["A"].day_start_equity == D(10100)
