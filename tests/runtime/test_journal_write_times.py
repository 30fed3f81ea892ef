"""The journal latency the service reports (`Runtime.on_flush`) times every write of records
to storage, the commit with its fsync: one per batch under `batch` durability, and under
`always` every record's own commit, which `append` makes itself (a flush then finds nothing
left to write and is not counted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.runtime.scenario import demo_policy_path, scenario_events

from ordergate.brokers.sim import SimBroker
from ordergate.journal import Durability, open_journal
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import Runtime


@pytest.mark.parametrize("durability", [Durability.BATCH, Durability.ALWAYS])
def test_every_write_to_storage_is_timed_once(tmp_path: Path, durability: Durability) -> None:
    journal = open_journal(f"sqlite:///{tmp_path / 'j.db'}", durability=durability)
    runtime = Runtime.open_on(journal, load_policy(demo_policy_path()), SimBroker())
    times: list[float] = []
    runtime.on_flush = times.append
    try:
        before = journal.last_seq()
        runtime.process(scenario_events(3)[:4], source="events.jsonl", line=1)
        written = journal.last_seq() - before
    finally:
        runtime.close()
    assert written > 4
    assert all(seconds >= 0 for seconds in times)
    if durability is Durability.ALWAYS:
        assert len(times) == written  # each record committed as it was appended
    else:
        # the source batch, then each broker round's feedback batch: one commit each, and
        # never more commits than records
        assert 1 <= len(times) < written
