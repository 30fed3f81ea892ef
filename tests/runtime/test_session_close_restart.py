"""A session close that a crash kept from running runs when the gateway restarts.

`ordergate run` is killed (a real SIGKILL) after the batch that rolls the trading day is
durable and before its session close: the previous day's DAY order is still working. The next
start cancels it exactly as the live close would have (the same CancelRequest and summary,
byte for byte, as an uninterrupted run), leaves the GTC order alone, and a later restart adds
nothing.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
from tests.runtime import harness
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path

from ordergate.engine.ids import derive_client_order_id
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.runtime.demo_data import write_events
from ordergate.runtime.loop import rebuild

NEXT_DAY = START.replace(hour=0) + timedelta(days=1)  # the UTC day roll of the demo policy
DAY_ORDER = derive_client_order_id(ACCOUNT, "trend", "day-order")
GTC_ORDER = derive_client_order_id(ACCOUNT, "trend", "gtc-order")
# The rolling batch is durable and its market snapshot about to reach the simulated broker;
# its session close has not run.
AFTER_ROLLING_BATCH = "before_market_to_broker:1"


def _quote(ts_seconds_after: float, *, day_two: bool) -> MarketSnapshot:
    base = NEXT_DAY if day_two else START
    return MarketSnapshot(symbol="AAPL", ts=base + timedelta(seconds=ts_seconds_after),
                          bid=Decimal("189.95"), ask=Decimal("190.05"), last=Decimal("190.00"),
                          volume=Decimal(1000))


def _resting(intent_id: str, tif: TimeInForce, price: str) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=START + timedelta(seconds=2), account=ACCOUNT,
                       strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(10),
                       order_type=OrderType.LIMIT, limit_price=Decimal(price), tif=tif)


def _day_one() -> list[InputEvent]:
    return [AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
            _quote(1, day_two=False),
            _resting("day-order", TimeInForce.DAY, "187.00"),
            _resting("gtc-order", TimeInForce.GTC, "186.00")]


def _run(directory: Path, events: Path, fault: str | None = None) -> int:
    args = harness.run_args(events, demo_policy_path(), directory / "journal.db",
                            directory / "broker.db")
    return harness.wait_exit(harness.fork_run(args, fault))


def _records(journal: Path) -> list[tuple[RecordKind, bytes]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [(record.kind, record.payload) for record in handle.read()]
    finally:
        handle.close()


def _session_close_cancels(journal: Path) -> list[bytes]:
    return [payload for kind, payload in _records(journal)
            if kind is RecordKind.INPUT and payload.startswith(b'{"type":"cancel_request"')
            and b'"requested_by":"session_close"' in payload]


def _session_close_notes(journal: Path) -> list[bytes]:
    return [payload for kind, payload in _records(journal)
            if kind is RecordKind.META and payload.startswith(b'{"type":"og.session_close"')]


def _working(journal: Path) -> list[str]:
    return [order.client_order_id
            for order in rebuild(f"sqlite:///{journal}").status().open_orders]


def test_a_session_close_a_crash_interrupted_runs_on_restart_once(tmp_path: Path) -> None:
    day_one = tmp_path / "day-one.jsonl"
    write_events(day_one, _day_one())
    day_two = tmp_path / "day-two.jsonl"

    # Reference: the same runs uninterrupted; the day roll's session close runs live.
    reference = tmp_path / "reference"
    reference.mkdir()
    assert _run(reference, day_one) == 0
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(reference, day_two) == 0
    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True)])
    assert _run(reference, day_two) == 0
    live_cancels = _session_close_cancels(reference / "journal.db")
    live_notes = _session_close_notes(reference / "journal.db")
    assert len(live_cancels) == 1 and DAY_ORDER.encode() in live_cancels[0]
    assert len(live_notes) == 1

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    journal = crashed / "journal.db"
    assert _run(crashed, day_one) == 0
    assert sorted(_working(journal)) == sorted([DAY_ORDER, GTC_ORDER])
    # The first snapshot of the new day rolls it; the process dies before the close.
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(crashed, day_two, AFTER_ROLLING_BATCH) == harness.KILLED
    rolled = msgspec.json.encode(_quote(5, day_two=True))
    assert any(payload == rolled for kind, payload in _records(journal)
               if kind is RecordKind.INPUT)
    assert _session_close_cancels(journal) == [] and _session_close_notes(journal) == []
    assert DAY_ORDER in _working(journal)  # yesterday's DAY order still reserves exposure

    # The feed goes on; the restarted gateway closes the session before anything else.
    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True)])
    assert _run(crashed, day_two) == 0
    assert _session_close_cancels(journal) == live_cancels
    assert _session_close_notes(journal) == live_notes
    payloads = [payload for _, payload in _records(journal)]
    assert payloads.index(live_notes[0]) < payloads.index(
        msgspec.json.encode(_quote(10, day_two=True)))
    assert _working(journal) == [GTC_ORDER]
    ok, message = harness.verify(journal)
    assert ok, message

    # A later restart finds nothing left to close.
    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True),
                           _quote(15, day_two=True)])
    assert _run(crashed, day_two) == 0
    assert _session_close_cancels(journal) == live_cancels
    assert _session_close_notes(journal) == live_notes
    assert _working(journal) == [GTC_ORDER]
