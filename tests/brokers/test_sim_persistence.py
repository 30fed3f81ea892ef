"""The simulator's book survives its process: reopening the same state file is the same
broker, even after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.brokers.base import BrokerError
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.model.events import Dispatch, Fill
from ordergate.model.intent import OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.values import utc

T0 = utc(2024, 3, 1, 15)
END = utc(2030, 1, 1)


def _config(path: Path | None) -> SimConfig:
    return SimConfig(fill_model=FillModel.NEXT_MARKET, max_participation_pct=Decimal(20),
                     reject_probability=0.3, seed=99, ack_latency=timedelta(milliseconds=4),
                     state_path=str(path) if path else None)


def _dispatch(n: int) -> Dispatch:
    return Dispatch(ts=T0 + timedelta(milliseconds=10 * n), client_order_id=f"a-s-{n:04d}",
                    intent_id=f"i-{n}", account="a", strategy="s", symbol="AAPL",
                    side=Side.BUY if n % 3 else Side.SELL, qty=Decimal(7 + n),
                    order_type=OrderType.MARKET)


def _quote(n: int) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=T0 + timedelta(milliseconds=10 * n + 5),
                          bid=Decimal(100 + n % 4), ask=Decimal(101 + n % 4),
                          volume=Decimal(40))


def _step(broker: SimBroker, n: int, out: list[object]) -> None:
    out.append(broker.submit(_dispatch(n)))
    if n % 4 == 0:
        out.append(broker.submit(_dispatch(n - 1)))  # a duplicate now and then
    broker.on_market(_quote(n))
    out.extend(broker.poll_events(T0 + timedelta(milliseconds=10 * n)))


def test_reopened_broker_continues_exactly_like_an_uninterrupted_one(tmp_path: Path) -> None:
    reference = SimBroker(_config(None))
    expected: list[object] = []
    for n in range(1, 21):
        _step(reference, n, expected)
    expected.extend(reference.poll_events(END))

    path = tmp_path / "broker.sqlite"
    got: list[object] = []
    broker = SimBroker(_config(path))
    for n in range(1, 21):
        _step(broker, n, got)
        if n % 7 == 0:  # restart the "broker process" now and then
            broker.close()
            broker = SimBroker(_config(path))
    got.extend(broker.poll_events(END))

    assert got == expected
    assert broker.submissions() == reference.submissions()
    assert broker.positions() == reference.positions()
    assert broker.open_orders() == reference.open_orders()
    assert broker.server_time() == reference.server_time()
    broker.close()


@settings(max_examples=15, deadline=None)
@given(restarts=st.sets(st.integers(1, 16), max_size=6),
       cancels=st.sets(st.integers(1, 16), max_size=6))
def test_restarting_at_any_points_changes_nothing(restarts: set[int], cancels: set[int]) -> None:
    def run(path: Path | None) -> tuple[list[object], list[str]]:
        broker = SimBroker(_config(path))
        out: list[object] = []
        for n in range(1, 17):
            _step(broker, n, out)
            if n in cancels:
                for working in broker.open_orders()[:1]:
                    broker.cancel(working.client_order_id)
            if path is not None and n in restarts:
                broker.close()
                broker = SimBroker(_config(path))
        out.extend(broker.poll_events(END))
        out.extend(broker.positions())
        out.extend(broker.open_orders())
        broker.close()
        return out, broker.submissions()

    with tempfile.TemporaryDirectory() as scratch:
        assert run(Path(scratch) / "broker.sqlite") == run(None)


def test_faults_and_clock_offset_persist(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite"
    broker = SimBroker(SimConfig(state_path=str(path)))
    broker.faults.drop_next_acks = 2
    broker.faults.halted_symbols.add("TSLA")
    broker.clock_offset = timedelta(seconds=3)
    broker.close()
    reopened = SimBroker(SimConfig(state_path=str(path)))
    assert reopened.faults.drop_next_acks == 2
    assert reopened.faults.halted_symbols == {"TSLA"}
    assert reopened.clock_offset == timedelta(seconds=3)
    reopened.close()


def test_unreadable_state_file_is_refused_with_its_path(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "broker.sqlite"
    SimBroker(SimConfig(state_path=str(path))).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE sim_meta SET body = ? WHERE id = 1", (b"{not json",))
    with pytest.raises(BrokerError, match=str(path)):
        SimBroker(SimConfig(state_path=str(path)))


_CHILD = textwrap.dedent("""
    import sys
    from datetime import timedelta
    from decimal import Decimal
    from ordergate.brokers.sim import SimBroker, SimConfig
    from ordergate.model.events import Dispatch
    from ordergate.model.intent import OrderType, Side
    from ordergate.model.values import utc

    broker = SimBroker(SimConfig(state_path=sys.argv[1]))
    n = 0
    while True:
        n += 1
        result = broker.submit(Dispatch(
            ts=utc(2024, 3, 1) + timedelta(milliseconds=n), client_order_id=f"c-{n:06d}",
            intent_id=f"i-{n}", account="a", strategy="s", symbol="AAPL", side=Side.BUY,
            qty=Decimal(1), order_type=OrderType.LIMIT, limit_price=Decimal(10)))
        print(f"c-{n:06d} {result.accepted}", flush=True)
""")


def test_broker_state_survives_sigkill_of_its_process(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    confirmed = [child.stdout.readline().split()[0] for _ in range(25)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    broker = SimBroker(SimConfig(state_path=str(path)))
    seen = broker.submissions()
    # Every order the child saw accepted is known; at most the ones in flight are extra.
    assert seen[:25] == confirmed
    assert len(seen) == len(set(seen))
    for client_id in seen:
        assert broker.get_order(client_id) is not None
    # A restarted sender that resends everything it had confirmed gets duplicates refused.
    again = broker.submit(Dispatch(
        ts=T0, client_order_id=confirmed[-1], intent_id="i-x", account="a", strategy="s",
        symbol="AAPL", side=Side.BUY, qty=Decimal(1), order_type=OrderType.LIMIT,
        limit_price=Decimal(10)))
    assert not again.accepted
    assert broker.submissions()[-1] == confirmed[-1]
    broker.close()


def _limit(n: int, price: str) -> Dispatch:
    return Dispatch(ts=T0 + timedelta(seconds=n), client_order_id=f"lim-{n}", intent_id=f"l-{n}",
                    account="a", strategy="s", symbol="AAPL", side=Side.BUY, qty=Decimal(10),
                    order_type=OrderType.LIMIT, limit_price=Decimal(price))


def _touch(second: int, ask: str, volume: int = 1_000) -> MarketSnapshot:
    price = Decimal(ask)
    return MarketSnapshot(symbol="AAPL", ts=T0 + timedelta(seconds=second),
                          bid=price - 1, ask=price, volume=Decimal(volume))


def test_an_order_reports_the_event_time_of_its_latest_fill_across_a_reopen(
        tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite"
    config = SimConfig(max_participation_pct=Decimal(50), state_path=str(path))
    broker = SimBroker(config)
    broker.submit(_limit(1, "99"))
    broker.submit(_limit(2, "101"))
    assert broker.get_order("lim-1").filled_at is None  # type: ignore[union-attr]
    broker.on_market(_touch(5, "100", volume=10))  # lim-2 takes 5 of the 10 it may trade
    broker.on_market(_touch(9, "100", volume=10))  # and the other 5
    broker.on_market(_touch(12, "98", volume=40))  # lim-1 in full
    broker.close()
    broker = SimBroker(config)
    try:
        first, second = broker.get_order("lim-1"), broker.get_order("lim-2")
        assert first is not None and second is not None
        assert (first.filled_qty, second.filled_qty) == (Decimal(10), Decimal(10))
        assert first.filled_at == T0 + timedelta(seconds=12)
        assert second.filled_at == T0 + timedelta(seconds=9)
        fills = [event for event in broker.poll_events(END) if isinstance(event, Fill)]
        assert [(fill.client_order_id, fill.ts) for fill in fills] == [
            ("lim-2", T0 + timedelta(seconds=5)), ("lim-2", T0 + timedelta(seconds=9)),
            ("lim-1", T0 + timedelta(seconds=12))]
    finally:
        broker.close()


def test_a_state_file_saved_before_fill_times_were_kept_still_loads(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "broker.sqlite"
    config = SimConfig(state_path=str(path))
    broker = SimBroker(config)
    broker.on_market(_touch(0, "100"))
    broker.submit(_limit(1, "101"))  # marketable: fills at once
    broker.submit(_limit(2, "95"))  # rests below the ask
    broker.close()
    # the orders as the simulator wrote them before it kept each one's latest fill time
    with sqlite3.connect(path) as db:
        for cid, body in db.execute("SELECT client_order_id, body FROM sim_orders").fetchall():
            saved = json.loads(body)
            assert "last_fill_ts" in saved
            del saved["last_fill_ts"]
            db.execute("UPDATE sim_orders SET body = ? WHERE client_order_id = ?",
                       (json.dumps(saved).encode(), cid))
    broker = SimBroker(config)
    try:
        filled = broker.get_order("lim-1")
        assert filled is not None and filled.filled_qty == Decimal(10)
        assert filled.filled_at is None  # not saved: not known
        broker.on_market(_touch(7, "94"))
        resting = broker.get_order("lim-2")
        assert resting is not None and resting.filled_qty == Decimal(10)
        assert resting.filled_at == T0 + timedelta(seconds=7)
    finally:
        broker.close()
