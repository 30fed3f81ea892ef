"""A PostgreSQL stream whose lease a gateway holds can still be read and proven: `journal
verify`, `journal head`, `replay verify`, `decisions` and `status` open it as readers
(`open_journal(..., reader=True)`), which the lease check at open does not refuse, while a
write through a reader is still fenced."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest

from ordergate.journal import Durability, JournalError, RecordKind, open_journal
from ordergate.journal.lease import ShardLease
from ordergate.model.events import ClockTick
from ordergate.model.values import utc

pytestmark = pytest.mark.postgres


@pytest.fixture
def leased_stream(postgres_url: str) -> Iterator[str]:
    """A stream with records written by the holder of its lease, which it keeps holding."""
    url = f"{postgres_url}&stream=leased-{uuid.uuid4().hex[:6]}"
    lease = ShardLease(url)
    epoch = lease.acquire(timeout_s=5)
    assert epoch is not None
    writer = open_journal(url, epoch=epoch, durability=Durability.BATCH)
    for second in range(5):  # inputs a replay can replay
        tick = ClockTick(ts=utc(2026, 3, 2, 14, 30) + timedelta(seconds=second))
        writer.append(RecordKind.INPUT, msgspec.json.encode(tick))
    writer.close()
    try:
        yield url
    finally:
        lease.release()


def _ordergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", [
    ("journal", "verify"), ("journal", "head"), ("replay", "verify"), ("decisions",),
    ("status",),
])
def test_a_leased_stream_is_read_and_verified_by_the_cli(leased_stream: str,
                                                         command: tuple[str, ...]) -> None:
    done = _ordergate(*command, "--journal", leased_stream)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0, said
    assert "fenced" not in said and "Traceback" not in said


def test_a_reader_is_not_refused_at_open_but_its_writes_are_fenced(leased_stream: str) -> None:
    with pytest.raises(JournalError, match="fenced"):
        open_journal(leased_stream, create=False)  # a writer without the lease's epoch
    reader = open_journal(leased_stream, durability=Durability.ALWAYS, create=False, reader=True)
    try:
        assert [record.seq for record in reader.read()] == [1, 2, 3, 4, 5]
        assert reader.verify().ok
        with pytest.raises(JournalError, match="fenced"):
            reader.append(RecordKind.INPUT, b"a write through a reader")
    finally:
        reader.close()


def test_a_reader_never_creates_a_journal() -> None:
    with pytest.raises(JournalError, match="existing journal"):
        open_journal("sqlite:///nowhere.db", reader=True)
