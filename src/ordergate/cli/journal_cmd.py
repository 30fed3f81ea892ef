"""`ordergate journal ...`: work with a journal. `verify` recomputes the hash chain (and checks
it against heads kept outside the journal); `head` prints the head to keep."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ordergate.cli.console import err, out
from ordergate.cli.errors import (
    SafetyStop,
    UserError,
    journal_problem,
    refuse_journal_output,
)
from ordergate.journal import (
    GENESIS_HASH,
    HASH_PREFIX,
    Journal,
    JournalError,
    check_kept_heads,
    format_head,
    open_journal,
    parse_head,
    redact_url,
)
from ordergate.journal.chain import JournalDamaged

journal_app = typer.Typer(help="Inspect and check a journal.", no_args_is_help=True)

JournalUrlOption = Annotated[
    str, typer.Option("--journal", help="Journal URL: sqlite:///path.db, path.db, or "
                      "postgresql://...[?stream=NAME].")]


HeadOption = Annotated[list[str] | None, typer.Option(
    "--head", metavar="SEQ:HASH",
    help="A head kept outside the journal, as `ordergate journal head` printed it: the "
         "chain must still hold record SEQ with hash HASH. Repeatable.")]


@journal_app.command("verify")
def verify(
    journal: JournalUrlOption,
    head_values: HeadOption = None,
) -> None:
    """Recompute the hash chain from record 1 and check it against the journal's snapshots and
    the given heads. Exit 0 if intact; exit 3 (safety stop) naming the first bad sequence
    number if a record was edited, removed or reordered, or records a snapshot or a head
    proves were written are gone or rewritten, or a snapshot's contents differ from the
    digest the journal attests for it. A snapshot nothing attests is a note (it is never
    used)."""
    heads = parse_head_options(head_values)
    where = redact_url(journal)
    with read_journal(journal, "journal could not be read to the end") as opened:
        report, note = check_kept_heads(opened, opened.verify(), heads)
    for remark in (note, *report.notes) if note else report.notes:
        err.print(f"note: {remark}", markup=False)
    if not report.ok:
        # A snapshot or head that disagrees says the journal was rewritten at or before its
        # record, so the records before it are not known to be intact.
        intact = (f" ({report.records} records before it are intact)"
                  if report.first_bad_seq == report.records + 1 else "")
        raise SafetyStop(f"{where}: journal verification failed at seq {report.first_bad_seq}: "
                         f"{report.message}{intact}")
    empty = " (the journal is empty)" if report.records == 0 else ""
    matched = f", {len(heads)} head(s) match" if heads else ""
    out.print(f"{where}: {report.records} records checked, chain OK{matched}{empty}",
              markup=False)


@journal_app.command("head")
def head(
    journal: JournalUrlOption,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]
    = False,
) -> None:
    """Print the journal's head: the newest record's seq and hash. Keep it outside the journal
    (a log shipper, a ticket, another machine); `journal verify --head SEQ:HASH` later proves
    no record up to it was removed from the end or rewritten. Does not verify the chain."""
    where = redact_url(journal)
    with read_journal(journal, "the journal's newest record could not be read") as opened:
        seq = opened.last_seq()
        newest = next(iter(opened.read(seq, seq)), None) if seq else None
    if seq and newest is None:
        raise SafetyStop(f"{where}: record {seq}, the newest, could not be read back; run "
                         "`ordergate journal verify`")
    chain_hash = newest.hash if newest is not None else GENESIS_HASH
    recorded_at = _utc_time(newest.recorded_at_ns) if newest is not None else None
    if as_json:
        out.print(json.dumps({"journal": where, "seq": seq, "hash": HASH_PREFIX + chain_hash,
                              "records": seq, "recorded_at": recorded_at,
                              "head": format_head(seq, chain_hash)}, sort_keys=True),
                  markup=False, emoji=False)
        return
    when = f", recorded at {recorded_at}" if recorded_at else " (the journal is empty)"
    out.print(f"{where}: head seq {seq} hash {HASH_PREFIX}{chain_hash} ({seq} records{when})\n"
              f"check it later: ordergate journal verify --journal {where} "
              f"--head {format_head(seq, chain_hash)}", markup=False, emoji=False)


@contextlib.contextmanager
def read_journal(journal: str, failure: str = "journal could not be read") -> Iterator[Journal]:
    """An existing journal, opened to be read: one that cannot be opened (missing, a wrong
    path) is the user's to fix (exit 1); a journal file SQLite finds corrupt or not a database
    at all, or a journal that fails while it is read, is a safety stop (exit 3), said as
    `failure`."""
    try:
        opened = open_journal(journal, create=False, reader=True)
    except JournalDamaged as exc:
        raise SafetyStop(f"{redact_url(journal)}: {failure}: the journal file is damaged: "
                         f"{exc}") from None
    except JournalError as exc:
        raise UserError(f"--journal {journal_problem(journal, exc)}") from None
    try:
        yield opened
    except JournalError as exc:
        raise SafetyStop(f"{redact_url(journal)}: {failure}: {exc}") from None
    finally:
        # Nothing was appended, so a failing close changes no record.
        with contextlib.suppress(JournalError):
            opened.close()


def parse_head_options(values: list[str] | None) -> list[tuple[int, str]]:
    """The `--head` values as (seq, hash); a malformed one is a usage error naming it."""
    heads = []
    for value in values or ():
        try:
            heads.append(parse_head(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--head'") from None
    return heads


def _utc_time(ns: int) -> str:
    """RFC 3339 UTC to the microsecond, from wall-clock nanoseconds (no float rounding)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


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
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file "
                                                        "(never the journal's own files).")]
    = False,
) -> None:
    """Export the journal's decisions (joined with their intents, records and latency) as
    JSON Lines, CSV or Parquet. Decimals stay exact strings. An existing --out file is
    overwritten only with --force. Exit 3 (safety stop) naming the record when one cannot be
    read."""
    from ordergate.cli.decisions_cmd import decision_filter
    from ordergate.evidence.decisions import iter_decisions
    from ordergate.evidence.export import ExportFormat, export_rows

    formats = [item.value for item in ExportFormat]
    if fmt not in formats:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(formats)}")
    where = decision_filter(since=since, until=until, account=account, symbol=symbol,
                            decision=decision, reason=reason)
    refuse_export_out(journal, out_path, force=force)
    with read_journal(journal, "export stopped") as opened:
        try:
            count = export_rows(iter_decisions(opened, where), fmt, out_path)
        except OSError as exc:
            raise UserError(f"--out {out_path}: cannot write: {exc.strerror or exc}") from None
        except JournalError as exc:
            # JSON Lines and CSV are written as rows are read: what is there is a prefix that
            # would pass for the whole export. Parquet is written once every row is read.
            left = ("nothing was written to it" if fmt == ExportFormat.PARQUET else
                    "it holds only the decisions before that record: delete it")
            raise SafetyStop(f"{redact_url(journal)}: export stopped: {exc}; --out "
                             f"{out_path}: {left}") from None
    out.print(f"wrote {count:,} decisions to {out_path} ({fmt})", markup=False)


def refuse_export_out(journal: str, out_path: Path, *, force: bool) -> None:
    """Refuse, before the journal is read, an --out that is the journal or one of its files
    (even with --force), a directory, or an existing file without --force (an events file,
    a policy, an earlier export: the export would replace it). A pipe or a device (a FIFO,
    /dev/stdout) holds nothing to overwrite and is written to."""
    refuse_journal_output(journal, "--out", out_path, force_option="--force")
    if out_path.is_dir():
        raise UserError(f"--out {out_path}: cannot write: Is a directory")
    if out_path.is_file() and not force:
        raise UserError(f"--out {out_path}: the file exists; pass --force to overwrite it, "
                        "or choose another file")


def register(app: typer.Typer) -> None:
    app.add_typer(journal_app, name="journal")
