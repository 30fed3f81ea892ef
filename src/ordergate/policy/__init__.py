"""The policy DSL: strict YAML in, resolved limits and a canonical hash out."""

from ordergate.policy.errors import PolicyError
from ordergate.policy.limits import EngineSettings, ResolvedLimits
from ordergate.policy.loader import Policy, load_policy, parse_policy, policy_schema

__all__ = [
    "EngineSettings",
    "Policy",
    "PolicyError",
    "ResolvedLimits",
    "load_policy",
    "parse_policy",
    "policy_schema",
]
