"""Shard ownership on PostgreSQL: epochs fence stale writers; a dead owner's lease passes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from journal_support import StoreAccess

from ordergate.journal import Durability, JournalError, RecordKind, open_journal
from ordergate.journal.lease import ShardLease

pytestmark = pytest.mark.postgres


@pytest.fixture
def stream_url(postgres_url: str) -> str:
    return f"{postgres_url}&stream=acct-{uuid.uuid4().hex[:6]}"


def test_lower_epoch_writer_is_fenced_once_a_higher_epoch_is_granted(stream_url: str) -> None:
    first_lease = ShardLease(stream_url)
    first_epoch = first_lease.acquire(timeout_s=5)
    assert first_epoch is not None and first_lease.held
    old_writer = open_journal(stream_url, epoch=first_epoch, durability=Durability.ALWAYS)
    old_writer.append(RecordKind.INPUT, b"from the first owner")
    first_lease.release()
    assert not first_lease.held

    second_lease = ShardLease(stream_url)
    second_epoch = second_lease.acquire(timeout_s=5)
    assert second_epoch is not None and second_epoch > first_epoch
    new_writer = open_journal(stream_url, epoch=second_epoch, durability=Durability.ALWAYS)
    try:
        with pytest.raises(JournalError, match="fenced"):
            old_writer.append(RecordKind.INPUT, b"stale write")
        assert new_writer.append(RecordKind.INPUT, b"from the second owner") == 2
        assert [r.payload for r in new_writer.read()] == [b"from the first owner",
                                                          b"from the second owner"]
        assert new_writer.verify().ok
        with pytest.raises(JournalError, match="fenced"):
            open_journal(stream_url, epoch=first_epoch)
        with pytest.raises(JournalError, match="fenced"):
            open_journal(stream_url)  # no epoch at all counts as epoch 0
    finally:
        new_writer.close()
        old_writer.close()
        second_lease.release()


def test_batched_writes_of_a_fenced_writer_are_refused_whole(stream_url: str) -> None:
    lease = ShardLease(stream_url)
    epoch = lease.acquire(timeout_s=5)
    assert epoch is not None
    writer = open_journal(stream_url, epoch=epoch, durability=Durability.BATCH)
    writer.append_many([(RecordKind.INPUT, b"a"), (RecordKind.INPUT, b"b")])
    lease.release()
    successor = ShardLease(stream_url)
    assert successor.acquire(timeout_s=5) is not None
    try:
        with pytest.raises(JournalError, match="fenced"):
            writer.flush()
        reader = open_journal(stream_url, create=False, epoch=successor.epoch)
        try:
            assert reader.last_seq() == 0
        finally:
            reader.close()
    finally:
        writer.close()
        successor.release()


_OWNER = """
    import sys, time
    from ordergate.journal import Durability, RecordKind, open_journal
    from ordergate.journal.lease import ShardLease
    lease = ShardLease(sys.argv[1])
    epoch = lease.acquire(timeout_s=30)
    journal = open_journal(sys.argv[1], epoch=epoch, durability=Durability.ALWAYS)
    journal.append(RecordKind.INPUT, b"owner record")
    print("EPOCH", epoch, flush=True)
    time.sleep(600)
"""


def test_lease_passes_to_the_waiter_when_the_owner_is_killed(stream_url: str) -> None:
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_OWNER), stream_url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiter = ShardLease(stream_url, poll_s=0.05)
    try:
        assert owner.stdout is not None
        # Log lines may come first; the owner announces its epoch once it has written.
        line = owner.stdout.readline()
        while line and not line.startswith("EPOCH "):
            line = owner.stdout.readline()
        assert line, owner.stderr.read() if owner.stderr else ""
        owner_epoch = int(line.split()[1])
        assert waiter.acquire(timeout_s=0.3) is None
        assert not waiter.held

        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
        epoch = waiter.acquire(timeout_s=30)
        assert epoch is not None and epoch > owner_epoch
        waiter.heartbeat()
        assert waiter.held

        with pytest.raises(JournalError, match="fenced"):
            open_journal(stream_url, epoch=owner_epoch)
        journal = open_journal(stream_url, epoch=epoch, durability=Durability.ALWAYS)
        try:
            assert [r.payload for r in journal.read()] == [b"owner record"]
            assert journal.append(RecordKind.INPUT, b"new owner") == 2
        finally:
            journal.close()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=30)
        waiter.release()


def test_heartbeat_reports_a_lost_lease(postgres_url: str) -> None:
    name = f"og_lease_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&stream=s&application_name={name}"
    lease = ShardLease(url)
    assert lease.acquire(timeout_s=5) is not None
    lease.heartbeat()
    admin = StoreAccess(postgres_url)
    try:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = ?", (name,))
    finally:
        admin.close()
    with pytest.raises(JournalError, match="lease lost"):
        lease.heartbeat()
    assert not lease.held


def test_same_stream_in_two_schemas_are_separate_leases(postgres_url: str) -> None:
    import psycopg

    other_schema = f"og_{uuid.uuid4().hex[:12]}"
    base = postgres_url.split("?")[0]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other_schema}"')
    first = ShardLease(f"{postgres_url}&stream=same")
    second = ShardLease(f"{base}?options=-csearch_path%3D{other_schema}&stream=same")
    try:
        assert first.acquire(timeout_s=5) is not None
        assert second.acquire(timeout_s=1) is not None
    finally:
        first.release()
        second.release()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{other_schema}" CASCADE')


def test_owner_that_stops_heartbeating_loses_the_lease(stream_url: str) -> None:
    silent = ShardLease(stream_url, ttl_s=1.0)
    first_epoch = silent.acquire(timeout_s=5)
    assert first_epoch is not None
    successor = ShardLease(stream_url, poll_s=0.1)
    try:
        epoch = successor.acquire(timeout_s=30)  # the server ends the idle owner's session
        assert epoch is not None and epoch > first_epoch
        with pytest.raises(JournalError, match="lease lost"):
            silent.heartbeat()
    finally:
        successor.release()
        silent.release()
