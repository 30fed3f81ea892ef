"""`serve` on a journal file SQLite refuses at open (its header damaged, or not a database at
all) stops with a safety stop (exit 3), as `journal verify` and `run` do: the journal cannot be
proven, so there is nothing for the user to fix in a flag. A journal that cannot be opened for
another reason stays the user's to fix (exit 1), its path said once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.evidence.support import SMALL_POLICY
from tests.runtime.harness import cli

from ordergate.journal import open_journal
from ordergate.service.auth import hash_token, new_token

WIDE = 400  # one error, one line


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps to the terminal


def _serve(tmp_path: Path, journal: str) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(SMALL_POLICY)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'tokens:\n  - name: screen\n    role: viewer\n    hash: '
                      f'"{hash_token(new_token())}"\n')
    return cli("serve", "--policy", str(policy), "--journal", journal, "--tokens", str(tokens),
               "--port=0", columns=WIDE)


def test_a_journal_sqlite_cannot_open_is_a_safety_stop(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    open_journal(str(journal)).close()
    with journal.open("r+b") as handle:  # the SQLite header: "SQLite format 3\0"
        handle.write(bytes(16))
    damaged = journal.read_bytes()

    served = _serve(tmp_path, str(journal))

    said = _said(served.stderr)
    assert served.returncode == 3, said
    assert said == (f"SAFETY STOP: {journal}: cannot open the journal: the file is damaged: "
                    "file is not a database; the gateway will not start on a journal it cannot "
                    "prove (restore it from a replica or start a new one)"), said
    assert journal.read_bytes() == damaged  # left as it was, for whoever restores it
    verified = cli("journal", "verify", "--journal", str(journal), columns=WIDE)
    assert verified.returncode == 3, verified.stderr  # the same verdict


def test_a_journal_that_cannot_be_opened_names_its_path_once(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory\n")
    journal = tmp_path / "plain" / "j.db"

    served = _serve(tmp_path, str(journal))

    said = _said(served.stderr)
    assert served.returncode == 1, said
    assert said.startswith(f"error: --journal {journal}: cannot open the journal: "), said
    assert said.count(str(journal)) == 1, said
