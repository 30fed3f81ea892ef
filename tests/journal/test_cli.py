"""`ordergate journal verify` and `ordergate db upgrade`: exit codes are the contract."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from journal_support import Backend

from ordergate.brokers.sim import SimBroker
from ordergate.journal import RecordKind, open_journal
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events, write_events
from ordergate.runtime.loop import Runtime
from ordergate.runtime.runfile import run_file

DEMO_POLICY = (Path(__file__).resolve().parents[2] / "src" / "ordergate" / "data"
               / "demo_policy.yaml")


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
    journal = open_journal(backend.url)
    journal.append(RecordKind.META, b"")
    journal.flush()
    journal.close()
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


def test_an_older_copy_of_the_journal_restored_under_newer_snapshots_is_refused(
        tmp_path: Path) -> None:
    """The chain of an older copy is intact on its own: the snapshot files written after that
    copy was taken say records are missing, and neither `journal verify` nor `run` accepts it."""
    policy = load_policy(DEMO_POLICY)
    path = tmp_path / "journal.db"
    events = demo_events()[:4000]
    for part, chunk in enumerate((events[:2000], events[2000:])):
        source = tmp_path / f"events-{part}.jsonl"
        write_events(source, chunk)
        runtime = Runtime.open(f"sqlite:///{path}", policy, SimBroker(), snapshot_every=200,
                               source=source)
        run_file(runtime, source, batch_size=50)
        runtime.close()  # waits for the snapshot being written, checkpoints the WAL
        if part == 0:
            shutil.copy(path, tmp_path / "backup.db")
    assert ordergate("journal", "verify", "--journal", str(path)).returncode == 0

    shutil.copy(tmp_path / "backup.db", path)  # restore yesterday's copy; snapshots stay
    refused = ordergate("journal", "verify", "--journal", str(path))
    assert refused.returncode == 3, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "a snapshot was taken at record" in message
    assert "older copy of the journal restored" in message and "Traceback" not in message
    run = ordergate("run", "--policy", str(DEMO_POLICY), "--journal", str(path),
                    str(tmp_path / "events-1.jsonl"))
    assert run.returncode == 3, run.stderr
    assert "older copy of the journal restored" in " ".join(run.stderr.split())


def test_a_journal_that_is_not_there_is_refused_not_verified_as_empty(
        backend: Backend) -> None:
    """A mistyped path or stream must not pass as an intact, empty journal: `journal verify`
    exits 1 naming it, on either backend, while a journal that was leased but holds nothing
    yet still opens."""
    if backend.name == "sqlite":
        missing = backend.url.replace("journal.db", "jounral.db")
    else:
        open_journal(backend.url).close()  # the schema exists; this stream holds nothing
        missing = backend.url
    result = ordergate("journal", "verify", "--journal", missing)
    assert result.returncode == 1, result.stdout
    said = " ".join(result.stderr.split())
    assert ("holds no journal" if backend.name == "postgres" else "no journal file") in said
    assert "chain OK" not in result.stdout


def test_db_upgrade_refuses_another_applications_sqlite_file_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("create table customers(id int)")
    db.close()
    before = other.read_bytes()
    result = ordergate("db", "upgrade", "--journal", str(other))
    assert result.returncode == 1, result.stdout
    assert "not an ordergate journal" in " ".join(result.stderr.split())
    assert "upgraded" not in result.stdout
    assert other.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["other.db"]
