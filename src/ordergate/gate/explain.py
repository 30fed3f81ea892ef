"""`explain(intent, view, limits) -> DecisionContext`: the state a decision was judged on.

The engine calls it right after `evaluate` and before it changes anything, and journals the
result beside the Decision, so an auditor can re-derive any decision from its record alone:
the intent (an INPUT record), the resolved limits (a `LimitsRecord`, cited by hash) and
these values. It reads exactly what the rules read through the view, with the same
arguments (the same rate windows, the same duplicate fingerprint), and nothing else. Pure:
no clock, no I/O; the view is only read.

`LimitsDigests` gives each distinct `ResolvedLimits` its canonical bytes and content hash,
so a journal stores every limits value once however many decisions cite it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from ordergate.gate.context import RuleContext, fingerprint
from ordergate.gate.exposure import reference_price
from ordergate.gate.rules.duplicate import derived_client_order_id
from ordergate.gate.view import GateView, RateScope
from ordergate.model.events import DecisionContext, ModeReason, RateCount
from ordergate.model.intent import OrderIntent
from ordergate.policy.limits import RateLimit, ResolvedLimits, SelfMatch

_MEMO_LIMIT = 10_000
# scopes and their names bound once: reading `.value` off an Enum member is a Python call
_GLOBAL, _ACCOUNT, _STRATEGY, _SYMBOL = (
    RateScope.GLOBAL, RateScope.ACCOUNT, RateScope.STRATEGY, RateScope.SYMBOL
)
_GLOBAL_NAME, _ACCOUNT_NAME, _STRATEGY_NAME, _SYMBOL_NAME = (
    _GLOBAL.value, _ACCOUNT.value, _STRATEGY.value, _SYMBOL.value
)
_encoder = msgspec.json.Encoder(order="deterministic")


def limits_bytes(limits: ResolvedLimits) -> bytes:
    """The canonical JSON of a limits value (sorted sets, fixed field order)."""
    return _encoder.encode(limits)


def limits_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LimitsDigests:
    """(hash, canonical bytes) per limits value, memoised by identity: the policy hands out
    one object per key, so the hash of a key's limits is computed once. The memo keeps the
    object alive, so an id is never reused while its entry exists; it is bounded and
    clearing it only costs recomputation."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[int, tuple[ResolvedLimits, str, bytes]] = {}

    def digest(self, limits: ResolvedLimits) -> tuple[str, bytes]:
        found = self._memo.get(id(limits))
        if found is not None:
            return found[1], found[2]
        data = limits_bytes(limits)
        digest = limits_hash(data)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[id(limits)] = (limits, digest, data)
        return digest, data


def _rates(intent: OrderIntent, view: GateView, limits: ResolvedLimits,
           context: RuleContext | None) -> tuple[RateCount, ...]:
    counts: tuple[int | None, ...] = (None, None, None, None)
    if context is not None:
        counts = (context.count_global, context.count_account, context.count_strategy,
                  context.count_symbol)
    scoped: tuple[tuple[RateScope, str, str, RateLimit | None, int | None], ...] = (
        (_GLOBAL, _GLOBAL_NAME, "", limits.rate_global, counts[0]),
        (_ACCOUNT, _ACCOUNT_NAME, intent.account, limits.rate_account, counts[1]),
        (_STRATEGY, _STRATEGY_NAME, intent.strategy, limits.rate_strategy, counts[2]),
        (_SYMBOL, _SYMBOL_NAME, intent.symbol, limits.rate_symbol, counts[3]),
    )
    rates: list[RateCount] = []  # a loop, not a generator: this runs for every intent
    for scope, name, key, limit, count in scoped:
        if limit is not None:
            rates.append(RateCount(
                scope=name, key=key, window=limit.window,
                count=view.order_count(scope, key, limit.window) if count is None else count,
                max_count=limit.max_count,
            ))
    return tuple(rates)


def explain(intent: OrderIntent, view: GateView, limits: ResolvedLimits | None, *,
            mode_reasons: Sequence[ModeReason] = (),
            context: RuleContext | None = None, figures: bool = True,
            id_seen: bool | None = None) -> DecisionContext:
    """The values the gate read for `intent` (all of them, whether or not a rule broke).

    `limits` is None when no policy was active (the intent was refused for that); the
    limit-dependent reads (rate windows, duplicate window) are then empty. `mode_reasons`
    are the engine's current mode reasons (the view exposes only the integrity ones).
    `context`, the gate's context for this intent under these limits (`gate.decide`), saves
    reading again what the gate already read; the view has not changed since, so the values
    are the same either way.

    `figures=False` leaves out every value that takes arithmetic to work out (the reference
    price, the account's equity marks, loss, drawdown, the firm's gross): for an intent whose
    record could not be built with them, because they overflowed Decimal's exact arithmetic
    (the engine denied it, SYS-008). Everything else is read as it is.

    `id_seen` is `view.client_order_id_seen` of the id the intent's order would get (its own,
    or the one derived from its account, strategy and intent_id), when the caller has it
    already: the engine answers it from an index, without hashing the intent's key.
    """
    account = intent.account
    symbol = intent.symbol
    if context is not None and (context.limits is not limits or not figures):
        context = None
    if context is not None:
        market = context.market
        reference = context.reference
        integrity = context.integrity
    else:
        market = view.market(symbol)
        reference = (
            None if market is None or not figures
            else reference_price(market.bid, market.ask, market.last)
        )
        integrity = view.integrity_reasons()
    if context is not None and not context.invariant_detail:
        # the context zeroes untrusted figures; only trusted ones are taken from it
        position, working_buy, working_sell = (
            context.position, context.working_buy, context.working_sell
        )
    else:
        position = view.position(account, symbol)
        working_buy, working_sell = view.working(account, symbol)
    totals = (
        context.totals if context is not None and context.totals is not None
        else view.exposure(account)
    )
    state = (
        context.account if context is not None and context.account is not None
        else view.account(account) if figures else None
    )
    daily_loss = drawdown = None
    if state is not None:
        daily_loss = state.day_start_equity - state.equity
        drawdown = state.high_water_mark - state.equity
    # as the self-match rule read them, when the policy has it; else limit prices only
    judged = limits is not None and limits.self_match is not SelfMatch.OFF
    resting_buy, resting_sell = view.resting_prices(account, symbol,
                                                    intent.side if judged else None)
    client_order_id = intent.client_order_id
    duplicate_window = None if limits is None else limits.duplicate_window
    if context is not None:
        key = context.fingerprint
    else:
        key = fingerprint(intent) if duplicate_window is not None else ""
    return DecisionContext(
        mode=view.mode,
        mode_reasons=tuple(mode_reasons),
        integrity=tuple(
            ModeReason(code=reason.code, detail=reason.detail, actor=reason.actor,
                       since=reason.since)
            for reason in integrity
        ) if integrity else (),
        operator_kill=view.operator_kill(account, intent.strategy, symbol),
        firm_kill=view.firm_kill(),
        strategy_disabled=view.strategy_disabled(account, intent.strategy),
        market=market,
        reference_price=reference,
        market_age=None if market is None else view.now - market.ts,
        position=position,
        working_buy=working_buy,
        working_sell=working_sell,
        gross_exposure=totals.gross,
        net_long_exposure=totals.net_long,
        net_short_exposure=totals.net_short,
        firm_gross_exposure=view.shared_exposure_gross() if figures else None,
        account=state,
        daily_loss=daily_loss,
        drawdown=drawdown,
        rates=() if limits is None else _rates(intent, view, limits, context),
        client_order_id_seen=id_seen if id_seen is not None else view.client_order_id_seen(
            derived_client_order_id(intent) if client_order_id is None else client_order_id),
        fingerprint=key,
        fingerprint_seen=(
            duplicate_window is not None and view.fingerprint_seen(key, duplicate_window)
        ),
        resting_buy=resting_buy,
        resting_sell=resting_sell,
    )
