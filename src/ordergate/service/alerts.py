"""Alerts: turn engine outputs into notices for people, and deliver them.

What raises an alert: a mode change, a circuit breaker opening (SYS-007), a reconciliation
mismatch (SYS-009), any Alert the engine emits, and repeated rejects (many DENY decisions for
one account in a short window). Sinks: the structured log (always) and a webhook (optional).

The webhook sink never blocks the engine thread: `send` puts the alert on a bounded queue and
a delivery thread POSTs it with httpx, retrying with exponential backoff until the alert's
delivery deadline (5 s after it was raised). A full queue drops the oldest alert and logs that
it did; nothing here can slow down or stop trading.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import msgspec
import structlog

from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Alert, InputEvent, ModeChanged, OutputEvent
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY

log = structlog.get_logger("ordergate.alerts")

BREAKER_CODE = "SYS-007"
RECONCILIATION_CODE = "SYS-009"
DELIVERY_DEADLINE_S = 5.0


class AlertNotice(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One alert as sinks see it (and as the webhook body carries it)."""

    kind: str  # mode_change | breaker_open | reconciliation_mismatch | repeated_rejects | engine
    severity: str  # info | warning | critical
    code: str
    message: str
    ts: datetime
    run_id: str = ""
    intent_id: str = ""
    account: str = ""
    mode: str = ""


def alert_fields(notice: AlertNotice) -> dict[str, Any]:
    """The notice as plain JSON-ready fields, as every sink carries it: `ts` is an RFC 3339 UTC
    string ending in 'Z' (a datetime object would reach a JSON log as its Python repr)."""
    fields: dict[str, Any] = msgspec.to_builtins(notice)
    fields["ts"] = rfc3339_utc(notice.ts)
    return fields


def rfc3339_utc(ts: datetime) -> str:
    """`2026-03-02T14:30:00Z`: the external contract's timestamp form (events carry UTC)."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AlertSink(Protocol):
    def send(self, notice: AlertNotice) -> None:
        """Hand the notice over; must not block the caller."""
        ...

    def close(self) -> None: ...


class LogSink:
    """Every alert goes to the structured log."""

    def send(self, notice: AlertNotice) -> None:
        level = {"critical": log.error, "warning": log.warning}.get(notice.severity, log.info)
        level("alert", **alert_fields(notice))

    def close(self) -> None:
        return None


class WebhookSink:
    """POST each alert as JSON to a URL, on a thread of its own, within the delivery deadline."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None,
                 max_queue: int = 1000, deadline_s: float = DELIVERY_DEADLINE_S,
                 first_backoff_s: float = 0.1, timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._deadline_s = deadline_s
        self._first_backoff_s = first_backoff_s
        self._clock = clock
        self._queue: queue.Queue[tuple[float, bytes] | None] = queue.Queue(maxsize=max_queue)
        self._client = httpx.Client(timeout=timeout_s, headers=headers or {})
        self._stopping = threading.Event()
        self.delivered = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="ordergate-webhook", daemon=True)
        self._thread.start()

    def send(self, notice: AlertNotice) -> None:
        item = (self._clock() + self._deadline_s, msgspec.json.encode(alert_fields(notice)))
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    log.warning("alert_webhook_queue_full", dropped_total=self.dropped)
                except queue.Empty:
                    pass

    def close(self) -> None:
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=self._deadline_s + 1)
        self._client.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(*item)

    def _deliver(self, deadline: float, body: bytes) -> None:
        backoff = self._first_backoff_s
        attempt = 0
        while True:
            attempt += 1
            problem = ""
            try:
                response = self._client.post(
                    self._url, content=body, headers={"content-type": "application/json"})
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    log.error("alert_webhook_refused", status=response.status_code)
                    return
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            now = self._clock()
            if self._stopping.is_set() or now + backoff >= deadline:
                self.dropped += 1
                log.error("alert_webhook_undelivered", attempts=attempt, last_error=problem)
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


class AlertRouter:
    """Derives AlertNotices from engine outputs and fans them out to the sinks.

    Repeated rejects: `reject_threshold` DENY decisions for one account within
    `reject_window_s` raise one alert; the next for that account waits a full window.
    """

    def __init__(self, sinks: Sequence[AlertSink], *, run_id: str = "",
                 reject_threshold: int = 20, reject_window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sinks = list(sinks)
        self._run_id = run_id
        self._reject_threshold = reject_threshold
        self._reject_window_s = reject_window_s
        self._clock = clock
        self._rejects: dict[str, collections.deque[float]] = {}
        self._quiet_until: dict[str, float] = {}
        self.raised: collections.deque[AlertNotice] = collections.deque(maxlen=200)

    def observe(self, outputs: Iterable[InputEvent | OutputEvent], accounts: dict[str, str],
                ts: datetime) -> list[AlertNotice]:
        """Raise alerts for a batch's outputs. `accounts` maps intent_id -> account."""
        notices: list[AlertNotice] = []
        for output in outputs:
            if isinstance(output, Decision):
                if output.decision is DecisionKind.DENY:
                    account = accounts.get(output.intent_id, "")
                    notice = self._count_reject(account, output, ts)
                    if notice is not None:
                        notices.append(notice)
            elif isinstance(output, ModeChanged):
                notices.extend(self._mode_changed(output))
            elif isinstance(output, Alert):
                notices.append(self._engine_alert(output))
        for notice in notices:
            self.emit(notice)
        return notices

    def emit(self, notice: AlertNotice) -> None:
        self.raised.append(notice)
        for sink in self._sinks:
            sink.send(notice)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()

    def _mode_changed(self, event: ModeChanged) -> list[AlertNotice]:
        codes = [reason.code for reason in event.reasons]
        words = "; ".join(_plain(reason.code, reason.detail) for reason in event.reasons)
        severity = {Mode.HALTED: "critical", Mode.REDUCE_ONLY: "warning"}.get(event.mode, "info")
        notices = [AlertNotice(
            kind="mode_change", severity=severity, code=codes[0] if codes else "",
            message=f"mode {event.previous.value} -> {event.mode.value} by {event.actor}"
                    + (f": {words}" if words else ""),
            ts=event.ts, run_id=self._run_id, mode=event.mode.value,
        )]
        for reason in event.reasons:
            kind = _special_kind(reason.code)
            if kind:
                notices.append(AlertNotice(
                    kind=kind, severity="critical", code=reason.code,
                    message=_plain(reason.code, reason.detail), ts=event.ts,
                    run_id=self._run_id, mode=event.mode.value,
                ))
        return notices

    def _engine_alert(self, event: Alert) -> AlertNotice:
        return AlertNotice(
            kind=_special_kind(event.code) or "engine", severity=event.severity.value,
            code=event.code, message=event.message, ts=event.ts, run_id=self._run_id,
            intent_id=event.intent_id,
        )

    def _count_reject(self, account: str, decision: Decision, ts: datetime) -> AlertNotice | None:
        now = self._clock()
        window = self._rejects.setdefault(account, collections.deque())
        window.append(now)
        while window and window[0] <= now - self._reject_window_s:
            window.popleft()
        if len(window) < self._reject_threshold or now < self._quiet_until.get(account, 0.0):
            return None
        self._quiet_until[account] = now + self._reject_window_s
        window.clear()
        return AlertNotice(
            kind="repeated_rejects", severity="warning", code=decision.blocking,
            message=(f"{self._reject_threshold} intents of account {account} denied within "
                     f"{self._reject_window_s:g} s; latest: {_plain(decision.blocking, '')}"),
            ts=ts, run_id=self._run_id, intent_id=decision.intent_id, account=account,
        )


def _special_kind(code: str) -> str:
    if code == BREAKER_CODE:
        return "breaker_open"
    if code == RECONCILIATION_CODE:
        return "reconciliation_mismatch"
    return ""


def _plain(code: str, detail: str) -> str:
    known = REGISTRY.get(code)
    meaning = known.meaning if known else code
    return f"{code} {meaning}" + (f" ({detail})" if detail else "")
