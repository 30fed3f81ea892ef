"""THE rule table: every gate rule, its reason code, and what may stop it. Row order is
evaluation order and equals the registry precedence (`model.reasons`); a test proves it.

Per row:
* `reducing` — how the rule treats a risk-reducing intent (capital supremacy, invariant 7):
  - BLOCKS: a hard safety gate; it stops reducing intents too (kill switch, mode HALTED,
    clock, duplicate, order sanity, market hours).
  - PRICED: fail-closed integrity; it stops a reducing intent unless the order carries its own
    limit price (limit, stop-limit): such an order cannot add risk and its worst fill does
    not depend on the bad data. A reducing market or stop order is stopped.
  - QUOTED: the quote itself is missing, stale or invalid. As PRICED, and it also stops a
    limit order for which the policy sets a price collar or an order value cap: without a
    quote that bound goes unchecked, and a sell limited far below the market (at 0.01, say)
    is a market order.
  - RECORDED: a risk gate (loss, throttle, exposure, liquidity, restricted list); for a
    reducing intent the violation is recorded as evidence and never blocks.
* `in_monitor` — the rule still DENIES when the policy runs in monitor mode: every kill
  switch (the policy's own, operator, firm: KIL-001..003), the trading mode (MOD-001 HALTED,
  MOD-002 REDUCE_ONLY), data and system integrity (the SYS rows here), a client order id
  already in use (DUP-001: one id, one order) and the conditions raised outside the gate
  (EXTERNAL_CODES); all others only set `would_block`.
  docs/concepts.md lists them for users; a test holds the two to the same list.
* `modifiable` — with `exposure_modify`, the gate may shrink the order to fit instead of
  denying it.
* `applies` — whether the rule can break at all under given limits (its limit is set); None
  means always. The gate compiles the rows that apply into a plan once per limits value
  (`gate.plan`), so a rule whose limit is unset costs nothing; a property test holds every
  rule to return None whenever `applies` says it cannot break.

Codes not in the table are raised outside the gate and reach it through
`GateView.integrity_reasons()` (EXTERNAL_CODES, handled as PRICED and in_monitor), or are
checked where the information lives: the broker adapter (ORD-002, ORD-012) and the engine
(THR-005 cancel rate, THR-007 firm rate).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from operator import attrgetter

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
from ordergate.policy.limits import ResolvedLimits, SelfMatch

Check = Callable[[RuleContext], Violation | None]
Applies = Callable[[ResolvedLimits], bool]


class Reducing(enum.Enum):
    BLOCKS = "blocks"
    PRICED = "priced"
    QUOTED = "quoted"
    RECORDED = "recorded"


class Rule(msgspec.Struct, frozen=True):
    code: str
    check: Check | None
    reducing: Reducing
    in_monitor: bool = False
    modifiable: bool = False
    applies: Applies | None = None


_B, _P, _Q, _R = Reducing.BLOCKS, Reducing.PRICED, Reducing.QUOTED, Reducing.RECORDED


def _set(*names: str) -> Applies:
    """Applies when any of these limits is set (not None, not False)."""
    if len(names) == 1:
        get_one: Callable[[ResolvedLimits], object] = attrgetter(names[0])

        def applies(limits: ResolvedLimits) -> bool:
            value = get_one(limits)
            return value is not None and value is not False

        return applies
    get_all: Callable[[ResolvedLimits], tuple[object, ...]] = attrgetter(*names)

    def applies_any(limits: ResolvedLimits) -> bool:
        return any(value is not None and value is not False for value in get_all(limits))

    return applies_any


def _instrument_missing(limits: ResolvedLimits) -> bool:
    return limits.require_instrument and limits.instrument is None


def _age_missing(limits: ResolvedLimits) -> bool:
    return limits.max_market_data_age is None


def _tick(limits: ResolvedLimits) -> bool:
    return limits.instrument is not None and limits.instrument.tick_size is not None


def _lot(limits: ResolvedLimits) -> bool:
    return limits.instrument is not None and limits.instrument.lot_size is not None


def _self_match_deny(limits: ResolvedLimits) -> bool:
    return limits.self_match is SelfMatch.DENY


def _not_canary(limits: ResolvedLimits) -> bool:
    return not limits.canary_allowed


_LOSS = _set("max_daily_loss", "max_daily_loss_pct", "max_drawdown_pct")

RULES: tuple[Rule, ...] = (
    # a kill switch stops trading in monitor mode too: a dry run never overrides one
    Rule("KIL-001", kill.policy_kill_switch, _B, in_monitor=True, applies=_set("kill_switch")),
    Rule("KIL-002", kill.operator_kill_switch, _B, in_monitor=True),
    Rule("KIL-003", kill.firm_kill_switch, _B, in_monitor=True),
    Rule("MOD-001", mode.halted, _B, in_monitor=True),
    Rule("MOD-002", mode.reduce_only, _B, in_monitor=True),
    Rule("SYS-001", integrity.market_data_missing, _Q, in_monitor=True),
    Rule("SYS-002", integrity.market_data_stale, _Q, in_monitor=True,
         applies=_set("max_market_data_age")),
    Rule("SYS-003", integrity.market_data_invalid, _Q, in_monitor=True),
    Rule("SYS-004", integrity.instrument_unknown, _P, in_monitor=True,
         applies=_instrument_missing),
    Rule("SYS-005", integrity.market_data_age_missing, _P, in_monitor=True, applies=_age_missing),
    # the marks only feed the loss rules, which never stop a reducing intent
    Rule("SYS-005", integrity.account_marks_missing, _R, in_monitor=True, applies=_LOSS),
    # with untrusted positions the gate cannot know the intent reduces anything
    Rule("SYS-008", integrity.risk_inputs_invalid, _B, in_monitor=True),
    Rule("CLK-001", clock.intent_timestamp_skew, _B, applies=_set("max_intent_skew")),
    Rule("LOS-001", loss.daily_loss_limit, _R, applies=_set("max_daily_loss")),
    Rule("LOS-002", loss.daily_loss_pct, _R, applies=_set("max_daily_loss_pct")),
    Rule("LOS-003", loss.max_drawdown, _R, applies=_set("max_drawdown_pct")),
    # in monitor mode too: a second order under an id in use is never sent (the engine tracks
    # one order per id)
    Rule("DUP-001", duplicate.duplicate_client_order_id, _B, in_monitor=True),
    Rule("DUP-002", duplicate.duplicate_order, _B, applies=_set("duplicate_window")),
    Rule("ORD-001", sanity.order_type_not_allowed, _B, applies=_set("allowed_order_types")),
    Rule("ORD-003", sanity.price_missing, _B),
    Rule("ORD-004", sanity.price_tick, _B, applies=_tick),
    Rule("ORD-005", sanity.qty_lot, _B, applies=_lot),
    Rule("ORD-006", sanity.max_order_qty, _B, applies=_set("max_order_qty")),
    Rule("ORD-007", sanity.max_order_value, _B, applies=_set("max_order_value")),
    Rule("ORD-008", sanity.price_collar, _B,
         applies=_set("price_collar_pct", "market_collar_pct")),
    Rule("ORD-009", sanity.restricted_symbol, _R, applies=_set("restricted")),
    Rule("ORD-010", sanity.self_match, _B, applies=_self_match_deny),
    Rule("ORD-011", sanity.reduce_only_would_increase, _B),
    Rule("THR-001", throttle.rate_global, _R, applies=_set("rate_global")),
    Rule("THR-002", throttle.rate_account, _R, applies=_set("rate_account")),
    Rule("THR-003", throttle.rate_strategy, _R, applies=_set("rate_strategy")),
    Rule("THR-004", throttle.rate_symbol, _R, applies=_set("rate_symbol")),
    Rule("THR-006", throttle.strategy_disabled, _R),
    Rule("EXP-001", exposure.position_qty_cap, _R, modifiable=True,
         applies=_set("max_position_qty")),
    Rule("EXP-002", exposure.position_value_cap, _R, modifiable=True,
         applies=_set("max_position_value")),
    Rule("EXP-003", exposure.gross_exposure_cap, _R, modifiable=True,
         applies=_set("max_gross_exposure")),
    Rule("EXP-004", exposure.net_exposure_cap, _R, modifiable=True,
         applies=_set("max_net_exposure")),
    Rule("EXP-005", exposure.firm_gross_exposure_cap, _R, modifiable=True,
         applies=_set("max_firm_gross_exposure")),
    Rule("LIQ-001", liquidity.volume_participation, _R,
         applies=_set("max_volume_participation_pct")),
    Rule("MKT-001", hours.market_closed, _B, applies=_set("sessions")),
    Rule("MKT-002", hours.canary_not_allowed, _B, applies=_not_canary),
)

# Raised by the engine or the runtime and passed in through GateView.integrity_reasons().
EXTERNAL_CODES: frozenset[str] = frozenset({
    "SYS-006", "SYS-007", "SYS-009", "SYS-010", "SYS-011", "CLK-002", "CLK-003",
})
# Checked where the information lives, never by the gate (DUP-003: the engine, which
# remembers the intents it decided).
ELSEWHERE_CODES: frozenset[str] = frozenset({"ORD-002", "ORD-012", "THR-005", "THR-007",
                                             "DUP-003"})


def external_rule(code: str) -> Rule:
    """The row for a condition reported by the view: fail closed like integrity."""
    return Rule(code, None, Reducing.PRICED, in_monitor=True)
