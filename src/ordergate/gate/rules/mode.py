"""The trading mode: HALTED refuses every intent; REDUCE_ONLY refuses every intent that does
not shrink an existing position (see `gate.exposure.is_risk_reducing`)."""

from __future__ import annotations

from ordergate.gate.context import RuleContext
from ordergate.model.decision import Violation
from ordergate.model.modes import Mode

# Enum members bound once: reading a member off its Enum class costs ~0.2 µs on CPython
# 3.11, and these comparisons run for every intent.
_HALTED = Mode.HALTED
_REDUCE_ONLY = Mode.REDUCE_ONLY


def halted(ctx: RuleContext) -> Violation | None:
    if ctx.mode is not _HALTED:
        return None
    return Violation(code="MOD-001", observed=Mode.HALTED.value, limit=Mode.ACTIVE.value)


def reduce_only(ctx: RuleContext) -> Violation | None:
    if ctx.mode is not _REDUCE_ONLY or ctx.risk_reducing:
        return None
    return Violation(
        code="MOD-002", observed="increases or opens a position", limit="risk-reducing only",
        detail=f"position={ctx.position} working_buy={ctx.working_buy} "
        f"working_sell={ctx.working_sell}",
    )
