"""Alerts: turn engine outputs into notices for people, and deliver them.

What raises an alert: a mode change, a circuit breaker opening (SYS-007), a reconciliation
mismatch (SYS-009), any Alert the engine emits, and repeated rejects (many DENY decisions for
one account in a short window). And two that come from no journaled output, because what they
report is that the journal can no longer be written: the journal failing (`journal_failed`,
SYS-006, with the engine's mode change for it) and `ordergate serve` losing its stream's lease
(`lease_lost`); each says it is not journaled. Sinks: the structured log (always) and a webhook
(optional).

The webhook sink never blocks the engine thread: `send` puts the alert on a bounded queue and
a few concurrent senders on a delivery thread POST it with httpx, each attempt bounded by an
overall deadline, retrying with exponential backoff until the alert's delivery deadline (5 s
after it was raised). Every alert carries a stable `alert_id` so a receiver can drop repeats.
An alert that cannot be delivered, for whatever reason, is logged at error level with its
code, severity and message; nothing here can slow down or stop trading.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import msgspec
import structlog

from ordergate.client import http_url_problem
from ordergate.evidence.manifest import redact_webhook_url
from ordergate.journal import redact_url
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import Alert, InputEvent, ModeChanged, OutputEvent
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY

log = structlog.get_logger("ordergate.alerts")

BREAKER_CODE = "SYS-007"
RECONCILIATION_CODE = "SYS-009"
JOURNAL_CODE = "SYS-006"
NOT_JOURNALED = "This alert is not journaled: the journal is what failed."
STOPPED_MODE = "STOPPED"  # as /v1/status reads once the journal failed
STOPPED_WORDS = ("Nothing is taken: every intent (risk-reducing ones too), market data and "
                 "operator command is refused (503) until the gateway restarts on a healthy "
                 "journal.")
DELIVERY_DEADLINE_S = 5.0
WEBHOOK_URL_ENV = "ORDERGATE_WEBHOOK_URL"  # `ordergate serve`'s webhook, kept out of `ps`


class AlertNotice(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One alert as sinks see it (and as the webhook body carries it)."""

    # mode_change | breaker_open | reconciliation_mismatch | repeated_rejects | engine |
    # journal_failed | lease_lost
    kind: str
    severity: str  # info | warning | critical
    code: str
    message: str
    ts: datetime
    run_id: str = ""
    intent_id: str = ""
    account: str = ""
    mode: str = ""  # ACTIVE | REDUCE_ONLY | HALTED, or STOPPED once the journal failed
    # Stable across the webhook's retries (and its Idempotency-Key header): a receiver drops
    # repeats by it. Random, so ids never collide across runs or restarts.
    alert_id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex)


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


class WebhookURLError(ValueError):
    """A webhook URL alerts cannot be POSTed to. The message names the problem and shows the URL
    only as `redact_webhook_url` renders it."""


def check_webhook_url(url: str) -> str:
    """`url`, if alerts can be POSTed to it: http or https, a host, a port from 1 to 65535 when
    one is given, no surrounding whitespace. Otherwise WebhookURLError."""
    problem = http_url_problem(url)
    if problem:
        raise WebhookURLError(f"'{redact_webhook_url(url)}': {problem}")
    return url


@dataclasses.dataclass(slots=True)
class _Pending:
    """An alert on its way to the webhook."""

    notice: AlertNotice
    body: bytes
    deadline: float  # on the sink's clock
    attempts: int = 0
    last_error: str = ""
    settled: bool = False  # delivered, or logged as undelivered


class WebhookSink:
    """POST each alert as JSON to a URL, from an event loop on a thread of its own, within the
    delivery deadline.

    * Every alert carries an `alert_id`, in the body and as the `Idempotency-Key` header, the
      same in every attempt: a receiver that got an attempt the sink gave up waiting for can
      drop the repeat.
    * Each attempt has an overall deadline (`attempt_timeout_s`, and never past the alert's
      own deadline for a retry): the attempt is cancelled then however the receiver dribbles
      its answer, not only when one read stalls. Only the status line and headers are awaited,
      never the body of the answer. The first attempt of an alert that waited past its deadline
      in the queue is still made in full (late beats never, and it is logged as late).
    * Alerts go out one after another, in the order they were raised, while the receiver
      keeps up (an alert retried at once still arrives before the next). One that has gone
      `stall_s` (1 s) without an answer no longer holds back the next: that one goes out
      beside it, up to `senders` (4) at once. So a receiver stuck on one alert delays a later
      alert (the HALT after a warning) by `stall_s` at most, well within its own deadline.
      Concurrent senders rather than newest- or critical-first ordering, because no ordering
      helps when the one alert in flight is the one stuck; a receiver that must order alerts
      that overtook each other uses `ts`.
    * Retries (connection errors, timeouts, 408, 429, 5xx) back off exponentially from
      `first_backoff_s` until the alert's deadline; other 4xx answers are final.
    * Nothing is lost silently: an alert not delivered (refused, out of time, dropped as the
      oldest of a full queue of `max_queue`), and every alert still queued or in flight when
      `close` has waited `drain_s` for them, is logged at error level
      (`alert_webhook_undelivered`, with its id, code, severity and message).

    `send` never blocks the caller: nothing here can slow down or stop trading. The URL is
    checked at once (`check_webhook_url`) and shown in logs only redacted.
    """

    def __init__(self, url: str, *, headers: dict[str, str] | None = None,
                 max_queue: int = 1000, deadline_s: float = DELIVERY_DEADLINE_S,
                 first_backoff_s: float = 0.1, attempt_timeout_s: float = DELIVERY_DEADLINE_S,
                 senders: int = 4, stall_s: float = 1.0, drain_s: float = DELIVERY_DEADLINE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = check_webhook_url(url)
        self.shown_url = redact_webhook_url(url)
        self._headers = dict(headers or {})
        self._deadline_s = deadline_s
        self._first_backoff_s = first_backoff_s
        self._attempt_timeout_s = attempt_timeout_s
        self._senders = max(1, senders)
        self._stall_s = stall_s
        self._in_flight: dict[asyncio.Task[None], _Pending] = {}
        self._drain_s = drain_s
        self._clock = clock
        self.delivered = 0
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._stopping = asyncio.Event()
        # `send` hands alerts to the loop only while accepting, so every alert handed over
        # reaches the loop before the stop does, and none after it is lost unlogged.
        self._accepting = True
        self._accepting_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ordergate-webhook", daemon=True)
        self._thread.start()

    def send(self, notice: AlertNotice) -> None:
        pending = _Pending(notice=notice, body=msgspec.json.encode(alert_fields(notice)),
                           deadline=self._clock() + self._deadline_s)
        with self._accepting_lock:
            if self._accepting:
                self._loop.call_soon_threadsafe(self._enqueue, pending)
                return
        self._give_up(pending, "the webhook sink is closed")

    def close(self) -> None:
        """Stop taking alerts, give those queued or in flight `drain_s` seconds to be
        delivered, then log each one still undelivered."""
        with self._accepting_lock:
            if not self._accepting:
                return
            self._accepting = False
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=self._drain_s + self._attempt_timeout_s + 1.0)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    def _enqueue(self, pending: _Pending) -> None:
        if self._queue.full():
            oldest = self._queue.get_nowait()
            self._queue.task_done()
            self._give_up(oldest, "the queue was full: dropped as the oldest")
        self._queue.put_nowait(pending)

    async def _serve(self) -> None:
        async with httpx.AsyncClient(headers=self._headers,
                                     timeout=httpx.Timeout(self._attempt_timeout_s)) as client:
            deliveries = asyncio.create_task(self._dispatch(client))
            await self._stopping.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self._drain_s)
            deliveries.cancel()
            await asyncio.wait([deliveries])
            in_flight = dict(self._in_flight)
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.wait(in_flight)
            for pending in in_flight.values():  # one cancelled before it ever ran
                if not pending.settled:
                    self._give_up(pending, "still being sent when the sink closed")
            while not self._queue.empty():
                self._give_up(self._queue.get_nowait(), "still queued when the sink closed")

    async def _dispatch(self, client: httpx.AsyncClient) -> None:
        """Start each alert's delivery in raise order; the next waits until this one is over
        or has gone `stall_s` without an answer, and for a free sender."""
        slots = asyncio.Semaphore(self._senders)
        while True:
            pending = await self._queue.get()
            try:
                await slots.acquire()
            except asyncio.CancelledError:
                self._give_up(pending, "still queued when the sink closed")
                raise
            task = asyncio.create_task(self._send_one(client, pending, slots))
            self._in_flight[task] = pending
            task.add_done_callback(self._in_flight.pop)
            await asyncio.wait([task], timeout=self._stall_s)

    async def _send_one(self, client: httpx.AsyncClient, pending: _Pending,
                        slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver(client, pending)
        except asyncio.CancelledError:
            self._give_up(pending, "still being sent when the sink closed"
                          + (f" (last error: {pending.last_error})"
                             if pending.last_error else ""))
            raise
        finally:
            slots.release()
            self._queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, pending: _Pending) -> None:
        backoff = self._first_backoff_s
        while True:
            pending.attempts += 1
            budget = self._attempt_timeout_s
            if pending.attempts > 1:
                budget = min(budget, pending.deadline - self._clock())
            status = await self._attempt(client, pending, budget)
            if 200 <= status < 300:
                self.delivered += 1
                pending.settled = True
                late_s = self._clock() - pending.deadline
                if late_s > 0:
                    log.warning("alert_webhook_late", late_s=round(late_s, 3),
                                **_described(pending))
                return
            if 400 <= status < 500 and status not in (408, 429):
                self._give_up(pending, f"refused: HTTP {status}")
                return
            if self._clock() + backoff >= pending.deadline:
                self._give_up(pending, pending.last_error)
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _attempt(self, client: httpx.AsyncClient, pending: _Pending,
                       budget: float) -> int:
        """One POST, over within `budget` seconds: its HTTP status, or 0 with
        `pending.last_error` saying what went wrong."""
        headers = {"Content-Type": "application/json",
                   "Idempotency-Key": pending.notice.alert_id}
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                # The status is the answer; a body is never awaited (closing the response
                # unread drops the connection).
                response = await client.send(
                    client.build_request("POST", self._url, content=pending.body,
                                         headers=headers), stream=True)
                await response.aclose()
        except TimeoutError:
            pending.last_error = f"no answer within {budget:.3g} s"
            return 0
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # InvalidURL is not an HTTPError; the URL was checked up front, but a delivery
            # error must never end a sender.
            pending.last_error = type(exc).__name__
            return 0
        if response.status_code >= 300:
            pending.last_error = f"HTTP {response.status_code}"
        return response.status_code

    def _give_up(self, pending: _Pending, reason: str) -> None:
        pending.settled = True
        self.dropped += 1
        log.error("alert_webhook_undelivered", reason=reason, attempts=pending.attempts,
                  webhook=self.shown_url, **_described(pending))


def _described(pending: _Pending) -> dict[str, Any]:
    notice = pending.notice
    return {"alert_id": notice.alert_id, "kind": notice.kind, "severity": notice.severity,
            "code": notice.code, "message": notice.message, "alert_ts": rfc3339_utc(notice.ts)}


def alert_router(*, run_id: str, webhook_url: str | None = None,
                 sinks: Sequence[AlertSink] = (), reject_threshold: int = 20) -> AlertRouter:
    """The router a gateway alerts through: the log, then `sinks`, then a webhook at
    `webhook_url` (checked at once: WebhookURLError)."""
    chosen: list[AlertSink] = [LogSink(), *sinks]
    if webhook_url:
        chosen.append(WebhookSink(webhook_url))
    return AlertRouter(chosen, run_id=run_id, reject_threshold=reject_threshold)


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

    def journal_failed(self, why: str, outputs: Iterable[OutputEvent], *, ts: datetime,
                       mode: str) -> list[AlertNotice]:
        """The journal could not be written and the runtime stopped (`why`, its words):
        raise a critical `journal_failed` alert (SYS-006), and the engine's `outputs` for the
        failure (its mode change; its own SYS-006 alert says less than this one and is left
        out), each saying it is not journaled. Every notice reads mode STOPPED, as /v1/status
        does: the engine's own mode (`mode`, tightened for the failure) would say that orders
        reducing risk still go through, and nothing does; its mode change is said as the
        gateway stopping, with the engine's change in brackets."""
        notices = [AlertNotice(
            kind="journal_failed", severity="critical", code=JOURNAL_CODE,
            message=(f"{redact_url(why)}. {STOPPED_WORDS} {NOT_JOURNALED}"),
            ts=ts, run_id=self._run_id, mode=STOPPED_MODE)]
        for output in outputs:
            if isinstance(output, ModeChanged):
                derived = [msgspec.structs.replace(
                    notice, severity="critical",
                    message=f"gateway STOPPED (the engine's {notice.message}): {STOPPED_WORDS}")
                    if notice.kind == "mode_change" else notice
                    for notice in self._mode_changed(output)]
            elif isinstance(output, Alert) and output.code != JOURNAL_CODE:
                derived = [self._engine_alert(output)]
            else:
                continue
            notices.extend(msgspec.structs.replace(
                notice, mode=STOPPED_MODE,
                message=f"{notice.message.rstrip('.')}. {NOT_JOURNALED}") for notice in derived)
        for notice in notices:
            self.emit(notice)
        return notices

    def lease_lost(self, stream: str, why: str, *, ts: datetime) -> list[AlertNotice]:
        """`ordergate serve` lost the lease of its journal's `stream` (`why`): it stops
        serving. Raised from the lease keeper's thread (the sinks take alerts from any)."""
        notice = AlertNotice(
            kind="lease_lost", severity="critical", code=JOURNAL_CODE,
            message=(f"{redact_url(stream)}: the gateway lost the lease of its journal's "
                     f"stream ({redact_url(why)}); it stops serving (exit 3) and writes nothing "
                     "more: another process may own the stream now. This alert is not "
                     "journaled: this process may no longer write the journal."),
            ts=ts, run_id=self._run_id)
        self.emit(notice)
        return [notice]

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
