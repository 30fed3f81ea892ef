"""`ordergate journal verify` and `ordergate db upgrade`: exit codes are the contract."""

from __future__ import annotations

import subprocess
import sys

from journal_support import Backend

from ordergate.journal import RecordKind, open_journal


def ordergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_verify_exits_0_on_an_intact_journal_and_3_on_a_tampered_one(backend: Backend) -> None:
    journal = open_journal(backend.url)
    for index in range(20):
        journal.append(RecordKind.INPUT, b"%d" % index)
    journal.close()

    clean = ordergate("journal", "verify", "--journal", backend.url)
    assert clean.returncode == 0, clean.stderr
    assert "20 records checked" in clean.stdout and "OK" in clean.stdout

    store = backend.store()
    try:
        store.set(13, "payload", b"edited")
    finally:
        store.close()
    broken = ordergate("journal", "verify", "--journal", backend.url)
    assert broken.returncode == 3
    assert "seq 13" in " ".join(broken.stderr.split())
    assert "Traceback" not in broken.stderr


def test_verify_of_a_missing_journal_is_a_user_error(tmp_path: object) -> None:
    result = ordergate("journal", "verify", "--journal", f"sqlite:///{tmp_path}/absent.db")
    assert result.returncode == 1
    assert "absent.db" in result.stderr and "Traceback" not in result.stderr


def test_unknown_scheme_is_refused_without_showing_the_password() -> None:
    result = ordergate("journal", "verify", "--journal", "mysql://trader:hunter2@db/journal")
    assert result.returncode == 1
    assert "unknown scheme" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_db_upgrade_brings_an_old_schema_to_the_current_version(backend: Backend) -> None:
    open_journal(backend.url).close()
    store = backend.store()
    try:
        store.set_schema_version(0)
    finally:
        store.close()
    refused = ordergate("journal", "verify", "--journal", backend.url)
    assert refused.returncode == 1 and "ordergate db upgrade" in " ".join(refused.stderr.split())

    upgraded = ordergate("db", "upgrade", "--journal", backend.url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "from version 0 to 1" in upgraded.stdout
    again = ordergate("db", "upgrade", "--journal", backend.url)
    assert again.returncode == 0 and "already at version 1" in again.stdout
    assert ordergate("journal", "verify", "--journal", backend.url).returncode == 0
