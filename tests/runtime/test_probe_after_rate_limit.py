"""After a 429 the broker is held unhealthy with its circuit closed; the guard probes it to
learn it answers again, but not before the venue's Retry-After has passed, and a probe that
fails then counts toward no circuit (only asking whether the broker answers is no failure of
a call the gateway needed). Once it answers, the reason clears and the mode it set says so."""

from __future__ import annotations

from pathlib import Path

from ordergate.brokers.sim import SubmitFault
from ordergate.chaos.harness import ChaosRun, intent, quote
from ordergate.model.intent import Side
from ordergate.model.modes import Mode
from ordergate.resilience.breakers import BreakerState
from ordergate.runtime.health import GuardSettings


def test_a_rate_limited_broker_is_probed_after_its_retry_after_without_opening_a_circuit(
        tmp_path: Path) -> None:
    settings = GuardSettings(probe_every_s=5.0, reconcile_every_batches=0, check_clock=False)
    with ChaosRun.open(tmp_path, settings=settings) as run:
        run.start()
        faults = run.broker.faults
        faults.submit_fault = SubmitFault.RATE_LIMITED
        faults.retry_after_s = 30.0
        faults.fail_next_submits = 1
        run.step([quote("AAPL", 1), intent("limited", Side.BUY, 10, 1)])
        assert run.mode() is Mode.REDUCE_ONLY and "SYS-011" in run.reason_codes()

        faults.fail_next_reads = 1  # the first probe the broker gets is refused
        for seconds in (6, 11, 16, 21, 26, 30):  # within Retry-After: no probe
            run.quotes(seconds)
        assert faults.fail_next_reads == 1
        run.quotes(32)  # the first probe fails, quietly
        assert faults.fail_next_reads == 0
        assert "SYS-011" in run.reason_codes() and "SYS-007" not in run.reason_codes()
        breakers = run.guard.broker_health.snapshot()
        assert all(breaker.state is BreakerState.CLOSED for breaker in breakers)

        run.quotes(38)  # the next one is answered
        assert "SYS-011" not in run.reason_codes()
        status = run.runtime.engine.status()
        assert run.mode() is Mode.REDUCE_ONLY and status.held_after is not None
        assert status.held_after.code == "SYS-011"
