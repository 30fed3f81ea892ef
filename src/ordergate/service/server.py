"""Assembling the gateway service: Runtime + engine thread + alerts + metrics + HTTP app, and
running it under uvicorn.

`Gateway` is what `ordergate serve` runs and what the tests start on an ephemeral port. It
opens nothing itself: the caller opens the Runtime (journal recovery happens there) and hands
it over, with the journal's URL (decisions the index has let go are read from the journal
through a reader of their own, `journal_lookup.JournalDecisions`); `close()` stops the engine
thread first, closes that reader, then closes the Runtime (a final flush).

Every batch goes through the guard (`runtime.health.GuardedRuntime`) on the wall clock (or an
injected `Clock`): circuit breakers on the broker and the feed, reconnect probes (the idle
ticks keep them going while no request arrives), clock sync against a broker with a clock of
its own, reconciliation before the first batch and every N batches, automatic halts on
authentication failures and disconnect storms. Breaker states are in `GET /v1/status`
(`breakers`) and in `/metrics` (`ordergate_circuit_state`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import structlog
import uvicorn

from ordergate.journal.base import JournalRecord, RecordKind
from ordergate.model.decision import Decision
from ordergate.model.events import Alert, ClockTick, InputEvent, ModeChanged, OutputEvent
from ordergate.model.intent import OrderIntent
from ordergate.resilience.clock import Clock, SystemClock
from ordergate.runtime.health import GuardedRuntime, GuardSettings, settings_for
from ordergate.runtime.loop import BatchReport, Runtime
from ordergate.service.alerts import AlertRouter, AlertSink, alert_router
from ordergate.service.app import create_app
from ordergate.service.auth import TokenStore
from ordergate.service.bridge import (
    DecisionIndex,
    Emitted,
    EngineBridge,
    EngineMemory,
    EngineSkew,
    utc_now,
)
from ordergate.service.context import ServiceContext
from ordergate.service.journal_lookup import JournalDecisions
from ordergate.service.limits import MAX_BODY_BYTES
from ordergate.service.metrics import ServiceMetrics
from ordergate.service.status import Inspector, ModeTimeline

log = structlog.get_logger("ordergate.service.server")

# What the listeners of `Gateway._after_batch` react to among a batch's outputs.
_WATCHED = (Decision, ModeChanged, Alert)


class GuardedBatches:
    """What the engine thread runs each batch through: the guard, whose start-up
    reconciliation comes first, before the first batch and at its time (so it too runs on the
    engine thread, the runtime's single writer)."""

    def __init__(self, guard: GuardedRuntime) -> None:
        self.guard = guard

    def process(self, events: Sequence[InputEvent], *,
                on_durable: Callable[[BatchReport], None] | None = None) -> BatchReport:
        guard = self.guard
        if not events or guard.started:
            return guard.process(events, on_durable=on_durable)
        state = guard.runtime.engine.state
        first = events[0].ts
        report = guard.start(max(first, state.now) if state.started else first)
        more = guard.process(events, on_durable=on_durable)
        more.emitted[:0] = report.emitted
        more.inputs += report.inputs
        return more


class Gateway:
    def __init__(self, runtime: Runtime | GuardedRuntime, tokens: TokenStore, *,
                 journal_url: str, webhook_url: str | None = None,
                 alert_sinks: Sequence[AlertSink] = (),
                 alerts: AlertRouter | None = None,
                 tick_interval_s: float | None = 1.0,
                 wall_clock: Callable[[], datetime] = utc_now,
                 max_body_bytes: int = MAX_BODY_BYTES,
                 reject_alert_threshold: int = 20,
                 guard_clock: Clock | None = None,
                 guard: GuardSettings | None = None) -> None:
        """`runtime`: a recovered Runtime, guarded here on `guard_clock` (default the
        machine's clock) with `guard` settings (default `runtime.health.settings_for` its
        broker), or an already guarded one. `journal_url`: the URL the runtime's journal was
        opened with, in full (the runtime keeps it redacted); decisions the index has let go
        are read back through a handle of their own opened with it (`JournalDecisions`). It
        is kept in memory only, never logged or shown. Alerts go to the log, `alert_sinks`
        and a webhook at `webhook_url`; or, instead, through `alerts`, a router built before
        the gateway (`ordergate serve` builds it before its start-up feed, so the feed's
        alerts are sent too)."""
        if isinstance(runtime, GuardedRuntime):
            self.guard = runtime
        else:
            self.guard = GuardedRuntime(
                runtime, guard_clock if guard_clock is not None else SystemClock(),
                settings_for(runtime.broker, guard))
        runtime = self.guard.runtime
        self.runtime = runtime
        self.metrics = ServiceMetrics()
        runtime.on_flush = self.metrics.journal_flush_seconds.observe
        self.timeline = ModeTimeline()
        index = DecisionIndex()
        recovered = index.load_journal(_records(runtime))
        self.timeline.load_journal(_records(runtime, kind=RecordKind.OUTPUT))
        self._wall_clock = wall_clock
        self._tick_interval_s = tick_interval_s
        self._last_activity = time.monotonic()
        runtime.take_engine_times()  # a replayed batch's, timed by the run that made them
        self.bridge = EngineBridge(GuardedBatches(self.guard), index=index,
                                   recall=EngineMemory(runtime), skew=EngineSkew(runtime),
                                   idle_events=self._idle_events,
                                   run_id=runtime.journal.run_id)
        self.inspector = Inspector(runtime, self.timeline,
                                   last_batch_seconds=lambda: self.bridge.stats.last_process_s,
                                   breakers=self.guard.breakers)
        if alerts is None:
            alerts = alert_router(run_id=runtime.journal.run_id, webhook_url=webhook_url,
                                  sinks=alert_sinks, reject_threshold=reject_alert_threshold)
        elif webhook_url or alert_sinks:
            raise ValueError("Gateway: give either `alerts` or `webhook_url`/`alert_sinks`")
        self.alerts = alerts
        for notice in alerts.raised:  # raised before the gateway: the start-up feed's
            self.metrics.alerts.labels(kind=notice.kind).inc()
        self.bridge.add_listener(self._after_batch)
        runtime.on_stopped = self._journal_failed
        self.journal_decisions = JournalDecisions(journal_url)
        self.ctx = ServiceContext(bridge=self.bridge, inspector=self.inspector, tokens=tokens,
                                  metrics=self.metrics, alerts=self.alerts,
                                  run_id=runtime.journal.run_id,
                                  journal_decisions=self.journal_decisions,
                                  max_body_bytes=max_body_bytes,
                                  wall_clock=wall_clock)
        # Set by `GatewayServer` when it starts shutting down: open event streams end.
        self.closing = asyncio.Event()
        self.app = create_app(self.ctx, closing=self.closing)
        log.info("gateway_ready", run_id=runtime.journal.run_id, recovered_decisions=recovered,
                 tokens=len(tokens))

    def _after_batch(self, inputs: Sequence[InputEvent], emitted: Sequence[Emitted]) -> None:
        self._last_activity = time.monotonic()
        # Metrics, the mode timeline and alerts look only at these; most of a batch's
        # outputs are orders and broker answers, so they are left out once, here.
        watched = [item for item in emitted if isinstance(item, _WATCHED)]
        self.metrics.observe_batch(inputs, watched, self.bridge.stats.last_process_s,
                                   self._engine_times())
        self.timeline.observe(inputs, watched)
        accounts = {event.intent_id: event.account for event in inputs
                    if isinstance(event, OrderIntent)}
        ts = inputs[-1].ts if inputs else utc_now()
        for notice in self.alerts.observe(watched, accounts, ts):
            self.metrics.alerts.labels(kind=notice.kind).inc()
        self.metrics.set_mode(self.runtime.engine.state.mode)

    def _journal_failed(self, why: str, outputs: list[OutputEvent]) -> None:
        """The runtime stopped, its journal failed (on the engine thread, inside the batch
        that failed): alert at once, with the engine's outputs for it, which no journal
        holds (so no batch listener ever sees them)."""
        mode = self.runtime.engine.state.mode
        for notice in self.alerts.journal_failed(why, outputs, ts=self._wall_clock(),
                                                 mode=mode.value):
            self.metrics.alerts.labels(kind=notice.kind).inc()
        self.metrics.set_mode(mode)

    def _engine_times(self) -> list[int]:
        """Nanoseconds the engine spent on each intent of the batch just processed (every
        batch the bridge runs is one source batch of the runtime)."""
        return self.runtime.take_engine_times()

    def _idle_events(self) -> list[InputEvent]:
        """A ClockTick at wall-clock time after `tick_interval_s` without any batch, so timers,
        staleness and broker polling go on while no intent arrives."""
        if self._tick_interval_s is None or self.runtime.stopped:
            return []
        if time.monotonic() - self._last_activity < self._tick_interval_s:
            return []
        self._last_activity = time.monotonic()
        return [ClockTick(ts=self._wall_clock())]

    def start(self) -> None:
        self.bridge.start()

    def close(self) -> None:
        self.bridge.stop()
        self.journal_decisions.close()
        self.alerts.close()
        self.guard.close()


def _records(runtime: Runtime, kind: RecordKind | None = None) -> Iterator[JournalRecord]:
    for record in runtime.journal.read(1):
        if kind is None or record.kind is kind:
            yield record


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 = an ephemeral port, read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# How long a shutdown waits for responses still being sent once the event streams have
# ended; then uvicorn cancels them, so a stuck response cannot keep the process (and the
# stream's lease) from a supervisor's stop.
GRACEFUL_SHUTDOWN_S = 10


def uvicorn_config(gateway: Gateway, *, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        gateway.app, loop="auto", http="auto", lifespan="off", log_level=log_level,
        access_log=False, server_header=False, date_header=False, timeout_keep_alive=30,
        limit_concurrency=4096, backlog=2048, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


class GatewayServer(uvicorn.Server):
    """uvicorn serving a Gateway. Shutting down (SIGTERM, Ctrl-C, `should_exit`) first ends
    the open GET /v1/events streams: uvicorn waits for every response to complete, and a
    stream ends only when told to (or when its client leaves)."""

    def __init__(self, gateway: Gateway, *, log_level: str = "warning") -> None:
        super().__init__(uvicorn_config(gateway, log_level=log_level))
        self.gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.gateway.closing.set()
        await super().shutdown(sockets)


class ServerThread:
    """uvicorn serving a Gateway on its own thread (tests, embedding). `url` once started."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> None:
        self.gateway = gateway
        self.sock = bind_socket(host, port)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        self.server = GatewayServer(gateway)
        self._thread = threading.Thread(target=self._serve, name="ordergate-http", daemon=True)

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.gateway.start()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self.sock.close()
        self.gateway.close()
