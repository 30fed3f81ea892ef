"""A head kept outside the journal (seq and hash of its newest record) proves what the chain and
its snapshots cannot: that no record up to it was cut from the end or rewritten with recomputed
hashes after the last snapshot. `journal head` prints it, `journal verify --head` checks it,
`run` and the journal's close publish it."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from journal_support import Backend, StoreAccess
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.journal import (
    GENESIS_HASH,
    JournalError,
    RecordKind,
    check_heads,
    format_head,
    open_journal,
)


def ordergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def one_line(text: str) -> str:
    """stderr as one line: rich wraps long messages."""
    return " ".join(text.split())


def twelve_records_snapshotted_at_4(backend: Backend) -> dict[str, object]:
    """A closed journal of twelve records with one snapshot, at record 4 (eleven records,
    then the snapshot's attestation), and its head as `journal head --json` printed it."""
    journal = open_journal(backend.url)
    try:
        for index in range(11):
            journal.append(RecordKind.INPUT, f'{{"type":"clock","n":{index}}}'.encode())
        journal.save_snapshot(4, b"state-at-4")
    finally:
        journal.close()
    shown = ordergate("journal", "head", "--journal", backend.url, "--json")
    assert shown.returncode == 0, shown.stderr
    head = json.loads(shown.stdout)
    assert head["seq"] == 12
    return head


def verify(backend: Backend, *heads: str) -> subprocess.CompletedProcess[str]:
    args = [arg for head in heads for arg in ("--head", head)]
    return ordergate("journal", "verify", "--journal", backend.url, *args)


def without_head_file(backend: Backend, caught: str) -> subprocess.CompletedProcess[str]:
    """`journal verify` with no head: a SQLite journal's own head file (`journal.headfile`)
    catches the change (`caught` is in the message), so it is moved aside first; a PostgreSQL
    journal has none."""
    if backend.url.startswith("sqlite"):
        head_file = Path(backend.url.removeprefix("sqlite:///") + ".head")
        kept = verify(backend)
        assert kept.returncode == 3, kept.stdout + kept.stderr
        assert caught in one_line(kept.stderr) and "head file" in one_line(kept.stderr)
        head_file.unlink()
    return verify(backend)


def refused(backend: Backend, head: str) -> str:
    """`journal verify --head` must stop (exit 3) without a stack trace: its message."""
    anchored = verify(backend, head)
    assert anchored.returncode == 3, anchored.stdout + anchored.stderr
    message = one_line(anchored.stderr)
    assert "Traceback" not in message
    return message


def test_records_cut_from_the_end_after_the_last_snapshot_are_caught_by_the_head(
        backend: Backend) -> None:
    head = twelve_records_snapshotted_at_4(backend)
    store = backend.store()
    try:
        for seq in (12, 11, 10):  # the newest three, past the only snapshot
            store.delete(seq)
    finally:
        store.close()

    plain = without_head_file(backend, "failed at seq 10")
    # the limit: with no head, the chain and its snapshot cannot see the cut
    assert plain.returncode == 0, plain.stderr
    assert "9 records checked" in plain.stdout

    message = refused(backend, str(head["head"]))
    assert "failed at seq 10" in message
    assert "records 10 to 12 at least were written and are gone" in message


def test_a_tail_rewritten_with_recomputed_hashes_is_caught_by_the_head(
        backend: Backend) -> None:
    head = twelve_records_snapshotted_at_4(backend)
    store = backend.store()
    try:
        store.forge_tail(8, 12)
    finally:
        store.close()

    plain = without_head_file(backend, "rewritten at or before record 12")
    assert plain.returncode == 0, plain.stderr

    message = refused(backend, str(head["head"]))
    assert "failed at seq 12" in message
    assert "rewritten at or before record 12" in message
    assert "records before it are intact" not in message


def test_a_journal_verifies_against_its_own_heads_old_and_new(backend: Backend) -> None:
    head = twelve_records_snapshotted_at_4(backend)
    journal = open_journal(backend.url)
    try:
        journal.append(RecordKind.INPUT, b'{"type":"clock","n":"later"}')
    finally:
        journal.close()
    newer = json.loads(ordergate("journal", "head", "--journal", backend.url, "--json").stdout)
    assert newer["seq"] == 13

    clean = verify(backend, str(head["head"]), str(newer["head"]))
    assert clean.returncode == 0, clean.stderr
    assert "13 records checked" in clean.stdout and "2 head(s) match" in clean.stdout

    # The same check for other callers, through the journal package.
    reopened = open_journal(backend.url, create=False)
    try:
        seq, chain_hash = 12, str(head["hash"]).removeprefix("sha256:")
        assert check_heads(reopened, reopened.verify(), [(seq, chain_hash)]).ok
        wrong = check_heads(reopened, reopened.verify(), [(seq, "0" * 64), (14, chain_hash)])
        assert not wrong.ok and wrong.first_bad_seq == 12
    finally:
        reopened.close()


def test_journal_head_json_is_the_newest_record(backend: Backend) -> None:
    twelve_records_snapshotted_at_4(backend)
    store = backend.store()
    try:
        newest = store.row(12)
    finally:
        store.close()
    shown = ordergate("journal", "head", "--journal", backend.url, "--json")
    assert shown.returncode == 0, shown.stderr
    head = json.loads(shown.stdout)
    recorded_at = datetime.fromisoformat(head["recorded_at"])
    assert recorded_at.tzinfo is not None and recorded_at.utcoffset() == UTC.utcoffset(None)
    assert head["recorded_at"].endswith("Z")
    assert head == {
        "journal": head["journal"],
        "seq": 12,
        "records": 12,
        "hash": f"sha256:{newest['hash']}",
        "recorded_at": head["recorded_at"],
        "head": f"12:sha256:{newest['hash']}",
    }
    assert int(recorded_at.timestamp() * 1_000_000) == newest["recorded_at_ns"] // 1000

    plain = ordergate("journal", "head", "--journal", backend.url)
    assert plain.returncode == 0, plain.stderr
    assert f"head seq 12 hash sha256:{newest['hash']} (12 records" in plain.stdout
    assert f"--head 12:sha256:{newest['hash']}" in plain.stdout


def test_the_head_of_an_empty_journal_is_record_0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_journal(url).close()
    shown = ordergate("journal", "head", "--journal", url, "--json")
    assert shown.returncode == 0, shown.stderr
    head = json.loads(shown.stdout)
    assert (head["seq"], head["records"], head["recorded_at"]) == (0, 0, None)
    assert head["head"] == format_head(0, GENESIS_HASH)
    assert ordergate("journal", "verify", "--journal", url, "--head", head["head"]).returncode == 0


def test_journal_head_of_a_missing_journal_is_a_user_error(tmp_path: Path) -> None:
    result = ordergate("journal", "head", "--journal", f"sqlite:///{tmp_path}/absent.db")
    assert result.returncode == 1
    assert "absent.db" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", [
    "12",  # no colon
    "twelve:" + "a" * 64,  # seq not an integer
    "-1:" + "a" * 64,  # negative seq
    "1.5:" + "a" * 64,
    "12:abc",  # hash too short
    "12:sha256:" + "g" * 64,  # not hex
    "12:" + "A" * 64,  # not the journal's lowercase hex
    "12:sha1:" + "a" * 40,
])
def test_a_malformed_head_is_a_usage_error_naming_the_option(tmp_path: Path,
                                                             value: str) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    open_journal(url).close()
    result = ordergate("journal", "verify", "--journal", url, "--head", value)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Invalid value for '--head'" in one_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_a_run_summary_shows_the_journal_head(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=10)
    journal = tmp_path / "journal.db"
    done = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "run", "--policy", str(demo_policy_path()),
         "--journal", str(journal), "--quiet", str(events)],
        capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = re.search(r"journal head: seq (\d+) hash (sha256:[0-9a-f]{64})", done.stderr)
    assert shown is not None, done.stderr

    head = json.loads(ordergate("journal", "head", "--journal", str(journal), "--json").stdout)
    assert (int(shown.group(1)), shown.group(2)) == (head["seq"], head["hash"])
    assert head["seq"] > 0
    checked = ordergate("journal", "verify", "--journal", str(journal),
                        "--head", f"{shown.group(1)}:{shown.group(2)}")
    assert checked.returncode == 0, checked.stderr


def test_closing_a_journal_that_wrote_logs_its_head(backend: Backend) -> None:
    with structlog.testing.capture_logs() as logs:
        journal = open_journal(backend.url)
        seqs = journal.append_many([(RecordKind.INPUT, b"%d" % n) for n in range(5)])
        journal.close()
        reader = open_journal(backend.url, create=False)
        reader.verify()
        reader.close()
    closed = [entry for entry in logs if entry["event"] == "journal.closed"]
    store = StoreAccess(backend.url)
    try:
        newest = store.get(seqs[-1], "hash")
    finally:
        store.close()
    # Once, from the writer: the reader appended nothing, so it has no head to publish.
    assert len(closed) == 1, logs
    assert closed[0]["seq"] == 5 and closed[0]["hash"] == f"sha256:{newest}"
    assert closed[0]["log_level"] == "info"


def test_a_journal_whose_write_failed_logs_no_head(tmp_path: Path) -> None:
    """Its newest record in memory was never made durable: that is no head to keep. The head
    of what was durable is logged by the next writer to close healthy."""
    path = tmp_path / "journal.db"
    with structlog.testing.capture_logs() as logs:
        journal = open_journal(f"sqlite:///{path}")
        journal.append(RecordKind.INPUT, b"1")
        journal.flush()
        journal.append(RecordKind.INPUT, b"2")
        path.rename(tmp_path / "moved.db")  # the next flush fails: the file is gone
        with pytest.raises(JournalError, match="journal file is gone"):
            journal.flush()
        journal.close()  # poisoned: it writes nothing more, and has no head to publish
        failed = [entry for entry in logs if entry["event"] == "journal.closed"]
        assert any(entry["event"] == "journal.write_failed" for entry in logs)

        (tmp_path / "moved.db").rename(path)
        restored = open_journal(f"sqlite:///{path}", create=False)
        assert restored.last_seq() == 1  # record 2 never reached the disk
        restored.append(RecordKind.INPUT, b"2 again")
        restored.close()
    assert failed == []
    closed = [entry for entry in logs if entry["event"] == "journal.closed"]
    assert [entry["seq"] for entry in closed] == [2]


def test_replay_verify_checks_the_heads_it_is_given(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=10)
    journal = tmp_path / "journal.db"
    done = ordergate("run", "--policy", str(demo_policy_path()), "--journal", str(journal),
                     "--quiet", str(events))
    assert done.returncode == 0, done.stderr
    head = json.loads(ordergate("journal", "head", "--journal", str(journal), "--json").stdout)

    intact = ordergate("replay", "verify", "--journal", str(journal), "--head", head["head"])
    assert intact.returncode == 0, intact.stdout + intact.stderr

    with sqlite3.connect(journal) as conn:  # cut the newest two records
        conn.execute("DELETE FROM journal_records WHERE seq > ?", (head["seq"] - 2,))
    cut = ordergate("replay", "verify", "--journal", str(journal), "--head", head["head"])
    assert cut.returncode == 3, cut.stdout + cut.stderr
    message = one_line(cut.stderr)
    assert f"failed at seq {head['seq'] - 1}" in message
    assert "Traceback" not in message
    malformed = ordergate("replay", "verify", "--journal", str(journal), "--head", "12")
    assert malformed.returncode == 2
    assert "'--head'" in one_line(malformed.stderr)
