"""`ordergate replay verify` and `ordergate replay whatif`.

verify: the hash chain, then every input through a fresh engine, every output compared byte
for byte. Exit 0 when the journal reproduces; exit 3 (safety stop) naming the first
divergence, shown side by side, when it does not.

whatif: the journal's day under another policy, diffed against what happened. The journal
is checked first as `replay verify` checks it (its chain, its head file and any `--head`): exit
3 (safety stop) when it fails, as the what-if's "original" side would be read from the damage.
Its outputs (`--json`, `--html`) are written atomically (a temporary file renamed into place),
never over the journal or a file beside it that belongs to it, and over an existing file only
with `--force`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import structlog
import typer
from rich.columns import Columns
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from ordergate.cli.console import err, out, plain
from ordergate.cli.errors import (
    SafetyStop,
    UserError,
    refuse_journal_output,
    require_writable_dir,
)
from ordergate.cli.journal_cmd import HeadOption, parse_head_options, read_journal
from ordergate.evidence.replay import (
    PARALLEL_CHAIN_MIN_RECORDS,
    Divergence,
    ReplayReport,
    verify_journal,
)
from ordergate.journal import VerifyReport, check_kept_heads, redact_url
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import load_policy

if TYPE_CHECKING:
    from ordergate.analytics.whatif import WhatIfReport

replay_app = typer.Typer(help="Replay a journal: verify it, or re-run it under another "
                              "policy.", no_args_is_help=True)

JournalOption = Annotated[str, typer.Option(
    "--journal", help="Journal: a .db file path, sqlite:///... or postgresql://...")]


def quiet_library_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
                        cache_logger_on_first_use=False)


def parse_time(option: str, value: str | None) -> datetime | None:
    """An RFC 3339 timestamp with a zone (`2026-03-02T14:30:00Z`)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r}: expected an RFC 3339 timestamp such as "
                        "2026-03-02T14:30:00Z") from None
    if parsed.tzinfo is None:
        raise UserError(f"{option} {value!r}: the timestamp needs a zone (Z or +00:00)")
    return parsed


def _pretty(payload: str) -> str:
    if not payload:
        return "(nothing)"
    return msgspec.json.format(payload, indent=2)


def _differing_keys(left: str, right: str) -> list[str]:
    try:
        a = msgspec.json.decode(left) if left else {}
        b = msgspec.json.decode(right) if right else {}
    except msgspec.DecodeError:
        return []
    if not isinstance(a, dict) or not isinstance(b, dict):
        return []
    return sorted(key for key in {*a, *b} if a.get(key) != b.get(key))


def render_divergence(divergence: Divergence) -> None:
    where = divergence.output_seq or divergence.input_seq
    err.print(f"[bold red]first divergence[/] at seq {where} (output {divergence.position} "
              f"of the input at seq {divergence.input_seq})"
              + (f", intent [bold]{plain(divergence.intent_id)}[/]" if divergence.intent_id
                 else "")
              + f": {plain(divergence.message)}", highlight=False)
    keys = _differing_keys(divergence.journaled, divergence.replayed)
    if keys:
        err.print(f"fields that differ: {', '.join(keys)}", highlight=False)
    err.print(Panel(Syntax(_pretty(divergence.input), "json", word_wrap=True),
                    title=f"input seq {divergence.input_seq}"))
    err.print(Columns([
        Panel(Syntax(_pretty(divergence.journaled), "json", word_wrap=True),
              title="journal (what happened)", border_style="green"),
        Panel(Syntax(_pretty(divergence.replayed), "json", word_wrap=True),
              title="replay (what the engine does now)", border_style="red"),
    ], equal=True, expand=True))


def render_replay(report: ReplayReport, where: str, chain: VerifyReport) -> None:
    """The replay's table; `chain` is the chain verdict after the kept heads were checked
    (the replay's own chain check cannot see records cut from the end)."""
    table = Table(title=f"replay of {where}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_row("hash chain", f"[green]intact[/] ({chain.records:,} records)" if chain.ok
                  else f"[red]broken at seq {chain.first_bad_seq}[/]: {chain.message}")
    if chain.ok:
        colour = "green" if report.ok else "red"
        table.add_row("decisions reproduced",
                      f"[{colour}]{report.decisions_reproduced:,}/{report.decisions:,}[/] "
                      f"({report.coverage:.2%})")
        table.add_row("outputs reproduced", f"{report.outputs_matched:,}/{report.outputs:,}")
        table.add_row("inputs replayed", f"{report.inputs:,}")
        table.add_row("policies", ", ".join(report.policies) or "none")
        if report.cut_short:
            table.add_row("steps cut short by a crash",
                          f"[yellow]{len(report.cut_short)}[/] (input seqs "
                          f"{', '.join(map(str, report.cut_short[:5]))}"
                          f"{'...' if len(report.cut_short) > 5 else ''})")
        table.add_row("mismatching steps", f"[{colour}]{report.mismatches:,}[/]")
    out.print(table)


@replay_app.command("verify")
def verify(journal: JournalOption, head_values: HeadOption = None) -> None:
    """Check the chain (against the given heads too), replay every input through a fresh
    engine and compare every output byte for byte. Exit 3 (safety stop) on any difference,
    naming the first one."""
    quiet_library_logs()
    where = redact_url(journal)
    heads = parse_head_options(head_values)
    with read_journal(journal) as opened:
        total = opened.last_seq()
        with Progress(TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal or total < 50_000) as progress:
            task = progress.add_task("records", total=total)
            report = verify_journal(
                opened, on_progress=lambda seq: progress.update(task, completed=seq),
                chain_url=journal if total >= PARALLEL_CHAIN_MIN_RECORDS else None)
        chain, note = check_kept_heads(opened, report.chain, heads)
    render_replay(report, where, chain)
    if note:
        err.print(f"note: {note}", markup=False)
    if not chain.ok:
        raise SafetyStop(f"{where}: journal verification failed at seq "
                         f"{chain.first_bad_seq}: {chain.message}")
    if report.first_divergence is not None:
        render_divergence(report.first_divergence)
    decision = report.first_decision_divergence
    if decision is not None and decision is not report.first_divergence:
        err.print("[bold]the first decision that differs:[/]")
        render_divergence(decision)
    if not report.ok:
        raise SafetyStop(f"{where}: {report.message}")


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1])
    table.add_column("changed", justify="right")
    for name, count in counts.items():
        table.add_row(plain(name), f"{count:,}")
    return table


def render_whatif(report: WhatIfReport, *, limit: int) -> None:
    out.rule(f"[bold]what-if: {plain(report.policy_name)} {report.policy_hash[:19]}")
    out.print(f"original policies: {plain(', '.join(report.original_policies) or 'none')}\n"
              f"broker: {plain(report.broker)}\n"
              f"{report.inputs:,} journaled inputs re-fed ({report.batches:,} source batches); "
              f"{report.decisions:,} decisions, [bold]{report.changed_words}[/]",
              highlight=False)
    for warning in report.warnings:
        out.print(f"[bold yellow]warning:[/] {plain(warning)}", highlight=False)
    if report.changed:
        out.print(Columns([_counts_table("by change", report.by_change),
                           _counts_table("by reason", report.by_reason),
                           _counts_table("by symbol", report.by_symbol),
                           _counts_table("by strategy", report.by_strategy)]))
        table = Table(title=f"changed decisions (first {min(limit, len(report.changed))})",
                      title_justify="left")
        for column in ("intent", "strategy", "symbol", "before", "after"):
            table.add_column(column)
        for item in report.changed[:limit]:
            table.add_row(plain(item.intent_id), plain(item.strategy), plain(item.symbol),
                          plain(item.before.label), plain(item.after.label))
        out.print(table)
    path = report.path
    if path is not None:
        table = Table(title="state path (sampled at every batch)", title_justify="left")
        for column in ("", "original", "what-if"):
            table.add_column(column, justify="right")
        table.add_row("final equity", str(path.final_equity_before), str(path.final_equity_after))
        table.add_row("lowest daily PnL", str(path.min_daily_pnl_before),
                      str(path.min_daily_pnl_after))
        table.add_row("peak gross exposure", str(path.max_gross_before),
                      str(path.max_gross_after))
        table.add_row("final gross exposure", str(path.final_gross_before),
                      str(path.final_gross_after))
        table.add_row("final mode", report.final_mode_before, report.final_mode_after)
        out.print(table)
    else:
        out.print("no state path: the journal holds no source batch to re-feed",
                  highlight=False)
    for label, transitions in (("appear", report.transitions_appeared),
                               ("vanish", report.transitions_vanished)):
        for transition in transitions:
            out.print(f"mode transition would {label}: {transition.ts.isoformat()} "
                      f"{transition.previous} -> {transition.mode} ({transition.why})",
                      markup=False, highlight=False)


@replay_app.command("whatif")
def whatif(
    journal: JournalOption,
    policy: Annotated[Path, typer.Option("--policy", help="The policy to try (YAML).")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full diff as "
                                                                 "JSON here.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write an HTML report with "
                                                                 "charts here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --json or "
                                                        "--html file (never the journal's "
                                                        "own files).")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Changed decisions to list.")] = 20,
    head_values: HeadOption = None,
) -> None:
    """Check the journal's chain (against the given heads too), then re-run its day under
    POLICY (fresh engine, simulated broker: the journal's inputs re-fed, what depends on the
    policy re-derived) and show what changes. Exit 3 (safety stop) if the chain check fails."""
    from ordergate.analytics.whatif import what_if
    from ordergate.analytics.whatif_html import render_html

    quiet_library_logs()
    heads = parse_head_options(head_values)
    outputs = [(option, path) for option, path in (("--json", json_out), ("--html", html_out))
               if path is not None]
    check_outputs(journal, outputs, force=force)
    try:
        loaded = load_policy(policy)
    except PolicyError as exc:
        raise UserError(str(exc)) from None
    where = redact_url(journal)
    with read_journal(journal) as opened:
        chain, note = check_kept_heads(opened, opened.verify(), heads)
        if note:
            err.print(f"note: {note}", markup=False)
        if not chain.ok:
            raise SafetyStop(f"{where}: journal verification failed at seq "
                             f"{chain.first_bad_seq}: {chain.message}")
        with Progress(TextColumn("[bold]what-if"), TextColumn("{task.completed:,} inputs"),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("inputs", total=None)
            report = what_if(opened, loaded,
                             on_progress=lambda done: progress.update(task, completed=done))
    render_whatif(report, limit=limit)
    if json_out is not None:
        _write("--json", json_out,
               msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n", force=force)
    if html_out is not None:
        _write("--html", html_out, render_html(report).encode(), force=force)


def check_outputs(journal: str, outputs: list[tuple[str, Path]], *, force: bool) -> None:
    """Refuse, before any work, an output that would overwrite the journal being read (or one
    of its files), a directory, the other output, an existing file without `--force`, or a
    file in a directory that does not exist or cannot be written into."""
    seen: dict[str, str] = {}
    for option, path in outputs:
        refuse_journal_output(journal, option, path, force_option="--force")
        real = os.path.realpath(path)
        if real in seen:
            raise UserError(f"{option} {path}: is also the {seen[real]} file; give each "
                            "output a file of its own")
        seen[real] = option
        if path.is_dir():
            raise UserError(f"{option} {path}: cannot write: Is a directory")
        if path.exists() and not force:
            raise UserError(f"{option} {path}: the file exists; pass --force to overwrite it, "
                            "or choose another file")
        parent = path.parent
        if not parent.is_dir():
            raise UserError(f"{option} {path}: cannot write: the directory {parent} does not "
                            "exist")
        require_writable_dir(parent, option)


def _write(option: str, path: Path, content: bytes, *, force: bool) -> None:
    """Write `content` to a temporary file beside `path` and rename it into place: a failed
    write leaves no half file, and a reader never sees one."""
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                                 suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists() and not force:  # it appeared while the what-if ran
            raise UserError(f"{option} {path}: the file exists; pass --force to overwrite "
                            "it, or choose another file")
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    err.print(f"wrote {path}", markup=False, highlight=False)


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then set back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def register(app: typer.Typer) -> None:
    app.add_typer(replay_app, name="replay")
