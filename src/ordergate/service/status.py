"""What the HTTP layer reads about the running gateway, built on the engine thread.

`Inspector` turns the Runtime's engine status into the API's `StatusView` and `HealthView`.
Every method that touches the runtime is called through `EngineBridge.call`, so it runs on
the single engine thread and sees a consistent state between two batches. The mode timeline
is kept here from the ModeChanged outputs (recovered from the journal at start-up), and so are
the latest critical and warning alerts the engine journaled. Once the gateway stopped on a
failed journal write, the status reads STOPPED (not the engine's mode, which would say that
risk-reducing orders still go through) and the timeline ends with that stop, marked as not in
the journal.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog

from ordergate.engine.commands import COMMAND_NOTE
from ordergate.engine.core import Engine
from ordergate.engine.status import DisabledStatus, EngineStatus, KillStatus, held_words
from ordergate.engine.windows import WindowKind
from ordergate.evidence.report import alert_words, counted_alert
from ordergate.gate.view import RateScope
from ordergate.journal import redact_url
from ordergate.journal.base import JournalError, JournalRecord, RecordKind
from ordergate.model.events import (
    Alert,
    InputEvent,
    KillScope,
    ModeChanged,
    OutputEvent,
)
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY
from ordergate.policy.limits import RateLimit
from ordergate.resilience.breakers import BreakerSnapshot
from ordergate.resilience.clock import CLOCK_UNAVAILABLE
from ordergate.runtime.health import CIRCUIT_PREFIX, CLOCK_DEPENDENCIES
from ordergate.runtime.loop import JOURNAL_DEPENDENCY, Runtime, decode_output
from ordergate.runtime.policy_choice import PolicyOutcome
from ordergate.runtime.reconcile import UNREADABLE
from ordergate.service.alerts import STOPPED_MODE
from ordergate.service.bridge import JOURNAL_STOPPED_WORDS
from ordergate.service.metrics import ServiceMetrics
from ordergate.service.schemas import (
    ActiveReasonView,
    AlertView,
    BreakerView,
    DependencyView,
    ExposureView,
    HealthCheck,
    HealthView,
    JournalView,
    PendingApprovalView,
    PolicyFileView,
    PositionView,
    RateWindowsOmitted,
    RateWindowView,
    RestrictionView,
    StatusView,
    TimelineEntry,
)
from ordergate.service.status_view import monitored_restriction

log = structlog.get_logger("ordergate.service.status")

TIMELINE_LENGTH = 200
RECENT_ALERTS = 20  # the critical and warning alerts /v1/status lists, newest last
_SAID_ALERTS = (b'"severity":"critical"', b'"severity":"warning"')
# /v1/health's journal check when the probe fails. The journal's own words name its file or
# database and the server's directories, which an answer to anyone without a token does not
# show: they go to the log (once per change) and the path stays in /v1/status.
JOURNAL_REFUSES_WORDS = ("the journal would not accept a write now; the server's log says why "
                         "(journal_not_writable)")
_DATA_CODES = ("SYS-001", "SYS-002", "SYS-003")
# Per-strategy and per-symbol rate windows listed (and exported as metrics): the busiest.
RATE_WINDOWS_PER_SCOPE = 10
# How the engine announces the first of two approvals to resume after a drawdown halt
# (`engine.commands._resume`): "...second operator; {operator} approved: {reason}".
_FIRST_APPROVAL = "resume after a drawdown halt needs a second operator; "
_DRAWDOWN_HALT = "LOS-003"
_KILL_ORDER = {scope: rank for rank, scope in enumerate(KillScope)}
_KILL_CODES = ("KIL-001", "KIL-002", "KIL-003")
# The active reasons that say the broker cannot be reached or read, as guard condition keys
# (prefixes): a failing broker call (broker_submit, broker_reads), a broker breaker still
# open after the calls stopped failing, a reconciliation that could not read the broker's
# orders and positions, and the broker's clock not answering (the reference clock is the
# broker's `server_time`) or its breaker open.
_BROKER_UNREACHABLE = tuple(f"dependency:{name}" for name in (
    "broker", f"{CIRCUIT_PREFIX}broker", UNREADABLE,
    CLOCK_DEPENDENCIES[CLOCK_UNAVAILABLE], f"{CIRCUIT_PREFIX}clock"))
_JOURNAL_KEY = f"dependency:{JOURNAL_DEPENDENCY}"


class ModeTimeline:
    """The latest mode changes, oldest first; the latest critical and warning alerts
    (`counted_alert`), oldest first; and the last first approval of a two-operator resume (its
    time and message), which the engine keeps only as the operator's name."""

    def __init__(self, length: int = TIMELINE_LENGTH, alerts: int = RECENT_ALERTS) -> None:
        self._entries: collections.deque[TimelineEntry] = collections.deque(maxlen=length)
        self._alerts: collections.deque[AlertView] = collections.deque(maxlen=alerts)
        self.first_approval: tuple[datetime, str] | None = None

    def add(self, change: ModeChanged) -> None:
        self._entries.append(TimelineEntry(
            ts=change.ts, mode=change.mode.value, previous=change.previous.value,
            actor=change.actor, reasons=[reason.code for reason in change.reasons]))

    def observe(self, inputs: Sequence[InputEvent],
                outputs: Sequence[InputEvent | OutputEvent]) -> None:
        for output in outputs:
            if isinstance(output, ModeChanged):
                self.add(output)
            elif isinstance(output, Alert):
                self._note_alert(output)

    def _note_alert(self, alert: Alert) -> None:
        if alert.code == COMMAND_NOTE and alert.message.startswith(_FIRST_APPROVAL):
            self.first_approval = (alert.ts, alert.message.removeprefix(_FIRST_APPROVAL))
        if counted_alert(alert):
            self._alerts.append(AlertView(
                ts=alert.ts, severity=alert.severity.value, code=alert.code,
                meaning=alert_words(alert.code, alert.severity), message=alert.message,
                intent_id=alert.intent_id))

    def load_journal(self, records: Iterable[JournalRecord]) -> None:
        for record in records:
            if record.kind is not RecordKind.OUTPUT:
                continue
            payload = record.payload
            if b'"type":"mode"' in payload or (b'"type":"alert"' in payload and (
                    b"second operator" in payload
                    or any(severity in payload for severity in _SAID_ALERTS))):
                output = decode_output(payload)
                if isinstance(output, ModeChanged):
                    self.add(output)
                elif isinstance(output, Alert):
                    self._note_alert(output)

    def entries(self) -> list[TimelineEntry]:
        return list(self._entries)

    def alerts(self) -> list[AlertView]:
        return list(self._alerts)

    def last_mode(self) -> str:
        """The mode the latest journaled change left ("ACTIVE" when none is kept)."""
        return self._entries[-1].mode if self._entries else Mode.ACTIVE.value


def _plain(value: Decimal) -> str:
    """A decimal as people write it: arithmetic can leave an exponent ("1.9E+2" for an
    average price of 190), which an owner should never have to decode."""
    return format(value, "f")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else _plain(value)


def _seconds(window: timedelta) -> str:
    return f"{window.total_seconds():g} s"


def _reason_words(code: str) -> tuple[str, str]:
    entry = REGISTRY.get(code)
    return (code, "") if entry is None else (entry.name, entry.meaning)


def _kill_view(kill: KillStatus) -> RestrictionView:
    subject = {KillScope.FIRM: "the whole firm", KillScope.ACCOUNT: f"account {kill.key}",
               KillScope.STRATEGY: f"strategy {kill.key}",
               KillScope.SYMBOL: f"symbol {kill.key}"}[kill.scope]
    name, meaning = _reason_words("KIL-002")
    why = f" ({kill.reason})" if kill.reason else ""
    return RestrictionView(
        code="KIL-002", name=name, meaning=meaning, scope=kill.scope.value, key=kill.key,
        text=f"Every order for {subject} is denied: kill switch engaged by "
             f"{kill.operator}{why}; an operator must release it.",
        detail=kill.reason, actor=kill.operator, since=kill.since)


def _disabled_view(item: DisabledStatus, monitor: bool = False) -> RestrictionView:
    """A strategy disabled by the repeated-execution limit. THR-006 is a risk gate that never
    blocks an order reducing risk (`gate.table`, RECORDED), so only its new orders that add
    risk are denied. In monitor mode it is one of the limits only recorded
    (`monitored_restriction`): those orders are still sent."""
    name, meaning = _reason_words("THR-006")
    detail = f"{item.fills} fills within {_seconds(item.window)}"
    whose = (f"Every new order of strategy {item.strategy} in account {item.account} that adds "
             "risk")
    return RestrictionView(
        code="THR-006", name=name, meaning=meaning, scope="strategy", key=item.strategy,
        account=item.account,
        text=(f"{whose} would be denied (monitor mode: still sent, the breach only "
              f"recorded): disabled by the repeated-execution limit after {detail}; an "
              "operator can re-enable it." if monitor else
              f"{whose} is denied (orders that reduce risk still go through): disabled by the "
              f"repeated-execution limit after {detail}; an operator must re-enable it."),
        detail=detail, actor="system", since=item.since)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _firm_kills(restrictions: Sequence[RestrictionView]) -> list[RestrictionView]:
    """The kill switches that deny every order of the firm, reducing or not, whatever the
    mode: an operator's for the firm, the policy's `kill_switch`, the one shared by all
    gateways."""
    return [r for r in restrictions if r.code in _KILL_CODES and r.scope == KillScope.FIRM.value]


def _kill_sentence(kill: RestrictionView) -> str:
    why = f" ({kill.detail})" if kill.detail else ""
    if kill.code == "KIL-001":
        return f"The {kill.actor} sets kill_switch; an operator must activate a policy without it."
    if kill.code == "KIL-003":
        return (f"The firm-wide kill switch shared by all gateways is engaged{why}; an "
                "operator must release it.")
    return (f"Kill switch engaged for the whole firm by {kill.actor}{why}; an operator must "
            "release it.")


# Said whenever the enforced policy sets `monitor: true`: its limits decide nothing.
_MONITOR_SENTENCE = ("Limits NOT enforced (monitor mode): orders that break the policy's "
                     "limits are still sent; the breaches are only recorded.")


def _headline(mode: Mode, restrictions: Sequence[RestrictionView],
              pending: Sequence[PendingApprovalView], has_reasons: bool,
              held: str | None = None, *, monitor: bool = False,
              data: DataCheck | None = None) -> str:
    """One line for the banner: trading normally, restricted (ACTIVE, but some orders are
    denied by the restrictions listed), no trading at all (a firm-wide kill switch) or why
    not. `monitor`: the enforced policy only records its limits, which the banner must say
    (while trading is HALTED or REDUCE_ONLY, as what applies once it resumes: the mode is
    enforced in monitor mode too), and a restriction that only records (a strategy disabled
    by the repeated-execution limit) is said apart from those that deny; `data`: the
    market-data check of /v1/health, which denies orders (all, or those of its stale symbols)
    while it fails however calm the mode looks."""
    kills = _firm_kills(restrictions)
    denying = [r for r in restrictions if not monitored_restriction(r, monitor)]
    recorded = len(restrictions) - len(denying)
    no_data = data is not None and not data.check.ok
    if kills:
        # Said first and alone: whatever the mode reads, nothing can trade.
        line = "No trading: every order is denied. " + " ".join(map(_kill_sentence, kills))
        if mode is not Mode.ACTIVE:
            line += f" The mode is {mode.value} as well."
        others = len(restrictions) - len(kills)
        if others:
            line += f" Also {_plural(others, 'other restriction')} (listed below)."
    elif mode is Mode.ACTIVE:
        if no_data:
            line = _data_sentence(data)
        elif denying:
            line = (f"Trading restricted: {_plural(len(denying), 'restriction')} "
                    "deny orders (listed below).")
        elif monitor:
            line = _MONITOR_SENTENCE
        else:
            line = "Trading normally: no active reason."
        if no_data and denying:
            line += f" Also {_plural(len(denying), 'restriction')} (listed below)."
    else:
        line = _reason_words("MOD-001" if mode is Mode.HALTED else "MOD-002")[1]
        if held is not None:
            line += f" {held}"
        elif not has_reasons:
            line += " No reason recorded."
        if no_data:
            line += f" {_data_sentence(data)}"
        if denying:
            line += f" Also {_plural(len(denying), 'restriction')} (listed below)."
    if monitor and not kills and line != _MONITOR_SENTENCE:
        line += (f" {_MONITOR_SENTENCE}" if mode is Mode.ACTIVE
                 else " Once trading resumes the policy's limits are NOT enforced (monitor "
                      "mode): orders that break them will be sent, only recorded.")
    if recorded and not kills:
        line += (f" {_plural(recorded, 'restriction')} would deny orders were the limits "
                 "enforced (monitor mode: still sent; listed below).")
    if pending:
        line += f" {_plural(len(pending), 'command')} waiting for a second operator."
    return line


@dataclass(frozen=True, slots=True)
class DataCheck:
    """/v1/health's `data` check, and the symbols whose data is stale when only some are (the
    others still trade): the headline names those instead of denying everything."""

    check: HealthCheck
    stale: tuple[str, ...] = ()
    fresh_symbols: bool = False


def _data_sentence(data: DataCheck | None) -> str:
    detail = f" ({data.check.detail})" if data is not None and data.check.detail else ""
    if data is not None and data.stale and data.fresh_symbols:
        return (f"Orders for {', '.join(data.stale[:10])} are denied until fresh market data "
                f"arrives for them{detail}; other symbols trade.")
    return f"Orders are denied until market data arrives{detail}."


def _data_check(engine: Engine) -> DataCheck:
    """Whether market data is present and fresh: /v1/health's `data` check, and the status
    headline's word on orders denied for want of it. A symbol's data is stale as the engine
    judges it at its behaviour (`Engine.stale_symbols`): from behaviour 4 a `market_hours`
    symbol counts only the time its market has been open, so a position held overnight, over
    a weekend or a holiday does not make the gateway unready while its market is closed."""
    state = engine.state
    faults = [c for c in state.guard.conditions() if c.code in _DATA_CODES]
    if faults:
        return DataCheck(HealthCheck(ok=False, detail="; ".join(f"{c.code} {c.detail}"
                                                                for c in faults)))
    if not state.markets:
        return DataCheck(HealthCheck(ok=False, detail="no market data received yet"))
    active = engine.active
    max_age = None if active is None else active.limits_for("*", "*", "*").max_market_data_age
    if max_age is None or not state.started:
        return DataCheck(HealthCheck(ok=True))
    stale = engine.stale_symbols(max_age)
    if stale:
        return DataCheck(HealthCheck(ok=False, detail=f"stale market data (older than "
                                                      f"{max_age}): " + ", ".join(stale[:10])),
                         stale=tuple(stale), fresh_symbols=len(stale) < len(state.markets))
    return DataCheck(HealthCheck(ok=True))


def _monitor(runtime: Runtime) -> bool:
    return runtime.engine.active is not None and runtime.engine.active.monitor


def _held(status: EngineStatus) -> str | None:
    held = status.held_after
    return None if held is None else held_words(status, _reason_words(held.code)[1])


def _stopped_headline(why: str, durable_seq: int) -> str:
    """The banner once the journal failed: every request that would be journaled (intents,
    market data, operator commands) is refused, whatever the mode reads; and the figures shown
    are the engine's as it stopped, which hold what the failed write did (an order reserved, a
    rate window counted, a fill booked) though no journal holds it."""
    return ("STOPPED: the gateway takes no intent, market data or operator command; every "
            f"one is refused (503) because {why}. The positions, exposure and rate windows "
            "shown are the engine's at the failure and may include work that was never "
            "stored: a restart rebuilds them from what the journal holds (through record "
            f"{durable_seq}).")


def _no_policy_headline(why: str) -> str:
    """The banner while the engine has no policy in effect: it denies every intent."""
    return (f"No trading: every order is denied (SYS-005): {why}; an operator must activate "
            "a policy that is in effect.")


def _window(scope: str, key: str, count: int, limit: RateLimit) -> RateWindowView:
    return RateWindowView(scope=scope, key=key, count=count, max_count=limit.max_count,
                          window_s=limit.window.total_seconds(),
                          utilisation=count / limit.max_count if limit.max_count else 1.0)


class Inspector:
    """Reads of the Runtime for the API. Call its runtime-touching methods on the engine
    thread only (through the bridge)."""

    def __init__(self, runtime: Runtime, timeline: ModeTimeline, *,
                 last_batch_seconds: Callable[[], float] | None = None,
                 breakers: Callable[[], list[BreakerSnapshot]] | None = None) -> None:
        self._runtime = runtime
        self._breakers = breakers
        self.timeline = timeline
        self._last_batch_seconds = last_batch_seconds
        self._durable_seq = runtime.journal.last_seq()
        self._follow_durable_head()
        self._journal_refusal = ""  # why the last health probe found the journal unwritable
        self._seen_stopped: datetime | None = None

    def _follow_durable_head(self) -> None:
        """Note the journal's newest record after every write of records to storage that
        succeeded (the runtime's `on_flush`, still passed on to whoever set it before). Once a
        write failed, the journal's `last_seq` counts the records that failed with it, and
        the runtime keeps its durable head to itself: the status then shows this one."""
        runtime = self._runtime
        journal = runtime.journal
        earlier = runtime.on_flush

        def flushed(seconds: float) -> None:
            self._durable_seq = journal.last_seq()  # what was buffered is now written
            if earlier is not None:
                earlier(seconds)

        runtime.on_flush = flushed

    @property
    def durable_seq(self) -> int:
        """The journal's newest durable record: its last record while the runtime runs (every
        batch ends durable), the last one written before the failure once it stopped."""
        runtime = self._runtime
        return self._durable_seq if runtime.stopped else runtime.journal.last_seq()

    @property
    def run_id(self) -> str:
        return self._runtime.journal.run_id

    # -- engine-thread reads

    def mode(self) -> Mode:
        return self._runtime.engine.state.mode

    def policy_hash(self) -> str:
        active = self._runtime.engine.active
        return "" if active is None else active.hash

    def shadow_policy_hash(self) -> str:
        shadow = self._runtime.engine.shadow
        return "" if shadow is None else shadow.hash

    def status_view(self) -> StatusView:
        runtime = self._runtime
        status: EngineStatus = runtime.engine.status()
        reasons = []
        for reason in status.reasons:
            code = REGISTRY.get(reason.code)
            reasons.append(ActiveReasonView(
                code=reason.code, name=code.name if code else reason.code,
                meaning=code.meaning if code else "", detail=reason.detail,
                actor=reason.actor, since=reason.since))
        positions = [PositionView(account=p.account, symbol=p.symbol, qty=_plain(p.qty),
                                  avg_price=_plain(p.avg_price))
                     for p in status.positions if p.qty]
        exposure = [ExposureView(account=a.account, gross=_plain(a.gross_exposure),
                                 net=_plain(a.net_exposure), gross_cap=_text(a.max_gross_exposure),
                                 net_cap=_text(a.max_net_exposure))
                    for a in status.accounts]
        restrictions = self._restrictions(status)
        pending = self._pending_approvals()
        rate_windows, omitted = self._rate_windows([a.account for a in status.accounts])
        stopped = runtime.stopped
        timeline = self.timeline.entries()
        if stopped:
            timeline.append(self._stop_entry(status))
        return StatusView(
            run_id=runtime.journal.run_id,
            mode=STOPPED_MODE if stopped else status.mode.value, reasons=reasons,
            positions=positions, exposure=exposure,
            rate_windows=rate_windows, rate_windows_omitted=omitted,
            headline=(_stopped_headline(runtime.stopped, self.durable_seq) if runtime.stopped
                      else _no_policy_headline(runtime.policy_not_in_effect)
                      if runtime.deciding_policy is None
                      else _headline(status.mode, restrictions, pending, bool(reasons),
                                     _held(status), monitor=_monitor(runtime),
                                     data=_data_check(runtime.engine))),
            stopped=runtime.stopped,
            all_orders_denied=bool(_firm_kills(restrictions)),
            restrictions=restrictions, pending_approvals=pending,
            dependencies=self._dependencies(),
            journal=self._journal_view(), policy_hash=status.policy_hash,
            policy_name=status.policy_name, event_time=status.now,
            timeline=timeline, recent_alerts=self.timeline.alerts(),
            policy_monitor=_monitor(runtime),
            breakers=self._breaker_views(),
            shadow_policy_hash=status.shadow_policy_hash,
            shadow_policy_name=status.shadow_policy_name,
            policy_file=self._policy_file(),
        )

    def _stop_entry(self, status: EngineStatus) -> TimelineEntry:
        """The stop on a failed journal write as the timeline's last entry: from the mode the
        journal's last change left to STOPPED, at the engine's time of the failure. No journal
        holds it (the failed write is what it reports), so it says so."""
        conditions = self._runtime.engine.state.guard.conditions()
        condition = next((c for c in conditions if c.key == _JOURNAL_KEY), None)
        when = condition.since if condition is not None else status.now
        if when is None:
            when = self._first_seen_stopped()
        return TimelineEntry(
            ts=when, mode=STOPPED_MODE, previous=self.timeline.last_mode(), actor="system",
            reasons=[condition.code if condition is not None else "SYS-006"], journaled=False,
            note="not in the journal: the journal could not be written; the gateway takes "
                 "nothing until it restarts on a healthy journal")

    def _first_seen_stopped(self) -> datetime:
        """When a status first found the gateway stopped: the stop's time when the engine
        had seen no event (so has no time of its own)."""
        if self._seen_stopped is None:
            self._seen_stopped = datetime.now(UTC)
        return self._seen_stopped

    def _policy_file(self) -> PolicyFileView | None:
        """The `--policy` file of start-up, and why its policy is not enforced when it is not
        (the journal kept its own, it waits for the first event, or another was activated
        since)."""
        runtime = self._runtime
        choice = runtime.policy_choice
        if choice is None:
            return None
        file, active = choice.file, runtime.engine.active
        enforced = active is not None and active.hash == file.hash
        kept = choice.journal if choice.outcome is PolicyOutcome.KEPT else choice.enforced
        if enforced:
            detail = ""
        elif active is None and runtime.deciding_policy is not None:
            detail = (f"the --policy file's {file.name} {file.hash} is activated at the first "
                      "event")
        elif active is None:
            detail = (f"the --policy file's {file.name} {file.hash} is not enforced: "
                      f"{runtime.policy_not_in_effect}; every intent is denied (SYS-005)")
        elif (choice.outcome in (PolicyOutcome.KEPT, PolicyOutcome.REFUSED)
              and kept is not None and active.hash == kept.hash):
            detail = choice.warning
        else:
            detail = (f"the --policy file's {file.name} {file.hash} is not enforced: policy "
                      f"{active.name} {active.hash} was activated since start-up")
        return PolicyFileView(name=file.name, hash=file.hash, enforced=enforced,
                              outcome=choice.outcome.value, detail=detail)

    def _restrictions(self, status: EngineStatus) -> list[RestrictionView]:
        """What denies orders whatever the mode says: kill switches and disabled strategies."""
        engine = self._runtime.engine
        views: list[RestrictionView] = []
        active = engine.active
        if active is not None and active.limits_for("", "", "").kill_switch:
            name, meaning = _reason_words("KIL-001")
            views.append(RestrictionView(
                code="KIL-001", name=name, meaning=meaning, scope="firm", key="",
                text=f"Every order is denied: the policy {active.name} sets kill_switch.",
                actor=f"policy {active.name}"))
        firm = engine.state.firm
        if firm is not None and firm.kill:
            name, meaning = _reason_words("KIL-003")
            views.append(RestrictionView(
                code="KIL-003", name=name, meaning=meaning, scope="firm", key="",
                text="Every order is denied: the firm-wide kill switch shared by all "
                     "gateways is engaged" + (f" ({firm.detail})." if firm.detail else "."),
                detail=firm.detail, actor=f"firm store{' ' + firm.shard if firm.shard else ''}",
                since=firm.ts))
        views.extend(_kill_view(kill) for kill in sorted(
            status.kills, key=lambda kill: (_KILL_ORDER[kill.scope], kill.key)))
        monitor = active is not None and active.monitor
        views.extend(_disabled_view(item, monitor) for item in sorted(
            status.disabled_strategies, key=lambda item: (item.strategy, item.account)))
        return views

    def _pending_approvals(self) -> list[PendingApprovalView]:
        engine = self._runtime.engine
        guard = engine.state.guard
        first = guard.first_resume_operator
        if not (first and engine.settings.resume_requires_two_operators
                and guard.has_code(_DRAWDOWN_HALT)):
            return []
        reason, since = "", None
        noted = self.timeline.first_approval
        if noted is not None and noted[1].startswith(f"{first} approved: "):
            since, reason = noted[0], noted[1].removeprefix(f"{first} approved: ")
        when = f" at {since:%Y-%m-%d %H:%M:%S}Z" if since is not None else ""
        why = f" ({reason})" if reason else ""
        return [PendingApprovalView(
            action="resume", first_operator=first, reason=reason, since=since,
            text=f"Resume after the drawdown halt: approved by {first}{when}{why}; waiting "
                 f"for a second operator (not {first}) to resume as well.")]

    def _breaker_views(self) -> list[BreakerView]:
        if self._breakers is None:
            return []
        return [BreakerView(name=snap.name, state=snap.state.value,
                            opened_until=snap.opened_until, failures=snap.recent_failures)
                for snap in self._breakers()]

    def _rate_windows(self, accounts: list[str]
                      ) -> tuple[list[RateWindowView], list[RateWindowsOmitted]]:
        """The global window, every account's, and the busiest `RATE_WINDOWS_PER_SCOPE`
        strategy and symbol windows with orders in them (the rest are counted in the
        second list)."""
        engine = self._runtime.engine
        active = engine.active
        if active is None:
            return [], []
        state = engine.state
        views: list[RateWindowView] = []
        firm = active.limits_for("*", "*", "*").rate_global
        if firm is not None:
            views.append(_window("global", "",
                                 state.order_count(RateScope.GLOBAL, "", firm.window), firm))
        for account in accounts:
            limits = engine.account_limits(account)
            if limits is None or limits.rate_account is None:
                continue
            limit = limits.rate_account
            views.append(_window("account", account, state.order_count(
                RateScope.ACCOUNT, account, limit.window), limit))
        omitted: list[RateWindowsOmitted] = []
        for scope, kind in ((RateScope.STRATEGY, WindowKind.STRATEGY),
                            (RateScope.SYMBOL, WindowKind.SYMBOL)):
            in_use: list[RateWindowView] = []
            for key in state.windows.keys(kind):
                # the key's own limit: defaults and the strategy's (or symbol's) overrides
                resolved = (active.limits_for("", key, "") if scope is RateScope.STRATEGY
                            else active.limits_for("", "", key))
                scoped = (resolved.rate_strategy if scope is RateScope.STRATEGY
                          else resolved.rate_symbol)
                if scoped is None:
                    continue
                count = state.order_count(scope, key, scoped.window)
                if count:
                    in_use.append(_window(scope.value, key, count, scoped))
            in_use.sort(key=lambda view: (-view.utilisation, view.key))
            views.extend(in_use[:RATE_WINDOWS_PER_SCOPE])
            if len(in_use) > RATE_WINDOWS_PER_SCOPE:
                omitted.append(RateWindowsOmitted(scope=scope.value,
                                                  shown=RATE_WINDOWS_PER_SCOPE,
                                                  in_use=len(in_use)))
        return views, omitted

    def _dependencies(self) -> list[DependencyView]:
        runtime = self._runtime
        views = [DependencyView(name=JOURNAL_DEPENDENCY, healthy=not runtime.stopped,
                                state="healthy" if not runtime.stopped else "down",
                                detail=runtime.stopped)]
        for condition in runtime.engine.state.guard.conditions():
            # The journal's own reason (raised as the runtime stops) is the entry above.
            if condition.key.startswith("dependency:") and condition.key != _JOURNAL_KEY:
                views.append(DependencyView(
                    name=condition.key.removeprefix("dependency:"), healthy=False,
                    state="open" if condition.code == "SYS-007" else "down",
                    detail=condition.detail))
        return views

    def _journal_view(self) -> JournalView:
        journal = self._runtime.journal
        last = self.durable_seq  # never a record that failed to be written
        snapshot = self._runtime.snapshot_seq  # known: scanning the snapshots costs seconds
        return JournalView(url=redact_url(journal.url), last_seq=last, snapshot_seq=snapshot,
                           lag=last - snapshot,
                           last_batch_seconds=(self._last_batch_seconds()
                                               if self._last_batch_seconds else 0.0))

    def health_view(self) -> HealthView:
        """Ready when the journal would accept a write now (`Journal.check_writable`, which
        adds no record), no active reason says the broker cannot be reached or read (a broker
        call or breaker, a reconciliation that could not read it, its clock) and market data
        is present and fresh, and the engine has a policy in effect (or activates one with
        the next event). `live` stays true: the process answers."""
        runtime = self._runtime
        # An engine without a policy in effect denies every intent (SYS-005).
        no_policy = runtime.policy_not_in_effect
        checks: dict[str, HealthCheck] = {"engine": HealthCheck(ok=not no_policy,
                                                                detail=no_policy)}
        checks["journal"] = self._journal_check()
        conditions = runtime.engine.state.guard.conditions()
        broker_down = [c for c in conditions if c.key.startswith(_BROKER_UNREACHABLE)]
        checks["broker"] = HealthCheck(
            ok=not broker_down,
            detail="; ".join(c.detail or c.code for c in broker_down))
        checks["data"] = _data_check(runtime.engine).check
        ready = all(check.ok for check in checks.values())
        return HealthView(live=True, ready=ready, checks=checks)

    def _journal_check(self) -> HealthCheck:
        """/v1/health's journal check, in words that do not say where the journal is (the
        health answer needs no token): the runtime's reason for stopping is in /v1/status's
        `stopped`, and why a probe failed is logged once each time it changes."""
        runtime = self._runtime
        if runtime.stopped:
            return HealthCheck(ok=False, detail=JOURNAL_STOPPED_WORDS)
        try:
            runtime.journal.check_writable()
        except JournalError as exc:
            if str(exc) != self._journal_refusal:
                self._journal_refusal = str(exc)
                log.warning("journal_not_writable", error=self._journal_refusal)
            return HealthCheck(ok=False, detail=JOURNAL_REFUSES_WORDS)
        if self._journal_refusal:
            self._journal_refusal = ""
            log.info("journal_writable_again")
        return HealthCheck(ok=True)

    # -- no engine access

    @staticmethod
    def unavailable_health(detail: str) -> HealthView:
        return HealthView(live=False, ready=False,
                          checks={"engine": HealthCheck(ok=False, detail=detail)})

    @staticmethod
    def export_gauges(view: StatusView, metrics: ServiceMetrics) -> None:
        """The state gauges from `view`. Once the gateway stopped on a failed journal write,
        exposure and throttle utilisation have no samples: the engine's figures may include
        work that was never stored, and a gauge cannot say so beside its value."""
        stopped = bool(view.stopped)
        if not stopped:  # STOPPED is no trading mode: the gauge keeps the engine's at the stop
            metrics.set_mode(Mode(view.mode))
        metrics.set_exposure(
            row for e in view.exposure if not stopped for row in (
                (e.account, "gross", float(e.gross),
                 None if e.gross_cap is None else float(e.gross_cap)),
                (e.account, "net", float(e.net),
                 None if e.net_cap is None else float(e.net_cap)),
            ))
        metrics.set_throttles((w.scope, w.key, w.utilisation) for w in view.rate_windows
                              if not stopped)
        metrics.journal_lag.set(view.journal.lag)
        metrics.set_breakers((b.name, b.state) for b in view.breakers)
