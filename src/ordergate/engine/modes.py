"""Mode authority: the one place the trading mode changes (invariant 6).

The mode is the tightest of what the active conditions demand, and never looser than it was
unless an operator resumes or the policy's reset window allows it:

* a condition (dependency down, stale or invalid data, reconciliation mismatch, drawdown,
  an operator's halt) is raised under a key with the mode it demands; raising only tightens;
* a *conditional* reason clears itself when its cause resolves (dependency healthy, fresh
  data). Clearing removes it from the list but does not loosen the mode: only
  `EngineSettings.reset_window` after the last clearance, or an operator resume, does;
* a *latched* reason (operator halt/reduce-only, drawdown, reconciliation mismatch) stays
  until an operator resumes.

Every mode change is returned as a `ModeChanged` for the engine to emit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ordergate.model.events import ModeChanged, ModeReason
from ordergate.model.modes import Mode
from ordergate.policy.limits import ModeOnFault


def fault_mode(fault: ModeOnFault) -> Mode:
    """The mode a policy's `on_*` setting asks for."""
    return Mode(fault.value)


class Condition(msgspec.Struct, frozen=True, kw_only=True):
    """One active reason with the mode it demands and how it can be cleared."""

    key: str
    code: str
    detail: str = ""
    actor: str = "system"
    since: datetime
    level: Mode
    latched: bool = False

    def as_reason(self) -> ModeReason:
        return ModeReason(code=self.code, detail=self.detail, actor=self.actor, since=self.since)


class ModeGuardImage(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode
    conditions: list[Condition]
    last_cleared: datetime | None
    first_resume_operator: str
    # the reason that tightened the mode to what it is, and when it cleared (older
    # snapshots: None)
    set_by: Condition | None = None
    set_by_cleared: datetime | None = None


class ModeGuard:
    """Holds the mode and its reasons; every transition goes through here."""

    __slots__ = ("_conditions", "_mode", "first_resume_operator", "last_cleared", "set_by",
                 "set_by_cleared")

    def __init__(self) -> None:
        self._mode = Mode.ACTIVE
        self._conditions: dict[str, Condition] = {}
        self.last_cleared: datetime | None = None
        # What tightened the mode to what it is (and when that cleared): a mode held tighter
        # than its remaining reasons demand can say what put it there.
        self.set_by: Condition | None = None
        self.set_by_cleared: datetime | None = None
        # Two-operator resume: who resumed first while a drawdown halt was active.
        self.first_resume_operator = ""

    @property
    def mode(self) -> Mode:
        return self._mode

    def conditions(self) -> tuple[Condition, ...]:
        return tuple(self._conditions.values())

    def reasons(self) -> tuple[ModeReason, ...]:
        if not self._conditions:  # the usual case, asked for every decision record
            return ()
        return tuple(condition.as_reason() for condition in self._conditions.values())

    def has(self, key: str) -> bool:
        return key in self._conditions

    def any(self) -> bool:
        """Whether any condition is listed (the usual answer is no)."""
        return bool(self._conditions)

    def has_code(self, code: str) -> bool:
        return any(condition.code == code for condition in self._conditions.values())

    def required(self) -> Mode:
        """The tightest mode the listed conditions demand."""
        mode = Mode.ACTIVE
        for condition in self._conditions.values():
            mode = mode.tighter(condition.level)
        return mode

    def raise_condition(self, condition: Condition, now: datetime) -> ModeChanged | None:
        """List a condition (a repeat keeps the first one, tightened) and tighten the mode."""
        existing = self._conditions.get(condition.key)
        if existing is not None:
            if existing.level.rank >= condition.level.rank:
                return None
            condition = msgspec.structs.replace(existing, level=condition.level)
        self._conditions[condition.key] = condition
        change = self._set(self._mode.tighter(condition.level), now, condition.actor)
        if change is not None:
            self.set_by, self.set_by_cleared = condition, None
        return change

    def clear(self, key: str, now: datetime) -> bool:
        """Remove a conditional reason whose cause resolved. Never loosens the mode."""
        condition = self._conditions.get(key)
        if condition is None or condition.latched:
            return False
        del self._conditions[key]
        self.last_cleared = now
        if self.set_by is not None and self.set_by.key == key:
            self.set_by_cleared = now
        return True

    def on_time(self, now: datetime, reset_window: timedelta | None) -> ModeChanged | None:
        """Loosen to what the remaining conditions demand once the reset window has passed
        since the last automatic reason cleared."""
        if reset_window is None or self.last_cleared is None:
            return None
        if now - self.last_cleared < reset_window:
            return None
        required = self.required()
        if required.rank >= self._mode.rank:
            return None
        self.last_cleared = None
        self.set_by = self.set_by_cleared = None
        return self._set(required, now, "reset_window")

    def resume(self, operator: str, now: datetime) -> tuple[ModeChanged | None, list[Condition]]:
        """Drop every latched reason and loosen to what the conditional ones still demand.
        Returns the mode change (if any) and the latched conditions that were dropped."""
        dropped = [c for c in self._conditions.values() if c.latched]
        for condition in dropped:
            del self._conditions[condition.key]
        self.first_resume_operator = ""
        change = self._set(self.required(), now, operator)
        if change is not None:
            self.set_by = self.set_by_cleared = None
        return change, dropped

    def _set(self, mode: Mode, now: datetime, actor: str) -> ModeChanged | None:
        if mode is self._mode:
            return None
        previous, self._mode = self._mode, mode
        return ModeChanged(ts=now, mode=mode, previous=previous, reasons=self.reasons(),
                           actor=actor)

    def image(self) -> ModeGuardImage:
        return ModeGuardImage(
            mode=self._mode,
            conditions=list(self._conditions.values()),
            last_cleared=self.last_cleared,
            first_resume_operator=self.first_resume_operator,
            set_by=self.set_by,
            set_by_cleared=self.set_by_cleared,
        )

    @classmethod
    def from_image(cls, image: ModeGuardImage) -> ModeGuard:
        guard = cls()
        guard._mode = image.mode
        guard._conditions = {condition.key: condition for condition in image.conditions}
        guard.last_cleared = image.last_cleared
        guard.first_resume_operator = image.first_resume_operator
        guard.set_by = image.set_by
        guard.set_by_cleared = image.set_by_cleared
        return guard

    def held_after(self) -> tuple[ModeReason, datetime | None] | None:
        """When the mode is tighter than the remaining reasons demand (it loosens only on an
        operator's resume or the reset window): the reason that tightened it to this mode,
        and when that reason cleared. None otherwise."""
        if self.set_by is None or self.required().rank >= self._mode.rank:
            return None
        return self.set_by.as_reason(), self.set_by_cleared
