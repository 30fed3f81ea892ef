"""Re-derive a decision from its record alone: the intent, the cited limits and the
DecisionRecord's context, through the same gate, with no engine and no other journal record
but the EngineUpgrade inputs that say which arithmetic the gate decided in (`behaviour_at`).

`RecordedView` answers the gate's questions from the context. A question the record cannot
answer (a rate window it did not read) raises `IncompleteRecord`: a record that cannot
reproduce its decision is a finding, never papered over with a default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Context, Decimal, localcontext

import msgspec

from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.evidence.replay import journaled_input
from ordergate.gate.evaluate import evaluate_limits, precision_denial
from ordergate.gate.view import ActiveReason, ExposureTotals, RateScope
from ordergate.journal import Journal, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import DecisionContext, DecisionRecord, EngineUpgrade, LimitsRecord
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import EXACT, STANDARD
from ordergate.policy.limits import ResolvedLimits


class IncompleteRecord(Exception):
    """The record lacks a value the gate needs; the message names it."""


class RecordedView:
    """A `GateView` over one DecisionRecord: every answer is what the engine's view said
    when the intent was judged."""

    def __init__(self, record: DecisionRecord) -> None:
        self._record = record
        self._context: DecisionContext = record.context

    @property
    def now(self) -> datetime:
        return self._record.ts

    @property
    def mode(self) -> Mode:
        return self._context.mode

    def integrity_reasons(self) -> tuple[ActiveReason, ...]:
        return tuple(ActiveReason(code=reason.code, detail=reason.detail, actor=reason.actor,
                                  since=reason.since)
                     for reason in self._context.integrity)

    def operator_kill(self, account: str, strategy: str, symbol: str) -> bool:
        return self._context.operator_kill

    def firm_kill(self) -> bool:
        return self._context.firm_kill

    def market(self, symbol: str) -> MarketSnapshot | None:
        return self._context.market

    def account(self, account: str) -> AccountState | None:
        return self._context.account

    def position(self, account: str, symbol: str) -> Decimal:
        return self._context.position

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        return self._context.working_buy, self._context.working_sell

    def exposure(self, account: str) -> ExposureTotals:
        context = self._context
        return ExposureTotals(gross=context.gross_exposure, net_long=context.net_long_exposure,
                              net_short=context.net_short_exposure)

    def order_count(self, scope: RateScope, key: str, window: timedelta) -> int:
        for rate in self._context.rates:
            if rate.scope == scope.value and rate.key == key and rate.window == window:
                return rate.count
        raise IncompleteRecord(f"context.rates: no {scope.value} window {window} for {key!r}")

    def cancel_count(self, account: str, window: timedelta) -> int:
        raise IncompleteRecord("context: cancel counts are not part of an intent's record")

    def client_order_id_seen(self, client_order_id: str) -> bool:
        return self._context.client_order_id_seen

    def fingerprint_seen(self, fingerprint: str, window: timedelta) -> bool:
        if fingerprint != self._context.fingerprint:
            raise IncompleteRecord(f"context.fingerprint: recorded "
                                   f"{self._context.fingerprint!r}, asked {fingerprint!r}")
        return self._context.fingerprint_seen

    def resting_prices(self, account: str, symbol: str, side: Side | None = None
                       ) -> tuple[Decimal | None, Decimal | None]:
        return self._context.resting_buy, self._context.resting_sell  # as judged: for `side`

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        return self._context.strategy_disabled

    def shared_exposure_gross(self) -> Decimal | None:
        return self._context.firm_gross_exposure


def decode_limits(record: LimitsRecord) -> ResolvedLimits:
    """The limits of a LimitsRecord, after checking its bytes against its hash."""
    data = bytes(record.limits)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest != record.limits_hash:
        raise IncompleteRecord(f"limits {record.limits_hash}: the stored bytes hash to {digest}")
    return msgspec.json.decode(data, type=ResolvedLimits)


_UPGRADE_PREFIX = b'{"type":"engine_upgrade",'
# the first engine behaviour whose sums and products are exact (`engine.core.Engine.handle`)
_EXACT_FROM = 5


def behaviour_at(journal: Journal, seqs: Iterable[int]) -> dict[int, int]:
    """The engine behaviour (`engine.state.ENGINE_BEHAVIOUR`) each record of `seqs` was
    written under: 1 until the journal's first EngineUpgrade input, then the highest one
    journaled before it (an upgrade never lowers it). Reads the journal up to the last of
    `seqs`; a record that cannot be read raises JournalError naming its seq."""
    wanted = set(seqs)
    if not wanted:
        return {}
    upgrades: list[tuple[int, int]] = []  # (seq, behaviour): one per start-up at most
    for record in journal.read(1, max(wanted)):
        if record.kind is RecordKind.INPUT and record.payload.startswith(_UPGRADE_PREFIX):
            event = journaled_input(record.seq, record.payload)
            if isinstance(event, EngineUpgrade):
                upgrades.append((record.seq, event.behaviour))
    return {seq: max((behaviour for at, behaviour in upgrades if at < seq), default=1)
            for seq in wanted}


def arithmetic(behaviour: int) -> Context:
    """The decimal context the gate decided in under engine `behaviour`: Decimal's 28 digits
    (`STANDARD`) up to 4, exact sums and products (`EXACT`) from 5 on."""
    return EXACT if behaviour >= _EXACT_FROM else STANDARD


def reproduce(intent: OrderIntent, record: DecisionRecord, limits: LimitsRecord, *,
              behaviour: int = ENGINE_BEHAVIOUR) -> Decision:
    """The decision the gate makes for `intent` given only the record and its limits, in the
    arithmetic of the engine `behaviour` it was decided under (`behaviour_at`; this code's
    own by default)."""
    if limits.limits_hash != record.limits_hash:
        raise IncompleteRecord(f"limits: the record cites {record.limits_hash}, "
                               f"got {limits.limits_hash}")
    resolved = decode_limits(limits)
    # a decision of behaviour 4 or before was made on figures rounded to 28 digits: in exact
    # arithmetic 3 x 333333.3333333333333333333334 is above a 1,000,000 cap it was allowed at
    with localcontext(arithmetic(behaviour)):
        try:
            return evaluate_limits(intent, RecordedView(record), resolved, record.policy_hash)
        except ArithmeticError as exc:  # what the engine answered too (`Engine._intent`)
            return precision_denial(intent, exc, mode=record.context.mode,
                                    monitor=resolved.monitor, policy_hash=record.policy_hash)
