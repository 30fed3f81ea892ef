"""The gate: `evaluate(intent, view, policy) -> Decision`, pure. See `gate.rules` for the rules."""
