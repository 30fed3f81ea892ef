"""Invariant 2, durable before acted on: every broker submit is preceded by a journal flush
that covers the record holding its Dispatch. The journal is a real SQLite journal and the
broker a real simulator; both are only instrumented to log the order of calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tests.runtime.scenario import demo_policy_path, scenario_events

from ordergate.brokers.base import SubmitResult
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.journal import Durability, JournalRecord, RecordKind, Snapshot, open_journal
from ordergate.journal.base import Journal, VerifyReport
from ordergate.model.events import CancelOrder, Dispatch
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import Runtime, decode_output


class CallLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []


class RecordingJournal:
    """A real journal; each flush is logged with the last seq it made durable."""

    def __init__(self, inner: Journal, log: CallLog) -> None:
        self.inner = inner
        self.log = log

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def durability(self) -> Durability:
        return self.inner.durability

    @property
    def run_id(self) -> str:
        return self.inner.run_id

    def append(self, kind: RecordKind, payload: bytes) -> int:
        return self.inner.append(kind, payload)

    def append_many(self, items: Sequence[tuple[RecordKind, bytes]]) -> list[int]:
        return self.inner.append_many(items)

    def flush(self) -> None:
        self.inner.flush()
        self.log.calls.append(("flush", self.inner.last_seq()))

    def last_seq(self) -> int:
        return self.inner.last_seq()

    def read(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[JournalRecord]:
        return self.inner.read(start_seq, end_seq)

    def save_snapshot(self, seq: int, state: bytes) -> None:
        self.inner.save_snapshot(seq, state)

    def latest_snapshot(self) -> Snapshot | None:
        return self.inner.latest_snapshot()

    def verify(self) -> VerifyReport:
        return self.inner.verify()

    def close(self) -> None:
        self.inner.close()


class RecordingBroker(SimBroker):
    """The real simulator; each submit and cancel is logged before it runs."""

    def __init__(self, config: SimConfig, log: CallLog) -> None:
        super().__init__(config)
        self.log = log

    def submit(self, order: Dispatch) -> SubmitResult:
        self.log.calls.append(("submit", order.client_order_id))
        return super().submit(order)

    def cancel(self, client_order_id: str) -> None:
        self.log.calls.append(("cancel", client_order_id))
        super().cancel(client_order_id)


def test_every_submit_and_cancel_follows_a_flush_covering_its_record(tmp_path: Path) -> None:
    log = CallLog()
    # ALWAYS would make every append durable on its own; BATCH is where the order matters.
    journal = RecordingJournal(
        open_journal(f"sqlite:///{tmp_path / 'j.db'}", durability=Durability.BATCH), log)
    broker = RecordingBroker(SimConfig(fill_model=FillModel.NEXT_MARKET), log)
    runtime = Runtime.open_on(journal, load_policy(demo_policy_path()), broker)
    events = scenario_events(30)
    for start in range(0, len(events), 16):
        runtime.process(events[start:start + 16])

    record_of: dict[tuple[str, str], int] = {}
    for record in journal.read():
        if record.kind is RecordKind.OUTPUT:
            output = decode_output(record.payload)
            if isinstance(output, Dispatch):
                record_of[("submit", output.client_order_id)] = record.seq
            elif isinstance(output, CancelOrder):
                record_of.setdefault(("cancel", output.client_order_id), record.seq)
    runtime.close()

    durable = 0
    checked = {"submit": 0, "cancel": 0}
    for name, value in log.calls:
        if name == "flush":
            assert isinstance(value, int)
            durable = value
            continue
        assert isinstance(value, str)
        seq = record_of[(name, value)]
        assert seq <= durable, f"{name} {value} (record {seq}) before a flush covered it " \
                               f"(durable through {durable})"
        checked[name] += 1
    assert checked["submit"] == len([k for k in record_of if k[0] == "submit"]) > 10
    assert checked["cancel"] > 0


class _AnswerFailed(Exception):
    pass


def test_a_failing_on_durable_callback_still_lets_the_durable_orders_go_out(
        tmp_path: Path) -> None:
    """The callback runs between the flush and the broker calls; if it raises, the batch is
    still acted on (nothing durable is left unsent) and the error reaches the caller after."""
    events = scenario_events(30)
    sent = []
    for name, callback in (("plain", None), ("failing", _fail)):
        broker = SimBroker(SimConfig())
        runtime = Runtime.open(f"sqlite:///{tmp_path / name}.db", load_policy(demo_policy_path()),
                               broker)
        if callback is None:
            runtime.process(events)
        else:
            with pytest.raises(_AnswerFailed):
                runtime.process(events, on_durable=callback)
        runtime.close()
        sent.append(broker.submissions())
    assert sent[0] and sent[1] == sent[0]


def _fail(report: object) -> None:
    raise _AnswerFailed("the caller could not be answered")
