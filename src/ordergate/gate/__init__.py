"""The gate: `evaluate(intent, view, policy) -> Decision`, pure. See `gate.table` for the rules
and their order, `gate.rules` for the rules themselves."""

from ordergate.gate.evaluate import LimitSource, evaluate, evaluate_limits
from ordergate.gate.rules.duplicate import fingerprint
from ordergate.gate.rules.throttle import rate_key

__all__ = ["LimitSource", "evaluate", "evaluate_limits", "fingerprint", "rate_key"]
