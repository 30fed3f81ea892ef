"""A DAY order never outlives its trading day under the simulated broker, whatever the batch
size. `ordergate run` shows the simulator a batch's quotes before the session close that
follows the batch runs; the simulator follows the gateway's trading days, so a quote of the
next day does not trade a DAY order of the day that ended, and the close cancels it.

Monday's DAY buy limit at 195 rests (the market is at 200); the next quote is Tuesday 14:31 at
190, past Monday's 16:00 New York close (21:00 UTC in November). It filled there at 195, and
with a large batch a DAY order filled weeks later."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from tests.runtime.harness import cli, journaled_outputs, write_jsonl

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import CancelRequest, Dispatch, Fill, InputEvent, OrderCanceled
from ordergate.model.intent import OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: day-order-session}
engine: {day_roll_calendar: XNYS}
defaults:
  max_market_data_age: 1d
  price_collar_pct: 20
"""
QUOTE = {"type": "market", "symbol": "AAPL", "bid": "199.99", "ask": "200.01", "last": "200",
         "volume": "1000000"}
LOW = {**QUOTE, "bid": "189.99", "ask": "190.01", "last": "190"}
EVENTS = [
    {"type": "account", "ts": "2026-11-23T14:00:00Z", "account": "ACC1", "cash": "1000000"},
    {**QUOTE, "ts": "2026-11-23T15:00:00Z"},
    {"type": "intent", "ts": "2026-11-23T15:00:01Z", "intent_id": "mon-day-limit",
     "account": "ACC1", "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "50",
     "order_type": "limit", "limit_price": "195", "tif": "day"},
    {**QUOTE, "ts": "2026-11-23T20:59:00Z"},
    {**LOW, "ts": "2026-11-24T14:31:00Z"},
    {**LOW, "ts": "2026-11-24T15:00:00Z"},
]
MONDAY_CLOSE = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


def _order_events(journal: Path, client_order_id: str) -> list[InputEvent]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    decoder = msgspec.json.Decoder(InputEvent)
    try:
        events = [decoder.decode(record.payload) for record in handle.read()
                  if record.kind is RecordKind.INPUT]
    finally:
        handle.close()
    return [event for event in events if isinstance(event, Fill | OrderCanceled | CancelRequest)
            and event.client_order_id == client_order_id]


@pytest.mark.parametrize("batch_size", ["1", "256"])
def test_a_day_order_is_canceled_at_its_close_and_never_filled(tmp_path: Path,
                                                               batch_size: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    events = write_jsonl(tmp_path / "day_order.jsonl", EVENTS)
    journal = tmp_path / "journal.db"
    ran = cli("run", "--policy", str(policy), "--journal", str(journal), "--batch-size",
              batch_size, str(events))
    assert ran.returncode == 0, ran.stderr
    [order] = journaled_outputs(journal, Dispatch)
    assert order.tif is TimeInForce.DAY
    # The session close after Monday's close cancels it, once; nothing fills it.
    happened = _order_events(journal, order.client_order_id)
    assert [type(event) for event in happened] == [CancelRequest, OrderCanceled], happened
    assert isinstance(happened[0], CancelRequest)
    assert happened[0].requested_by == "session_close"
    assert all(event.ts > MONDAY_CLOSE for event in happened)
    assert '"type":"fill"' not in ran.stdout
    assert cli("replay", "verify", "--journal", str(journal)).returncode == 0


def _order(tif: TimeInForce, ts: datetime) -> Dispatch:
    return Dispatch(ts=ts, client_order_id=f"c-{tif.value}", intent_id=f"i-{tif.value}",
                    account="ACC1", strategy="s", symbol="AAPL", side=Side.BUY,
                    qty=Decimal(50), order_type=OrderType.LIMIT, limit_price=Decimal(195),
                    tif=tif)


def _quote(ts: datetime, price: str) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=Decimal(price) - Decimal("0.01"),
                          ask=Decimal(price) + Decimal("0.01"), last=Decimal(price))


def _monday_close(ts: datetime) -> datetime:
    return MONDAY_CLOSE if ts < MONDAY_CLOSE else datetime(2026, 11, 24, 21, tzinfo=UTC)


def _tuesday_fills(state: Path | None) -> list[str]:
    """A DAY and a GTC buy limit at 195 rest on Monday; Tuesday's quote at 190 comes next (with
    a restart of the simulator from its state file in between when `state` is given)."""
    monday = datetime(2026, 11, 23, 15, tzinfo=UTC)
    broker = SimBroker(SimConfig(state_path=None if state is None else str(state)))
    broker.follow_sessions(_monday_close)
    broker.on_market(_quote(monday, "200"))
    for tif in (TimeInForce.DAY, TimeInForce.GTC):
        assert broker.submit(_order(tif, monday)).accepted
    if state is not None:
        broker.close()
        broker = SimBroker(SimConfig(state_path=str(state)))
        broker.follow_sessions(_monday_close)
    tuesday = datetime(2026, 11, 24, 14, 31, tzinfo=UTC)
    broker.on_market(_quote(tuesday, "190"))
    broker.submit(msgspec.structs.replace(_order(TimeInForce.DAY, tuesday),
                                          client_order_id="c-tuesday"))
    fills = [event.client_order_id for event in broker.poll_events(tuesday)
             if isinstance(event, Fill)]
    # The ended day's DAY order is still working there, for the session close to cancel.
    day = broker.get_order("c-day")
    assert day is not None and day.status.value == "new" and day.filled_qty == 0
    broker.close()
    return fills


@pytest.mark.parametrize("saved", [False, True])
def test_the_simulator_does_not_trade_a_day_order_after_its_day(tmp_path: Path,
                                                                saved: bool) -> None:
    # The GTC order fills on Tuesday's quote, and a DAY order sent on Tuesday fills on receipt.
    assert _tuesday_fills(tmp_path / "sim.db" if saved else None) == ["c-gtc", "c-tuesday"]
