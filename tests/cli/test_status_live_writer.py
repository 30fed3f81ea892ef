"""`ordergate status --journal` on a journal a live gateway holds says so: what it shows is what
the journal holds, and a gateway stopped on a failed journal write could not journal that it
stopped (its /v1/status reads STOPPED while the journal still reads ACTIVE). A SQLite journal's
writer lock names the holder; its pid stays in the lock file after the writer exits, which
then says nothing. A PostgreSQL stream's lease is asked of the database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.journal import Durability, open_journal
from ordergate.journal.lease import ShardLease

ACCOUNT = '{"type":"account","account":"A1","cash":"1000","ts":"2026-03-02T14:29:00Z"}\n'
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: writer
defaults:
  max_order_qty: 10
  max_market_data_age: 1h
"""


def _status(journal: str, *extra: str) -> str:
    result = CliRunner().invoke(app, ["status", "--journal", journal, *extra],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def _journal(tmp_path: Path, journal: str) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    (tmp_path / "e.jsonl").write_text(ACCOUNT)
    ran = CliRunner().invoke(app, ["run", "-q", "--policy", str(tmp_path / "p.yaml"),
                                   "--journal", journal, str(tmp_path / "e.jsonl")])
    assert ran.exit_code == 0, ran.output


def test_status_says_a_live_process_holds_the_sqlite_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _journal(tmp_path, str(path))
    writer = open_journal(f"sqlite:///{path}", durability=Durability.NONE, create=False)
    try:
        held = _status(str(path))
        fields = json.loads(_status(str(path), "--json"))
    finally:
        writer.close()
    assert (f"A live gateway holds this journal (process {os.getpid()} holds its writer "
            "lock): what is shown is what the journal holds.") in held, held
    assert "`ordergate status --url` shows what it is doing now" in held, held
    assert fields["live_writer"].startswith("A live gateway holds this journal"), fields
    # the lock file still names this (live) process, but nobody holds the lock any more
    assert (path.parent / "j.db.lock").read_text().strip() == str(os.getpid())
    free = _status(str(path))
    assert "live gateway" not in free, free
    assert json.loads(_status(str(path), "--json"))["live_writer"] == ""


def test_status_says_a_live_process_holds_the_postgres_streams_lease(
        tmp_path: Path, postgres_url: str) -> None:
    _journal(tmp_path, postgres_url)
    assert "live gateway" not in _status(postgres_url)
    with ShardLease(postgres_url) as lease:
        assert lease.acquire(timeout_s=5.0) is not None
        held = _status(postgres_url)
    assert "A live gateway holds this journal's stream (database session " in held, held
    assert "holds the lease of stream 'default'): what is shown is what the journal holds" \
        in held, held
    assert "live gateway" not in _status(postgres_url)
