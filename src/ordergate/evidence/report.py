"""The evidence pack: `report.md`, `report.html` (charts inline as SVG) and the CSVs behind
every chart, from one journal.

What it proves is computed, not asserted: the hash chain is verified (against the heads kept
outside the journal too, as `journal verify` checks it) and every decision is replayed byte for
byte (`evidence.replay`). A journal that fails that check is not read any further, and every
part of the pack stops at the last record the check covered (a journal another process is
still writing grows meanwhile), so the pack says which records it covers.

The series come from the journal's own records: exposure and order-rate counts are the values
the gate read for each intent (its DecisionRecord), caps and throttles the limits it cited, so
the charts show what the gate saw, not a later reconstruction. The summary lists what was
proven, what failed and what remains risky.
"""

from __future__ import annotations

import csv
import html
import io
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from ordergate.engine.commands import COMMAND_NOTE, COMMAND_REFUSED
from ordergate.engine.core import POLICY_NOT_EFFECTIVE, POLICY_REJECTED, POLICY_UNKNOWN, Engine
from ordergate.engine.lifecycle import CANCEL_REFUSED, FAR_FROM_MARK, FILL_PRICE, ORDER_UNKNOWN
from ordergate.engine.status import build_status, standing_firm_kills
from ordergate.evidence.decisions import (
    DecisionFilter,
    DecisionRow,
    iter_decisions,
    journaled_output,
)
from ordergate.evidence.export import ExportFormat, export_rows
from ordergate.evidence.replay import ReplayReport, journaled_input, verify_journal
from ordergate.evidence.reproduce import IncompleteRecord, decode_limits
from ordergate.journal import (
    Durability,
    Journal,
    JournalError,
    JournalRecord,
    RecordKind,
    Snapshot,
    VerifyReport,
    check_kept_heads,
    redact_url,
)
from ordergate.model.events import (
    Alert,
    AlertSeverity,
    Command,
    CommandAction,
    DecisionRecord,
    InputEvent,
    KillScope,
    LimitsRecord,
    ModeChanged,
    ShadowDecision,
)
from ordergate.model.intent import OrderIntent
from ordergate.model.reasons import REGISTRY
from ordergate.policy.limits import ResolvedLimits

_RECORD_PREFIX = b'{"type":"decision_record",'
_LIMITS_PREFIX = b'{"type":"limits",'
_MODE_PREFIX = b'{"type":"mode",'
_ALERT_PREFIX = b'{"type":"alert",'
_DECISION_PREFIX = b'{"type":"decision",'
_SHADOW_PREFIX = b'{"type":"shadow_decision",'
# what the engine journals when it refuses an operator command or a policy activation
REFUSALS = (COMMAND_REFUSED, POLICY_UNKNOWN, POLICY_NOT_EFFECTIVE, POLICY_REJECTED)
DRAWDOWN_HALT = "LOS-003"
CANCEL_RATE = "THR-005"
# How a monitor-mode drawdown kill's LOS-003 alert says it halted nothing
# (`engine.core.Engine._drawdown_would_halt`): an enforcing policy's moved the mode.
_WOULD_HAVE_MOVED = "would have moved the mode to "
CONCENTRATION_SHARE = 0.6
CONCENTRATION_MIN = 10
NEAR_CAP = Decimal("0.9")
CHARTS = ("decisions", "exposure", "order-rate", "mode")
MODE_COLUMNS = ("ts", "from", "to", "by", "reasons")

# The alerts an owner must hear of, whatever else a summary says: the engine's critical and
# warning alerts. An accepted operator command's note (COMMAND) is a warning only because an
# operator loosened something; the command itself is shown where commands are.
RAISED_SEVERITIES = (AlertSeverity.CRITICAL, AlertSeverity.WARNING)
_ALERT_WORDS: dict[tuple[str, AlertSeverity | None], str] = {
    (FILL_PRICE, AlertSeverity.CRITICAL):
        "a fill past its order's limit price: the broker executed an order at a price the "
        "order did not allow (booked as reported; check it with the broker)",
    (FILL_PRICE, AlertSeverity.WARNING):
        f"a fill more than {FAR_FROM_MARK} times above or below the symbol's last market "
        "price (booked as reported; check it with the broker)",
    (CANCEL_REFUSED, None): "the broker refused to cancel an order: it went on working there",
    (ORDER_UNKNOWN, None): "the broker reported on, or a cancel named, an order this gateway "
                           "has no working order for",
    (COMMAND_REFUSED, None): "an operator command was refused",
    (POLICY_REJECTED, None): "a policy was refused: it could not be stored or activated",
    (POLICY_UNKNOWN, None): "a policy activation named a policy the journal does not hold",
    (POLICY_NOT_EFFECTIVE, None): "a policy activation came before the policy takes effect",
}


def alert_words(code: str, severity: AlertSeverity) -> str:
    """What an alert code means, in plain words (the reason-code registry's meaning for a
    reason code); "" for a code nothing here knows."""
    words = _ALERT_WORDS.get((code, severity)) or _ALERT_WORDS.get((code, None))
    if words:
        return words
    entry = REGISTRY.get(code)
    return entry.meaning if entry is not None else ""


def counted_alert(alert: Alert) -> bool:
    """Whether an owner must hear of `alert`: critical or warning, and not an accepted
    operator command's note."""
    return alert.severity in RAISED_SEVERITIES and alert.code != COMMAND_NOTE


_SAID_SEVERITIES = tuple(f'"severity":"{severity.value}"'.encode()
                         for severity in RAISED_SEVERITIES)
_ALERT_CHUNK = 50_000  # records read at a time, newest first, looking for the latest alerts


def latest_alerts(journal: Journal, limit: int) -> list[Alert]:
    """The journal's latest `limit` alerts an owner must hear of (`counted_alert`), oldest
    first: read back from its last record a chunk at a time, so a journal whose alerts are
    recent is not read whole."""
    found: list[Alert] = []
    end = journal.last_seq()
    while end >= 1 and len(found) < limit:
        start = max(1, end - _ALERT_CHUNK + 1)
        chunk: list[Alert] = []
        for record in journal.read(start, end):
            payload = record.payload
            if (record.kind is RecordKind.OUTPUT and payload.startswith(_ALERT_PREFIX)
                    and any(severity in payload for severity in _SAID_SEVERITIES)):
                alert = journaled_output(record.seq, payload)
                if isinstance(alert, Alert) and counted_alert(alert):
                    chunk.append(alert)
        found = chunk + found
        end = start - 1
    return found[-limit:] if limit > 0 else []


@dataclass(slots=True)
class AlertTally:
    """The alerts of one code and severity: how many, the first and last times, and the
    first one's own words (which name the order or account)."""

    code: str
    severity: AlertSeverity
    count: int
    first: datetime
    last: datetime
    first_message: str

    @property
    def words(self) -> str:
        return alert_words(self.code, self.severity)

    def add(self, alert: Alert) -> None:
        self.count += 1
        self.first = min(self.first, alert.ts)
        self.last = max(self.last, alert.ts)


def tally_alerts(tallies: dict[tuple[str, str], AlertTally], alert: Alert) -> None:
    """Count `alert` into `tallies` (keyed by severity and code)."""
    key = (alert.severity.value, alert.code)
    known = tallies.get(key)
    if known is None:
        tallies[key] = AlertTally(code=alert.code, severity=alert.severity, count=1,
                                  first=alert.ts, last=alert.ts, first_message=alert.message)
    else:
        known.add(alert)


def ranked_alerts(tallies: dict[tuple[str, str], AlertTally]) -> list[AlertTally]:
    """Critical first, then warnings; the most frequent first within each."""
    return sorted(tallies.values(), key=lambda tally: (
        tally.severity is not AlertSeverity.CRITICAL, -tally.count, tally.code))


def alert_line(tally: AlertTally) -> str:
    """One tally in words: "2 critical FILL_PRICE alerts (first at ..., last at ...): <meaning>"."""
    plural = "" if tally.count == 1 else "s"
    words = f": {tally.words}" if tally.words else ""
    when = (f"at {_time(tally.first)}" if tally.first == tally.last
            else f"first at {_time(tally.first)}, last at {_time(tally.last)}")
    return f"{tally.count:,} {tally.severity.value} {tally.code} alert{plural} ({when}){words}"


class CheckedJournal:
    """A journal up to the last record its check covered, read-only: what every part of the
    pack reads. A journal another process is still writing grows while the pack is made; the
    records after the check are neither proven nor replayed, so no table counts them."""

    def __init__(self, journal: Journal, chain: VerifyReport) -> None:
        self._journal = journal
        self._chain = chain

    @property
    def url(self) -> str:
        return self._journal.url

    @property
    def durability(self) -> Durability:
        return self._journal.durability

    @property
    def run_id(self) -> str:
        return self._journal.run_id

    def last_seq(self) -> int:
        return self._chain.records

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        end = self._chain.records if end_seq is None else min(end_seq, self._chain.records)
        return self._journal.read(start_seq, end) if start_seq <= end else iter(())

    def verify(self) -> VerifyReport:
        """The check these records passed (it is not run again)."""
        return self._chain

    def latest_snapshot(self) -> Snapshot | None:
        return None  # a snapshot may be of records after the check; readers start at record 1

    def append(self, kind: RecordKind, payload: bytes) -> int:
        raise self._read_only()

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]:
        raise self._read_only()

    def save_snapshot(self, seq: int, state: bytes) -> None:
        raise self._read_only()

    def check_writable(self) -> None:
        raise self._read_only()

    def flush(self) -> None:
        """Nothing is ever appended here, so there is nothing to make durable."""

    def close(self) -> None:
        """The journal it reads belongs to the caller, who closes it."""

    def _read_only(self) -> JournalError:
        return JournalError(f"{redact_url(self.url)}: the evidence report only reads the journal")


def _journaled_limits(seq: int, record: LimitsRecord) -> ResolvedLimits:
    try:
        return decode_limits(record)
    except (msgspec.DecodeError, IncompleteRecord) as exc:
        raise JournalError(f"record {seq} (limits) cannot be read: {exc}") from None


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One journaled operator command and what the engine answered to it: `outcome` is
    accepted or refused (or the first of two approvals a resume needs), `said` the words of
    the alerts the engine journaled in that step."""

    ts: datetime
    operator: str
    action: str
    target: str
    reason: str
    outcome: str
    said: str


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    """A policy the engine activated: from `since` until the next activation."""

    since: datetime
    name: str
    policy_hash: str
    monitor: bool
    operator: str
    reason: str


@dataclass(slots=True)
class DryRun:
    """A policy in a dry run (the shadow policy): judged for every intent beside the enforced
    one, never enforced, from `since` until `until` (None: still on when the window closes),
    set by `operator` for `reason`; `ended` says how it ended."""

    since: datetime
    name: str
    policy_hash: str
    operator: str
    reason: str
    until: datetime | None = None
    ended: str = ""


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """A decision of the window and what the dry run's policy (`run`) would have answered to
    the same intent, judged on the same state."""

    row: DecisionRow
    run: DryRun
    shadow: ShadowDecision

    @property
    def differs(self) -> bool:
        """Whether the shadow's outcome differs from the enforced one (as the decisions API's
        `shadow_differs`: its decision, blocking code or modified quantity)."""
        row, shadow = self.row, self.shadow
        return (shadow.decision.value != row.decision or shadow.blocking != row.blocking
                or shadow.modified_qty != row.modified_qty)


@dataclass(slots=True)
class Series:
    """What the charts and CSVs are drawn from. `modes` rows are (ts, previous, mode, who
    changed it, why); `start_mode` is the mode in force when the window opens. `actions` are
    the operator commands of the window, `policies` every activation up to its end, `at_end`
    what still denies or holds back orders when the window closes (in words), as
    `ordergate status` would show it then."""

    rows: list[DecisionRow] = field(default_factory=list)
    exposure: list[tuple[datetime, str, Decimal, Decimal, Decimal, Decimal | None,
                         Decimal | None]] = field(default_factory=list)
    rates: list[tuple[datetime, str, str, int, int]] = field(default_factory=list)
    modes: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    actions: list[OperatorAction] = field(default_factory=list)
    policies: list[PolicyInForce] = field(default_factory=list)
    # every dry run up to the window's end, and each shadow decision journaled in a dry run
    # by the seq of the decision it follows (`shadowed` keeps those of the window's rows)
    dry_runs: list[DryRun] = field(default_factory=list)
    shadows: dict[int, tuple[DryRun, ShadowDecision]] = field(default_factory=dict)
    at_end: list[str] = field(default_factory=list)
    # critical and warning alerts of the window (`counted_alert`), by severity and code,
    # except those answering an operator command (in `actions`, with their words)
    alerts: dict[tuple[str, str], AlertTally] = field(default_factory=dict)
    start_mode: str = "ACTIVE"
    missing_records: int = 0
    repeats: int = 0
    # the decisions that repeat the engine's earlier answer to an intent id sent again (no
    # second order was sent), by seq
    repeat_seqs: set[int] = field(default_factory=set)
    # monitor mode's other dry-run answers in the window: cancels over `cancel_rate` that were
    # sent (an info THR-005 alert each; a behaviour-4 journal refused them, a warning), and
    # the modes a drawdown kill would have moved to, one a LOS-003 alert
    cancels_sent: int = 0
    would_halt: Counter[str] = field(default_factory=Counter)
    rate_full: int = 0  # decisions at which an order-rate window the gate read had no room

    @property
    def final_mode(self) -> str:
        return self.modes[-1][2] if self.modes else self.start_mode

    def policies_in_window(self, since: datetime | None) -> list[tuple[PolicyInForce,
                                                                       datetime | None]]:
        """Each activation with the time the next one replaced it (None: still in force),
        keeping those in force at some moment of the window."""
        # each with the one after it (none after the last); no activation, no span
        spans = [(policy, following.since if following else None) for policy, following in
                 zip(self.policies, [*self.policies[1:], None], strict=False)]
        return [(policy, end) for policy, end in spans
                if since is None or end is None or end > since]

    def dry_runs_in_window(self, since: datetime | None) -> list[DryRun]:
        """The dry runs on at some moment of the window."""
        return [run for run in self.dry_runs
                if since is None or run.until is None or run.until > since]

    def let_through(self) -> list[DecisionRow]:
        """The decisions that `let_through` an order the policy would have blocked: a retry's
        repeated answer sent no second order, so it is not one of them."""
        return [row for row in self.rows if row.seq not in self.repeat_seqs
                and let_through(row.decision, row.monitor, row.would_block)]

    def monitor_policies(self, since: datetime | None) -> list[PolicyInForce]:
        """The policies in force at some moment of the window that set `monitor: true`."""
        return [policy for policy, _ in self.policies_in_window(since) if policy.monitor]

    def shadowed(self) -> list[ShadowRow]:
        """The window's decisions taken during a dry run, each with the shadow's answer."""
        return [ShadowRow(row, *self.shadows[row.seq]) for row in self.rows
                if row.seq in self.shadows]


def _why(change: ModeChanged, command: Command | None) -> str:
    """The reasons a mode change lists, and the operator's own words when an operator's
    command made it (a resume lists no reason: the conditions it dropped are gone)."""
    reasons = [f"{reason.code}: {reason.detail}" if reason.detail else reason.code
               for reason in change.reasons]
    if (command is not None and command.operator == change.actor and command.reason
            and not any(command.reason in reason.detail for reason in change.reasons)):
        reasons.append(f"{command.action.value}: {command.reason}")
    return "; ".join(reasons)


def _target(command: Command) -> str:
    if command.action in (CommandAction.ACTIVATE_POLICY, CommandAction.SHADOW_POLICY):
        return command.policy_hash or "(none)"
    if command.action in (CommandAction.KILL, CommandAction.UNKILL, CommandAction.FLATTEN):
        return (command.scope.value if command.scope is KillScope.FIRM
                else f"{command.scope.value} {command.key}")
    return command.key


def _time(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _dry_run_ended(event: InputEvent, after: str) -> str:
    """How a dry run ended, in words: the input that cleared or replaced the shadow policy
    (`after`: the name of the policy that replaced it, "" when none did)."""
    if not isinstance(event, Command):
        return f"replaced by a dry run of {after}" if after else "ended"
    who = event.operator or "(none)"
    why = f": {event.reason}" if event.reason else ""
    if event.action is CommandAction.ACTIVATE_POLICY:
        return f"activated by {who}{why} (enforced from then on)"
    if after:
        return f"replaced by a dry run of {after} by {who}{why}"
    return f"ended by {who}{why}"


def still_in_force(engine: Engine) -> list[str]:
    """What still denies or holds back orders, in words, from the same picture `ordergate
    status` draws (`build_status`) and the same firm-wide kill switches it names."""
    status = build_status(engine)
    found = [f"{kill}: every order is denied" for kill in standing_firm_kills(engine)]
    for kill in sorted(status.kills, key=lambda kill: (kill.scope is not KillScope.FIRM,
                                                       kill.scope.value, kill.key)):
        where = ("the firm-wide kill switch" if kill.scope is KillScope.FIRM
                 else f"the kill switch on {kill.scope.value} {kill.key}")
        denied = ("every order is denied" if kill.scope is KillScope.FIRM
                  else "its orders are denied")
        found.append(f"{where} engaged by {kill.operator} at {_time(kill.since)} "
                     f"({kill.reason or 'no reason'}) is still engaged: {denied}")
    for item in status.disabled_strategies:
        found.append(f"strategy {item.strategy} ({item.account}) is still disabled since "
                     f"{_time(item.since)}")
    guard = engine.state.guard
    if (guard.first_resume_operator and engine.settings.resume_requires_two_operators
            and guard.has_code(DRAWDOWN_HALT)):
        found.append(f"the resume after the drawdown halt was approved by "
                     f"{guard.first_resume_operator} only: it waits for a second operator")
    return found


class _Step:
    """The operator command being read and the alerts the engine journaled for it."""

    def __init__(self, seq: int, command: Command) -> None:
        self.seq = seq
        self.command = command
        self.alerts: list[Alert] = []
        self.first_approval = False

    def action(self) -> OperatorAction:
        command = self.command
        refused = any(alert.code in REFUSALS for alert in self.alerts)
        outcome = ("refused" if refused else
                   "first approval: a second operator must resume" if self.first_approval
                   else "accepted")
        return OperatorAction(
            ts=command.ts, operator=command.operator or "(none)", action=command.action.value,
            target=_target(command), reason=command.reason, outcome=outcome,
            said="; ".join(alert.message for alert in self.alerts))


def collect(journal: Journal, where: DecisionFilter) -> Series:
    """The series of the window. The journal's inputs also go through a fresh engine (as
    `ordergate status` rebuilds one) up to the window's end, for what is still in force
    then: kills, a resume awaiting its second operator, the policies' names."""
    series = Series(rows=list(iter_decisions(journal, where)))
    caps: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    since, until = where.since, where.until
    engine = Engine()
    fed = True  # inputs still go to the engine (stops at the first input after the window)
    command: Command | None = None  # the operator's command of the current step
    step: _Step | None = None
    repeat_step = False  # the current input is an intent the engine already decided
    repeat_seqs: set[int] = set()
    decision_seq = 0  # the last decision journaled: a shadow decision follows its own

    def end_step() -> None:
        nonlocal step
        if step is not None:
            series.actions.append(step.action())
            step = None

    for record in journal.read():
        payload = record.payload
        if record.kind is RecordKind.INPUT:
            end_step()
            command = None
            repeat_step = False
            event = journaled_input(record.seq, payload) if fed else None
            if event is not None and until is not None and event.ts > until:
                fed, event = False, None
            if event is None:
                continue
            if isinstance(event, OrderIntent):
                repeat_step = (event.account, event.strategy,
                               event.intent_id) in engine.state.decided
            shadow = engine.shadow
            engine.handle(event)
            if engine.shadow is not shadow:
                _note_dry_run(series, engine, event)
            if isinstance(event, Command):
                command = event
                if since is None or event.ts >= since:
                    step = _Step(record.seq, event)
                    guard = engine.state.guard
                    step.first_approval = (event.action is CommandAction.RESUME
                                           and bool(event.operator)
                                           and guard.first_resume_operator == event.operator)
                active = engine.active
                if (event.action is CommandAction.ACTIVATE_POLICY and active is not None
                        and active.hash == event.policy_hash):
                    series.policies.append(PolicyInForce(
                        since=event.ts, name=active.name, policy_hash=active.hash,
                        monitor=active.monitor, operator=event.operator or "(none)",
                        reason=event.reason))
            continue
        if record.kind is not RecordKind.OUTPUT:
            continue
        if payload.startswith(_DECISION_PREFIX):
            decision_seq = record.seq
        if payload.startswith(_SHADOW_PREFIX):
            shadow_decision = journaled_output(record.seq, payload)
            assert isinstance(shadow_decision, ShadowDecision)
            if series.dry_runs and series.dry_runs[-1].until is None:
                series.shadows[decision_seq] = (series.dry_runs[-1], shadow_decision)
        elif payload.startswith(_ALERT_PREFIX):
            alert = journaled_output(record.seq, payload)
            assert isinstance(alert, Alert)
            in_window = not (since and alert.ts < since) and not (until and alert.ts > until)
            if in_window:
                _note_monitor_alert(series, alert)
            if step is not None:
                step.alerts.append(alert)
            elif command is None and counted_alert(alert) and in_window:
                tally_alerts(series.alerts, alert)
        elif repeat_step and payload.startswith(_DECISION_PREFIX):
            repeat_seqs.add(record.seq)
            repeat_step = False
        elif payload.startswith(_LIMITS_PREFIX):
            limits_record = journaled_output(record.seq, payload)
            assert isinstance(limits_record, LimitsRecord)
            limits = _journaled_limits(record.seq, limits_record)
            caps[limits_record.limits_hash] = (limits.max_gross_exposure,
                                               limits.max_net_exposure)
        elif payload.startswith(_RECORD_PREFIX):
            output = journaled_output(record.seq, payload)
            assert isinstance(output, DecisionRecord)
            if (since and output.ts < since) or (until and output.ts > until):
                continue
            context = output.context
            gross_cap, net_cap = caps.get(output.limits_hash, (None, None))
            series.exposure.append((output.ts, output.account, context.gross_exposure,
                                    context.net_long_exposure, context.net_short_exposure,
                                    gross_cap, net_cap))
            full = False
            for rate in context.rates:
                series.rates.append((output.ts, rate.scope, rate.key, rate.count,
                                     rate.max_count))
                full = full or rate.count + 1 > rate.max_count
            series.rate_full += full
        elif payload.startswith(_MODE_PREFIX):
            change = journaled_output(record.seq, payload)
            assert isinstance(change, ModeChanged)
            if since and change.ts < since:
                series.start_mode = change.mode.value  # in force when the window opens
                continue
            if until and change.ts > until:
                continue
            series.modes.append((change.ts, change.previous.value, change.mode.value,
                                 change.actor, _why(change, command)))
    end_step()
    series.at_end = still_in_force(engine)
    without = [row for row in series.rows if not row.limits_hash and row.policy_hash != ""]
    series.repeats = sum(1 for row in without if row.seq in repeat_seqs)
    series.repeat_seqs = repeat_seqs
    series.missing_records = len(without) - series.repeats
    return series


def _note_monitor_alert(series: Series, alert: Alert) -> None:
    """Count what a monitor-mode policy let happen that an alert, not a decision, says: a
    cancel over `cancel_rate` sent (info THR-005; enforced, it is a warning and refused) and a
    drawdown kill that halted nothing (a LOS-003 alert naming the mode it would have moved
    to; enforced, the mode moved)."""
    if alert.code == CANCEL_RATE and alert.severity is AlertSeverity.INFO:
        series.cancels_sent += 1
    elif alert.code == DRAWDOWN_HALT and _WOULD_HAVE_MOVED in alert.message:
        mode = alert.message.partition(_WOULD_HAVE_MOVED)[2].split(" ", 1)[0]
        series.would_halt[mode] += 1


def _note_dry_run(series: Series, engine: Engine, event: InputEvent) -> None:
    """The shadow policy changed on `event`: end the dry run in progress, and start the next
    one when a policy is the shadow now."""
    shadow = engine.shadow
    ts = event.ts
    if series.dry_runs and series.dry_runs[-1].until is None:
        ending = series.dry_runs[-1]
        ending.until = ts
        ending.ended = _dry_run_ended(event, shadow.name if shadow is not None else "")
    if shadow is not None:
        command = event if isinstance(event, Command) else None
        series.dry_runs.append(DryRun(
            since=ts, name=shadow.name, policy_hash=shadow.hash,
            operator=(command.operator or "(none)") if command is not None else "(none)",
            reason=command.reason if command is not None else ""))


# ---------------------------------------------------------------- the summary


@dataclass(slots=True)
class Summary:
    """`failed` is what the check of the journal found wrong (a pack with any is a safety
    stop); `failed_alerts` the critical alerts the engine journaled (a fill past its limit,
    say), which the pack lists under What failed too, after them; warnings are `risky`."""

    proven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    risky: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed_alerts: list[str] = field(default_factory=list)

    @property
    def what_failed(self) -> list[str]:
        return self.failed + self.failed_alerts


def summarize(replay: ReplayReport, series: Series, final_mode: str) -> Summary:
    summary = Summary()
    chain = replay.chain
    if chain.ok:
        summary.proven.append(f"hash chain verified: {chain.records:,} records intact")
    else:
        # as `journal verify` says it: a snapshot or head that disagrees says the journal was
        # rewritten at or before its record, so only a cut end leaves the records before intact
        intact = (f" ({chain.records:,} records before it are intact)"
                  if chain.first_bad_seq == chain.records + 1 else "")
        summary.failed.append(f"journal verification failed at seq {chain.first_bad_seq}: "
                              f"{chain.message}{intact}")
    if chain.ok:
        text = (f"replay reproduced {replay.decisions_reproduced:,}/{replay.decisions:,} "
                f"decisions and {replay.outputs_matched:,}/{replay.outputs:,} outputs byte "
                "for byte")
        (summary.proven if replay.ok else summary.failed).append(text)
        if replay.first_divergence is not None:
            divergence = replay.first_divergence
            summary.failed.append(
                f"first divergence at seq {divergence.output_seq or divergence.input_seq}"
                f"{' (intent ' + divergence.intent_id + ')' if divergence.intent_id else ''}: "
                f"{divergence.message}")
        if replay.cut_short:
            summary.risky.append(f"{len(replay.cut_short)} step(s) cut short by a crash "
                                 "(input durable, outputs not journaled)")
    if not chain.ok:
        # nothing was read: no count, kill or mode of this journal can be given, and none
        # is zero
        summary.risky.append("not assessed: the journal failed verification, so none of its "
                             "records were read; what it holds (decisions, kills, mode, "
                             "operator actions) is unknown and cannot be trusted")
        return summary
    summary.risky += series.at_end
    for tally in ranked_alerts(series.alerts):
        (summary.failed_alerts if tally.severity is AlertSeverity.CRITICAL
         else summary.risky).append(f"{alert_line(tally)} (the Alerts table lists them)")
    if final_mode and final_mode != "ACTIVE":
        summary.risky.append(f"the mode ended {final_mode}, not ACTIVE")
    monitored = [row for row in series.rows if row.monitor]
    if monitored or series.cancels_sent:
        passed = series.let_through()
        reasons = Counter(row.would_block for row in passed)
        which = (": " + ", ".join(f"{code} \u00d7{count:,}"
                                  for code, count in reasons.most_common())) if passed else ""
        cancels = (f"; {series.cancels_sent:,} cancel(s) the policy would have refused were "
                   f"sent ({CANCEL_RATE})" if series.cancels_sent else "")
        summary.risky.append(
            f"{len(monitored):,} of {len(series.rows):,} decision(s) were taken in monitor mode "
            "(the policy sets monitor: true: its limits were evaluated and recorded, not "
            f"enforced); {len(passed):,} of them let through an order the policy would have "
            f"blocked{which}{cancels}")
    denied = Counter(row.strategy for row in series.rows if row.decision == "DENY")
    total = sum(denied.values())
    if total >= CONCENTRATION_MIN:
        strategy, count = denied.most_common(1)[0]
        if count / total >= CONCENTRATION_SHARE:
            summary.risky.append(f"denials concentrated on strategy {strategy}: "
                                 f"{count:,} of {total:,} ({count / total:.0%})")
    near = [point for point in series.exposure
            if point[5] is not None and point[5] > 0 and point[2] >= point[5] * NEAR_CAP]
    if near:
        summary.risky.append(f"gross exposure reached {NEAR_CAP:.0%} of its cap at "
                             f"{len(near):,} decision(s)")
    if series.rate_full:
        summary.risky.append(f"an order-rate window was full at {series.rate_full:,} "
                             "decision(s)")
    if series.missing_records:
        summary.risky.append(f"{series.missing_records:,} decision(s) carry no DecisionRecord "
                             "(written before decision records existed)")
    if series.repeats:
        summary.notes.append(f"{series.repeats:,} decision(s) repeat the engine's earlier "
                             "answer to an intent id sent again (a retry: not judged again, "
                             "no second order, so no DecisionRecord of their own)")
    return summary


def let_through(decision: str, monitor: bool, would_block: str) -> bool:
    """Whether a decision taken in monitor mode let an order through which the policy,
    enforced, would have blocked (`would_block` names the rule)."""
    return monitor and bool(would_block) and decision != "DENY"


def monitor_words(monitored: int, decided: int, passed: int, cancels: int) -> str:
    """What monitor mode did, in words (the pack's Monitor mode section, the run summary):
    `passed` orders let through that the policy would have blocked, `cancels` sent that its
    `cancel_rate` would have refused."""
    return (f"{monitored:,} of {decided:,} decision(s) were taken in monitor mode: the policy "
            "sets monitor: true, so its limits were evaluated and recorded, not enforced (kill "
            f"switches, the mode and data checks still were). {passed:,} order(s) the policy "
            f"would have blocked were let through; {cancels:,} cancel(s) the policy would have "
            "refused were sent.")


# ---------------------------------------------------------------- charts


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _bucket_width(times: Sequence[datetime]) -> timedelta:
    if len(times) < 2:
        return timedelta(minutes=1)
    span = max(times) - min(times)
    for width in (timedelta(minutes=minutes) for minutes in (1, 5, 15, 30, 60, 240, 1440)):
        if span / width <= 48:
            return width
    return timedelta(days=7)


def decision_buckets(rows: Sequence[DecisionRow]) -> list[tuple[datetime, str, int]]:
    """(bucket start, reason or ALLOW, count): decisions over time by blocking reason."""
    if not rows:
        return []
    width = _bucket_width([row.ts for row in rows])
    start = min(row.ts for row in rows)
    counts: Counter[tuple[datetime, str]] = Counter()
    for row in rows:
        bucket = start + width * ((row.ts - start) // width)
        counts[(bucket, row.blocking or row.decision)] += 1
    return sorted((bucket, reason, count) for (bucket, reason), count in counts.items())


def render_charts(series: Series) -> dict[str, str]:
    """Chart id -> inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    def x(times: Sequence[datetime]) -> list[float]:
        return [float(date2num(ts)) for ts in times]  # type: ignore[no-untyped-call]

    charts: dict[str, str] = {}
    buckets = decision_buckets(series.rows)
    figure, axes = plt.subplots(figsize=(10, 3.6))
    reasons = sorted({reason for _, reason, _ in buckets},
                     key=lambda code: (code not in ("ALLOW", "MODIFY"), code))
    times = sorted({bucket for bucket, _, _ in buckets})
    bottom = [0] * len(times)
    index = {bucket: position for position, bucket in enumerate(times)}
    for reason in reasons:
        heights = [0] * len(times)
        for bucket, name, count in buckets:
            if name == reason:
                heights[index[bucket]] = count
        width = (_bucket_width(times) / timedelta(days=1)) * 0.9 if times else 0.01
        axes.bar(x(times), heights, bottom=bottom, width=width, label=reason, align="edge")
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    axes.xaxis_date()
    axes.set_title("Decisions over time by blocking reason")
    axes.set_ylabel("decisions")
    if reasons:
        axes.legend(fontsize=7, ncol=4)
    charts["decisions"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 3.6))
    accounts = sorted({point[1] for point in series.exposure})
    for account in accounts:
        points = [point for point in series.exposure if point[1] == account]
        axes.plot(x([p[0] for p in points]), [float(p[2]) for p in points],
                  label=f"{account} gross", linewidth=1)
        caps = [p for p in points if p[5] is not None]
        if caps:
            axes.plot(x([p[0] for p in caps]), [float(p[5] or 0) for p in caps], linestyle="--",
                      label=f"{account} gross cap", linewidth=1)
    axes.xaxis_date()
    axes.set_title("Gross exposure vs cap (as the gate read it)")
    axes.set_ylabel("exposure")
    if accounts:
        axes.legend(fontsize=7)
    charts["exposure"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 3.6))
    scopes = sorted({(point[1], point[2]) for point in series.rates})
    for scope, key in scopes:
        rate_points = [p for p in series.rates if p[1] == scope and p[2] == key]
        axes.plot(x([p[0] for p in rate_points]),
                  [p[3] / p[4] if p[4] else 0.0 for p in rate_points],
                  label=f"{scope} {key}".strip(), linewidth=0.8, marker=".", markersize=2)
    axes.axhline(1.0, color="red", linestyle="--", linewidth=1, label="throttle")
    axes.xaxis_date()
    axes.set_title("Order rate vs throttle (orders in window / maximum)")
    axes.set_ylabel("utilisation")
    axes.legend(fontsize=7, ncol=3)
    charts["order-rate"] = _svg(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(10, 2.4))
    rank = {"ACTIVE": 0, "REDUCE_ONLY": 1, "HALTED": 2}
    moments = [row.ts for row in series.rows] + [mode[0] for mode in series.modes]
    if moments:
        xs = [min(moments)] + [mode[0] for mode in series.modes] + [max(moments)]
        ys = [rank[series.start_mode]] + [rank[mode[2]] for mode in series.modes]
        ys.append(ys[-1])
        axes.step(x(xs), ys, where="post")
    axes.set_yticks([0, 1, 2], ["ACTIVE", "REDUCE_ONLY", "HALTED"])
    axes.set_ylim(-0.5, 2.5)
    axes.xaxis_date()
    axes.set_title("Mode timeline")
    charts["mode"] = _svg(figure)
    plt.close(figure)
    return charts


# ---------------------------------------------------------------- files


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            # times as decisions.csv writes them (RFC 3339, UTC as Z)
            writer.writerow(["" if value is None else
                             _time(value) if isinstance(value, datetime) else value
                             for value in row])


def _md_cell(value: Any) -> str:
    """A value as one Markdown table cell: a `|` would end the cell and a line break the
    row, so they are escaped (`\\|`, `<br>`), and so is the backslash that escapes them."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return _md_line(text)


def _md_line(text: str) -> str:
    """One line of Markdown: line breaks inside a value become `<br>`."""
    return text.replace("\r\n", "<br>").replace("\r", "<br>").replace("\n", "<br>")


def _table_md(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(name) for name in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _table_html(table_id: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row) + "</tr>"
        for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


@dataclass(frozen=True, slots=True)
class Table:
    table_id: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Section:
    """A part of report.md and report.html: a heading, then paragraphs and tables."""

    section_id: str
    title: str
    blocks: Sequence[str | Table]

    def markdown(self) -> list[str]:
        lines = [f"## {self.title}", ""]
        for block in self.blocks:
            lines += [_md_line(block) if isinstance(block, str)
                      else _table_md(block.header, block.rows), ""]
        return lines

    def html(self) -> str:
        parts = "".join(f"<p>{html.escape(block)}</p>" if isinstance(block, str)
                        else _table_html(block.table_id, block.header, block.rows)
                        for block in self.blocks)
        return f'<section id="{self.section_id}"><h2>{html.escape(self.title)}</h2>{parts}' \
               "</section>"


NOT_READ = ("Not read: the journal failed verification, so none of its records were read; "
            "what it holds is unknown (not zero) and cannot be trusted.")
POLICY_COLUMNS = ("from", "until", "policy", "hash", "monitor", "activated by", "reason")
ACTION_COLUMNS = ("ts", "operator", "action", "target", "reason", "outcome", "engine said")
ALERT_COLUMNS = ("severity", "code", "count", "meaning", "first", "last", "the first said")
MONITOR_COLUMNS = ("seq", "ts", "intent", "strategy", "symbol", "side", "qty", "decision",
                   "would have been blocked by")
DRY_RUN_COLUMNS = ("from", "until", "policy", "hash", "set by", "reason", "ended",
                   "intents judged", "would deny", "would modify", "answers that differ")
DRY_RUN_REASON_COLUMNS = ("policy", "hash", "would", "code", "count", "meaning")
DIFFERS_COLUMNS = ("seq", "ts", "intent", "strategy", "symbol", "side", "qty", "enforced",
                   "dry-run policy", "would have been")
SHADOW_CSV_COLUMNS = ("seq", "ts", "intent_id", "account", "strategy", "symbol", "side", "qty",
                      "decision", "blocking", "modified_qty", "shadow_policy",
                      "shadow_policy_hash", "shadow_decision", "shadow_blocking",
                      "shadow_violations", "shadow_modified_qty", "shadow_would_block",
                      "differs")
# shadow_decisions.csv (the last) is written when the window holds a dry run
CSV_FILES = ("decisions.csv", "decisions_by_reason.csv", "exposure.csv", "order_rate.csv",
             "mode_timeline.csv", "shadow_decisions.csv")


def _reason_rows(codes: Counter[str]) -> list[tuple[str, int, str]]:
    return [(code, count, REGISTRY[code].meaning if code in REGISTRY else "")
            for code, count in codes.most_common()]


def _answer(decision: str, blocking: str, modified_qty: Decimal | None) -> str:
    """A decision in a few words: "DENY ORD-006", "MODIFY EXP-001 to 40", "ALLOW"."""
    words = f"{decision} {blocking}".strip()
    return f"{words} to {modified_qty}" if modified_qty is not None else words


def shadow_csv_rows(shadowed: Sequence[ShadowRow]) -> list[tuple[Any, ...]]:
    """shadow_decisions.csv: every decision of the window taken during a dry run, with the
    dry run's answer beside the enforced one."""
    return [(item.row.seq, item.row.ts, item.row.intent_id, item.row.account,
             item.row.strategy, item.row.symbol, item.row.side, item.row.qty,
             item.row.decision, item.row.blocking, item.row.modified_qty, item.run.name,
             item.run.policy_hash, item.shadow.decision.value, item.shadow.blocking,
             ",".join(violation.code for violation in item.shadow.violations),
             item.shadow.modified_qty, item.shadow.would_block,
             "yes" if item.differs else "no") for item in shadowed]


def dry_run_lines(series: Series, since: datetime | None) -> list[str]:
    """One line per dry run of the window that judged an intent: what its policy would have
    denied and modified, and how many of its answers differ from the enforced ones."""
    shadowed = series.shadowed()
    lines = []
    for run in series.dry_runs_in_window(since):
        judged = [item for item in shadowed if item.run is run]
        if not judged:
            continue
        kinds = Counter(item.shadow.decision.value for item in judged)
        differ = sum(1 for item in judged if item.differs)
        lines.append(f"dry run of policy {run.name} {run.policy_hash} (judged, never "
                     f"enforced): of {len(judged):,} intent(s) it judged it would have denied "
                     f"{kinds['DENY']:,} and modified {kinds['MODIFY']:,}; {differ:,} "
                     "answer(s) differ from the enforced one (the Dry runs section lists them)")
    return lines


def _dry_run_section(series: Series, since: datetime | None) -> Section:
    runs = series.dry_runs_in_window(since)
    if not runs:
        return Section("dry-runs", "Dry runs", [
            "No policy was dry-run in the window: no shadow policy judged intents beside the "
            "enforced one."])
    shadowed = series.shadowed()
    overview = []
    reasons: Counter[tuple[int, str, str]] = Counter()
    for number, run in enumerate(runs):
        judged = [item for item in shadowed if item.run is run]
        kinds = Counter(item.shadow.decision.value for item in judged)
        overview.append((_time(run.since), _time(run.until) if run.until else "end", run.name,
                         run.policy_hash, run.operator, run.reason, run.ended or "still on",
                         len(judged), kinds["DENY"], kinds["MODIFY"],
                         sum(1 for item in judged if item.differs)))
        reasons.update((number, item.shadow.decision.value, item.shadow.blocking or "-")
                       for item in judged if item.shadow.decision.value != "ALLOW")
    differ = [item for item in shadowed if item.differs]
    return Section("dry-runs", "Dry runs", [
        "A dry run judges every intent under a shadow policy as well, on the same state, and "
        "journals its answer (a ShadowDecision); the enforced policy alone decided, so nothing "
        f"here was denied or modified. {len(shadowed):,} of {len(series.rows):,} decision(s) "
        f"were judged in a dry run; {len(differ):,} of the dry run's answers differ from the "
        "enforced one (every one is in shadow_decisions.csv).",
        Table("table-dry-runs", DRY_RUN_COLUMNS, overview),
        Table("table-dry-run-reasons", DRY_RUN_REASON_COLUMNS, [
            (runs[number].name, runs[number].policy_hash, kind, code, count,
             REGISTRY[code].meaning if code in REGISTRY else "")
            for (number, kind, code), count in sorted(
                reasons.items(), key=lambda item: (item[0][0], -item[1], item[0][1:]))]),
        Table("table-dry-run-differs", DIFFERS_COLUMNS, [
            (item.row.seq, _time(item.row.ts), item.row.intent_id, item.row.strategy,
             item.row.symbol, item.row.side, item.row.qty,
             _answer(item.row.decision, item.row.blocking, item.row.modified_qty),
             f"{item.run.name} {item.run.policy_hash}",
             _answer(item.shadow.decision.value, item.shadow.blocking,
                     item.shadow.modified_qty)) for item in differ])])


def _monitor_blocks(series: Series, since: datetime | None) -> list[str | Table]:
    """The Monitor mode section: whether a `monitor: true` policy was in force in the window
    (with or without decisions under it), and what it let through that it would have
    blocked, sent that it would have refused and left trading that it would have halted."""
    monitored = sum(1 for row in series.rows if row.monitor)
    in_force = series.monitor_policies(since)
    if not (monitored or in_force or series.cancels_sent or series.would_halt):
        return ["No monitor-mode policy was in force in the window: the policies' limits "
                "were enforced."]
    passed = series.let_through()
    blocks: list[str | Table] = []
    if in_force:
        blocks.append("In force in the window with monitor: true: " + "; ".join(
            f"policy {policy.name} {policy.policy_hash} from {_time(policy.since)}"
            for policy in in_force) + ".")
    blocks.append(monitor_words(monitored, len(series.rows), len(passed), series.cancels_sent))
    for mode, count in sorted(series.would_halt.items()):
        blocks.append(f"drawdown_kill would have moved the mode to {mode} {count:,} time(s) "
                      f"({DRAWDOWN_HALT} alerts, listed under Alerts): trading went on.")
    if passed:
        blocks += [
            Table("table-would-block", ("would have been blocked by", "count", "meaning"),
                  _reason_rows(Counter(row.would_block for row in passed))),
            Table("table-monitor", MONITOR_COLUMNS, [
                (row.seq, _time(row.ts), row.intent_id, row.strategy, row.symbol, row.side,
                 row.qty, row.decision, row.would_block) for row in passed])]
    return blocks


def _sections(series: Series, read: bool, since: datetime | None,
              opening: str) -> list[Section]:
    if not read:
        return [Section(section_id, title, [NOT_READ]) for section_id, title in (
            ("policies", "Policies in force"), ("operator-actions", "Operator actions"),
            ("alerts", "Alerts"), ("monitor", "Monitor mode"), ("dry-runs", "Dry runs"),
            ("decisions", "Decisions"))] + [
            Section("modes", "Mode transitions", [opening])]
    policies = [(_time(policy.since), _time(end) if end else "end", policy.name,
                 policy.policy_hash, "yes" if policy.monitor else "no", policy.operator,
                 policy.reason) for policy, end in series.policies_in_window(since)]
    actions = [(_time(action.ts), action.operator, action.action, action.target,
                action.reason, action.outcome, action.said) for action in series.actions]
    monitor = _monitor_blocks(series, since)
    dry_runs = series.dry_runs_in_window(since)
    if dry_runs:
        monitor.append("A policy in a dry run is judged beside the enforced one and never "
                       "enforced: what it would have denied or modified is under Dry runs.")
    decided = Counter(row.decision for row in series.rows)
    by_strategy = Counter((row.strategy, row.decision) for row in series.rows)
    return [
        Section("policies", "Policies in force", [
            Table("table-policies", POLICY_COLUMNS, policies) if policies else
            "No policy was activated up to the window's end (every intent is denied, "
            "SYS-005).", *(["Judged beside them in a dry run, never enforced: " + "; ".join(
                f"policy {run.name} {run.policy_hash} from {_time(run.since)} until "
                f"{_time(run.until) if run.until else 'the end'}" for run in dry_runs)
                + " (see Dry runs)."] if dry_runs else [])]),
        Section("operator-actions", "Operator actions", [
            "Every operator command journaled in the window, and what the engine answered.",
            Table("table-actions", ACTION_COLUMNS, actions)] if actions else
            ["No operator command was journaled in the window."]),
        Section("alerts", "Alerts", [
            "Every critical and warning alert the engine journaled in the window, by code "
            "(those answering an operator command are under Operator actions).",
            Table("table-alerts", ALERT_COLUMNS, [
                (tally.severity.value, tally.code, tally.count, tally.words,
                 _time(tally.first), _time(tally.last), tally.first_message)
                for tally in ranked_alerts(series.alerts)])] if series.alerts else
            ["No critical or warning alert was journaled in the window (outside operator "
             "commands)."]),
        Section("monitor", "Monitor mode", monitor),
        _dry_run_section(series, since),
        Section("decisions", "Decisions", [
            Table("table-outcomes", ("decision", "count"),
                  [(kind, decided.get(kind, 0)) for kind in ("ALLOW", "MODIFY", "DENY")]),
            Table("table-reasons", ("blocking reason", "count", "meaning"),
                  _reason_rows(Counter(row.blocking for row in series.rows if row.blocking))),
            Table("table-strategies", ("strategy", "decision", "count"),
                  [(strategy, decision, count)
                   for (strategy, decision), count in sorted(by_strategy.items())])]),
        Section("modes", "Mode transitions", [opening, Table(
            "table-modes", MODE_COLUMNS,
            [(ts.isoformat(), previous, mode, actor, why)
             for ts, previous, mode, actor, why in series.modes])]),
    ]


@dataclass(frozen=True, slots=True)
class EvidencePack:
    directory: Path
    markdown: Path
    html: Path
    csvs: tuple[Path, ...]
    replay: ReplayReport
    summary: Summary
    covered: str  # which records the pack is of ("records 1–N ...")


class PackNotWritten(Exception):
    """The pack could not be written whole; the message names the file, why, and which
    files of the pack are (not) in the output directory."""


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{margin-bottom:0}.meta{color:#666}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px;text-align:left}
.proven li{color:#176b2c}.failed li{color:#b00020}.risky li{color:#8a5a00}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}"""


def _os_words(exc: OSError) -> str:
    place = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{place}{exc.strerror or exc}"


def _install(staging: Path, out: Path, names: Sequence[str]) -> None:
    """Move the finished files from `staging` into `out`, replacing the pack's files there
    and removing a CSV of an earlier pack this one does not have (a pack of a journal that
    failed verification has none), so `out` never mixes two packs."""
    stale = [name for name in CSV_FILES if name not in names and (out / name).exists()]
    blocked = [name for name in (*names, *stale)
               if (out / name).is_dir() and not (out / name).is_symlink()]
    if blocked:
        raise PackNotWritten(f"{out / blocked[0]}: Is a directory; nothing of the pack was "
                             "written (move it away or choose another --out)")
    done: list[str] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in stale:
            (out / name).unlink()
            done.append(f"removed {name} (of an earlier pack)")
        for name in names:
            (staging / name).replace(out / name)
            done.append(name)
    except OSError as exc:
        missing = [name for name in names if name not in done]
        raise PackNotWritten(
            f"{_os_words(exc)}; the pack in {out} is incomplete and must not be used: "
            f"written: {', '.join(done) or 'nothing'}; not written: {', '.join(missing)}"
        ) from None


def build_report(journal: Journal, out: Path, *, since: datetime | None = None,
                 until: datetime | None = None,
                 heads: Sequence[tuple[int, str]] = ()) -> EvidencePack:
    """Verify, replay, collect, draw and write the pack into `out` (created if missing).

    The chain is checked first, against the journal's head file and `heads` as `journal
    verify` checks it; a journal that fails is not read further (its records may be the
    damage), and its pack says what failed and that nothing of it was read (no CSVs, no
    charts, no counts). The files are written into a directory beside `out` and moved into
    it only when all are written. Raises JournalError when a checked record cannot be read,
    PackNotWritten when a file cannot be written."""
    chain, note = check_kept_heads(journal, journal.verify(), heads)
    if chain.ok:
        checked = CheckedJournal(journal, chain)
        replay = verify_journal(checked)
        series = collect(checked, DecisionFilter(since=since, until=until))
        later = next(iter(journal.read(chain.records + 1, chain.records + 1)), None)
        covered = (f"records 1\u2013{chain.records:,}" if chain.records else "no records (the "
                   "journal is empty)")
        if later is not None:
            covered += (f"; records from {later.seq:,} on were written after the check and "
                        "are not in this pack")
    else:
        replay = ReplayReport(ok=False, chain=chain)
        series = Series()
        covered = "no record: the journal failed verification, so none was read"
    opening = (f"Mode when the window opens: {series.start_mode}" if chain.ok
               else "Mode: not read (the journal failed verification)")
    summary = summarize(replay, series, series.final_mode)
    summary.notes += dry_run_lines(series, since)
    summary.notes += [note] if note else []
    summary.notes += chain.notes
    charts = render_charts(series) if chain.ok else {}
    sections = _sections(series, chain.ok, since, opening)
    dry_run = bool(series.dry_runs_in_window(since))
    csv_names = (CSV_FILES if dry_run else CSV_FILES[:-1]) if chain.ok else ()

    where = redact_url(journal.url)
    window = f"{since.isoformat() if since else 'start'} to {until.isoformat() if until else 'end'}"
    title = "ordergate evidence report"
    md = [f"# {title}", "", f"Journal: `{_md_line(where)}`  ", f"Window: {window}  ",
          f"Covers: {covered}", "", "## Summary", ""]
    for heading, items in (("What was proven", summary.proven),
                           ("What failed", summary.what_failed),
                           ("What remains risky", summary.risky)):
        md += [f"**{heading}**", ""] + [f"- {_md_line(item)}" for item in items or ["nothing"]]
        md += [""]
    if summary.notes:
        md += ["**Notes**", ""] + [f"- {_md_line(item)}" for item in summary.notes] + [""]
    for section in sections:
        md += section.markdown()
    md += ["## Charts", ""]
    md += (["See report.html (inline SVG); the data behind each chart:", ""]
           + [f"- `{name}`" for name in csv_names] + [""] if chain.ok
           else ["Not drawn, and no CSV written: the journal failed verification, so none "
                 "of its records were read.", ""])

    def bullets(kind: str, values: list[str]) -> str:
        lis = "".join(f"<li>{html.escape(value)}</li>" for value in values or ["nothing"])
        return f'<div class="{kind}"><h3>{kind.capitalize()}</h3><ul>{lis}</ul></div>'

    figures = ("".join(f'<figure id="chart-{name}">{charts[name]}</figure>' for name in CHARTS)
               if chain.ok else f"<p>{html.escape(NOT_READ)}</p>")
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><p class=meta>Journal {html.escape(where)} · window "
        f"{html.escape(window)} · covers {html.escape(covered)}</p>"
        f'<section id="summary"><h2>Summary</h2>{bullets("proven", summary.proven)}'
        f'{bullets("failed", summary.what_failed)}{bullets("risky", summary.risky)}'
        f'{bullets("notes", summary.notes) if summary.notes else ""}</section>'
        f'<section id="charts"><h2>Charts</h2>{figures}</section>'
        f'<section id="tables"><h2>Tables</h2>{"".join(s.html() for s in sections)}</section>'
        "</body></html>"
    )

    names = ("report.md", "report.html", *csv_names)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial",
                                        dir=out.parent))
    except OSError as exc:
        raise PackNotWritten(f"cannot make a working directory beside {out}: "
                             f"{_os_words(exc)}; nothing of the pack was written") from None
    try:
        try:
            if chain.ok:
                export_rows(series.rows, ExportFormat.CSV, staging / CSV_FILES[0])
                _write_csv(staging / CSV_FILES[1], ("bucket_start", "reason", "count"),
                           decision_buckets(series.rows))
                _write_csv(staging / CSV_FILES[2], ("ts", "account", "gross", "net_long",
                                                    "net_short", "gross_cap", "net_cap"),
                           series.exposure)
                _write_csv(staging / CSV_FILES[3], ("ts", "scope", "key", "count",
                                                    "max_count"), series.rates)
                _write_csv(staging / CSV_FILES[4], ("ts", "previous", "mode", "actor",
                                                    "reasons"), series.modes)
                if dry_run:
                    _write_csv(staging / CSV_FILES[5], SHADOW_CSV_COLUMNS,
                               shadow_csv_rows(series.shadowed()))
            (staging / "report.md").write_text("\n".join(md), encoding="utf-8")
            (staging / "report.html").write_text(page, encoding="utf-8")
        except OSError as exc:
            raise PackNotWritten(f"{_os_words(exc)}; nothing of the pack was written to "
                                 f"{out}") from None
        _install(staging, out, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return EvidencePack(directory=out, markdown=out / "report.md", html=out / "report.html",
                        csvs=tuple(out / name for name in csv_names), replay=replay,
                        summary=summary, covered=covered)
