"""A mode held tighter than its remaining reasons (they cleared; only an operator's resume or
the reset window loosens it) says what put it there, when that cleared and what loosens it,
instead of showing a REDUCE_ONLY with no reason."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from ordergate.engine.modes import Condition, ModeGuard, ModeGuardImage
from ordergate.engine.status import EngineStatus, held_words
from ordergate.model.events import ModeReason
from ordergate.model.modes import Mode
from ordergate.model.values import utc

T0 = utc(2026, 1, 5, 14)


def _raised(guard: ModeGuard, key: str = "dep:broker_submit", level: Mode = Mode.REDUCE_ONLY,
            latched: bool = False) -> None:
    guard.raise_condition(Condition(key=key, code="SYS-011", detail="broker_submit: 429",
                                    since=T0, level=level, latched=latched), T0)


def test_a_cleared_reason_is_named_while_the_mode_it_set_holds() -> None:
    guard = ModeGuard()
    _raised(guard)
    assert guard.held_after() is None  # still listed: it is a reason, not a memory
    guard.clear("dep:broker_submit", T0 + timedelta(seconds=5))
    held = guard.held_after()
    assert held is not None
    reason, cleared = held
    assert (reason.code, reason.detail) == ("SYS-011", "broker_submit: 429")
    assert cleared == T0 + timedelta(seconds=5)


def test_the_reason_named_is_the_one_that_set_the_mode_not_the_last_to_clear() -> None:
    # A reconciliation mismatch halts; a 429 after it asks only for REDUCE_ONLY. Both clear,
    # the mismatch first: HALTED is held because of the mismatch, not the 429.
    guard = ModeGuard()
    guard.raise_condition(Condition(key="reconcile", code="SYS-009", detail="orphan order",
                                    since=T0, level=Mode.HALTED), T0)
    _raised(guard)
    guard.clear("reconcile", T0 + timedelta(seconds=1))
    guard.clear("dep:broker_submit", T0 + timedelta(seconds=2))
    held = guard.held_after()
    assert guard.mode is Mode.HALTED and held is not None
    assert held[0].code == "SYS-009" and held[1] == T0 + timedelta(seconds=1)


def test_nothing_is_held_once_the_mode_loosens_or_another_reason_holds_it() -> None:
    guard = ModeGuard()
    _raised(guard)
    guard.clear("dep:broker_submit", T0)
    guard.resume("ops1", T0 + timedelta(minutes=1))
    assert guard.mode is Mode.ACTIVE and guard.held_after() is None

    window = ModeGuard()
    _raised(window)
    window.clear("dep:broker_submit", T0)
    assert window.on_time(T0 + timedelta(minutes=5), timedelta(minutes=5)) is not None
    assert window.mode is Mode.ACTIVE and window.held_after() is None

    other = ModeGuard()
    _raised(other)
    _raised(other, key="feed:stale")
    other.clear("dep:broker_submit", T0)
    assert other.held_after() is None  # feed:stale still demands REDUCE_ONLY, and says so


def test_the_memory_survives_a_snapshot_and_older_snapshots_still_load() -> None:
    guard = ModeGuard()
    _raised(guard)
    guard.clear("dep:broker_submit", T0)
    restored = ModeGuard.from_image(msgspec.json.decode(msgspec.json.encode(guard.image()),
                                                        type=ModeGuardImage))
    assert restored.held_after() is not None
    assert restored.held_after() == guard.held_after()
    older = msgspec.json.encode({"mode": "REDUCE_ONLY", "conditions": [],
                                 "last_cleared": T0.isoformat(), "first_resume_operator": ""})
    assert ModeGuard.from_image(msgspec.json.decode(older, type=ModeGuardImage)
                                ).held_after() is None


def _status(loosens_at: object = None) -> EngineStatus:
    return EngineStatus(
        now=T0, mode=Mode.REDUCE_ONLY, reasons=(), policy_hash="", policy_name="",
        positions=(), open_orders=(), accounts=(), kills=(), disabled_strategies=(),
        counters={}, held_after=ModeReason(code="SYS-011", detail="broker_submit: 429",
                                           actor="system", since=T0),
        cleared_at=T0 + timedelta(seconds=5), loosens_at=loosens_at)  # type: ignore[arg-type]


def test_the_words_say_what_cleared_when_and_what_loosens_the_mode() -> None:
    words = held_words(_status(), "A dependency is unavailable.")
    assert words == (
        "REDUCE_ONLY since SYS-011: A dependency is unavailable (broker_submit: 429). It "
        "cleared at 2026-01-05 14:00:05 UTC, but the mode is never loosened by itself: it "
        "stays REDUCE_ONLY until an operator resumes.")
    windowed = held_words(_status(T0 + timedelta(minutes=10)), "A dependency is unavailable.")
    assert windowed is not None and windowed.endswith(
        "stays REDUCE_ONLY until 2026-01-05 14:10:00 UTC, when the reset window has passed, "
        "or until an operator resumes sooner.")
