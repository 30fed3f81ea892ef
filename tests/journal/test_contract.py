"""The journal contract, proved identically against SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from journal_support import FIELDS, Backend, StoreAccess

from ordergate.journal import (
    GENESIS_HASH,
    Durability,
    Journal,
    JournalError,
    RecordKind,
    open_journal,
    record_hash,
    upgrade_schema,
)
from ordergate.journal.chain import KEEP_SNAPSHOTS

KINDS = (RecordKind.INPUT, RecordKind.OUTPUT, RecordKind.META)


def payload(index: int) -> bytes:
    return f'{{"type":"clock","n":{index}}}'.encode()


def fill(journal: Journal, count: int) -> None:
    for index in range(count):
        journal.append(KINDS[index % 3], payload(index))
    journal.flush()


@pytest.fixture
def journal(backend: Backend) -> Iterator[Journal]:
    opened = open_journal(backend.url, run_id="run-1")
    yield opened
    opened.close()


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------- append, read, seq


def test_appends_get_consecutive_seqs_and_read_back_in_order(journal: Journal) -> None:
    assert journal.last_seq() == 0
    assert journal.append(RecordKind.INPUT, b"first") == 1
    assert journal.append_many([(RecordKind.OUTPUT, b"second"), (RecordKind.META, b"")]) == [2, 3]
    assert journal.last_seq() == 3
    records = list(journal.read())
    assert [(r.seq, r.kind, r.payload) for r in records] == [
        (1, RecordKind.INPUT, b"first"), (2, RecordKind.OUTPUT, b"second"),
        (3, RecordKind.META, b"")]
    assert all(r.run_id == "run-1" for r in records)
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    for r in records:
        assert r.hash == record_hash(r.prev_hash, r.seq, r.kind.value, r.run_id,
                                     r.recorded_at_ns, r.payload)


def test_read_honours_inclusive_bounds(journal: Journal) -> None:
    fill(journal, 30)
    assert [r.seq for r in journal.read(10, 20)] == list(range(10, 21))
    assert [r.seq for r in journal.read(28)] == [28, 29, 30]
    assert list(journal.read(31)) == []


def test_reopened_journal_continues_the_chain(backend: Backend) -> None:
    first = open_journal(backend.url, durability=Durability.ALWAYS)
    fill(first, 5)
    first.close()
    second = open_journal(backend.url, run_id="run-2")
    try:
        assert second.last_seq() == 5
        assert second.append(RecordKind.INPUT, b"after restart") == 6
        report = second.verify()
        assert report.ok and report.records == 6
        assert [r.run_id for r in second.read(5)] == [first.run_id, "run-2"]
    finally:
        second.close()


def test_read_streams_with_memory_bounded_by_page_not_journal(journal: Journal) -> None:
    blob = b"x" * 8192
    for _ in range(3000):
        journal.append(RecordKind.INPUT, blob)
    journal.flush()
    total_bytes = 3000 * len(blob)
    tracemalloc.start()
    try:
        count = 0
        for record in journal.read():
            count += len(record.payload) == len(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 3000
    assert peak < total_bytes / 3


# ---------------------------------------------------------------- durability


_WRITER = """
    import os, sys
    from ordergate.journal import Durability, RecordKind, open_journal
    url, mode, flushed, unflushed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    journal = open_journal(url, durability=Durability(mode), run_id="writer")
    for index in range(flushed):
        journal.append(RecordKind.INPUT, b"durable-%d" % index)
    journal.flush()
    for index in range(unflushed):
        journal.append(RecordKind.INPUT, b"pending-%d" % index)
    os._exit(0)  # die without closing: only what flush() made durable may be relied on
"""


def test_batch_records_are_durable_for_a_new_process_after_flush(backend: Backend) -> None:
    result = run_python(_WRITER, backend.url, "batch", "700", "5")
    assert result.returncode == 0, result.stderr
    reader = open_journal(backend.url, create=False)
    try:
        assert 700 <= reader.last_seq() <= 705
        durable = list(reader.read(1, 700))
        assert [r.payload for r in durable] == [b"durable-%d" % i for i in range(700)]
        assert reader.verify().ok
    finally:
        reader.close()


def test_always_records_are_durable_without_flush(backend: Backend) -> None:
    code = """
        import os, sys
        from ordergate.journal import Durability, RecordKind, open_journal
        journal = open_journal(sys.argv[1], durability=Durability.ALWAYS)
        for index in range(7):
            journal.append(RecordKind.INPUT, b"%d" % index)
        os._exit(0)
    """
    result = run_python(code, backend.url)
    assert result.returncode == 0, result.stderr
    reader = open_journal(backend.url, create=False)
    try:
        assert [r.payload for r in reader.read()] == [b"%d" % i for i in range(7)]
    finally:
        reader.close()


# ---------------------------------------------------------------- verification

N_TAMPER = 12


@pytest.fixture
def filled(backend: Backend) -> Iterator[tuple[Journal, StoreAccess]]:
    journal = open_journal(backend.url, run_id="run-tamper")
    fill(journal, N_TAMPER)
    store = backend.store()
    yield journal, store
    store.close()
    journal.close()


def test_untouched_chain_verifies_clean(journal: Journal) -> None:
    fill(journal, 1234)
    report = journal.verify()
    assert report.ok and report.records == 1234 and report.first_bad_seq is None


def _tampered(field: str, original: object, position: int, flip: int) -> object:
    if field == "payload":
        assert isinstance(original, bytes)
        data = bytearray(original)
        data[position % len(data)] ^= flip
        return bytes(data)
    if field in ("seq", "recorded_at_ns"):
        assert isinstance(original, int)
        raw = bytearray(original.to_bytes(8, "big", signed=True))
        raw[position % 8] ^= flip
        return int.from_bytes(raw, "big", signed=True)
    assert isinstance(original, str)
    index = position % len(original)
    changed = ord(original[index]) ^ (flip & 0x7F or 1)
    if changed == 0:
        changed = ord(original[index]) ^ 1
    return original[:index] + chr(changed) + original[index + 1:]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(index=1, field="seq", position=3, flip=0x40)
@example(index=5, field="kind", position=3, flip=0x40)
@example(index=12, field="run_id", position=3, flip=0x40)
@example(index=2, field="recorded_at_ns", position=3, flip=0x40)
@example(index=7, field="payload", position=3, flip=0x40)
@example(index=12, field="prev_hash", position=3, flip=0x40)
@example(index=9, field="hash", position=3, flip=0x40)
@given(index=st.integers(1, N_TAMPER), field=st.sampled_from(FIELDS),
       position=st.integers(0, 1000), flip=st.integers(1, 255))
def test_changing_any_byte_of_any_field_is_detected_at_that_record(
        filled: tuple[Journal, StoreAccess], index: int, field: str, position: int,
        flip: int) -> None:
    journal, store = filled
    original = store.get(index, field)
    tampered = _tampered(field, original, position, flip)
    if field == "seq":
        # A record can only be renumbered to a free, positive seq (the others are taken).
        assume(isinstance(tampered, int) and tampered > N_TAMPER)
    store.set(index, field, tampered)
    try:
        report = journal.verify()
    finally:
        store.set(tampered if field == "seq" else index, field, original)  # type: ignore[arg-type]
    assert not report.ok
    assert report.first_bad_seq == index, report.message
    assert journal.verify().ok


@pytest.mark.parametrize("victim", [1, 6, N_TAMPER - 1])
def test_deleted_record_is_detected_as_a_gap(filled: tuple[Journal, StoreAccess],
                                             victim: int) -> None:
    journal, store = filled
    store.delete(victim)
    report = journal.verify()
    assert not report.ok and report.first_bad_seq == victim
    assert "missing" in report.message


def test_deleted_tail_is_detected_by_the_writer(filled: tuple[Journal, StoreAccess]) -> None:
    journal, store = filled
    store.delete(N_TAMPER)
    report = journal.verify()
    assert not report.ok and report.first_bad_seq == N_TAMPER


@pytest.mark.parametrize(("first", "second"), [(1, 2), (4, 9), (N_TAMPER - 1, N_TAMPER)])
def test_reordered_records_are_detected(filled: tuple[Journal, StoreAccess], first: int,
                                        second: int) -> None:
    journal, store = filled
    store.swap(first, second)
    report = journal.verify()
    assert not report.ok and report.first_bad_seq == first


# ---------------------------------------------------------------- snapshots


def test_snapshot_round_trips_and_is_checked_against_the_chain(backend: Backend) -> None:
    journal = open_journal(backend.url)
    try:
        assert journal.latest_snapshot() is None
        fill(journal, 10)
        journal.save_snapshot(4, b"state-at-4")
        journal.save_snapshot(8, b"state-at-8")
        latest = journal.latest_snapshot()
        assert latest is not None
        assert (latest.seq, latest.state) == (8, b"state-at-8")
        assert latest.chain_hash == next(iter(journal.read(8, 8))).hash
        beyond = journal.last_seq() + 1  # records 11 and 12 attest the two snapshots
        with pytest.raises(JournalError, match=f"snapshot seq {beyond}"):
            journal.save_snapshot(beyond, b"beyond the end")
    finally:
        journal.close()
    store = backend.store()
    try:
        store.set_snapshot_hash(8, "f" * 64)
        reopened = open_journal(backend.url, create=False)
        try:
            fallback = reopened.latest_snapshot()
            assert fallback is not None
            assert (fallback.seq, fallback.state) == (4, b"state-at-4")
            report = reopened.verify()  # the chain is intact; the damaged snapshot is not
            assert not report.ok and report.first_bad_seq == 8
            assert "snapshot at seq 8" in report.message
            store.set(4, "hash", "e" * 64)  # the record itself changed: snapshot 4 disagrees
            assert reopened.latest_snapshot() is None
        finally:
            reopened.close()
    finally:
        store.close()


def test_only_the_newest_snapshots_are_kept(backend: Backend) -> None:
    journal = open_journal(backend.url)
    try:
        fill(journal, 10)
        for seq in range(1, 11):
            journal.save_snapshot(seq, f"state-at-{seq}".encode())
    finally:
        journal.close()
    store = backend.store()
    try:
        assert store.snapshot_seqs() == list(range(11 - KEEP_SNAPSHOTS, 11))
        store.set_snapshot_hash(10, "f" * 64)  # the newest disagrees: the next one serves
        reopened = open_journal(backend.url, create=False)
        try:
            fallback = reopened.latest_snapshot()
            assert fallback is not None and (fallback.seq, fallback.state) == (9, b"state-at-9")
        finally:
            reopened.close()
    finally:
        store.close()


def _ten_records_snapshotted_at_4_and_8(backend: Backend) -> StoreAccess:
    """A closed journal of ten records with snapshots at 4 and 8, attested by records 11 and
    12, and access to its store."""
    journal = open_journal(backend.url)
    try:
        fill(journal, 10)
        journal.save_snapshot(4, b"state-at-4")
        journal.save_snapshot(8, b"state-at-8")
    finally:
        journal.close()
    return backend.store()


def test_records_removed_from_the_end_past_a_snapshot_are_detected(backend: Backend) -> None:
    """A chain that ends early verifies on its own; the snapshot taken at a later record
    proves records are gone, and the journal refuses to restore an older state."""
    store = _ten_records_snapshotted_at_4_and_8(backend)
    try:
        for seq in (12, 11, 10, 9, 8):  # the newest records, as a rollback would leave it
            store.delete(seq)
        reopened = open_journal(backend.url, create=False)
        try:
            assert reopened.last_seq() == 7
            report = reopened.verify()
            assert not report.ok and report.first_bad_seq == 8
            assert "chain ends at record 7 but a snapshot was taken at record 8" in report.message
            with pytest.raises(JournalError, match="records 8 to 8 at least were written"):
                reopened.latest_snapshot()
        finally:
            reopened.close()
    finally:
        store.close()


def test_a_tail_rewritten_with_recomputed_hashes_is_detected(backend: Backend) -> None:
    """Rewriting records 6..12 and recomputing their hashes leaves a chain that verifies on its
    own; the snapshot at record 8 recorded the original hash, and disagrees."""
    store = _ten_records_snapshotted_at_4_and_8(backend)
    try:
        store.forge_tail(6, 12)
        reopened = open_journal(backend.url, create=False)
        try:
            report = reopened.verify()
            assert not report.ok and report.first_bad_seq == 8
            assert "rewritten at or before record 8" in report.message
        finally:
            reopened.close()
    finally:
        store.close()


# ---------------------------------------------------------------- schema versions


@pytest.mark.parametrize(("stored", "advice"), [(0, "older"), (99, "newer")])
def test_journal_with_another_schema_version_is_refused(backend: Backend, stored: int,
                                                        advice: str) -> None:
    open_journal(backend.url).close()
    store = backend.store()
    try:
        store.set_schema_version(stored)
    finally:
        store.close()
    with pytest.raises(JournalError, match=f"{advice}.*ordergate db upgrade") as caught:
        open_journal(backend.url)
    assert f"version {stored}" in str(caught.value)
    if stored < 99:
        assert upgrade_schema(backend.url)[0] == stored
        open_journal(backend.url).close()


def test_missing_journal_is_refused_without_create(backend: Backend) -> None:
    with pytest.raises(JournalError):
        open_journal(backend.url, create=False)


# ---------------------------------------------------------------- write failures


@pytest.mark.parametrize("durability", [Durability.ALWAYS, Durability.BATCH])
def test_write_failure_raises_and_poisons_the_journal(backend: Backend, tmp_path: Path,
                                                      durability: Durability) -> None:
    victim = f"og_victim_{uuid.uuid4().hex[:8]}"
    if backend.name == "sqlite":
        directory = tmp_path / "vanishing"
        url = f"sqlite:///{directory / 'journal.db'}"
    else:
        url = f"{backend.url}&application_name={victim}"
    journal = open_journal(url, durability=durability)
    try:
        fill(journal, 3)
        if backend.name == "sqlite":
            shutil.rmtree(directory)  # the directory (and the file) vanish under the writer
        else:
            store = backend.store()  # the server drops the writer's connection
            try:
                store.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = ?", (victim,))
            finally:
                store.close()
        with pytest.raises(JournalError):
            journal.append(RecordKind.INPUT, b"will not land")
            journal.flush()
        with pytest.raises(JournalError, match="earlier write failed"):
            journal.append(RecordKind.INPUT, b"refused")
    finally:
        journal.close()
    if backend.name == "postgres":
        survivor = open_journal(backend.url, create=False)
        try:
            assert survivor.last_seq() == 3 and survivor.verify().ok
        finally:
            survivor.close()
