"""What-if: the same day under another policy.

The what-if reproduces what the journal's own run fed its engine, except what depends on the
policy. It walks the journal's batches in order (`journal_steps`) and, on a scratch journal,
drives a fresh Runtime: a fresh engine, the new policy, and a SimBroker configured as the
journal's run manifest recorded (the default SimConfig when the run recorded none).

Re-fed as journaled (they do not depend on the policy):

* every source batch (intents, market data, operator commands, clock ticks, account
  funding, dependency status, cancel requests), with its original boundaries, through
  `Runtime.process`, as the run fed it. The new policy stands in for the policies the
  journal's runs loaded at start-up (their "policy" batches): their documents become its
  document and an operator's command naming one of them (back to the day's policy) names
  it (`stand_in`); an operator's switch to another policy happens as it happened;
* the guard's own observations that come from outside the gateway, each as a feedback batch
  of its original origin through `Runtime.inject`: market-data feed circuits ("health"),
  clock sync against the broker's clock ("clock"), the firm store's answers ("firm"). The
  firm store's answers (a firm-wide rate limit's refusals, a firm kill) also count the other
  gateways' traffic, which a what-if of one journal cannot re-derive, so they are re-fed as
  they were: under another policy a firm rate limit refuses what it refused then, though this
  gateway's own share of the firm's count would have differed.

Re-derived under the new policy (they follow from which orders the policy let through):

* the broker's answers (acks, rejects, cancel confirmations, fills) and what the shell made
  of its calls (the broker's health, its circuits, automatic halts): the simulator answers
  the what-if's own orders, keeping DAY orders to the engine's trading days as the guard of
  `ordergate run` and `serve` has the journal's simulator do (`SimBroker.follow_sessions`);
  origins "broker" and "recovery", and the broker's part of "health", are not re-fed;
* the session close: wherever the journal holds a session-close summary (the guard of
  `ordergate run` or `serve` closed the day there), the what-if runs the same close
  (`Reconciler.session_close`) at that time, canceling the DAY orders of the ended day that
  are working in the what-if (`day_orders_left_open`), not the ones the original canceled.
  A journal written without the guard (`ordergate demo`) holds no close, and gets none;
* reconciliation ("reconcile"): the simulator keeps the what-if's own book, so there is
  nothing to compare; the original's findings are about the original's orders and are not
  re-fed;
* the start-up activation ("policy"): the new policy is activated instead.

So a what-if under the journal's own policy gives back the journal's decisions and figures
(with the broker the run manifest recorded; faults injected into the original simulator by
`--sim-fault` are not recorded and not repeated; a journal written across restarts runs as
one continuous what-if, so where a restart ended orders that a simulator without a state file
had forgotten, those orders live on in the what-if and it reports the difference). The
result is diffed against the original
decisions: decisions that change (outcome, blocking reason or modified quantity) grouped by
reason, symbol and strategy; the equity, PnL and exposure paths sampled where every source
batch starts and at the end; mode transitions that appear or vanish.

This is the one evidence tool that drives the shell (runtime and simulated broker): a
what-if that skipped the broker's feedback would not show how fills under the new policy
move exposure and losses.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.engine.core import POLICY_NOT_EFFECTIVE, POLICY_REJECTED, POLICY_UNKNOWN, Engine
from ordergate.engine.status import EngineStatus
from ordergate.evidence.manifest import read_manifests
from ordergate.evidence.replay import journaled_input
from ordergate.journal import Durability, Journal, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    Command,
    DecisionRecord,
    DependencyStatus,
    InputEvent,
    ModeChanged,
    OutputEvent,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent
from ordergate.policy.loader import Policy
from ordergate.runtime.health import (
    BROKER_DEPENDENCIES,
    CIRCUIT_PREFIX,
    HALT_OPERATOR,
    day_end_of,
)
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.runtime.reconcile import Reconciler, SessionCloseNote, day_orders_left_open
from ordergate.runtime.sources import FeedbackMark, SourceMark, decode_note

_decode_output = msgspec.json.Decoder(OutputEvent).decode
# Sets (the simulator's order types and times in force) sorted: the report reads the same on
# every run over the same journal.
_encode_config = msgspec.json.Encoder(order="deterministic").encode
_POLICY_REFUSALS = frozenset({POLICY_NOT_EFFECTIVE, POLICY_REJECTED, POLICY_UNKNOWN})
_decode_close = msgspec.json.Decoder(SessionCloseNote).decode
_CLOSE_SUMMARY_PREFIX = b'{"type":"og.session_close",'  # how a SessionCloseNote is encoded
_NO_MARK_BATCH = 256
REFED_ORIGINS = frozenset({"health", "clock", "firm", "engine"})
"""Feedback origins whose inputs are re-fed (less the broker's health: `is_refed`)."""
_BROKER_HEALTH = frozenset({*BROKER_DEPENDENCIES,
                            *(CIRCUIT_PREFIX + name for name in BROKER_DEPENDENCIES)})


@dataclass(slots=True)
class SourceBatch:
    """A source batch's exogenous inputs, re-fed through `Runtime.process`."""

    source: str
    line: int
    events: list[InputEvent] = field(default_factory=list)


@dataclass(slots=True)
class RefedBatch:
    """A guard's feedback batch (origin in `REFED_ORIGINS`), re-fed through `Runtime.inject`."""

    origin: str
    events: list[InputEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionClose:
    """The journal's run closed the session here: the what-if closes its own."""

    ts: datetime


Step = SourceBatch | RefedBatch | SessionClose


def is_refed(event: InputEvent) -> bool:
    """An input of a re-fed guard batch that does not come from the broker's calls: not the
    broker's health or circuits (probes), not an automatic halt (a storm of failed calls)."""
    if isinstance(event, DependencyStatus):
        return event.dependency not in _BROKER_HEALTH
    if isinstance(event, Command):
        return event.operator != HALT_OPERATOR
    return True


def stand_in(event: InputEvent, loaded: set[str], policy: Policy) -> InputEvent:
    """`event`, with `policy` standing in for the policies the journal's runs loaded
    (`loaded`): their documents become its document, commands naming them name it. An
    operator's switch to another policy stays as it was."""
    if isinstance(event, PolicyDocument) and event.policy_hash in loaded:
        return PolicyDocument(ts=event.ts, policy_hash=policy.hash, document=policy.document)
    if isinstance(event, Command) and event.policy_hash in loaded:
        return msgspec.structs.replace(event, policy_hash=policy.hash)
    return event


def journal_steps(journal: Journal, policy: Policy) -> Iterator[Step]:
    """What the what-if feeds, in journal order: source batches, guard batches to re-feed and
    session closes, with `policy` standing in for the policies the runs loaded (their
    "policy" batches; `stand_in`). Inputs before any mark (a journal written without them)
    form source batches of `_NO_MARK_BATCH` events."""
    current: SourceBatch | RefedBatch | None = SourceBatch(source="", line=0)
    loaded: set[str] = set()
    in_policy_batch = False
    for record in journal.read():
        if record.kind is RecordKind.META:
            if record.payload.startswith(_CLOSE_SUMMARY_PREFIX):
                if current is not None and current.events:
                    yield current
                current, in_policy_batch = None, False
                yield SessionClose(ts=_decode_close(record.payload).ts)
                continue
            note = decode_note(record.payload)
            if isinstance(note, SourceMark | FeedbackMark):
                if current is not None and current.events:
                    yield current
                in_policy_batch = isinstance(note, FeedbackMark) and note.origin == "policy"
                if isinstance(note, SourceMark):
                    current = SourceBatch(source=note.source, line=note.line)
                else:
                    current = (RefedBatch(origin=note.origin) if note.origin in REFED_ORIGINS
                               else None)
        elif record.kind is RecordKind.INPUT:
            if current is None and not in_policy_batch:
                continue
            event = journaled_input(record.seq, record.payload)
            if in_policy_batch:
                if isinstance(event, PolicyDocument):
                    loaded.add(event.policy_hash)
            elif isinstance(current, RefedBatch):
                if is_refed(event):
                    current.events.append(event)
            elif current is not None:
                current.events.append(stand_in(event, loaded, policy))
                if not current.source and current.line == 0 and (
                        len(current.events) >= _NO_MARK_BATCH):
                    yield current
                    current = SourceBatch(source="", line=0)
    if current is not None and current.events:
        yield current


def recorded_sim_config(journal: Journal) -> tuple[SimConfig, str]:
    """The simulator configuration of the journal's first run (without its state file),
    and where it came from."""
    for manifest in read_manifests(journal):
        config = manifest.broker.get("config")
        if manifest.broker.get("adapter") == "SimBroker" and isinstance(config, dict):
            values = {key: value for key, value in config.items() if key != "state_path"}
            return (msgspec.convert(values, SimConfig, strict=False),
                    f"run manifest of run {manifest.run_id}")
    return SimConfig(), "default SimConfig (the journal recorded no simulator configuration)"


# ---------------------------------------------------------------- what each side did


class IntentKey(msgspec.Struct, frozen=True, array_like=True, order=True):
    account: str
    strategy: str
    intent_id: str


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    decision: str
    blocking: str = ""
    modified_qty: Decimal | None = None

    @property
    def label(self) -> str:
        """"DENY EXP-001", "ALLOW", and a modified order with the quantity it was cut to
        ("MODIFY EXP-001 qty 230"): two modifications that differ only in quantity read
        apart."""
        label = self.decision if not self.blocking else f"{self.decision} {self.blocking}"
        if self.modified_qty is not None:
            label += f" qty {self.modified_qty}"
        return label


class Transition(msgspec.Struct, frozen=True, kw_only=True, order=True):
    ts: datetime
    previous: str
    mode: str
    reasons: str
    actor: str = "system"

    @property
    def why(self) -> str:
        """The reason codes, and who changed the mode when it was not the engine itself
        ("MOD-001", "by operator ops", "LOS-003, by operator ops")."""
        parts = [self.reasons] if self.reasons else []
        if self.actor != "system":
            parts.append(f"by operator {self.actor}")
        return ", ".join(parts) or "no reason code"


class PathPoint(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime
    equity: Decimal
    daily_pnl: Decimal
    gross_exposure: Decimal
    net_exposure: Decimal
    mode: str


@dataclass(slots=True)
class _Side:
    outcomes: dict[IntentKey, Outcome] = field(default_factory=dict)
    symbols: dict[IntentKey, str] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    path: list[PathPoint] = field(default_factory=list)
    refusals: list[Alert] = field(default_factory=list)

    def decided(self, key: IntentKey, symbol: str, decision: Decision) -> None:
        if key not in self.outcomes:
            self.outcomes[key] = Outcome(decision=decision.decision.value,
                                         blocking=decision.blocking,
                                         modified_qty=decision.modified_qty)
            self.symbols[key] = symbol

    def take(self, intent: OrderIntent | None, outputs: list[OutputEvent]) -> None:
        for output in outputs:
            if isinstance(output, Decision) and intent is not None and (
                    output.intent_id == intent.intent_id):
                self.decided(IntentKey(intent.account, intent.strategy, intent.intent_id),
                             intent.symbol, output)
            elif isinstance(output, ModeChanged):
                self.transitions.append(Transition(
                    ts=output.ts, previous=output.previous.value, mode=output.mode.value,
                    reasons=",".join(reason.code for reason in output.reasons),
                    actor=output.actor))

    def sample(self, status: EngineStatus) -> None:
        if status.now is None:
            return
        accounts = status.accounts
        self.path.append(PathPoint(
            ts=status.now,
            equity=sum((account.equity for account in accounts), Decimal(0)),
            daily_pnl=sum((account.daily_pnl for account in accounts), Decimal(0)),
            gross_exposure=sum((account.gross_exposure for account in accounts), Decimal(0)),
            net_exposure=sum((account.net_exposure for account in accounts), Decimal(0)),
            mode=status.mode.value,
        ))


def journal_outcomes(journal: Journal) -> dict[IntentKey, Outcome]:
    """Each intent's first decision in a journal (a retry is answered the same)."""
    return _original(journal).outcomes


def _original(journal: Journal) -> _Side:
    """The original decisions and transitions, read from the journal, and its state path,
    rebuilt by replaying its inputs and sampled where each source batch starts (after the
    previous batch's broker answers), as the what-if side is."""
    side = _Side()
    engine = Engine()
    intent: OrderIntent | None = None
    outputs: list[OutputEvent] = []
    in_batch = False
    for record in journal.read():
        if record.kind is RecordKind.INPUT:
            side.take(intent, outputs)
            outputs = []
            event = journaled_input(record.seq, record.payload)
            intent = event if isinstance(event, OrderIntent) else None
            engine.handle(event)
        elif record.kind is RecordKind.OUTPUT:
            outputs.append(_decode_output(record.payload))
        elif isinstance(decode_note(record.payload), SourceMark):
            side.take(intent, outputs)
            intent, outputs = None, []
            if in_batch:
                side.sample(engine.status())
            in_batch = True
    side.take(intent, outputs)
    if in_batch:
        side.sample(engine.status())
    return side


# ---------------------------------------------------------------- the diff


class ChangedDecision(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    strategy: str
    intent_id: str
    symbol: str
    before: Outcome
    after: Outcome

    @property
    def change(self) -> str:
        return f"{self.before.decision}->{self.after.decision}"

    @property
    def reason(self) -> str:
        """The reason that explains the change: the new blocking code, else the old one."""
        return self.after.blocking or self.before.blocking or "-"


class PathDelta(msgspec.Struct, frozen=True, kw_only=True):
    samples: int
    final_equity_before: Decimal
    final_equity_after: Decimal
    final_gross_before: Decimal
    final_gross_after: Decimal
    max_gross_before: Decimal
    max_gross_after: Decimal
    min_daily_pnl_before: Decimal
    min_daily_pnl_after: Decimal
    max_equity_gap: Decimal


class WhatIfReport(msgspec.Struct, kw_only=True):
    journal: str
    original_policies: list[str]
    policy_hash: str
    policy_name: str
    broker: str
    batches: int
    inputs: int
    decisions: int
    changed: list[ChangedDecision]
    by_change: dict[str, int]
    by_reason: dict[str, int]
    by_symbol: dict[str, int]
    by_strategy: dict[str, int]
    transitions_appeared: list[Transition]
    transitions_vanished: list[Transition]
    final_mode_before: str
    final_mode_after: str
    path: PathDelta | None
    path_before: list[PathPoint]
    path_after: list[PathPoint]
    warnings: list[str] = []
    """What makes the what-if's decisions other than a reader would assume (the new policy
    refused by the engine: every intent denied SYS-005), one sentence each."""

    @property
    def changed_words(self) -> str:
        """"no decision changed", "1 decision changed", "12 decisions changed"."""
        count = len(self.changed)
        if count == 0:
            return "no decision changed"
        return f"{count:,} decision{'' if count == 1 else 's'} changed"


def _counts(values: list[str]) -> dict[str, int]:
    return dict(Counter(values).most_common())


def _path_delta(before: list[PathPoint], after: list[PathPoint]) -> PathDelta | None:
    if not before or not after:
        return None
    gap = max((abs(a.equity - b.equity) for a, b in zip(before, after, strict=False)),
              default=Decimal(0))
    return PathDelta(
        samples=min(len(before), len(after)),
        final_equity_before=before[-1].equity, final_equity_after=after[-1].equity,
        final_gross_before=before[-1].gross_exposure, final_gross_after=after[-1].gross_exposure,
        max_gross_before=max(point.gross_exposure for point in before),
        max_gross_after=max(point.gross_exposure for point in after),
        min_daily_pnl_before=min(point.daily_pnl for point in before),
        min_daily_pnl_after=min(point.daily_pnl for point in after),
        max_equity_gap=gap,
    )


def diff_outcomes(before: dict[IntentKey, Outcome], after: dict[IntentKey, Outcome],
                  symbols: dict[IntentKey, str]) -> list[ChangedDecision]:
    """Intents whose outcome (decision, blocking code, modified quantity) differs."""
    changed = []
    for key, old in before.items():
        new = after.get(key)
        if new is None or new == old:
            continue
        changed.append(ChangedDecision(account=key.account, strategy=key.strategy,
                                       intent_id=key.intent_id, symbol=symbols.get(key, ""),
                                       before=old, after=new))
    return changed


def what_if(journal: Journal, policy: Policy, *, workdir: Path | None = None,
            on_progress: Callable[[int], None] | None = None) -> WhatIfReport:
    """Re-run the journal under `policy` (see the module docstring for what is re-fed and
    what is re-derived) and diff against the original."""
    original = _original(journal)
    config, config_source = recorded_sim_config(journal)
    broker = SimBroker(config)
    after = _Side()
    batches = inputs = 0
    with tempfile.TemporaryDirectory(dir=workdir, prefix="whatif-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'whatif.db'}"
        # the engine's behaviour follows the journal's: its upgrades are re-fed where they
        # stand ("engine"), so only the policy differs between the two sides
        runtime = Runtime.open(url, policy, broker, Durability.NONE, upgrade_engine=False)
        # as the guard of `ordergate run` and `serve` tells the journal's simulator: a DAY
        # order never fills on a quote of a later trading day shown before the close cancels it
        broker.follow_sessions(day_end_of(runtime.engine))
        closer = Reconciler(runtime)
        try:
            for step in journal_steps(journal, policy):
                if isinstance(step, SourceBatch):
                    if batches:  # where this batch starts, as the original is sampled
                        after.sample(runtime.engine.status())
                    report = runtime.process(step.events, source=step.source, line=step.line)
                    batches += 1
                    inputs += len(step.events)
                elif isinstance(step, RefedBatch):
                    report = runtime.inject(step.events, origin=step.origin)
                    inputs += len(step.events)
                else:
                    report = closer.session_close(
                        step.ts, reconcile=False,
                        day_orders=day_orders_left_open(runtime.engine))
                _take_report(after, report)
                if on_progress is not None:
                    on_progress(inputs)
            if batches:
                after.sample(runtime.engine.status())
        finally:
            runtime.close()
            broker.close()
    changed = diff_outcomes(original.outcomes, after.outcomes, original.symbols)
    before_set = set(original.transitions)
    after_set = set(after.transitions)
    return WhatIfReport(
        journal=journal.url,
        original_policies=sorted({hash_ for hash_ in _policies(journal)}),
        policy_hash=policy.hash, policy_name=policy.name,
        broker=f"{config_source}: {_encode_config(config).decode()}",
        batches=batches, inputs=inputs, decisions=len(original.outcomes), changed=changed,
        by_change=_counts([item.change for item in changed]),
        by_reason=_counts([item.reason for item in changed]),
        by_symbol=_counts([item.symbol for item in changed]),
        by_strategy=_counts([item.strategy for item in changed]),
        transitions_appeared=sorted(after_set - before_set),
        transitions_vanished=sorted(before_set - after_set),
        final_mode_before=original.path[-1].mode if original.path else "",
        final_mode_after=after.path[-1].mode if after.path else "",
        path=_path_delta(original.path, after.path),
        path_before=original.path, path_after=after.path,
        warnings=[_refusal_warning(alert, policy) for alert in after.refusals
                  if policy.hash in alert.message],
    )


def _refusal_warning(alert: Alert, policy: Policy) -> str:
    """The engine's refusal of the what-if's policy, with what it means for the decisions.
    The engine activates a policy only when told to (at start-up, or by an operator's
    command): one refused for not being in effect yet is not activated later by itself."""
    said = alert.message.removeprefix("activate_policy: ").partition("; keeping ")[0]
    effective = policy.effective_from
    if alert.code == POLICY_NOT_EFFECTIVE and effective is not None:
        at = effective.isoformat().replace("+00:00", "Z")
        return (f"{said}: the engine refused to activate it, so intents are denied SYS-005 "
                f"(no policy in force), those after {at} too, until an operator's command in "
                f"the journal activates a policy: the engine activates a policy when told "
                f"to, never later by itself; try a copy without effective_from (or one at or "
                f"before the journal's start)")
    return f"{said}: the engine refused to activate it ({alert.code})"


def _take_report(side: _Side, report: BatchReport) -> None:
    """The what-if's decisions (each paired with the record that names its intent) and mode
    changes, from one batch."""
    decision: Decision | None = None
    for item in report.emitted:
        if isinstance(item, Decision):
            decision = item
        elif isinstance(item, DecisionRecord) and decision is not None:
            side.decided(IntentKey(item.account, item.strategy, item.intent_id), item.symbol,
                         decision)
            decision = None
        elif isinstance(item, ModeChanged):
            side.take(None, [item])
        elif isinstance(item, Alert) and item.code in _POLICY_REFUSALS:
            side.refusals.append(item)


def _policies(journal: Journal) -> Iterator[str]:
    for record in journal.read():
        if record.kind is RecordKind.INPUT and record.payload.startswith(b'{"type":"policy",'):
            event = journaled_input(record.seq, record.payload)
            if isinstance(event, PolicyDocument):
                yield event.policy_hash
