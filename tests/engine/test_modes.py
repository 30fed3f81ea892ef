"""The mode guard: tighten on conditions, never loosen without an operator or reset window."""

from __future__ import annotations

from datetime import timedelta

from ordergate.engine.modes import Condition, ModeGuard
from ordergate.model.modes import Mode
from ordergate.model.values import utc

T0 = utc(2026, 1, 5, 14)


def condition(key: str, level: Mode, latched: bool = False) -> Condition:
    return Condition(key=key, code="SYS-007", since=T0, level=level, latched=latched)


def test_raising_tightens_and_a_looser_condition_never_loosens() -> None:
    guard = ModeGuard()
    change = guard.raise_condition(condition("a", Mode.HALTED), T0)
    assert change is not None and change.mode is Mode.HALTED
    assert guard.raise_condition(condition("b", Mode.REDUCE_ONLY), T0) is None
    assert guard.mode is Mode.HALTED


def test_clearing_removes_the_reason_without_loosening() -> None:
    guard = ModeGuard()
    guard.raise_condition(condition("a", Mode.REDUCE_ONLY), T0)
    assert guard.clear("a", T0)
    assert guard.mode is Mode.REDUCE_ONLY and guard.reasons() == ()
    assert guard.on_time(T0 + timedelta(days=1), None) is None


def test_latched_reasons_are_not_cleared_automatically() -> None:
    guard = ModeGuard()
    guard.raise_condition(condition("a", Mode.HALTED, latched=True), T0)
    assert not guard.clear("a", T0)
    assert guard.has("a")


def test_reset_window_loosens_to_what_remaining_reasons_demand() -> None:
    guard = ModeGuard()
    guard.raise_condition(condition("a", Mode.HALTED), T0)
    guard.raise_condition(condition("b", Mode.REDUCE_ONLY), T0)
    guard.clear("a", T0)
    assert guard.on_time(T0 + timedelta(seconds=9), timedelta(seconds=10)) is None
    change = guard.on_time(T0 + timedelta(seconds=10), timedelta(seconds=10))
    assert change is not None and change.mode is Mode.REDUCE_ONLY


def test_resume_drops_latched_reasons_and_keeps_conditional_ones() -> None:
    guard = ModeGuard()
    guard.raise_condition(condition("halt", Mode.HALTED, latched=True), T0)
    guard.raise_condition(condition("dep", Mode.REDUCE_ONLY), T0)
    change, dropped = guard.resume("ops1", T0)
    assert [c.key for c in dropped] == ["halt"]
    assert change is not None and change.mode is Mode.REDUCE_ONLY
    assert [c.key for c in guard.conditions()] == ["dep"]
