"""Kill switches: the policy's, an operator's (firm, account, strategy or symbol) and the
firm-wide one shared by every gateway. Each stops every intent, reducing or not."""

from __future__ import annotations

from ordergate.gate.context import RuleContext
from ordergate.model.decision import Violation


def policy_kill_switch(ctx: RuleContext) -> Violation | None:
    if not ctx.limits.kill_switch:
        return None
    return Violation(
        code="KIL-001", observed="on", limit="off", detail="the policy's kill_switch is on"
    )


def operator_kill_switch(ctx: RuleContext) -> Violation | None:
    intent = ctx.intent
    if not ctx.view.operator_kill(intent.account, intent.strategy, intent.symbol):
        return None
    return Violation(
        code="KIL-002", observed="on", limit="off",
        detail=f"an operator kill covers account={intent.account} "
        f"strategy={intent.strategy} symbol={intent.symbol}",
    )


def firm_kill_switch(ctx: RuleContext) -> Violation | None:
    if not ctx.view.firm_kill():
        return None
    return Violation(
        code="KIL-003", observed="on", limit="off", detail="the firm-wide kill switch is on"
    )
