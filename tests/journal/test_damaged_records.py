"""A stored record whose field holds a value of the wrong type (what editing an SQLite journal
by hand leaves: `replace()` on a payload stores text) is a damaged record: verification names
its seq, and every reader stops on it with a JournalError naming it, never a TypeError."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ordergate.cli import main
from ordergate.journal import JournalError, RecordKind, open_journal, verify_rows
from ordergate.journal.base import GENESIS_HASH, record_damage, record_hash

STATE = b'{"accounts":[{"cash":"1"}]}'
ATTESTATION_SEQ = 7  # save_snapshot(6, ...) after six records journals its attestation as 7

# (seq, SQL that damages it, the field the report names)
DAMAGE = [
    pytest.param(3, "UPDATE journal_records SET payload = replace(payload, '\"qty\":\"50\"', "
                    "'\"qty\":\"5000\"') WHERE seq = 3", "payload", id="payload-as-text"),
    pytest.param(3, "UPDATE journal_records SET recorded_at_ns = 'soon' WHERE seq = 3",
                 "recorded_at_ns", id="recorded_at-as-text"),
    pytest.param(3, "UPDATE journal_records SET recorded_at_ns = 1.5 WHERE seq = 3",
                 "recorded_at_ns", id="recorded_at-as-real"),
    pytest.param(3, "UPDATE journal_records SET kind = CAST(kind AS BLOB) WHERE seq = 3",
                 "kind", id="kind-as-blob"),
    pytest.param(3, "UPDATE journal_records SET run_id = CAST(run_id AS BLOB) WHERE seq = 3",
                 "run_id", id="run_id-as-blob"),
    pytest.param(ATTESTATION_SEQ, "UPDATE journal_records SET payload = CAST(payload AS TEXT) "
                                  f"WHERE seq = {ATTESTATION_SEQ}",
                 "payload", id="attestation-payload-as-text"),
]


def _journal(tmp_path: Path) -> Path:
    """Six intents, then a snapshot at 6 (attested by record 7), then one more record."""
    path = tmp_path / "journal.db"
    journal = open_journal(f"sqlite:///{path}")
    try:
        for index in range(6):
            journal.append(RecordKind.INPUT, b'{"type":"intent","n":%d,"qty":"50"}' % index)
        journal.save_snapshot(6, STATE)
        journal.append(RecordKind.INPUT, b'{"type":"clock"}')
    finally:
        journal.close()
    return path


def _damage(path: Path, sql: str, seq: int) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
        (stored_type,) = conn.execute(
            "SELECT typeof(payload) || ' ' || typeof(recorded_at_ns) || ' ' || typeof(kind) || "
            "' ' || typeof(run_id) FROM journal_records WHERE seq = ?", (seq,)).fetchone()
    conn.close()
    return str(stored_type)


@pytest.mark.parametrize(("seq", "sql", "field"), DAMAGE)
def test_a_record_stored_with_a_wrong_type_is_damage_every_reader_names(
        seq: int, sql: str, field: str, tmp_path: Path) -> None:
    path = _journal(tmp_path)
    assert _damage(path, sql, seq) != "blob integer text text"  # the type really changed
    journal = open_journal(f"sqlite:///{path}", create=False, reader=True)
    try:
        report = journal.verify()
        assert not report.ok
        assert report.first_bad_seq == seq
        assert report.records == seq - 1
        assert f"record {seq} is damaged" in report.message
        assert f"{field}: stored as" in report.message

        with pytest.raises(JournalError, match=f"record {seq} is damaged: {field}: "):
            list(journal.read())
        assert [record.seq for record in journal.read(1, seq - 1)] == list(range(1, seq))

        with capture_logs():  # start-up's choice of snapshot reads the attestations
            snapshot = journal.latest_snapshot()
        if seq == ATTESTATION_SEQ:
            assert snapshot is None  # its attestation is damaged: the snapshot is not used
        else:
            assert snapshot is not None and snapshot.state == STATE
    finally:
        journal.close()


@pytest.mark.parametrize("command", [["journal", "verify"], ["replay", "verify"]], ids=" ".join)
def test_verify_commands_stop_on_a_hand_edited_payload_naming_its_seq(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    seq, sql, _ = DAMAGE[0].values
    path = _journal(tmp_path)
    _damage(path, str(sql), int(str(seq)))
    monkeypatch.setattr(sys, "argv", ["ordergate", *command, "--journal", str(path)])
    with pytest.raises(SystemExit) as stopped:
        main.main()
    said = " ".join((capsys.readouterr().err).split())
    assert stopped.value.code == 3, said
    assert "verification failed at seq 3" in said
    assert "record 3 is damaged" in said and "payload: stored as text" in said
    assert "Traceback" not in said


def test_verify_rows_reports_a_wrongly_typed_field_in_order_with_other_damage() -> None:
    first = (1, "in", "run", 5, b"{}", GENESIS_HASH,
             record_hash(GENESIS_HASH, 1, "in", "run", 5, b"{}"))
    assert record_damage(first) is None
    text_payload = (2, "in", "run", 6, "{}", first[6], "x" * 64)
    assert record_damage(text_payload) == (  # type: ignore[arg-type]
        "payload: stored as text, expected bytes (a blob)")
    report = verify_rows([first, text_payload])  # type: ignore[list-item]
    assert (report.ok, report.records, report.first_bad_seq) == (False, 1, 2)
    # a record missing before the damaged one is reported first, as it comes first
    report = verify_rows([first, (3, *text_payload[1:])])  # type: ignore[list-item]
    assert report.first_bad_seq == 2 and "record 2 is missing" in report.message
    report = verify_rows([first, ("2", *first[1:])])  # type: ignore[list-item]
    assert report.first_bad_seq == 2 and "seq: stored as text" in report.message
