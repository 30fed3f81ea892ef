"""Every command that reads a journal calls a corrupted journal file damage found (exit 3), a
missing one a path to correct (exit 1); and `report --out` never puts the pack over the
journal it reads, its snapshot directory or any of its files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, invoke, small_journal

from ordergate.cli.report_cmd import pack_files

READERS = [("replay", "verify"), ("decisions",), ("replay", "whatif", "--policy", "{policy}"),
           ("report", "--out", "{pack}")]


def _copy(demo_day: Path, out: Path) -> Path:
    for path in demo_day.glob("journal.db*"):
        if path.is_file():
            shutil.copy(path, out / path.name)
    return out / "journal.db"


def _reader(command: tuple[str, ...], demo_day: Path, tmp_path: Path) -> list[str]:
    return [word.format(policy=demo_day / "policy.yaml", pack=tmp_path / "pack")
            for word in command]


def _digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("command", READERS)
def test_a_corrupted_journal_file_stops_every_reader_as_damage_found(
        demo_day: Path, tmp_path: Path, command: tuple[str, ...], half: bool) -> None:
    journal = _copy(demo_day, tmp_path)
    with journal.open("r+b") as handle:
        handle.truncate(journal.stat().st_size // 2 if half else 50)
    result = invoke(*_reader(command, demo_day, tmp_path), "--journal", str(journal))
    said = " ".join(result.output.split())
    assert result.code == 3, said
    assert f"{journal}: journal could not be read: the journal file is damaged" in said
    assert "malformed" in said and "Traceback" not in said
    assert not (tmp_path / "pack").exists()


@pytest.mark.parametrize("command", READERS)
def test_a_missing_journal_file_is_still_a_path_to_correct(
        demo_day: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "jounral.db"
    result = invoke(*_reader(command, demo_day, tmp_path), "--journal", str(missing))
    said = " ".join(result.output.split())
    assert result.code == 1, said
    assert f"--journal {missing}: no journal file here" in said
    assert not missing.exists() and not (tmp_path / "pack").exists()


def test_report_refuses_an_out_over_the_journal_or_in_its_snapshot_directory(
        demo_day: Path, tmp_path: Path) -> None:
    folder = tmp_path / "day"
    shutil.copytree(demo_day, folder)
    journal = folder / "journal.db"
    snapshots = folder / "journal.db.snapshots"
    assert any(snapshots.iterdir())
    linked, hard = tmp_path / "linked", tmp_path / "hard"
    linked.mkdir()
    hard.mkdir()
    (linked / "report.md").symlink_to(journal)
    os.link(journal.with_name("journal.db.head"), hard / "decisions.csv")
    before = _digests(tmp_path)
    outs = [(snapshots, "is the journal's snapshot directory"),
            (folder / "day" / ".." / "journal.db.snapshots" / "pack",
             "is in the journal's snapshot directory"),
            (journal, "is the journal ("), (Path(f"{journal}-wal"), "is the journal's write-ahead"),
            (Path(f"{journal}.head"), "is the journal's head file"),
            (linked, "the pack's report.md there would be the journal ("),
            (hard, "the pack's decisions.csv there would be the journal's head file")]
    for out, what in outs:
        result = invoke("report", "--journal", str(journal), "--out", str(out))
        said = " ".join(result.output.split())
        assert result.code == 1, (out, said)
        assert f"--out {out}: {what}" in said and "choose another directory" in said
        assert _digests(tmp_path) == before
    assert not Path(f"{journal}-wal").exists()
    assert sorted(path.name for path in snapshots.iterdir()) == sorted(
        path.name for path in (demo_day / "journal.db.snapshots").iterdir())


def test_report_writes_the_pack_beside_its_journal_and_only_the_files_it_guards(
        tmp_path: Path) -> None:
    """The files `report` checks against the journal's are the files the pack holds; a pack
    written into the journal's own directory leaves the journal's files as they were."""
    journal = small_journal(tmp_path, SMALL_DAY)
    before = _digests(tmp_path)

    result = invoke("report", "--journal", str(journal), "--out", str(tmp_path))

    assert result.code == 0, result.output
    after = _digests(tmp_path)
    # no dry run in this journal: every file of the pack but the shadow decisions
    assert sorted(set(after) - set(before)) == sorted(
        name for name in pack_files() if name != "shadow_decisions.csv")
    assert {name: after[name] for name in before if name.startswith("j.db")} == {
        name: digest for name, digest in before.items() if name.startswith("j.db")}


def test_report_guards_every_file_the_pack_can_hold() -> None:
    """The shadow decisions a dry run adds are checked against the journal's files too."""
    from ordergate.evidence.report import CSV_FILES

    assert set(CSV_FILES) | {"report.md", "report.html"} == set(pack_files())
    assert "shadow_decisions.csv" in pack_files()
