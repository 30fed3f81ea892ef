"""What the engine says when a dependency reason comes off its list (engine behaviour 5 on).

A trade bust is raised as a SYS-009 DependencyStatus pair whose healthy half only marks it
reported (`model.reasons.REPORTED`): nothing says the books were put right, so no Alert says
the dependency is healthy again, and status says when it was reported, not that it cleared. A
failure that clears at the event time it was raised (a submit that timed out and was resent at
once) did clear, and status says so. Every other clearance's Alert opens with the dependency
being healthy again (the firm store: answering again, its lost data not back), then what it
said when that adds words, then until when the mode stays held. A journal written under
behaviour 4 replays with the Alerts it was written with."""

from __future__ import annotations

from datetime import timedelta

from engine.harness import Harness, encode, of_type
from ordergate.brokers.labels import FILLED_QTY_DECREASED, FILLS_DEPENDENCY
from ordergate.engine.core import FIRM_STORE_DEPENDENCY, Engine
from ordergate.engine.status import BUST_CODE, BUST_DEPENDENCY, held_words
from ordergate.model.events import Alert, AlertSeverity, DependencyStatus
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY, REPORTED
from ordergate.resilience.breakers import BreakerBoard, BreakerPolicy, EscalationTier
from ordergate.resilience.clock import ManualClock
from ordergate.resilience.errors import classify, to_event
from ordergate.runtime.firm import REDIS_DEPENDENCY
from ordergate.runtime.health import ClockWatch, circuit_event

BUST = ("alpaca reports order og-1 filled 5, less than the 10 the gateway booked (a trade "
        "bust or correction at the venue); the booked fills stand: check the position with "
        "the venue")
LOST = ("the firm limits store at redis://127.0.0.1:6379/9 lost its data (restarted empty or "
        "flushed); other gateways' exposure is unknown until they report again; new risk is "
        "refused until an operator resumes")
WHOLE = ("the firm limits store at redis://127.0.0.1:6379/9 holds this shard's exposure "
         "again")


def _bust(world: Harness) -> list[Alert]:
    alerts: list[Alert] = []
    for healthy, detail in ((False, BUST), (True, REPORTED)):
        alerts += of_type(world.send(DependencyStatus(
            ts=world.now, dependency="broker_fills:og-1", healthy=healthy, code="SYS-009",
            detail=detail)), Alert)
    return alerts


def _held(world: Harness) -> str | None:
    status = world.engine.status()
    assert status.held_after is not None
    return held_words(status, REGISTRY[status.held_after.code].meaning)


def test_a_trade_bust_marked_reported_is_never_said_to_be_healthy_again() -> None:
    world = Harness()
    alerts = _bust(world)
    assert [(alert.severity, alert.code) for alert in alerts] == [
        (AlertSeverity.CRITICAL, "SYS-009")]
    assert "healthy" not in alerts[0].message
    assert world.state.mode is Mode.REDUCE_ONLY  # the mismatch's default mode, kept


def test_status_says_a_reported_bust_was_reported_not_that_it_cleared() -> None:
    world = Harness()
    _bust(world)
    words = _held(world)
    assert words is not None
    assert f"It was reported at {world.now:%Y-%m-%d %H:%M:%S} UTC" in words
    assert "cleared" not in words
    assert "it stays REDUCE_ONLY until an operator resumes" in words


def test_a_reason_that_cleared_later_still_says_when_it_cleared() -> None:
    world = Harness()
    world.dependency("broker_submit", False, "SYS-011")
    cleared = world.advance(5)
    world.dependency("broker_submit", True, "SYS-011")
    words = _held(world)
    assert words is not None
    assert f"It cleared at {cleared:%Y-%m-%d %H:%M:%S} UTC" in words


def test_a_submit_failure_cleared_at_the_instant_it_was_raised_is_said_to_have_cleared() -> None:
    # a batch's first submit times out and the automatic resubmit succeeds at the same event
    # time: the reason comes off the list the instant it was raised, and it did clear
    world = Harness()
    failure = to_event(classify(TimeoutError("simulated submit timeout"), "broker_submit"),
                       world.now)
    world.send(failure)
    (alert,) = of_type(world.send(DependencyStatus(
        ts=world.now, dependency="broker_submit", healthy=True)), Alert)
    assert alert.message.startswith("broker_submit is healthy again; new risk stays refused")
    words = _held(world)
    assert words is not None
    assert f"It cleared at {world.now:%Y-%m-%d %H:%M:%S} UTC" in words
    assert "reported" not in words


def test_status_knows_the_bust_by_the_dependency_the_brokers_raise_it_under() -> None:
    assert (BUST_DEPENDENCY, BUST_CODE) == (FILLS_DEPENDENCY, FILLED_QTY_DECREASED)
    assert FIRM_STORE_DEPENDENCY == REDIS_DEPENDENCY


def test_a_closed_breaker_says_its_dependency_is_healthy_again_not_its_code() -> None:
    clock = ManualClock()
    board = BreakerBoard(clock, BreakerPolicy(
        tiers=(EscalationTier(failures=1, window_s=60, open_s=1),)))
    breaker = board.get("broker_submit")
    world = Harness()
    opened = breaker.record_failure()
    assert opened is not None
    world.send(circuit_event(opened, world.now))
    clock.advance(2)
    assert breaker.allow()  # the probe
    closed = breaker.record_success()
    assert closed is not None and closed.detail == "CIRCUIT_CLOSED_broker_submit"
    world.advance(2)
    (alert,) = of_type(world.send(circuit_event(closed, world.now)), Alert)
    assert alert.severity is AlertSeverity.INFO
    assert alert.message == ("circuit:broker_submit is healthy again; new risk stays refused "
                             f"({world.state.mode.value}) until an operator resumes")


def test_a_clock_back_within_tolerance_says_it_is_healthy_again_before_its_drift() -> None:
    clock = ManualClock()
    offset = [timedelta(milliseconds=400)]
    watch = ClockWatch(clock, lambda: clock.now() + offset[0], BreakerBoard(clock),
                       max_drift_ms=250)
    world = Harness()
    (drifting,) = watch.check(world.now)
    assert not drifting.healthy
    world.send(drifting)
    held = world.state.mode
    assert held is not Mode.ACTIVE
    offset[0] = timedelta(milliseconds=1)
    world.advance(5)
    (back,) = watch.check(world.now)
    assert back.healthy
    (alert,) = of_type(world.send(back), Alert)
    assert alert.severity is AlertSeverity.INFO
    stays = "new risk stays refused" if held is Mode.REDUCE_ONLY else "trading stays halted"
    assert alert.message == (
        "clock:drift is healthy again: drift +1.000 ms (reference minus local), tolerance "
        f"250 ms; {stays} ({held.value}) until an operator resumes")


def test_a_firm_store_whole_again_after_a_loss_answers_but_new_risk_stays_refused() -> None:
    world = Harness()
    world.send(DependencyStatus(ts=world.now, dependency="redis", healthy=False,
                                code="SYS-007", detail=LOST))
    assert world.state.mode is Mode.REDUCE_ONLY
    world.advance(5)
    (alert,) = of_type(world.send(DependencyStatus(
        ts=world.now, dependency="redis", healthy=True, code="SYS-007", detail=WHOLE)), Alert)
    assert alert.severity is AlertSeverity.INFO
    assert alert.message == (
        f"redis answers again: {WHOLE}; new risk stays refused (REDUCE_ONLY) until an "
        "operator resumes")
    assert world.state.mode is Mode.REDUCE_ONLY


def test_a_clearance_under_a_reset_window_says_when_the_window_loosens_the_mode() -> None:
    world = Harness(engine={"reset_window": "10m"})
    world.dependency("broker_submit", False, "SYS-011")
    (alert,) = of_type(world.dependency("broker_submit", True, "SYS-011"), Alert)
    loosens = world.now + timedelta(minutes=10)
    assert alert.message == (
        "broker_submit is healthy again; new risk stays refused (REDUCE_ONLY) until "
        f"{loosens:%Y-%m-%d %H:%M:%S} UTC, when the reset window has passed, or until an "
        "operator resumes sooner")


def test_a_clearance_that_leaves_nothing_held_says_only_that_it_is_healthy() -> None:
    world = Harness()
    world.dependency("broker_submit", False, "SYS-011")
    world.dependency("feed:x", False, "SYS-011")
    (alert,) = of_type(world.dependency("broker_submit", True, "SYS-011"), Alert)
    assert alert.message == "broker_submit is healthy again"  # feed:x still holds the mode


def test_a_behaviour_4_journal_replays_its_healthy_again_alerts() -> None:
    world = Harness(behaviour=4)
    alerts = _bust(world)
    assert [alert.message for alert in alerts][1] == "broker_fills:og-1 is healthy again"
    world.send(DependencyStatus(ts=world.now, dependency="redis", healthy=False,
                                code="SYS-007", detail=LOST))
    (alert,) = of_type(world.send(DependencyStatus(
        ts=world.now, dependency="redis", healthy=True, code="SYS-007", detail=WHOLE)), Alert)
    assert alert.message == "redis is healthy again"
    world.dependency("clock:drift", False, "CLK-002")
    (alert,) = of_type(world.send(DependencyStatus(
        ts=world.now, dependency="clock:drift", healthy=True, code="CLK-002",
        detail="drift +1.000 ms (reference minus local), tolerance 250 ms")), Alert)
    assert alert.message == "clock:drift is healthy again"
    world.dependency("circuit:broker_submit", False, "SYS-007")
    (alert,) = of_type(world.send(DependencyStatus(
        ts=world.now, dependency="circuit:broker_submit", healthy=True, code="SYS-007",
        detail="CIRCUIT_CLOSED_broker_submit")), Alert)
    assert alert.message == "circuit:broker_submit is healthy again"
    engine = Engine()
    replayed = [engine.handle(event) for event in world.log]
    assert [encode(outputs) for outputs in replayed] == [
        encode(outputs) for outputs in world.outputs]
