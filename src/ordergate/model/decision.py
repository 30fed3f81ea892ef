"""The gate's answer to an intent."""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

from ordergate.model.modes import Mode


class DecisionKind(enum.StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    MODIFY = "MODIFY"


class Violation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One rule that the intent broke, with the evidence: what was observed against what limit.

    `observed` and `limit` are strings so that decimals, counts and durations all print exactly.
    """

    code: str
    observed: str = ""
    limit: str = ""
    detail: str = ""


class Decision(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True,
    tag="decision", tag_field="type", gc=False,
):
    """ALLOW, DENY or MODIFY, with every violated rule (for audit) and the blocking one.

    `violations` are in precedence order; `blocking` is the first of them that decided the
    outcome (empty for ALLOW). In monitor mode the decision is ALLOW and `monitor` is true:
    `violations` and `would_block` say what an enforcing policy would have done.
    `modified_qty` is set for MODIFY: the quantity that is allowed through.
    """

    intent_id: str
    decision: DecisionKind
    blocking: str = ""
    violations: tuple[Violation, ...] = ()
    modified_qty: Decimal | None = None
    mode: Mode = Mode.ACTIVE
    risk_reducing: bool = False
    monitor: bool = False
    would_block: str = ""
    policy_hash: str = ""
