"""What the HTTP layer reads about the running gateway, built on the engine thread.

`Inspector` turns the Runtime's engine status into the API's `StatusView` and `HealthView`.
Every method that touches the runtime is called through `EngineBridge.call`, so it runs on
the single engine thread and sees a consistent state between two batches. The mode timeline
is kept here from the ModeChanged outputs (recovered from the journal at start-up).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from ordergate.engine.status import EngineStatus
from ordergate.gate.view import RateScope
from ordergate.journal import redact_url
from ordergate.journal.base import JournalError, JournalRecord, RecordKind
from ordergate.model.events import InputEvent, ModeChanged, OutputEvent
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY
from ordergate.policy.limits import RateLimit
from ordergate.resilience.breakers import BreakerSnapshot
from ordergate.runtime.loop import Runtime, decode_output
from ordergate.service.metrics import ServiceMetrics
from ordergate.service.schemas import (
    ActiveReasonView,
    BreakerView,
    DependencyView,
    ExposureView,
    HealthCheck,
    HealthView,
    JournalView,
    PositionView,
    RateWindowView,
    StatusView,
    TimelineEntry,
)

TIMELINE_LENGTH = 200
_DATA_CODES = ("SYS-001", "SYS-002", "SYS-003")
_SNAPSHOT_REFRESH_S = 10.0


class ModeTimeline:
    """The latest mode changes, oldest first."""

    def __init__(self, length: int = TIMELINE_LENGTH) -> None:
        self._entries: collections.deque[TimelineEntry] = collections.deque(maxlen=length)

    def add(self, change: ModeChanged) -> None:
        self._entries.append(TimelineEntry(
            ts=change.ts, mode=change.mode.value, previous=change.previous.value,
            actor=change.actor, reasons=[reason.code for reason in change.reasons]))

    def observe(self, inputs: Sequence[InputEvent],
                outputs: Sequence[InputEvent | OutputEvent]) -> None:
        for output in outputs:
            if isinstance(output, ModeChanged):
                self.add(output)

    def load_journal(self, records: Iterable[JournalRecord]) -> None:
        for record in records:
            if record.kind is RecordKind.OUTPUT and b'"type":"mode"' in record.payload:
                output = decode_output(record.payload)
                if isinstance(output, ModeChanged):
                    self.add(output)

    def entries(self) -> list[TimelineEntry]:
        return list(self._entries)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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
        self._snapshot_seq = 0
        self._snapshot_checked = float("-inf")

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
        positions = [PositionView(account=p.account, symbol=p.symbol, qty=str(p.qty),
                                  avg_price=str(p.avg_price))
                     for p in status.positions if p.qty]
        exposure = [ExposureView(account=a.account, gross=str(a.gross_exposure),
                                 net=str(a.net_exposure), gross_cap=_text(a.max_gross_exposure),
                                 net_cap=_text(a.max_net_exposure))
                    for a in status.accounts]
        return StatusView(
            run_id=runtime.journal.run_id, mode=status.mode.value, reasons=reasons,
            positions=positions, exposure=exposure,
            rate_windows=self._rate_windows([a.account for a in status.accounts]),
            dependencies=self._dependencies(),
            journal=self._journal_view(), policy_hash=status.policy_hash,
            policy_name=status.policy_name, event_time=status.now,
            timeline=self.timeline.entries(),
            policy_monitor=runtime.engine.active is not None and runtime.engine.active.monitor,
            breakers=self._breaker_views(),
            shadow_policy_hash=status.shadow_policy_hash,
            shadow_policy_name=status.shadow_policy_name,
        )

    def _breaker_views(self) -> list[BreakerView]:
        if self._breakers is None:
            return []
        return [BreakerView(name=snap.name, state=snap.state.value,
                            opened_until=snap.opened_until, failures=snap.recent_failures)
                for snap in self._breakers()]

    def _rate_windows(self, accounts: list[str]) -> list[RateWindowView]:
        engine = self._runtime.engine
        active = engine.active
        if active is None:
            return []
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
        return views

    def _dependencies(self) -> list[DependencyView]:
        runtime = self._runtime
        views = [DependencyView(name="journal", healthy=not runtime.stopped,
                                state="healthy" if not runtime.stopped else "down",
                                detail=runtime.stopped)]
        for condition in runtime.engine.state.guard.conditions():
            if condition.key.startswith("dependency:"):
                views.append(DependencyView(
                    name=condition.key.removeprefix("dependency:"), healthy=False,
                    state="open" if condition.code == "SYS-007" else "down",
                    detail=condition.detail))
        return views

    def _journal_view(self) -> JournalView:
        journal = self._runtime.journal
        last = journal.last_seq()
        now = time.monotonic()
        if now - self._snapshot_checked >= _SNAPSHOT_REFRESH_S:
            self._snapshot_checked = now
            try:
                snapshot = journal.latest_snapshot()
            except JournalError:
                snapshot = None
            self._snapshot_seq = snapshot.seq if snapshot is not None else 0
        return JournalView(url=redact_url(journal.url), last_seq=last,
                           snapshot_seq=self._snapshot_seq, lag=last - self._snapshot_seq,
                           last_batch_seconds=(self._last_batch_seconds()
                                               if self._last_batch_seconds else 0.0))

    def health_view(self) -> HealthView:
        """Ready when the journal would accept a write now (`Journal.check_writable`, which
        adds no record), no broker dependency is down and market data is present and fresh."""
        runtime = self._runtime
        checks: dict[str, HealthCheck] = {"engine": HealthCheck(ok=True)}
        if runtime.stopped:
            checks["journal"] = HealthCheck(ok=False, detail=runtime.stopped)
        else:
            try:
                runtime.journal.check_writable()
                checks["journal"] = HealthCheck(ok=True)
            except JournalError as exc:
                checks["journal"] = HealthCheck(ok=False, detail=str(exc))
        conditions = runtime.engine.state.guard.conditions()
        # a failing broker call, or a broker breaker still open after the calls stopped failing
        broker_down = [c for c in conditions
                       if c.key.startswith(("dependency:broker", "dependency:circuit:broker"))]
        checks["broker"] = HealthCheck(
            ok=not broker_down,
            detail="; ".join(c.detail or c.code for c in broker_down))
        checks["data"] = self._data_check()
        ready = all(check.ok for check in checks.values())
        return HealthView(live=True, ready=ready, checks=checks)

    def _data_check(self) -> HealthCheck:
        engine = self._runtime.engine
        state = engine.state
        faults = [c for c in state.guard.conditions() if c.code in _DATA_CODES]
        if faults:
            return HealthCheck(ok=False, detail="; ".join(f"{c.code} {c.detail}" for c in faults))
        if not state.markets:
            return HealthCheck(ok=False, detail="no market data received yet")
        active = engine.active
        max_age = None if active is None else active.limits_for("*", "*", "*").max_market_data_age
        if max_age is None or not state.started:
            return HealthCheck(ok=True)
        stale = sorted(symbol for symbol, snapshot in state.markets.items()
                       if state.clock - snapshot.ts > max_age)
        if stale:
            return HealthCheck(ok=False, detail=f"stale market data (older than {max_age}): "
                                                + ", ".join(stale[:10]))
        return HealthCheck(ok=True)

    # -- no engine access

    @staticmethod
    def unavailable_health(detail: str) -> HealthView:
        return HealthView(live=False, ready=False,
                          checks={"engine": HealthCheck(ok=False, detail=detail)})

    @staticmethod
    def export_gauges(view: StatusView, metrics: ServiceMetrics) -> None:
        metrics.set_mode(Mode(view.mode))
        metrics.set_exposure(
            row for e in view.exposure for row in (
                (e.account, "gross", float(e.gross),
                 None if e.gross_cap is None else float(e.gross_cap)),
                (e.account, "net", float(e.net),
                 None if e.net_cap is None else float(e.net_cap)),
            ))
        metrics.set_throttles((w.scope, w.key, w.utilisation) for w in view.rate_windows)
        metrics.journal_lag.set(view.journal.lag)
        metrics.set_breakers((b.name, b.state) for b in view.breakers)
