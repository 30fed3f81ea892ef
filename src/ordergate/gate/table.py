"""THE rule table: every gate rule, its reason code, and what may stop it. Row order is
evaluation order and equals the registry precedence (`model.reasons`); a test proves it.

Per row:
* `reducing` — how the rule treats a risk-reducing intent (capital supremacy, invariant 7):
  - BLOCKS: a hard safety gate; it stops reducing intents too (kill switch, mode HALTED,
    clock, duplicate, order sanity, market hours).
  - PRICED: fail-closed integrity; it stops a reducing intent unless the order carries its own
    limit price (limit, stop-limit): such an order cannot add risk and its worst fill does
    not depend on the bad data. A reducing market or stop order is stopped.
  - RECORDED: a risk gate (loss, throttle, exposure, liquidity, restricted list); for a
    reducing intent the violation is recorded as evidence and never blocks.
* `in_monitor` — the rule still DENIES when the policy runs in monitor mode (integrity,
  mode, operator and firm kill); all others only set `would_block`.
* `modifiable` — with `exposure_modify`, the gate may shrink the order to fit instead of
  denying it.

Codes not in the table are raised outside the gate and reach it through
`GateView.integrity_reasons()` (EXTERNAL_CODES, handled as PRICED and in_monitor), or are
checked where the information lives: the broker adapter (ORD-002, ORD-012) and the engine
(THR-005 cancel rate, THR-007 firm rate).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec

from ordergate.gate.context import RuleContext
from ordergate.gate.rules import (
    clock,
    duplicate,
    exposure,
    hours,
    integrity,
    kill,
    liquidity,
    loss,
    mode,
    sanity,
    throttle,
)
from ordergate.model.decision import Violation

Check = Callable[[RuleContext], Violation | None]


class Reducing(enum.Enum):
    BLOCKS = "blocks"
    PRICED = "priced"
    RECORDED = "recorded"


class Rule(msgspec.Struct, frozen=True):
    code: str
    check: Check | None
    reducing: Reducing
    in_monitor: bool = False
    modifiable: bool = False


_B, _P, _R = Reducing.BLOCKS, Reducing.PRICED, Reducing.RECORDED

RULES: tuple[Rule, ...] = (
    Rule("KIL-001", kill.policy_kill_switch, _B),
    Rule("KIL-002", kill.operator_kill_switch, _B, in_monitor=True),
    Rule("KIL-003", kill.firm_kill_switch, _B, in_monitor=True),
    Rule("MOD-001", mode.halted, _B, in_monitor=True),
    Rule("MOD-002", mode.reduce_only, _B, in_monitor=True),
    Rule("SYS-001", integrity.market_data_missing, _P, in_monitor=True),
    Rule("SYS-002", integrity.market_data_stale, _P, in_monitor=True),
    Rule("SYS-003", integrity.market_data_invalid, _P, in_monitor=True),
    Rule("SYS-004", integrity.instrument_unknown, _P, in_monitor=True),
    Rule("SYS-005", integrity.market_data_age_missing, _P, in_monitor=True),
    # the marks only feed the loss rules, which never stop a reducing intent
    Rule("SYS-005", integrity.account_marks_missing, _R, in_monitor=True),
    # with untrusted positions the gate cannot know the intent reduces anything
    Rule("SYS-008", integrity.risk_inputs_invalid, _B, in_monitor=True),
    Rule("CLK-001", clock.intent_timestamp_skew, _B),
    Rule("LOS-001", loss.daily_loss_limit, _R),
    Rule("LOS-002", loss.daily_loss_pct, _R),
    Rule("LOS-003", loss.max_drawdown, _R),
    Rule("DUP-001", duplicate.duplicate_client_order_id, _B),
    Rule("DUP-002", duplicate.duplicate_order, _B),
    Rule("ORD-001", sanity.order_type_not_allowed, _B),
    Rule("ORD-003", sanity.price_missing, _B),
    Rule("ORD-004", sanity.price_tick, _B),
    Rule("ORD-005", sanity.qty_lot, _B),
    Rule("ORD-006", sanity.max_order_qty, _B),
    Rule("ORD-007", sanity.max_order_value, _B),
    Rule("ORD-008", sanity.price_collar, _B),
    Rule("ORD-009", sanity.restricted_symbol, _R),
    Rule("ORD-010", sanity.self_match, _B),
    Rule("ORD-011", sanity.reduce_only_would_increase, _B),
    Rule("THR-001", throttle.rate_global, _R),
    Rule("THR-002", throttle.rate_account, _R),
    Rule("THR-003", throttle.rate_strategy, _R),
    Rule("THR-004", throttle.rate_symbol, _R),
    Rule("THR-006", throttle.strategy_disabled, _R),
    Rule("EXP-001", exposure.position_qty_cap, _R, modifiable=True),
    Rule("EXP-002", exposure.position_value_cap, _R, modifiable=True),
    Rule("EXP-003", exposure.gross_exposure_cap, _R, modifiable=True),
    Rule("EXP-004", exposure.net_exposure_cap, _R, modifiable=True),
    Rule("EXP-005", exposure.firm_gross_exposure_cap, _R, modifiable=True),
    Rule("LIQ-001", liquidity.volume_participation, _R),
    Rule("MKT-001", hours.market_closed, _B),
    Rule("MKT-002", hours.canary_not_allowed, _B),
)

# Raised by the engine or the runtime and passed in through GateView.integrity_reasons().
EXTERNAL_CODES: frozenset[str] = frozenset({
    "SYS-006", "SYS-007", "SYS-009", "SYS-010", "SYS-011", "CLK-002", "CLK-003",
})
# Checked where the information lives, never by the gate.
ELSEWHERE_CODES: frozenset[str] = frozenset({"ORD-002", "ORD-012", "THR-005", "THR-007"})


def external_rule(code: str) -> Rule:
    """The row for a condition reported by the view: fail closed like integrity."""
    return Rule(code, None, Reducing.PRICED, in_monitor=True)
