"""`ordergate journal ...`: work with a journal. `verify` recomputes the hash chain."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from ordergate.cli.console import out
from ordergate.cli.errors import SafetyStop, UserError
from ordergate.journal import JournalError, open_journal, redact_url

journal_app = typer.Typer(help="Inspect and check a journal.", no_args_is_help=True)

JournalUrlOption = Annotated[
    str, typer.Option("--journal", help="Journal URL: sqlite:///path.db, path.db, or "
                      "postgresql://...[?stream=NAME].")]


@journal_app.command("verify")
def verify(journal: JournalUrlOption) -> None:
    """Recompute the hash chain from record 1. Exit 0 if intact; exit 3 (safety stop) naming
    the first bad sequence number if a record was edited, removed or reordered."""
    where = redact_url(journal)
    try:
        opened = open_journal(journal, create=False)
    except JournalError as exc:
        raise UserError(str(exc)) from exc
    try:
        report = opened.verify()
    except JournalError as exc:
        raise SafetyStop(f"{where}: journal could not be read to the end: {exc}") from exc
    finally:
        # Nothing was appended, so a failing close changes no record.
        with contextlib.suppress(JournalError):
            opened.close()
    if not report.ok:
        raise SafetyStop(f"{where}: journal verification failed at seq {report.first_bad_seq}: "
                         f"{report.message} ({report.records} records before it are intact)")
    empty = " (the journal is empty)" if report.records == 0 else ""
    out.print(f"{where}: {report.records} records checked, chain OK{empty}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(journal_app, name="journal")
