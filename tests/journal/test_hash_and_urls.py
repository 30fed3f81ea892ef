"""The chain's byte layout and journal URL handling."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.journal import (
    GENESIS_HASH,
    Durability,
    JournalError,
    RecordKind,
    open_journal,
    record_hash,
    redact_url,
    verify_rows,
)
from ordergate.journal.base import RecordHasher, chain_hasher
from ordergate.journal.urls import Backend, parse_journal_url


def test_record_hash_follows_the_documented_byte_layout() -> None:
    prev, seq, kind, run_id, at, payload = GENESIS_HASH, 7, "in", "run-x", 1_700_000_000_123, b"{}"
    layout = (b"ordergate.journal.v1\x00"
              + (64).to_bytes(2, "big") + prev.encode()
              + seq.to_bytes(8, "big")
              + (2).to_bytes(2, "big") + b"in"
              + (5).to_bytes(2, "big") + b"run-x"
              + at.to_bytes(8, "big", signed=True)
              + (2).to_bytes(8, "big") + payload)
    assert record_hash(prev, seq, kind, run_id, at, payload) == hashlib.sha256(layout).hexdigest()


@settings(max_examples=50)
@given(run_a=st.text(max_size=8), pay_a=st.binary(max_size=8),
       run_b=st.text(max_size=8), pay_b=st.binary(max_size=8))
def test_moving_bytes_between_fields_changes_the_hash(run_a: str, pay_a: bytes, run_b: str,
                                                      pay_b: bytes) -> None:
    first = record_hash(GENESIS_HASH, 1, "in", run_a, 0, pay_a)
    second = record_hash(GENESIS_HASH, 1, "in", run_b, 0, pay_b)
    assert (first == second) == ((run_a, pay_a) == (run_b, pay_b))


def _outcome(hash_function: Callable[[], str]) -> str:
    """The hash, or the ValueError's message: two implementations must agree on both."""
    try:
        return hash_function()
    except ValueError as exc:
        return f"ValueError: {exc}"


_HEX_HASH = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


# a record's fields, mostly as a journal writes them, sometimes beyond what the layout holds
_RECORD_FIELDS = dict(
    prev=st.one_of(_HEX_HASH, st.text(max_size=80)),
    seq=st.one_of(st.integers(min_value=0, max_value=1 << 40),
                  st.integers(min_value=-(1 << 70), max_value=1 << 70)),
    kind=st.one_of(st.sampled_from(["in", "out", "meta"]), st.text(max_size=6)),
    run_id=st.one_of(st.sampled_from(["run-a", "b" * 32]), st.text(max_size=40)),
    at=st.one_of(st.integers(min_value=0, max_value=1 << 62),
                 st.integers(min_value=-(1 << 70), max_value=1 << 70)),
    payload=st.binary(max_size=600),
)


@settings(max_examples=300)
@given(**_RECORD_FIELDS)
def test_the_append_hasher_equals_record_hash(prev: str, seq: int, kind: str, run_id: str,
                                              at: int, payload: bytes) -> None:
    hasher = RecordHasher()
    for _ in range(2):  # the second call uses what the first one cached
        assert _outcome(lambda: hasher(prev, seq, kind, run_id, at, payload)) == \
            _outcome(lambda: record_hash(prev, seq, kind, run_id, at, payload))


@settings(max_examples=300)
@given(**_RECORD_FIELDS)
def test_the_writers_chain_hasher_equals_record_hash(prev: str, seq: int, kind: str,
                                                     run_id: str, at: int,
                                                     payload: bytes) -> None:
    hash_record = chain_hasher(run_id)
    assert _outcome(lambda: hash_record(prev, seq, kind, at, payload)) == \
        _outcome(lambda: record_hash(prev, seq, kind, run_id, at, payload))


def test_the_writers_chain_hasher_refuses_what_record_hash_refuses() -> None:
    for prev, seq, kind, run_id, at in [
            (GENESIS_HASH, -1, "in", "r", 0), (GENESIS_HASH, 1 << 64, "in", "r", 0),
            (GENESIS_HASH, 1, "in", "r", 1 << 63), (GENESIS_HASH, 1, "in", "r" * 70_000, 0),
            ("x" * 70_000, 1, "in", "r", 0)]:
        with pytest.raises(ValueError) as fast:
            chain_hasher(run_id)(prev, seq, kind, at, b"")
        with pytest.raises(ValueError) as reference:
            record_hash(prev, seq, kind, run_id, at, b"")
        assert str(fast.value) == str(reference.value)


def test_the_append_hasher_refuses_what_record_hash_refuses() -> None:
    hasher = RecordHasher()
    for args in [(GENESIS_HASH, -1, "in", "r", 0, b""), (GENESIS_HASH, 1, "in", "r", 1 << 63, b""),
                 (GENESIS_HASH, 1, "in", "r" * 70_000, 0, b""),
                 ("x" * 70_000, 1, "in", "r", 0, b"")]:
        with pytest.raises(ValueError) as fast:
            hasher(*args)
        with pytest.raises(ValueError) as reference:
            record_hash(*args)
        assert str(fast.value) == str(reference.value)


def test_verify_rows_reports_a_record_that_cannot_be_hashed() -> None:
    report = verify_rows([(1, "in", "r", -(1 << 70), b"", GENESIS_HASH, "0" * 64)])
    assert not report.ok and report.first_bad_seq == 1 and "recorded_at_ns" in report.message


@pytest.mark.parametrize(("url", "backend", "target", "stream"), [
    ("sqlite:///relative/j.db", Backend.SQLITE, "relative/j.db", "default"),
    ("sqlite:////abs/j.db", Backend.SQLITE, "/abs/j.db", "default"),
    ("data/journal.db", Backend.SQLITE, "data/journal.db", "default"),
    ("postgresql://u@h:5432/db?stream=acct-7&options=-csearch_path%3Dog_x",
     Backend.POSTGRES, "postgresql://u@h:5432/db?options=-csearch_path%3Dog_x", "acct-7"),
    ("postgres://h/db", Backend.POSTGRES, "postgres://h/db", "default"),
    ("postgresql:///db?host=/var/run/postgresql&stream=s", Backend.POSTGRES,
     "postgresql:///db?host=%2Fvar%2Frun%2Fpostgresql", "s"),
])
def test_journal_urls_choose_backend_target_and_stream(url: str, backend: Backend, target: str,
                                                      stream: str) -> None:
    parsed = parse_journal_url(url)
    assert (parsed.backend, parsed.target, parsed.stream) == (backend, target, stream)


@pytest.mark.parametrize("url", ["mysql://u:s3cret@h/db", "journal.txt", "sqlite:///",
                                 "sqlite:///:memory:"])
def test_unusable_urls_are_refused_by_name(url: str) -> None:
    with pytest.raises(JournalError, match="journal URL") as caught:
        parse_journal_url(url)
    assert "s3cret" not in str(caught.value)


def test_passwords_are_redacted_from_urls() -> None:
    assert redact_url("postgresql://u:p%40ss@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"
    assert redact_url("postgresql://u@h/db?password=zz&a=1") == "postgresql://u@h/db?password=***&a=1"
    assert redact_url("postgres://h/db") == "postgres://h/db"


def test_epoch_fencing_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="PostgreSQL"):
        open_journal(f"sqlite:///{tmp_path / 'j.db'}", epoch=3)


def test_a_sqlite_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE trades (id INTEGER)")
    with pytest.raises(JournalError, match="not an ordergate journal"):
        open_journal(str(path))


def test_a_postgres_url_without_a_host_part_reaches_the_server(postgres_url: str) -> None:
    """`postgresql:///db?host=...` (the form a Unix socket needs) keeps its '//' when the
    stream is taken out of it: libpq refuses `postgresql:/db`."""
    options = postgres_url.split("?", 1)[1]
    url = f"postgresql:///test?host=127.0.0.1&port=5432&user=postgres&{options}&stream=nohost"
    journal = open_journal(url, durability=Durability.ALWAYS)
    try:
        journal.append(RecordKind.INPUT, b'{"x":1}')
        journal.flush()
        assert journal.last_seq() == 1
    finally:
        journal.close()


def test_query_parameters_reach_libpq_as_written_and_a_shard_keeps_the_rest() -> None:
    from psycopg.conninfo import conninfo_to_dict

    from ordergate.runtime.shard import shard_url

    parsed = parse_journal_url(
        "postgresql://u@h:5432/db?password=a+b&options=-csearch_path=x&stream=s+1")
    assert parsed.stream == "s 1"  # ordergate's own parameter reads as it always did
    # a '+' is a '+' (not a space, as form decoding would make it); a value holding '='
    # is one value
    assert conninfo_to_dict(parsed.target) == {
        "user": "u", "host": "h", "port": "5432", "dbname": "db", "password": "a+b",
        "options": "-csearch_path=x"}
    shard = shard_url("postgresql://u:pa?ss@127.0.0.1:5432/test?sslmode=disable&stream=x",
                      "desk a")
    sharded = parse_journal_url(shard)
    assert sharded.stream == "desk a"
    assert conninfo_to_dict(sharded.target) == {
        "user": "u", "password": "pa?ss", "host": "127.0.0.1", "port": "5432",
        "dbname": "test", "sslmode": "disable"}
