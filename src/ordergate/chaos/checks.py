"""What every chaos scenario must prove, read from the journal (and the broker's own log).

`JournalFacts.read` walks a journal once and keeps what the checks need: the mode after every
record, each dispatch with the mode it was decided under and whether it reduced risk, every
fill with the position before and after it, orders refused because the circuit was open,
dependency events and alerts. The checks:

* `unsafe_submissions`: every order the broker received must have a journaled dispatch
  decided while the mode allowed it (ACTIVE; REDUCE_ONLY and risk-reducing; HALTED only an
  operator's flatten), and no order refused for an open circuit ever reached the broker;
* `exposure_growth_while_unsafe`: no fill of an order dispatched while the mode was not
  ACTIVE increased the absolute position;
* `first_mode_at_least`: when the mode first reached a level at or after a fault;
* `verify`: the hash chain is intact and the replay reproduces every output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.sim import SubmissionAttempt, SubmitOutcome
from ordergate.engine.commands import FLATTEN_STRATEGY
from ordergate.evidence.replay import journaled_input, verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    DependencyStatus,
    Dispatch,
    Fill,
    ModeChanged,
    OrderReject,
    OutputEvent,
    PositionSeed,
)
from ordergate.model.modes import Mode
from ordergate.runtime.dispatch import CIRCUIT_OPEN_CODE

ZERO = Decimal(0)
_outputs = msgspec.json.Decoder(OutputEvent)


@dataclass(frozen=True, slots=True)
class DispatchFact:
    seq: int
    ts: datetime
    order: Dispatch
    mode: Mode
    risk_reducing: bool  # as the gate judged the intent (False when there was none)

    @property
    def operator_flatten(self) -> bool:
        return self.order.strategy == FLATTEN_STRATEGY and self.order.reduce_only

    @property
    def allowed(self) -> bool:
        """Could this order be sent under the mode it was decided in?"""
        if self.mode is Mode.ACTIVE:
            return True
        if self.mode is Mode.REDUCE_ONLY:
            return self.risk_reducing or self.operator_flatten
        return self.operator_flatten


@dataclass(frozen=True, slots=True)
class FillFact:
    seq: int
    ts: datetime
    client_order_id: str
    before: Decimal
    after: Decimal


@dataclass(slots=True)
class JournalFacts:
    modes: list[tuple[int, datetime, Mode]] = field(default_factory=list)
    dispatches: dict[str, DispatchFact] = field(default_factory=dict)
    fills: list[FillFact] = field(default_factory=list)
    circuit_refused: set[str] = field(default_factory=set)
    rejects: list[OrderReject] = field(default_factory=list)
    dependencies: list[DependencyStatus] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)
    records: int = 0

    @classmethod
    def read(cls, journal_path: Path) -> JournalFacts:
        facts = cls()
        journal = open_journal(f"sqlite:///{journal_path}", durability=Durability.NONE,
                               create=False, reader=True)
        mode = Mode.ACTIVE
        positions: dict[tuple[str, str], Decimal] = {}
        try:
            for record in journal.read():
                facts.records += 1
                if record.kind is RecordKind.OUTPUT:
                    output = _outputs.decode(record.payload)
                    if isinstance(output, ModeChanged):
                        mode = output.mode
                        facts.modes.append((record.seq, output.ts, mode))
                    elif isinstance(output, Decision):
                        facts.decisions[output.intent_id] = output
                    elif isinstance(output, Dispatch):
                        decision = facts.decisions.get(output.intent_id)
                        facts.dispatches[output.client_order_id] = DispatchFact(
                            seq=record.seq, ts=output.ts, order=output, mode=mode,
                            risk_reducing=decision is not None and decision.risk_reducing)
                    elif isinstance(output, Alert):
                        facts.alerts.append(output)
                elif record.kind is RecordKind.INPUT:
                    event = journaled_input(record.seq, record.payload)
                    if isinstance(event, Fill):
                        fact = facts.dispatches.get(event.client_order_id)
                        if fact is None:
                            continue
                        key = (fact.order.account, fact.order.symbol)
                        before = positions.get(key, ZERO)
                        after = before + event.qty * fact.order.side.sign
                        positions[key] = after
                        facts.fills.append(FillFact(seq=record.seq, ts=event.ts,
                                                    client_order_id=event.client_order_id,
                                                    before=before, after=after))
                    elif isinstance(event, PositionSeed):
                        positions[(event.account, event.symbol)] = event.qty
                    elif isinstance(event, OrderReject):
                        facts.rejects.append(event)
                        if event.code == CIRCUIT_OPEN_CODE:
                            facts.circuit_refused.add(event.client_order_id)
                    elif isinstance(event, DependencyStatus):
                        facts.dependencies.append(event)
        finally:
            journal.close()
        return facts

    # ------------------------------------------------------------ the checks

    def unsafe_submissions(self, attempts: list[SubmissionAttempt]) -> list[str]:
        """Broker submissions the mode (or the circuit) forbade, described."""
        bad: list[str] = []
        for attempt in attempts:
            cid = attempt.client_order_id
            fact = self.dispatches.get(cid)
            if fact is None:
                bad.append(f"{cid}: reached the broker without a journaled dispatch")
            elif not fact.allowed:
                bad.append(f"{cid}: dispatched while {fact.mode.value} "
                           f"(risk_reducing={fact.risk_reducing})")
            elif cid in self.circuit_refused and attempt.outcome is not SubmitOutcome.FAULT:
                # Attempts that failed before the circuit opened are expected; an order the
                # gateway booked as refused must never be live at the broker.
                bad.append(f"{cid}: refused for an open circuit, yet the broker took it")
        return bad

    def exposure_growth_while_unsafe(self) -> list[str]:
        grew: list[str] = []
        for fill in self.fills:
            fact = self.dispatches[fill.client_order_id]
            if fact.mode is not Mode.ACTIVE and abs(fill.after) > abs(fill.before):
                grew.append(f"{fill.client_order_id}: position {fill.before} -> {fill.after} "
                            f"on an order dispatched while {fact.mode.value}")
        return grew

    def first_mode_at_least(self, mode: Mode, since: datetime) -> datetime | None:
        """When the mode first became `mode` or tighter at or after `since` (None: never)."""
        for _, ts, current in self.modes:
            if ts >= since and current.rank >= mode.rank:
                return ts
        return None

    def final_mode(self) -> Mode:
        return self.modes[-1][2] if self.modes else Mode.ACTIVE

    def unhealthy(self, code: str) -> list[DependencyStatus]:
        return [event for event in self.dependencies if not event.healthy and event.code == code]


@dataclass(frozen=True, slots=True)
class Verification:
    chain_ok: bool
    chain_message: str
    replay_ok: bool
    replay_message: str

    @property
    def ok(self) -> bool:
        return self.chain_ok and self.replay_ok


def verify(journal_path: Path) -> Verification:
    """`journal.verify()` (the hash chain), then a full replay of every input."""
    journal = open_journal(f"sqlite:///{journal_path}", durability=Durability.NONE,
                           create=False, reader=True)
    try:
        chain = journal.verify()
        replay = verify_journal(journal, check_chain=False)
        return Verification(chain_ok=chain.ok, chain_message=chain.message or "intact",
                            replay_ok=replay.ok, replay_message=replay.message)
    finally:
        journal.close()
