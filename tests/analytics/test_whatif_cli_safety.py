"""`replay whatif` never writes over the journal it reads (or its files), overwrites an
existing output only with --force, writes atomically, and refuses a journal whose chain or
kept head does not verify, as `replay verify` does."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, invoke, small_journal

EVENTS = [
    *SMALL_DAY,
    {"type": "intent", "intent_id": "i2", "ts": "2026-03-02T14:32:00Z", "account": "A1",
     "strategy": "s", "symbol": "MSFT", "side": "buy", "qty": "200", "order_type": "market"},
]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return small_journal(tmp_path, EVENTS, "--batch-size", "1")


def _whatif(journal: Path, *more: str) -> tuple[int, str]:
    result = invoke("replay", "whatif", "--journal", str(journal), "--policy",
                    str(journal.parent / "policy.yaml"), *more)
    return result.code, " ".join(result.output.split())


def _digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.mark.parametrize("suffix", ["", ".head", "-wal", "-shm", ".lock", ".manifest.json",
                                    ".snapshots/whatif.json"])
@pytest.mark.parametrize("option", ["--json", "--html"])
def test_whatif_never_writes_over_the_journal_or_its_files(journal: Path, suffix: str,
                                                           option: str) -> None:
    before = _digests(journal.parent)
    target = Path(f"{journal}{suffix}")

    for force in ((), ("--force",)):
        code, said = _whatif(journal, option, str(target), *force)
        assert code == 1, said
        assert f"{option} {target}: is " in said and "never writes over the journal" in said

    assert _digests(journal.parent) == before
    assert invoke("journal", "verify", "--journal", str(journal)).code == 0


def test_whatif_names_the_journal_through_another_path_too(journal: Path) -> None:
    link = journal.parent / "link.json"
    link.symlink_to(journal)
    dotted = journal.parent / "sub" / ".." / journal.name
    (journal.parent / "sub").mkdir()
    before = _digests(journal.parent)

    for target in (link, dotted):
        code, said = _whatif(journal, "--json", str(target), "--force")
        assert code == 1 and "is the journal" in said, said
    assert _digests(journal.parent) == before


def test_whatif_overwrites_an_existing_output_only_with_force(journal: Path) -> None:
    out = journal.parent / "w.json"
    out.write_text("keep me\n")

    code, said = _whatif(journal, "--json", str(out))
    assert code == 1
    assert f"--json {out}: the file exists; pass --force to overwrite it" in said
    assert out.read_text() == "keep me\n"

    code, said = _whatif(journal, "--json", str(out), "--force")
    assert code == 0, said
    assert json.loads(out.read_text())["decisions"] == 2


def test_whatif_refuses_the_same_file_for_both_outputs(journal: Path) -> None:
    out = journal.parent / "both"
    code, said = _whatif(journal, "--json", str(out), "--html", str(out))
    assert code == 1
    assert f"--html {out}: is also the --json file" in said
    assert not out.exists()


def test_a_failed_write_leaves_the_old_file_and_no_half_file(
        journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = journal.parent / "w.json"
    out.write_text("the old report\n")
    before = sorted(journal.parent.iterdir())

    def refuse(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    code, said = _whatif(journal, "--json", str(out), "--force")

    assert code == 1
    assert f"--json {out}: cannot write: No space left on device" in said
    assert out.read_text() == "the old report\n"
    assert sorted(journal.parent.iterdir()) == before  # no temporary file left behind


def test_whatif_refuses_a_journal_with_an_edited_record(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        seq, payload = db.execute(
            "SELECT seq, payload FROM journal_records WHERE kind = 'in' "
            "AND CAST(payload AS TEXT) LIKE '%\"i1\"%' ORDER BY seq LIMIT 1").fetchone()
        db.execute("UPDATE journal_records SET payload = ? WHERE seq = ?",
                   (bytes(payload).replace(b'"100"', b'"900"'), seq))
    verify = invoke("replay", "verify", "--journal", str(journal))
    out = journal.parent / "w.json"

    code, said = _whatif(journal, "--json", str(out))

    assert verify.code == code == 3
    wording = f"journal verification failed at seq {seq}:"
    assert wording in " ".join(verify.output.split()) and wording in said
    assert not out.exists()


def test_whatif_refuses_a_journal_cut_short_of_its_kept_head(journal: Path) -> None:
    with sqlite3.connect(journal) as db:
        last = db.execute("SELECT max(seq) FROM journal_records").fetchone()[0]
        db.execute("DELETE FROM journal_records WHERE seq = ?", (last,))

    code, said = _whatif(journal)

    assert code == 3
    assert "journal verification failed" in said
