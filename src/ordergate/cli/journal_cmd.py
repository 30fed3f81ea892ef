"""`ordergate journal ...`: work with a journal. `verify` recomputes the hash chain."""

from __future__ import annotations

import contextlib
from pathlib import Path
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


@journal_app.command("export")
def export(
    journal: JournalUrlOption,
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or parquet.")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write.")],
    since: Annotated[str | None, typer.Option(help="RFC 3339; decisions at or after.")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339; decisions at or before.")]
    = None,
    account: Annotated[str, typer.Option(help="Only this account.")] = "",
    symbol: Annotated[str, typer.Option(help="Only this symbol.")] = "",
    decision: Annotated[str, typer.Option(help="ALLOW, DENY or MODIFY.")] = "",
    reason: Annotated[str, typer.Option(help="A reason code (blocking or violated).")] = "",
) -> None:
    """Export the journal's decisions (joined with their intents, records and latency) as
    JSON Lines, CSV or Parquet. Decimals stay exact strings."""
    from ordergate.cli.replay_cmd import parse_time, read_journal
    from ordergate.evidence.decisions import DecisionFilter, iter_decisions
    from ordergate.evidence.export import ExportFormat, export_rows

    formats = [item.value for item in ExportFormat]
    if fmt not in formats:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(formats)}")
    if decision and decision.upper() not in ("ALLOW", "DENY", "MODIFY"):
        raise UserError(f"--decision {decision!r}: expected ALLOW, DENY or MODIFY")
    where = DecisionFilter(since=parse_time("--since", since), until=parse_time("--until", until),
                           account=account, symbol=symbol, decision=decision.upper(),
                           reason=reason)
    with read_journal(journal) as opened:
        try:
            count = export_rows(iter_decisions(opened, where), fmt, out_path)
        except OSError as exc:
            raise UserError(f"--out {out_path}: cannot write: {exc.strerror or exc}") from None
    out.print(f"wrote {count:,} decisions to {out_path} ({fmt})", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(journal_app, name="journal")
