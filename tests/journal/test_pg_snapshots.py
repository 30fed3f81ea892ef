"""Periodic snapshots of a PostgreSQL journal are stored by a forked child over its own
connection, off the order path: the rows carry the chain hash of their record, the parent
sees each one once it has reaped the child, a restart from them equals the uninterrupted run,
and a child that cannot store its snapshot costs nothing but that snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from journal_support import StoreAccess

from ordergate.brokers.sim import SimBroker
from ordergate.engine.core import Engine
from ordergate.journal.chain import KEEP_SNAPSHOTS
from ordergate.journal.postgres import DETACHED_CONNECT_TIMEOUT_S, detached_conninfo
from ordergate.journal.urls import parse_journal_url
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events, write_events
from ordergate.runtime.loop import Runtime, rebuild
from ordergate.runtime.runfile import run_file

pytestmark = pytest.mark.postgres

DEMO_POLICY = (Path(__file__).resolve().parents[2] / "src" / "ordergate" / "data"
               / "demo_policy.yaml")
EVENTS = 6000
SNAPSHOT_EVERY = 200
BATCH = 50


@pytest.fixture
def stream_url(postgres_url: str) -> str:
    return f"{postgres_url}&stream=desk-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def days(tmp_path: Path) -> tuple[Path, Path]:
    """The demo day's first half and the whole day, as one events file that grew: the same
    name, so a journal written from the first continues with the second."""
    events = demo_events()[:EVENTS]
    half, whole = tmp_path / "half" / "events.jsonl", tmp_path / "whole" / "events.jsonl"
    for path, count in ((half, EVENTS // 2), (whole, EVENTS)):
        path.parent.mkdir()
        write_events(path, events[:count])
    return half, whole


def _open(url: str, events: Path, broker: SimBroker) -> Runtime:
    """A runtime on `url`; a restart passes the same simulated venue, which remembers the
    orders it was sent, as a real one does."""
    return Runtime.open(url, load_policy(DEMO_POLICY), broker, snapshot_every=SNAPSHOT_EVERY,
                        source=events)


def _stored_snapshots(url: str) -> list[tuple[int, str, str]]:
    """(seq, chain_hash, hash of the record at seq) of every stored snapshot, oldest first."""
    store = StoreAccess(url)
    try:
        return [(int(seq), str(chain), str(record)) for seq, chain, record in store.execute(
            "SELECT s.seq, s.chain_hash, r.hash FROM journal_snapshots s JOIN journal_records r "
            "ON r.stream = s.stream AND r.seq = s.seq WHERE s.stream = ? ORDER BY s.seq",
            (store.stream,))]
    finally:
        store.close()


LogEntry = MutableMapping[str, Any]


def _events_named(logs: list[LogEntry], name: str) -> list[LogEntry]:
    return [entry for entry in logs if entry["event"] == name]


def test_periodic_snapshots_are_stored_by_a_child_and_a_restart_from_them_matches(
        postgres_url: str, days: tuple[Path, Path]) -> None:
    half, whole = days
    uninterrupted = f"{postgres_url}&stream=whole-{uuid.uuid4().hex[:6]}"
    with structlog.testing.capture_logs() as logs:
        runtime = _open(uninterrupted, whole, SimBroker())
        assert runtime.background_snapshots
        seen: list[int] = []

        def parent_sees_each_adopted_snapshot(_report: object) -> None:
            written = _events_named(logs, "snapshot_written")
            if written and written[-1]["seq"] not in seen:
                seen.append(written[-1]["seq"])
                latest = runtime.journal.latest_snapshot()
                assert latest is not None and latest.seq == written[-1]["seq"]

        run_file(runtime, whole, batch_size=BATCH, on_report=parent_sees_each_adopted_snapshot)
        status = runtime.engine.status()
        runtime.close()  # waits for a snapshot still being stored
    written = [entry["seq"] for entry in _events_named(logs, "snapshot_written")]
    assert len(written) > KEEP_SNAPSHOTS, logs
    assert len(seen) >= KEEP_SNAPSHOTS  # (the last one was adopted when the runtime closed)
    assert not _events_named(logs, "snapshot_failed_in_background")

    stored = _stored_snapshots(uninterrupted)
    # Only the rows the children stored, at the hash of their record; retention ran in the
    # children's transactions.
    assert [seq for seq, _, _ in stored] == written[-KEEP_SNAPSHOTS:]
    assert all(chain == record for _, chain, record in stored)
    assert rebuild(uninterrupted).status() == status

    interrupted = f"{postgres_url}&stream=half-{uuid.uuid4().hex[:6]}"
    venue = SimBroker()
    first = _open(interrupted, half, venue)
    run_file(first, half, batch_size=BATCH)
    first.close()
    newest_seq = _stored_snapshots(interrupted)[-1][0]
    restarted = _open(interrupted, whole, venue)
    try:
        snapshot = restarted.journal.latest_snapshot()
        assert snapshot is not None and snapshot.seq == newest_seq
        # the child stored exactly what the engine at that record encodes
        assert Engine.restore(snapshot.state).snapshot() == snapshot.state
        run_file(restarted, whole, batch_size=BATCH)
        assert restarted.engine.status() == status
    finally:
        restarted.close()


@dataclass(frozen=True)
class OwnRole:
    """A throwaway login role that is not a superuser, so its privileges and connection limit
    apply; `url` opens a fresh stream of the test schema as that role."""

    name: str
    url: str
    superuser_url: str

    def as_superuser(self, sql: str) -> None:
        with psycopg.connect(self.superuser_url, autocommit=True) as conn:
            conn.execute(sql.format(role=f'"{self.name}"'))


@pytest.fixture
def own_role(postgres_url: str) -> Iterator[OwnRole]:
    superuser_url = parse_journal_url(postgres_url).target
    name = f"og_snap_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'GRANT USAGE, CREATE ON SCHEMA "{schema[0]}" TO "{name}"')
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://{name}@", 1)
    assert url != postgres_url
    role = OwnRole(name, f"{url}&stream=desk-{uuid.uuid4().hex[:6]}", superuser_url)
    try:
        yield role
    finally:
        role.as_superuser("ALTER ROLE {role} CONNECTION LIMIT -1")
        role.as_superuser("DROP OWNED BY {role}")
        role.as_superuser("DROP ROLE {role}")


@pytest.mark.parametrize(("breakage", "repair", "why"), [
    ("REVOKE INSERT ON journal_snapshots FROM {role}",
     "GRANT INSERT ON journal_snapshots TO {role}", "permission denied"),
    # The parent holds the role's one allowed connection; the child cannot open another.
    ("ALTER ROLE {role} CONNECTION LIMIT 1", "ALTER ROLE {role} CONNECTION LIMIT -1",
     "too many connections"),
], ids=["insert-revoked", "cannot-connect"])
def test_a_child_that_cannot_store_its_snapshot_leaves_the_runtime_on_the_older_one(
        own_role: OwnRole, days: tuple[Path, Path], breakage: str, repair: str,
        why: str) -> None:
    url = own_role.url
    half, whole = days
    venue = SimBroker()
    first = _open(url, half, venue)
    run_file(first, half, batch_size=BATCH)
    first.close()
    older = _stored_snapshots(url)
    assert older

    with structlog.testing.capture_logs() as logs:
        runtime = _open(url, whole, venue)
        try:
            own_role.as_superuser(breakage)
            run_file(runtime, whole, batch_size=BATCH)  # every batch decided and acted on
            assert not runtime.stopped
            runtime.close()  # waits for the last child
        finally:
            own_role.as_superuser(repair)
    failures = _events_named(logs, "snapshot_failed_in_background")
    assert failures, logs
    assert all(why in entry["reason"] for entry in failures), failures
    assert "Traceback" not in str(failures)
    assert not _events_named(logs, "snapshot_written")
    assert not _events_named(logs, "journal_failed_fail_closed")
    assert _stored_snapshots(url) == older

    status = runtime.engine.status()
    reopened = _open(url, whole, venue)
    try:
        snapshot = reopened.journal.latest_snapshot()
        assert snapshot is not None and snapshot.seq == older[-1][0]
        assert reopened.engine.status() == status
    finally:
        reopened.close()


def test_a_child_that_hangs_is_killed_and_neither_later_snapshots_nor_the_close_wait(
        stream_url: str, days: tuple[Path, Path]) -> None:
    """Another session holds the snapshots table locked: every child's insert waits on the
    lock, as it would on a network that drops packets silently. Each is killed past its
    deadline, the next interval forks a new one, and the close returns."""
    _, whole = days
    with structlog.testing.capture_logs() as logs:
        runtime = _open(stream_url, whole, SimBroker())
        # Past its deadline at once: each child is killed at the next batch, however fast
        # the batches go (with 0.2 s, a run quicker than that killed only one, at the close).
        runtime.snapshot_deadline_s = 0.0
        with psycopg.connect(parse_journal_url(stream_url).target) as blocker:
            blocker.execute("LOCK TABLE journal_snapshots IN ACCESS EXCLUSIVE MODE")
            run_file(runtime, whole, batch_size=BATCH)
            assert not runtime.stopped
            status = runtime.engine.status()
            runtime.close()  # kills the child still waiting on the lock
            blocker.rollback()
    killed = _events_named(logs, "snapshot_child_killed")
    failures = _events_named(logs, "snapshot_failed_in_background")
    assert len(killed) >= 2, logs  # a killed child does not stop the next one
    assert [entry["seq"] for entry in failures] == [entry["seq"] for entry in killed]
    assert all("killed after 0 s" in entry["reason"] for entry in failures), failures
    assert not _events_named(logs, "snapshot_written")
    assert _stored_snapshots(stream_url) == []  # a killed child's transaction never commits
    assert rebuild(stream_url).status() == status


@pytest.mark.parametrize(("query", "expected"), [("", str(DETACHED_CONNECT_TIMEOUT_S)),
                                                 ("&connect_timeout=3", "3")])
def test_a_snapshot_child_connects_with_the_journal_urls_connect_timeout_if_it_sets_one(
        stream_url: str, query: str, expected: str) -> None:
    """The child's connection is the journal's own (same server, database, options), with a
    bounded connect timeout: the URL's when the operator set one, else the default."""
    target = parse_journal_url(stream_url + query).target
    with psycopg.connect(detached_conninfo(target)) as conn:
        used = conn.info.get_parameters()
        search_path = conn.execute("SHOW search_path").fetchone()
    assert used["connect_timeout"] == expected
    assert used["dbname"] == "test"
    with psycopg.connect(target) as conn:
        assert conn.execute("SHOW search_path").fetchone() == search_path
