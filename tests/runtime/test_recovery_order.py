"""Fills the broker made and the gateway polled but never journaled (a SIGKILL right after
the poll) are booked by the restart in the order the orders were dispatched: a resting order
sent earlier and filled first comes before the order the last batch sent, so the average
price and realized PnL come out as in a run that never stopped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from tests.runtime import harness
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path

from ordergate.evidence.replay import verify_journal
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.events import AccountFunding, ClockTick, Fill, InputEvent
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.runtime.demo_data import write_events
from ordergate.runtime.loop import decode_input, rebuild
from ordergate.runtime.sources import FeedbackMark, decode_note

BATCH = "6"


def _quote(second: int, mid: str) -> MarketSnapshot:
    price = Decimal(mid)
    return MarketSnapshot(symbol="MSFT", ts=START + timedelta(seconds=second),
                          bid=price - Decimal("0.05"), ask=price + Decimal("0.05"), last=price,
                          volume=Decimal(100_000))


def _intent(number: int, second: int, side: Side, qty: int,
            limit: str | None = None) -> OrderIntent:
    return OrderIntent(
        intent_id=f"i-{number}", ts=START + timedelta(seconds=second, milliseconds=100),
        account=ACCOUNT, strategy="trend", symbol="MSFT", side=side, qty=Decimal(qty),
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        limit_price=Decimal(limit) if limit is not None else None)


def _events() -> list[InputEvent]:
    """Batches of six: the first buys 100 MSFT and rests a sell of 50 at 412; the second's
    first quote fills that sell, then a buy of 50 is sent and filled by the next quote."""
    return [
        AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
        _quote(1, "410"), _intent(1, 1, Side.BUY, 100), _quote(2, "410"),
        _intent(2, 2, Side.SELL, 50, limit="412"), _quote(3, "410"),
        _quote(4, "412.5"), _intent(3, 4, Side.BUY, 50), _quote(5, "413"), _quote(6, "413"),
        ClockTick(ts=START + timedelta(seconds=7)), _quote(8, "413"),
    ]


def _run(events: Path, directory: Path, fault: str | None) -> int:
    args = harness.run_args(events, demo_policy_path(), directory / "journal.db",
                            directory / "broker.db", "--durability", "always")
    args[args.index("--batch-size") + 1] = BATCH
    return harness.wait_exit(harness.fork_run(args, fault))


def _books(journal: Path) -> tuple[object, ...]:
    status = rebuild(f"sqlite:///{journal}").status()
    positions = tuple((p.symbol, p.qty, p.avg_price) for p in status.positions)
    return positions, tuple(account.realized_pnl for account in status.accounts)


def _recovered_fills(journal: Path) -> list[str]:
    """The client order ids of the fills the restart's recovery batch journaled, in order."""
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        fills: list[str] = []
        recovering = False
        for record in handle.read():
            if record.kind is RecordKind.META:
                note = decode_note(record.payload)
                if isinstance(note, FeedbackMark):
                    recovering = note.origin == "recovery"
            elif recovering and record.kind is RecordKind.INPUT:
                event = decode_input(record.payload)
                if isinstance(event, Fill):
                    fills.append(event.client_order_id)
        return fills
    finally:
        handle.close()


def test_fills_lost_at_a_kill_after_the_poll_are_booked_in_dispatch_order(
        tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, _events())
    reference, cut = tmp_path / "reference", tmp_path / "cut"
    reference.mkdir()
    cut.mkdir()
    assert _run(events, reference, None) == 0
    # the second poll is the one after the second batch: both fills are in it
    assert _run(events, cut, "after_poll:2") == harness.KILLED
    assert _run(events, cut, None) == 0

    books = _books(cut / "journal.db")
    assert books == _books(reference / "journal.db")
    # bought 100 at 410, sold 50 of them at 412.5 (+125), bought 50 more at 413
    assert books == ((("MSFT", Decimal(100), Decimal("411.50")),), (Decimal("125.00"),))
    # both fills were learnt by the restart (the kill lost them), the resting sell's first
    dispatched = harness.dispatched_ids(cut / "journal.db")
    assert len(dispatched) == 3
    resting_sell, last_buy = dispatched[1], dispatched[2]
    assert _recovered_fills(cut / "journal.db") == [resting_sell, last_buy]
    handle = open_journal(f"sqlite:///{cut / 'journal.db'}", durability=Durability.NONE,
                          create=False, reader=True)
    try:
        report = verify_journal(handle)
    finally:
        handle.close()
    assert report.ok, report
