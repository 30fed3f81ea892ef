"""What `journal verify` says about snapshot files matches what start-up does with them: a
snapshot the journal attests with two different digests (a forged file with a new
attestation appended to the chain) fails verification, and start-up trusts only the first
attestation; a snapshot file the journal attests whose header was cut short is damage."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from ordergate.cli import main
from ordergate.journal import RecordKind, VerifyReport, open_journal, snapfiles
from ordergate.journal.attestation import encode_attestation
from ordergate.journal.sqlite import SqliteJournal

HONEST = b'{"accounts":[{"cash":"1"}]}'
FORGED = b'{"accounts":[{"cash":"8000001"}]}'


def _journal(tmp_path: Path) -> tuple[Path, list[int]]:
    """A journal with two snapshot files beside it, each stored as the runtime's snapshot
    child stores one and attested by the journal; the seqs they were taken at."""
    path = tmp_path / "journal.db"
    journal = open_journal(f"sqlite:///{path}")
    assert isinstance(journal, SqliteJournal)
    taken = []
    try:
        for round_ in range(2):
            for index in range(3):
                journal.append(RecordKind.INPUT, b'{"n":%d}' % (10 * round_ + index))
            seq = journal.last_seq()
            digest = journal.write_detached(seq, journal.last_hash(), HONEST)
            assert journal.adopt_detached(seq, digest) is not None
            taken.append(seq)
        journal.append(RecordKind.INPUT, b'{"n":99}')
    finally:
        journal.close()
    return path, taken


def _forge_and_reattest(path: Path, seq: int) -> int:
    """Rewrite the snapshot file at `seq` with forged state (its header digest recomputed)
    and append a correctly chained record attesting the new digest; that record's seq."""
    directory = snapfiles.directory_for(str(path))
    chain_hash = dict(snapfiles.index(directory))[seq]
    digest = snapfiles.write(directory, seq, chain_hash, FORGED)
    journal = open_journal(f"sqlite:///{path}", create=False)
    try:
        return journal.append(RecordKind.META, encode_attestation(seq, digest))
    finally:
        journal.close()


def _verify(path: Path) -> VerifyReport:
    journal = open_journal(f"sqlite:///{path}", create=False, reader=True)
    try:
        return journal.verify()
    finally:
        journal.close()


def _latest(path: Path) -> tuple[bytes | None, list[MutableMapping[str, Any]]]:
    journal = open_journal(f"sqlite:///{path}", create=False)
    try:
        with capture_logs() as logs:
            snapshot = journal.latest_snapshot()
        return (None if snapshot is None else snapshot.state), logs
    finally:
        journal.close()


def _verify_cli(path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["ordergate", "journal", "verify", "--journal", str(path)])
    code: int | str | None = 0
    try:
        main.main()
    except SystemExit as stopped:
        code = stopped.code
    captured = capsys.readouterr()
    return int(code or 0), " ".join((captured.out + captured.err).split())


def _attesting_seqs(path: Path, seq: int) -> list[int]:
    journal = open_journal(f"sqlite:///{path}", create=False, reader=True)
    try:
        return [record.seq for record in journal.read()
                if record.kind is RecordKind.META
                and json.loads(record.payload).get("seq") == seq]
    finally:
        journal.close()


def test_a_forged_snapshot_attested_again_fails_verify_naming_both_attestations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, (_, newest) = _journal(tmp_path)
    assert _verify(path).ok
    second = _forge_and_reattest(path, newest)
    first = _attesting_seqs(path, newest)[0]
    assert first < second

    state, logs = _latest(path)  # start-up trusts the first attestation only
    assert state == HONEST
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_tampered"] \
        == [newest]

    report = _verify(path)
    assert not report.ok
    assert report.first_bad_seq == newest
    assert f"record {first} attests" in report.message
    assert f"record {second} attests" in report.message
    code, said = _verify_cli(path, monkeypatch, capsys)
    assert code == 3, said
    assert f"verification failed at seq {newest}" in said
    assert f"{newest:020d}.snap" in said


def test_an_honest_snapshot_attested_again_with_another_digest_fails_verify(
        tmp_path: Path) -> None:
    """Only a record was added: the file is what was stored, and start-up uses it, but the
    chain holds a record vouching for other contents."""
    path, (_, newest) = _journal(tmp_path)
    journal = open_journal(f"sqlite:///{path}", create=False)
    try:
        journal.append(RecordKind.META, encode_attestation(newest, "sha256:" + "ab" * 32))
    finally:
        journal.close()
    state, _ = _latest(path)
    assert state == HONEST
    report = _verify(path)
    assert not report.ok and report.first_bad_seq == newest
    assert "attested with different digests" in report.message


def test_start_up_trusts_only_the_first_attestation_of_an_older_snapshot(
        tmp_path: Path) -> None:
    """With the newest snapshot unattested, start-up reads every record after the older
    one, the forged attestation too: it must still hold the file to the first."""
    path, (older, newest) = _journal(tmp_path)
    _forge_and_reattest(path, older)
    (snapfiles.directory_for(str(path)) / f"{newest:020d}.snap").unlink()
    journal = open_journal(f"sqlite:///{path}", create=False)
    assert isinstance(journal, SqliteJournal)
    try:  # a snapshot stored at the end, never attested (a crash before its adoption)
        journal.write_detached(journal.last_seq(), journal.last_hash(), HONEST)
    finally:
        journal.close()
    state, logs = _latest(path)
    assert state is None
    assert [log["seq"] for log in logs if log["event"] == "journal.snapshot_tampered"] \
        == [older]
    assert not _verify(path).ok


def test_an_attested_snapshot_file_with_a_cut_header_fails_verify(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, (_, newest) = _journal(tmp_path)
    os.truncate(snapfiles.directory_for(str(path)) / f"{newest:020d}.snap", 100)

    state, _ = _latest(path)  # never used: start-up falls back to the older one
    assert state == HONEST
    report = _verify(path)
    assert not report.ok
    assert report.first_bad_seq == newest
    assert "the snapshot header is cut short" in report.message
    code, said = _verify_cli(path, monkeypatch, capsys)
    assert code == 3, said
    assert f"verification failed at seq {newest}" in said
    assert f"{newest:020d}.snap" in said


def test_an_unattested_snapshot_file_with_a_cut_header_is_a_note(tmp_path: Path) -> None:
    path, _ = _journal(tmp_path)
    journal = open_journal(f"sqlite:///{path}", create=False)
    assert isinstance(journal, SqliteJournal)
    try:
        seq = journal.last_seq()
        journal.write_detached(seq, journal.last_hash(), HONEST)  # never adopted
    finally:
        journal.close()
    os.truncate(snapfiles.directory_for(str(path)) / f"{seq:020d}.snap", 0)
    report = _verify(path)
    assert report.ok, report.message
    assert [note for note in report.notes if f"snapshot at seq {seq} cannot be read" in note]
