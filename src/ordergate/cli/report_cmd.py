"""`ordergate report`: the evidence pack of a journal (report.md, report.html with charts,
the CSVs behind them, and a one-page summary of what was proven, what failed and what
remains risky). The journal is checked as `journal verify` checks it (its head file, and any
`--head`); exit 3 when that check or the replay fails: the pack is still written, and claims
nothing of a journal that failed (no counts, charts or CSVs: it says they were not read).
The pack is written beside --out and moved in whole; exit 1 when a file cannot be written,
saying what is (not) in --out. Exit 3 naming the record when a checked record cannot be
read, or when the journal file is damaged (no pack). An --out that is one of the journal's
files or in its snapshot directory, or where a file of the pack would be one of the journal's
files, is refused before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ordergate.cli.console import err, out, plain
from ordergate.cli.errors import SafetyStop, UserError, journal_file_at, refuse_journal_output
from ordergate.cli.journal_cmd import HeadOption, parse_head_options, read_journal
from ordergate.cli.replay_cmd import JournalOption, parse_time, quiet_library_logs
from ordergate.journal import JournalError, redact_url


def pack_files() -> tuple[str, ...]:
    """The files `build_report` may write into --out (a test holds this to the pack it
    writes; shadow_decisions.csv only when the window holds a dry run). Read from the report
    module when asked, as the command imports it only when it runs."""
    from ordergate.evidence.report import CSV_FILES
    return ("report.md", "report.html", *CSV_FILES)


def report(
    journal: JournalOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the pack.")],
    since: Annotated[str | None, typer.Option(help="RFC 3339; from this time.")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339; up to this time.")] = None,
    head_values: HeadOption = None,
) -> None:
    """Write the evidence pack for a journal."""
    from ordergate.evidence.report import PackNotWritten, build_report

    quiet_library_logs()
    start, end = parse_time("--since", since), parse_time("--until", until)
    if start is not None and end is not None and start > end:
        raise UserError(f"--since {since} is later than --until {until}: the window would "
                        "hold nothing; give a --since at or before --until")
    heads = parse_head_options(head_values)
    refuse_journal_pack(journal, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file; give a directory for the evidence pack")
    where = redact_url(journal)
    with read_journal(journal) as opened:
        err.print("verifying, replaying and drawing...", highlight=False)
        try:
            pack = build_report(opened, out_dir, since=start, until=end, heads=heads)
        except PackNotWritten as exc:
            raise UserError(f"--out {out_dir}: cannot write the evidence pack: {exc}") from None
        except JournalError as exc:
            raise SafetyStop(f"{where}: the evidence pack was not written: {exc}") from None
    summary = pack.summary
    for note in summary.notes:
        err.print(f"note: {note}", markup=False)
    for label, colour, items in (("proven", "green", summary.proven),
                                 ("failed", "red", summary.what_failed),
                                 ("risky", "yellow", summary.risky)):
        for item in items:
            out.print(f"[{colour}]{label}[/]: {plain(item)}", highlight=False)
    out.print(f"wrote {pack.markdown}, {pack.html} and {len(pack.csvs)} CSV files; the pack "
              f"covers {pack.covered}", markup=False, highlight=False)
    if summary.failed:
        raise SafetyStop(f"{where}: {summary.failed[0]}")


def refuse_journal_pack(journal: str, out_dir: Path) -> None:
    """Refuse, before anything is written, an --out that is one of the journal's files or is
    (or is inside) its snapshot directory, or where a file of the pack would be one of the
    journal's files (a symbolic or hard link to it, or a journal named like one)."""
    refuse_journal_output(journal, "--out", out_dir, kind="directory")
    for name in pack_files():
        what = journal_file_at(journal, out_dir / name)
        if what is not None:
            raise UserError(f"--out {out_dir}: the pack's {name} there would be {what} "
                            f"({redact_url(journal)}); ordergate never writes over the journal "
                            "it reads: choose another directory")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
