"""A snapshot is used only if the hash chain attests its contents: whoever stores one then
journals the digest of the stored state, so a snapshot edited where it is stored (its own
digest recomputed) is neither used at restart nor passed by `journal verify`, and one stored
but never attested (a crash in between) is simply not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs
from tests.runtime.harness import fork_run

from ordergate.brokers.sim import SimBroker
from ordergate.engine.status import EngineStatus
from ordergate.journal import Durability, RecordKind, open_journal, snapfiles
from ordergate.journal.attestation import decode_attestation, state_digest
from ordergate.journal.urls import parse_journal_url
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events, write_events
from ordergate.runtime.loop import Runtime, rebuild
from ordergate.runtime.runfile import run_file

DEMO_POLICY = (Path(__file__).resolve().parents[2] / "src" / "ordergate" / "data"
               / "demo_policy.yaml")
FORGED_CASH = Decimal(8_000_000)


def _run_demo(url: str, tmp_path: Path, *, events: int = 3000) -> EngineStatus:
    """The demo day's first `events` events through a runtime snapshotting every 200 events
    in the background (the default); the status it ended with."""
    path = tmp_path / "events.jsonl"
    write_events(path, demo_events()[:events])
    runtime = Runtime.open(url, load_policy(DEMO_POLICY), SimBroker(), snapshot_every=200,
                           source=path)
    try:
        run_file(runtime, path, batch_size=50)
        return runtime.engine.status()
    finally:
        runtime.close()


def _forge(state: bytes) -> bytes:
    """The auditor's edit: 8,000,000 more cash in the first account of the snapshot."""
    image = json.loads(state)
    account = image["accounts"][0]
    account["cash"] = str(Decimal(account["cash"]) + FORGED_CASH)
    return json.dumps(image, separators=(",", ":")).encode()


def _attestations(url: str) -> dict[int, str]:
    """snapshot seq -> attested digest, from the journal's META records."""
    journal = open_journal(url, durability=Durability.NONE, create=False)
    try:
        found = {}
        for record in journal.read():
            if record.kind is RecordKind.META:
                attested = decode_attestation(record.payload)
                if attested is not None:
                    assert attested.seq < record.seq
                    found[attested.seq] = attested.digest
        return found
    finally:
        journal.close()


def _latest(url: str) -> tuple[int | None, list[dict[str, object]]]:
    """(seq of the snapshot a restart would use, the journal's log events while choosing)."""
    journal = open_journal(url, create=False)
    try:
        with capture_logs() as logs:
            snapshot = journal.latest_snapshot()
        return (None if snapshot is None else snapshot.seq), logs
    finally:
        journal.close()


def _verify_cli(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", "journal", "verify",
                           "--journal", url], capture_output=True, text=True, timeout=300,
                          check=False)


def _equity(status: EngineStatus) -> Decimal:
    return sum((Decimal(str(account.equity)) for account in status.accounts), Decimal(0))


# ---------------------------------------------------------------- SQLite: snapshot files


def test_an_honest_snapshot_file_is_attested_used_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url = f"sqlite:///{path}"
    status = _run_demo(url, tmp_path)
    files = sorted(snapfiles.directory_for(str(path)).glob("*" + snapfiles.SUFFIX))
    assert files
    newest = int(files[-1].name.removesuffix(snapfiles.SUFFIX))
    attested = _attestations(url)
    state, _ = snapfiles.read(snapfiles.directory_for(str(path)), newest)
    assert attested[newest] == state_digest(state)  # the chain holds the file's digest

    used, logs = _latest(url)
    assert used == newest
    assert not [log for log in logs if log["event"].startswith("journal.snapshot")]
    assert rebuild(url).status() == status
    verified = _verify_cli(url)
    assert verified.returncode == 0, verified.stderr
    assert "chain OK" in verified.stdout
    assert "note:" not in verified.stderr


def test_a_forged_snapshot_file_is_not_used_and_fails_verify(tmp_path: Path) -> None:
    """The audit finding: cash edited inside the newest snapshot file and the file's own
    sha256 recomputed. The chain is intact, the file reads clean; only its attestation
    shows it."""
    path = tmp_path / "journal.db"
    url = f"sqlite:///{path}"
    status = _run_demo(url, tmp_path)
    directory = snapfiles.directory_for(str(path))
    seqs = sorted(int(file.name.removesuffix(snapfiles.SUFFIX))
                  for file in directory.glob("*" + snapfiles.SUFFIX))
    assert len(seqs) >= 2, seqs
    forged_seq = seqs[-1]
    state, _ = snapfiles.read(directory, forged_seq)
    chain_hash = next(iter(snapfiles.index(directory)))[1]
    snapfiles.write(directory, forged_seq, chain_hash, _forge(state))
    assert snapfiles.read(directory, forged_seq)[0] == _forge(state)  # reads clean

    used, logs = _latest(url)
    assert used == seqs[-2]  # the older, honest one
    tampered = [log for log in logs if log["event"] == "journal.snapshot_tampered"]
    assert len(tampered) == 1 and tampered[0]["seq"] == forged_seq
    assert tampered[0]["log_level"] == "error"
    assert str(directory / f"{forged_seq:020d}.snap") in str(tampered[0]["snapshot"])
    rebuilt = rebuild(url).status()  # what `ordergate status` shows
    assert rebuilt == status
    assert _equity(rebuilt) == _equity(status)

    verified = _verify_cli(url)
    assert verified.returncode == 3, verified.stdout + verified.stderr
    assert f"verification failed at seq {forged_seq}" in verified.stderr
    assert f"snapshot at seq {forged_seq}" in verified.stderr
    assert "altered after it was stored" in verified.stderr

    # a restart resumes from the honest state, not the forged one
    events = tmp_path / "events.jsonl"
    runtime = Runtime.open(url, load_policy(DEMO_POLICY), SimBroker(), source=events)
    try:
        assert runtime.engine.status() == status
    finally:
        runtime.close()


def _fork_run(args: list[str], fault: str | None) -> int:
    """`ordergate <args>` in a forked child that a fault point can really SIGKILL; returns
    its exit code (-9 when killed)."""
    _, status = os.waitpid(fork_run(args, fault), 0)
    return os.waitstatus_to_exitcode(status)


def test_a_crash_between_storing_and_attesting_leaves_the_snapshot_unused(
        tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, demo_events()[:1500])

    def run(journal: Path, state: Path, fault: str | None) -> int:
        return _fork_run(["run", "--quiet", "--policy", str(DEMO_POLICY), "--journal",
                          str(journal), "--broker-state", str(state), "--fill-model",
                          "next_market", "--batch-size", "16", "--snapshot-every", "50",
                          str(events)], fault)

    crashed, whole = tmp_path / "crashed.db", tmp_path / "whole.db"
    assert run(crashed, tmp_path / "crashed.json", "before_snapshot_attested:1") == -9
    url = f"sqlite:///{crashed}"
    stored = sorted(int(file.name.removesuffix(snapfiles.SUFFIX)) for file in
                    snapfiles.directory_for(str(crashed)).glob("*" + snapfiles.SUFFIX))
    assert len(stored) == 1  # the child stored it; the parent died before attesting it
    assert _attestations(url) == {}
    used, logs = _latest(url)
    assert used is None
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_unattested"] \
        == stored
    verified = _verify_cli(url)
    assert verified.returncode == 0, verified.stderr
    assert f"note: the snapshot at seq {stored[0]}" in verified.stderr
    assert "not attested" in verified.stderr

    # the restart replays from record 1 and ends where an uninterrupted run ends
    assert run(crashed, tmp_path / "crashed.json", None) == 0
    assert run(whole, tmp_path / "whole.json", None) == 0
    assert rebuild(url).status() == rebuild(f"sqlite:///{whole}").status()
    assert _verify_cli(url).returncode == 0


def test_an_inline_snapshot_is_attested_and_a_forged_row_is_not_used(tmp_path: Path) -> None:
    """Snapshots stored in line (in the journal's own table) are attested the same way."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = open_journal(url)
    try:
        for index in range(6):
            journal.append(RecordKind.INPUT, f'{{"n":{index}}}'.encode())
        journal.save_snapshot(3, b'{"accounts":[{"cash":"1"}]}')
        journal.save_snapshot(6, b'{"accounts":[{"cash":"2"}]}')
        assert [r.seq for r in journal.read() if r.kind is RecordKind.META] == [7, 8]
        latest = journal.latest_snapshot()
        assert latest is not None and latest.seq == 6
    finally:
        journal.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "journal.db") as conn:
        conn.execute("UPDATE journal_snapshots SET state = ? WHERE seq = 6",
                     (b'{"accounts":[{"cash":"8000002"}]}',))
    used, logs = _latest(url)
    assert used == 3
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_tampered"] == [6]
    verified = _verify_cli(url)
    assert verified.returncode == 3
    assert "snapshot at seq 6" in verified.stderr


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgres_forged_snapshot_is_not_used_and_fails_verify(postgres_url: str,
                                                                tmp_path: Path) -> None:
    url = f"{postgres_url}&stream=attest"
    status = _run_demo(url, tmp_path)
    location = parse_journal_url(url)
    with psycopg.connect(location.target, autocommit=True) as conn:
        seqs = [int(row[0]) for row in conn.execute(
            "SELECT seq FROM journal_snapshots WHERE stream = 'attest' ORDER BY seq")]
        assert len(seqs) >= 2, seqs
        attested = _attestations(url)
        for seq in seqs:  # every stored row is attested, with its digest
            row = conn.execute("SELECT state FROM journal_snapshots WHERE stream = 'attest' "
                               "AND seq = %s", (seq,)).fetchone()
            assert row is not None and attested[seq] == state_digest(bytes(row[0]))
        used, _ = _latest(url)
        assert used == seqs[-1]
        assert _verify_cli(url).returncode == 0

        row = conn.execute("SELECT state FROM journal_snapshots WHERE stream = 'attest' "
                           "AND seq = %s", (seqs[-1],)).fetchone()
        assert row is not None
        conn.execute("UPDATE journal_snapshots SET state = %s WHERE stream = 'attest' "
                     "AND seq = %s", (_forge(bytes(row[0])), seqs[-1]))
    used, logs = _latest(url)
    assert used == seqs[-2]
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_tampered"] \
        == [seqs[-1]]
    assert rebuild(url).status() == status
    verified = _verify_cli(url)
    assert verified.returncode == 3
    assert f"snapshot at seq {seqs[-1]}" in verified.stderr
    # a row, not a file: the refusal gives the statement that sets it aside, and it works
    statement = f"DELETE FROM journal_snapshots WHERE stream = 'attest' AND seq = {seqs[-1]}"
    assert statement in " ".join(verified.stderr.split())
    with psycopg.connect(location.target, autocommit=True) as conn:
        conn.execute(statement)
    assert _verify_cli(url).returncode == 0


@pytest.mark.postgres
def test_postgres_snapshot_stored_but_not_attested_is_not_used(postgres_url: str,
                                                               tmp_path: Path) -> None:
    """What a crash between the child's store and the parent's attestation leaves: a row
    nothing attests. It is skipped; start-up replays and ends in the same state."""
    url = f"{postgres_url}&stream=unattested"
    status = _run_demo(url, tmp_path, events=1000)
    journal = open_journal(url, create=False)
    try:
        latest = journal.latest_snapshot()
        assert latest is not None
        seq, chain_hash = journal.last_seq(), journal.last_hash()
        # stored as the snapshot child stores it, then "crashed": never adopted
        journal.write_detached(seq, chain_hash, _forge(latest.state))  # type: ignore[attr-defined]
    finally:
        journal.close()
    used, logs = _latest(url)
    assert used == latest.seq
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_unattested"] \
        == [seq]
    assert rebuild(url).status() == status
    verified = _verify_cli(url)
    assert verified.returncode == 0, verified.stderr
    assert f"note: the snapshot at seq {seq}" in verified.stderr
