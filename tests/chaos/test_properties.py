"""For any interleaving of faults and intents, no order reaches the broker while the mode
forbids it: every broker submission is checked against the journaled mode at the point its
dispatch was decided, and no submit happens in a step the broker_submit circuit was open for.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordergate.brokers.sim import SubmitFault
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import ACCOUNT, ChaosRun, intent, quote
from ordergate.model.intent import Side
from ordergate.model.market import MarketSnapshot

Op = tuple[str, int]

OPS = st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 50)),
    st.tuples(st.just("sell"), st.integers(1, 50)),
    st.tuples(st.just("fail_submits"), st.integers(1, 6)),
    st.tuples(st.just("rate_limit"), st.integers(1, 4)),
    st.tuples(st.just("auth"), st.just(1)),
    st.tuples(st.just("fail_reads"), st.integers(1, 8)),
    st.tuples(st.just("halt_symbol"), st.just(1)),
    st.tuples(st.just("bad_quote"), st.just(1)),
    st.tuples(st.just("outside_change"), st.integers(-20, 20)),
    st.tuples(st.just("drift"), st.integers(-3, 3)),
    st.tuples(st.just("wait"), st.integers(1, 70)),
    st.tuples(st.just("resume"), st.just(1)),
)


def _apply(run: ChaosRun, op: Op, seconds: float, number: int) -> None:
    kind, value = op
    faults = run.broker.faults
    if kind in ("buy", "sell"):
        side = Side.BUY if kind == "buy" else Side.SELL
        run.step([quote("AAPL", seconds), intent(f"p-{number}", side, value, seconds)])
        return
    if kind == "fail_submits":
        faults.submit_fault, faults.fail_next_submits = SubmitFault.UNAVAILABLE, value
    elif kind == "rate_limit":
        faults.submit_fault, faults.fail_next_submits = SubmitFault.RATE_LIMITED, value
    elif kind == "auth":
        faults.submit_fault, faults.fail_next_submits = SubmitFault.AUTH, value
    elif kind == "fail_reads":
        faults.fail_next_reads = value
    elif kind == "halt_symbol":
        faults.halted_symbols ^= {"AAPL"}
    elif kind == "bad_quote":
        run.step([MarketSnapshot(symbol="AAPL", ts=quote("AAPL", seconds).ts,
                                 bid=Decimal("NaN"), ask=Decimal(-1), last=Decimal(0))])
        return
    elif kind == "outside_change":
        run.broker.set_position(ACCOUNT, "AAPL", run.position() + value, Decimal(190))
    elif kind == "drift":
        run.broker.clock_offset = timedelta(seconds=value)
    elif kind == "resume":
        run.resume(seconds)
        return
    run.quotes(seconds)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=3, max_size=14))
def test_no_order_is_dispatched_while_the_mode_forbids_it(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        with ChaosRun.open(Path(directory)) as run:
            run.start()
            run.step([quote("AAPL", 1), intent("seed", Side.BUY, 100, 1)])
            seconds = 2.0
            for number, op in enumerate(ops):
                seconds += op[1] if op[0] == "wait" else 1
                _apply(run, op, seconds, number)
            attempts = run.broker.submission_log()
            steps = list(run.steps)
            journal = run.journal_path
            facts = JournalFacts.read(journal)
        assert facts.unsafe_submissions(attempts) == []
        assert [step for step in steps if step.circuit_open and step.attempts] == []
        assert facts.exposure_growth_while_unsafe() == []
        # Every submission the broker took has a dispatch that was decided in the journal.
        assert {a.client_order_id for a in attempts} <= set(facts.dispatches)
