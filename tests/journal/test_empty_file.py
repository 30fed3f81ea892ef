"""A reader never changes the file it is pointed at: a zero-byte file given as a journal to
`journal verify`, `journal head`, `status`, `decisions` or `replay verify` is named as empty
and stays zero bytes (opening it as SQLite used to write a 4 KB database header into it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ordergate.journal import JournalError, open_journal


@pytest.mark.parametrize("command", [
    ["journal", "verify"], ["journal", "head"], ["status"], ["decisions"],
    ["replay", "verify"],
])
def test_a_reader_names_an_empty_file_and_leaves_it_empty(tmp_path: Path,
                                                          command: list[str]) -> None:
    empty = tmp_path / "journal.db"
    empty.touch()
    done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *command, "--journal",
                           str(empty)], capture_output=True, text=True, check=False, timeout=60)
    said = " ".join(done.stderr.split())
    assert done.returncode == 1, said
    assert "the file is empty, not a journal" in said and "Traceback" not in said
    assert empty.stat().st_size == 0


def test_a_writer_starts_a_journal_in_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "journal.db"
    empty.touch()
    with pytest.raises(JournalError, match="empty"):
        open_journal(f"sqlite:///{empty}", create=False)
    open_journal(f"sqlite:///{empty}").close()
    assert empty.stat().st_size > 0
    open_journal(f"sqlite:///{empty}", create=False).close()
