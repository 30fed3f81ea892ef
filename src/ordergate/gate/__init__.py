"""The gate: `evaluate(intent, view, policy) -> Decision`, pure. See `gate.table` for the rules
and their order, `gate.rules` for the rules themselves."""

from ordergate.gate.context import fingerprint
from ordergate.gate.evaluate import LimitSource, decide, evaluate, evaluate_limits
from ordergate.gate.plan import FULL_PLAN, Plan, PlanCache, compile_plan
from ordergate.gate.rules.throttle import rate_key

__all__ = [
    "FULL_PLAN", "LimitSource", "Plan", "PlanCache", "compile_plan", "decide", "evaluate",
    "evaluate_limits", "fingerprint", "rate_key",
]
