"""A session close that a crash kept from running, or interrupted, runs when the gateway
restarts.

`ordergate run` is killed (a real SIGKILL) after the batch that rolls the trading day is
durable and before its session close: the previous day's DAY order is still working. The next
start cancels it exactly as the live close would have (the same CancelRequest and summary,
byte for byte, as an uninterrupted run), leaves the GTC order alone, and a later restart adds
nothing. The same holds when that batch was the file's last (the same command again, with no
new line, still closes the day), and when the kill comes inside the close, after its cancels
are durable and before its summary: the restart journals the summary without canceling
anything again.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from tests.runtime import harness
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path

from ordergate.engine.ids import derive_client_order_id
from ordergate.evidence.manifest import MANIFEST_PREFIX
from ordergate.journal import Durability, RecordKind, open_journal, snapfiles
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
# The close's CancelRequest is durable and sent, the broker's answer journaled, positions
# reconciled; its summary is not journaled.
INSIDE_THE_CLOSE = "session_close_before_summary:1"


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


def _run(directory: Path, events: Path, fault: str | None = None, *extra: str) -> int:
    args = harness.run_args(events, demo_policy_path(), directory / "journal.db",
                            directory / "broker.db", *extra)
    return harness.wait_exit(harness.fork_run(args, fault))


def _records(journal: Path) -> list[tuple[RecordKind, bytes]]:
    return [(kind, payload) for _, kind, payload in _numbered(journal)]


def _numbered(journal: Path) -> list[tuple[int, RecordKind, bytes]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [(record.seq, record.kind, record.payload) for record in handle.read()]
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


def _count(journal: Path, kind: RecordKind, prefix: bytes, client_order_id: str) -> int:
    return sum(1 for record_kind, payload in _records(journal)
               if record_kind is kind and payload.startswith(prefix)
               and f'"client_order_id":"{client_order_id}"'.encode() in payload)


def _without_manifests(journal: Path) -> list[tuple[RecordKind, bytes]]:
    """The journal but the run manifest every start records."""
    return [(kind, payload) for kind, payload in _records(journal)
            if not payload.startswith(MANIFEST_PREFIX)]


def _reference(directory: Path, day_one: Path, day_two: Path, *extra: str) -> None:
    """The uninterrupted runs: day one, the day roll (its close runs live), more of day two."""
    directory.mkdir()
    write_events(day_one, _day_one())
    assert _run(directory, day_one, None, *extra) == 0
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(directory, day_two, None, *extra) == 0
    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True)])
    assert _run(directory, day_two, None, *extra) == 0


def _wait_for_snapshot(journal: Path, seq: int) -> Path:
    """The snapshot file at `seq`, stored by the forked child of a run killed since (it
    outlives its parent; the file appears complete or not at all)."""
    path = snapfiles.path_for(snapfiles.directory_for(str(journal)), seq)
    for _ in range(600):
        if path.exists():
            break
        time.sleep(0.05)
    return path


@pytest.mark.parametrize("snapshot_every", ["50", "1"])
def test_a_close_killed_after_its_cancels_is_summarized_on_restart_without_canceling_again(
        tmp_path: Path, snapshot_every: str) -> None:
    extra = ("--snapshot-every", snapshot_every)
    day_one = tmp_path / "day-one.jsonl"
    day_two = tmp_path / "day-two.jsonl"
    reference = tmp_path / "reference"
    _reference(reference, day_one, day_two, *extra)
    live_cancels = _session_close_cancels(reference / "journal.db")
    live_notes = _session_close_notes(reference / "journal.db")
    assert len(live_cancels) == 1 and len(live_notes) == 1
    assert msgspec.json.decode(live_notes[0])["day_orders_canceled"] == [DAY_ORDER]

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    journal = crashed / "journal.db"
    assert _run(crashed, day_one, None, *extra) == 0
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(crashed, day_two, INSIDE_THE_CLOSE, *extra) == harness.KILLED
    # The close began: its CancelRequest is durable, and the order no longer looks left open.
    assert _session_close_cancels(journal) == live_cancels
    assert _session_close_notes(journal) == []
    if snapshot_every == "1":
        # The rolling batch ended with a snapshot, taken just before its close began: the
        # restart replays from there.
        [cancel_seq] = [seq for seq, kind, payload in _numbered(journal)
                        if kind is RecordKind.INPUT and payload == live_cancels[0]]
        close_mark = cancel_seq - 1
        snapshot = _wait_for_snapshot(journal, close_mark - 1)
        assert snapshot.exists(), f"no snapshot at the end of the rolling batch: {snapshot}"

    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True)])
    assert _run(crashed, day_two, None, *extra) == 0
    # One summary for the day, byte for byte the live one (same event time, same orders),
    # journaled before the feed went on.
    assert _session_close_notes(journal) == live_notes
    payloads = [payload for _, payload in _records(journal)]
    assert payloads.index(live_notes[0]) < payloads.index(
        msgspec.json.encode(_quote(10, day_two=True)))
    # The DAY order was asked to cancel once, sent to the broker once, canceled once.
    assert _session_close_cancels(journal) == live_cancels
    assert _count(journal, RecordKind.OUTPUT, b'{"type":"cancel",', DAY_ORDER) == 1
    assert _count(journal, RecordKind.INPUT, b'{"type":"canceled",', DAY_ORDER) == 1
    assert _working(journal) == [GTC_ORDER]
    assert harness.final_state(journal) == harness.final_state(reference / "journal.db")
    ok, message = harness.verify(journal)
    assert ok, message

    # A later restart finds nothing left to finish.
    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True),
                           _quote(15, day_two=True)])
    assert _run(crashed, day_two, None, *extra) == 0
    assert _session_close_notes(journal) == live_notes
    assert _session_close_cancels(journal) == live_cancels


def test_a_close_with_no_day_order_is_not_taken_for_an_interrupted_one(tmp_path: Path) -> None:
    """The close of a day without DAY orders journals only its summary: a restart adds none."""
    day_one = tmp_path / "day-one.jsonl"
    write_events(day_one, [event for event in _day_one()
                           if not (isinstance(event, OrderIntent)
                                   and event.tif is TimeInForce.DAY)])
    day_two = tmp_path / "day-two.jsonl"
    assert _run(tmp_path, day_one) == 0
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(tmp_path, day_two) == 0
    journal = tmp_path / "journal.db"
    notes = _session_close_notes(journal)
    assert [msgspec.json.decode(note)["day_orders_canceled"] for note in notes] == [[]]
    assert _session_close_cancels(journal) == []

    write_events(day_two, [_quote(5, day_two=True), _quote(10, day_two=True)])
    assert _run(tmp_path, day_two) == 0
    assert _session_close_notes(journal) == notes
    assert _working(journal) == [GTC_ORDER]


def test_the_same_command_again_closes_a_day_rolled_by_the_files_last_batch(
        tmp_path: Path) -> None:
    """Killed after the file's last batch rolled the day, before its close: re-running the
    same command reads no new line, and still closes the day."""
    day_one = tmp_path / "day-one.jsonl"
    write_events(day_one, _day_one())
    day_two = tmp_path / "day-two.jsonl"
    write_events(day_two, [_quote(5, day_two=True)])
    reference = tmp_path / "reference"
    reference.mkdir()
    assert _run(reference, day_one) == 0
    assert _run(reference, day_two) == 0
    live_cancels = _session_close_cancels(reference / "journal.db")
    live_notes = _session_close_notes(reference / "journal.db")
    assert len(live_cancels) == 1 and len(live_notes) == 1

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    journal = crashed / "journal.db"
    assert _run(crashed, day_one) == 0
    assert _run(crashed, day_two, AFTER_ROLLING_BATCH) == harness.KILLED
    assert _session_close_cancels(journal) == [] and _session_close_notes(journal) == []

    assert _run(crashed, day_two) == 0  # every line is journaled already
    assert _session_close_cancels(journal) == live_cancels
    assert _session_close_notes(journal) == live_notes
    assert _working(journal) == [GTC_ORDER]
    assert harness.final_state(journal) == harness.final_state(reference / "journal.db")
    ok, message = harness.verify(journal)
    assert ok, message


def test_the_same_command_again_on_a_finished_file_journals_nothing_new(
        tmp_path: Path) -> None:
    """Nothing to resume: no start-up reconciliation, no close, only the run's manifest."""
    day_one = tmp_path / "day-one.jsonl"
    write_events(day_one, _day_one())
    day_two = tmp_path / "day-two.jsonl"
    write_events(day_two, [_quote(5, day_two=True)])
    assert _run(tmp_path, day_one) == 0
    assert _run(tmp_path, day_two) == 0
    journal = tmp_path / "journal.db"
    before = _without_manifests(journal)
    assert _run(tmp_path, day_two) == 0
    assert _without_manifests(journal) == before
