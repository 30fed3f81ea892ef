"""Prometheus metrics of the gateway, on a registry of its own (one per app, so several apps
in one process, as in tests, never collide).

Counters and histograms are fed on the engine thread after every batch (`observe_batch`, with
the engine's own time per intent as the runtime measured it), at every journal flush
(`journal_flush_seconds`, through the Runtime's `on_flush`) and by the HTTP layer
(`request_observer`); gauges of state (mode, exposure against caps, throttle utilisation of
the global, account and busiest strategy and symbol windows, circuit breaker states) are set
from the engine status just before each scrape (`Inspector.export_gauges`). Once the gateway
stopped on a failed journal write, exposure and throttle utilisation have no samples (the
engine's figures may include work that was never stored) and the journal lag counts only
records that were written.

Every metric is listed, with its labels, meaning and unit, in docs/metrics.md (a test keeps
the two in step).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ordergate.model.decision import Decision
from ordergate.model.events import InputEvent, OutputEvent
from ordergate.model.modes import Mode

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Sub-millisecond to a second: the gate is expected to answer well under 10 ms.
# ordergate_circuit_state values, by BreakerState value.
CIRCUIT_LEVELS = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "ordergate_decisions", "Decisions by outcome and blocking reason code",
            ["decision", "reason"], registry=r)
        self.evaluation_seconds = Histogram(
            "ordergate_evaluation_seconds",
            "Engine time per intent: the engine's handling of one intent, journal writes, "
            "flushes and broker calls excluded",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "ordergate_batch_seconds",
            "Time to journal, evaluate, flush and dispatch one batch",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "ordergate_batch_events", "Events per engine batch (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096), registry=r)
        self.journal_flush_seconds = Histogram(
            "ordergate_journal_flush_seconds",
            "Journal write latency: one durable write (commit and fsync) of journal records, a "
            "batch's or, under always durability, each record's",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.request_seconds = Histogram(
            "ordergate_http_request_seconds", "HTTP request latency by route",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.http_responses = Counter(
            "ordergate_http_responses", "HTTP responses by route and status",
            ["route", "status"], registry=r)
        self.mode = Gauge("ordergate_mode", "1 for the current trading mode, 0 otherwise",
                          ["mode"], registry=r)
        self.exposure = Gauge("ordergate_exposure", "Account exposure at current marks",
                              ["account", "kind"], registry=r)
        self.exposure_cap = Gauge("ordergate_exposure_cap", "Account exposure cap",
                                  ["account", "kind"], registry=r)
        self.throttle_utilisation = Gauge(
            "ordergate_throttle_utilisation",
            "Orders in the rate window divided by the window's maximum",
            ["scope", "key"], registry=r)
        self.journal_lag = Gauge(
            "ordergate_journal_lag_records", "Journal records not yet in a snapshot",
            registry=r)
        self.alerts = Counter("ordergate_alerts", "Alerts raised by kind", ["kind"],
                              registry=r)
        self.circuit_state = Gauge(
            "ordergate_circuit_state",
            "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open",
            ["dependency"], registry=r)
        # Labelled children looked up once: `labels()` takes a lock and builds a key on every
        # call, which the per-request and per-batch paths would otherwise pay each time.
        self._responses: dict[tuple[str, int], Counter] = {}
        self._decision_children: dict[tuple[str, str], Counter] = {}
        self._mode_children = {mode: self.mode.labels(mode=mode.value) for mode in Mode}
        self.set_mode(Mode.ACTIVE)

    def observe_batch(self, inputs: Sequence[InputEvent],
                      outputs: Sequence[InputEvent | OutputEvent],
                      seconds: float, evaluation_ns: Iterable[int]) -> None:
        """A batch that took `seconds` in all; `evaluation_ns`: the engine's time on each of
        its intents, in nanoseconds."""
        self.batch_seconds.observe(seconds)
        observe = self.evaluation_seconds.observe
        for nanoseconds in evaluation_ns:
            observe(nanoseconds / 1e9)
        self.batch_size.observe(len(inputs))
        outcomes = Tally((output.decision.value, output.blocking or "none")
                         for output in outputs if isinstance(output, Decision))
        if not outcomes:
            return
        children = self._decision_children
        for key, count in outcomes.items():
            child = children.get(key)
            if child is None:
                child = children[key] = self.decisions.labels(decision=key[0], reason=key[1])
            child.inc(count)

    def request_observer(self, route: str) -> Callable[[int, float], None]:
        """`observe(status, seconds)` for one route's responses, its latency histogram
        looked up once."""
        latency = self.request_seconds.labels(route=route).observe
        responses = self._responses

        def observe(status: int, seconds: float) -> None:
            latency(seconds)
            counter = responses.get((route, status))
            if counter is None:
                counter = responses[(route, status)] = self.http_responses.labels(
                    route=route, status=str(status))
            counter.inc()

        return observe

    def set_mode(self, current: Mode) -> None:
        for mode, child in self._mode_children.items():
            child.set(1 if mode is current else 0)

    def set_exposure(self, rows: Iterable[tuple[str, str, float, float | None]]) -> None:
        """(account, kind, value, cap) rows of the accounts the status lists now; a cap of
        None is not exported. A cap the enforced policy no longer sets (or an account no
        longer listed) loses its sample instead of keeping a stale one."""
        self.exposure.clear()
        self.exposure_cap.clear()
        for account, kind, value, cap in rows:
            self.exposure.labels(account=account, kind=kind).set(value)
            if cap is not None:
                self.exposure_cap.labels(account=account, kind=kind).set(cap)

    def set_throttles(self, rows: Iterable[tuple[str, str, float]]) -> None:
        """(scope, key, utilisation) of the windows the status lists now: a strategy or symbol
        window that emptied (or left the busiest) loses its sample instead of keeping a stale
        one."""
        self.throttle_utilisation.clear()
        for scope, key, utilisation in rows:
            self.throttle_utilisation.labels(scope=scope, key=key).set(utilisation)

    def set_breakers(self, rows: Iterable[tuple[str, str]]) -> None:
        """(dependency, state) rows, state CLOSED, HALF_OPEN or OPEN."""
        for dependency, state in rows:
            self.circuit_state.labels(dependency=dependency).set(CIRCUIT_LEVELS[state])

    def render(self) -> bytes:
        return generate_latest(self.registry)
