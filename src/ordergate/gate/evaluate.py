"""`evaluate(intent, view, policy) -> Decision`: run every rule of the table, in precedence
order, and decide. Pure: no clock, no I/O, no global state; the view is only read.

* Every rule runs and every violation is listed, in precedence order (for audit).
* A violation blocks unless the table exempts it for a risk-reducing intent (capital
  supremacy); the first blocking one is `blocking`.
* Monitor mode: ALLOW with `would_block`, except rules marked `in_monitor`, which still DENY.
* `exposure_modify`: when only exposure caps block, MODIFY to the largest quantity that fits
  (a multiple of the lot size, else of the intent quantity's last decimal place).

`decide` runs a compiled plan (`gate.plan`: only the rows that can break under the limits,
and of those only the ones its screen, `gate.screen`, could not rule out for this intent)
on a `ScreenedView` (the view read in one call per intent) and also returns the context it
judged on, so a caller that records the decision's inputs (the engine's decision records)
reads them from there instead of asking the view again.
`evaluate` and `evaluate_limits` run every row of the full table: the same decision,
without a cache, and the reference the screened plans are tested against.
`decide` and `evaluate_limits` compute in the caller's decimal context (the engine's: exact
from behaviour 5 on, 28 digits before); `evaluate` sets the exact one (`model.values.EXACT`).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, getcontext, setcontext
from typing import Protocol, cast

from ordergate.gate.context import RuleContext, build_context
from ordergate.gate.plan import FULL_PLAN, Plan, PlanCache
from ordergate.gate.rules.exposure import fitting_qty
from ordergate.gate.screen import screen
from ordergate.gate.table import Check, Reducing, Rule, external_rule
from ordergate.gate.view import ActiveReason, GateView, ScreenedView
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.intent import OrderIntent
from ordergate.model.modes import Mode
from ordergate.model.reasons import CONDITIONS, REGISTRY
from ordergate.model.values import EXACT
from ordergate.policy.limits import ResolvedLimits

_ALLOW = DecisionKind.ALLOW
_DENY = DecisionKind.DENY
_MODIFY = DecisionKind.MODIFY
_BLOCKS = Reducing.BLOCKS
_PRICED = Reducing.PRICED
_QUOTED = Reducing.QUOTED
# a code the registry does not know still sorts (as an invariant violation) and still blocks
_UNKNOWN_PRECEDENCE = REGISTRY["SYS-008"].precedence


class LimitSource(Protocol):
    """What the gate needs from a policy: its hash and the resolved limits of a key."""

    @property
    def hash(self) -> str: ...

    def limits_for(self, account: str, strategy: str, symbol: str) -> ResolvedLimits: ...


# The plans compiled for each policy object `evaluate` was given (`PlanCache`): what a policy's
# limits imply, never anything about the world, so `evaluate` stays a function of its arguments.
# By the policy's identity, beside a weak reference to it: a policy that is gone takes its
# plans with it (the reference's callback drops the entry before the id can be reused, and a
# lookup also checks that the reference still names the policy). Not a WeakKeyDictionary:
# it hashes and compares the policy itself, by `Policy.__hash__` and `__eq__`, Python calls
# on every intent.
_PLANS: dict[int, tuple[weakref.ref[LimitSource], PlanCache]] = {}
# The exact context `evaluate` judges in, set on the calling thread for the call. One object
# for every thread: the flags its operations set are never read, and a trap raises on what an
# operation signals itself, never on a flag another thread left.
_EXACT = EXACT.copy()


def evaluate(intent: OrderIntent, view: GateView, policy: LimitSource) -> Decision:
    """The decision on `intent` under `policy`, reading `view`, in exact arithmetic as the
    engine decides from behaviour 5 on (`model.values.EXACT`). A view that answers the
    screen's one read per intent (`ScreenedView.read_intent`, as the engine's state does) is
    judged through the policy's compiled, screened plans, as the engine judges it; any other
    view, or a policy that cannot be remembered, by the full table (`evaluate_limits`). Both
    decide the same, byte for byte (tests/gate/test_plan.py, test_screen.py)."""
    previous = getcontext()
    setcontext(_EXACT)
    try:
        return _evaluate(intent, view, policy)
    finally:
        setcontext(previous)


def _evaluate(intent: OrderIntent, view: GateView, policy: LimitSource) -> Decision:
    limits = policy.limits_for(intent.account, intent.strategy, intent.symbol)
    if not hasattr(view, "read_intent"):
        return evaluate_limits(intent, view, limits, policy.hash)
    known = _PLANS.get(id(policy))
    if known is None or known[0]() is not policy:
        try:
            known = _PLANS[id(policy)] = (_forget_plans(policy), PlanCache())
        except TypeError:  # not weakly referenceable
            return evaluate_limits(intent, view, limits, policy.hash)
    return decide(intent, cast(ScreenedView, view), limits, policy.hash, known[1].plan(limits))[0]


def _forget_plans(policy: LimitSource) -> weakref.ref[LimitSource]:
    """A weak reference to `policy` that drops its entry from `_PLANS` when it goes."""
    key = id(policy)

    def forget(reference: weakref.ref[LimitSource]) -> None:
        known = _PLANS.get(key)
        if known is not None and known[0] is reference:
            del _PLANS[key]

    return weakref.ref(policy, forget)


def evaluate_limits(
    intent: OrderIntent, view: GateView, limits: ResolvedLimits, policy_hash: str
) -> Decision:
    return _judge(build_context(intent, view, limits), FULL_PLAN.rows, policy_hash)


def decide(
    intent: OrderIntent, view: ScreenedView, limits: ResolvedLimits, policy_hash: str,
    plan: Plan,
) -> tuple[Decision, RuleContext]:
    """The decision and the context it was judged on. `plan` must be `FULL_PLAN` or the plan
    compiled for `limits` (`PlanCache.plan(limits)`)."""
    screened = plan.screen
    if screened is None:
        ctx = build_context(intent, view, limits)
        rows: Sequence[tuple[Check, Rule]] = plan.rows
    else:
        ctx, rows = screen(intent, view, limits, screened)
        if not rows and not ctx.integrity:
            # `_judge` on nothing to check: the clean intent, most of them
            return Decision(
                intent_id=intent.intent_id, decision=_ALLOW, mode=ctx.mode,
                risk_reducing=ctx.risk_reducing, monitor=limits.monitor,
                policy_hash=policy_hash,
            ), ctx
    return _judge(ctx, rows, policy_hash), ctx


def _judge(ctx: RuleContext, rows: Sequence[tuple[Check, Rule]], policy_hash: str) -> Decision:
    """Run the rows' checks on the context and decide."""
    found: list[tuple[Rule, Violation]] = []
    record = found.append
    for check, rule in rows:
        violation = check(ctx)
        if violation is not None:
            record((rule, violation))
    external = ctx.integrity
    if external:
        violations = sorted(map(external_violation, external),
                            key=lambda violation: (violation.code, violation.observed))
        found.extend((external_rule(violation.code), violation) for violation in violations)
        found.sort(key=_precedence)
    if not found:
        return Decision(
            intent_id=ctx.intent.intent_id, decision=_ALLOW, mode=ctx.mode,
            risk_reducing=ctx.risk_reducing, monitor=ctx.limits.monitor,
            policy_hash=policy_hash,
        )
    return _decide(ctx, found, policy_hash)


def external_violation(reason: ActiveReason) -> Violation:
    """The violation for a condition raised outside the gate, with evidence a risk officer can
    read: observed is the code's state, since when (event time) and the condition's own
    detail, and who raised it when not the system; limit is what trading needs instead
    (`model.reasons.CONDITIONS`)."""
    text = CONDITIONS.get(reason.code)
    # a code the registry does not know (only a foreign view can give one) still blocks
    state, limit = (text.state, text.limit) if text is not None else (
        f"unregistered condition {reason.code}", "condition cleared")
    observed = state
    if reason.since is not None:
        observed += f" since {_rfc3339(reason.since)}"
    if reason.detail:
        observed += f": {reason.detail}"
    if reason.actor != "system":
        observed += f" (raised by {reason.actor})"
    return Violation(code=reason.code, observed=observed, limit=limit, detail=reason.detail)


def _rfc3339(moment: datetime) -> str:
    # event times are UTC; a naive one is read as UTC, never as the host's local time
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _precedence(item: tuple[Rule, Violation]) -> int:
    code = REGISTRY.get(item[0].code)
    return _UNKNOWN_PRECEDENCE if code is None else code.precedence


def _blocks(rule: Rule, ctx: RuleContext) -> bool:
    reducing = rule.reducing
    if not ctx.risk_reducing or reducing is _BLOCKS:
        return True
    if reducing is _PRICED:
        return not ctx.priced
    if reducing is _QUOTED:  # a bad quote leaves the policy's price bounds unchecked
        limits = ctx.limits
        return (not ctx.priced or limits.price_collar_pct is not None
                or limits.max_order_value is not None)
    return False


def _decide(ctx: RuleContext, found: list[tuple[Rule, Violation]], policy_hash: str) -> Decision:
    intent = ctx.intent
    limits = ctx.limits
    violations = tuple(violation for _, violation in found)
    blocking = [rule for rule, _ in found if _blocks(rule, ctx)]
    kind = _ALLOW
    blocking_code = ""
    would_block = ""
    modified_qty: Decimal | None = None
    if blocking:
        first = blocking[0].code
        if limits.monitor:
            would_block = first
            enforced = next((rule.code for rule in blocking if rule.in_monitor), "")
            if enforced:
                kind, blocking_code = _DENY, enforced
        else:
            kind, blocking_code = _DENY, first
            if limits.exposure_modify and all(rule.modifiable for rule in blocking):
                modified_qty = fitting_qty(ctx, _qty_step(ctx))
                if modified_qty is not None:
                    kind = _MODIFY
    return Decision(
        intent_id=intent.intent_id, decision=kind, blocking=blocking_code,
        violations=violations, modified_qty=modified_qty, mode=ctx.mode,
        risk_reducing=ctx.risk_reducing, monitor=limits.monitor, would_block=would_block,
        policy_hash=policy_hash,
    )


_INVARIANT = "SYS-008"
PRECISION_LIMIT = "figures within exact decimal precision"


def precision_denial(intent: OrderIntent, error: ArithmeticError, *, mode: Mode, monitor: bool,
                     policy_hash: str) -> Decision:
    """DENY SYS-008 for an intent the gate could not judge because one of its figures does
    not fit Decimal's exact arithmetic: judging it raised `error` (a quantity of 10**34 lots,
    a notional whose cents need more than 28 digits). The engine answers this instead of
    raising, and so does re-deriving the decision from its record. SYS-008 denies in monitor
    mode too (its rule is `in_monitor`)."""
    observed = [type(error).__name__, f"qty={intent.qty}"]
    if intent.limit_price is not None:
        observed.append(f"limit_price={intent.limit_price}")
    if intent.stop_price is not None:
        observed.append(f"stop_price={intent.stop_price}")
    violation = Violation(
        code=_INVARIANT, observed=" ".join(observed), limit=PRECISION_LIMIT,
        detail="the intent's figures (its quantity in lots, its value in cents, a percentage) "
               "do not fit the engine's exact 28-digit decimal arithmetic: refused, nothing "
               "else changed",
    )
    return Decision(
        intent_id=intent.intent_id, decision=_DENY, blocking=_INVARIANT, violations=(violation,),
        mode=mode, monitor=monitor, would_block=_INVARIANT if monitor else "",
        policy_hash=policy_hash,
    )


def _qty_step(ctx: RuleContext) -> Decimal:
    instrument = ctx.limits.instrument
    if instrument is not None and instrument.lot_size is not None:
        return instrument.lot_size
    exponent = ctx.intent.qty.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
