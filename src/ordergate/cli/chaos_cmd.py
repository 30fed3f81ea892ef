"""`ordergate chaos run`: play the fault-injection scenarios against the real runtime and keep
the evidence.

    ordergate chaos run                       # every scenario
    ordergate chaos run --scenario clock_drift --out chaos-evidence/
    ordergate chaos list

Each scenario runs a real gateway (SQLite journal, engine, Dispatcher, breakers, clock sync,
reconciliation) on a simulated broker whose faults it injects, some in separate processes that
are really SIGKILLed. A pass/fail table with durations goes to stdout; `<out>/<scenario>/`
holds the journal and `evidence.json` + `evidence.md`. Exit 0 when every scenario passed, 3
(safety stop) when any failed: the evidence is written either way. A scenario that raises
(a journal that will not open, a file it cannot write) fails with the error as its failed
check, and the other scenarios still run. An --out that cannot be written is a user error
(exit 1) before any scenario runs.

`<out>/<scenario>/` belongs to chaos: it is created with a `.ordergate-chaos` marker, and a
rerun deletes only the files the scenario writes (by exact name) before playing again. An
existing directory without the marker that holds files is left untouched and that scenario
fails saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.table import Table

from ordergate.cli.console import out
from ordergate.cli.errors import SafetyStop, UserError, require_writable_dir

chaos_app = typer.Typer(help="Fault-injection scenarios with evidence.", no_args_is_help=True)


@chaos_app.command("list")
def list_scenarios() -> None:
    """Show the scenarios and what each must reach."""
    from ordergate.chaos.scenarios import SCENARIOS

    table = Table(title="chaos scenarios", title_justify="left")
    for column in ("scenario", "fault", "expected mode"):
        table.add_column(column)
    for scenario in SCENARIOS:
        expected = scenario.expected_mode.value + (
            f" within {scenario.deadline_s:g} s" if scenario.deadline_s else " (unchanged)")
        table.add_row(scenario.name, scenario.title, expected)
    out.print(table)


@chaos_app.command("run")
def run(
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", "-s", help="A scenario to run (repeat for several; default: all). "
                                 "See `ordergate chaos list`.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help=(
        "Directory for journals and evidence files, one subdirectory per scenario. Chaos "
        "marks each subdirectory it creates (.ordergate-chaos) and a rerun deletes only the "
        "files the scenario wrote there; an unmarked subdirectory holding other files is "
        "never used or touched (that scenario fails)."))] = Path("chaos-evidence"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs.")] = False,
) -> None:
    """Run scenarios; print a pass/fail table; write evidence per scenario."""
    from ordergate.chaos.runner import run_scenario, select

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(
        logging.DEBUG if verbose else logging.CRITICAL))
    try:
        chosen = select(scenario)
    except KeyError as exc:
        raise UserError(f"--scenario: {exc.args[0]}") from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the directory: {exc.strerror}") from None
    require_writable_dir(out_dir)

    table = Table(title="ordergate chaos", title_justify="left")
    for column in ("scenario", "result", "expected", "final mode", "checks", "seconds"):
        table.add_column(column)
    failed: list[str] = []
    for item in chosen:
        result = run_scenario(item, out_dir)
        passed = sum(check.passed for check in result.checks)
        table.add_row(
            result.name, "[green]PASS[/]" if result.passed else "[bold red]FAIL[/]",
            result.expected_mode, result.final_mode, f"{passed}/{len(result.checks)}",
            f"{result.duration_s:.2f}")
        if not result.passed:
            failed.append(result.name)
            for check in result.failed_checks:
                out.print(f"[red]x[/] {result.name}: {check.name}: expected {check.expected}, "
                          f"observed {check.observed}", markup=True, highlight=False)
    out.print(table)
    out.print(f"evidence: {out_dir}/<scenario>/evidence.json and evidence.md", markup=False)
    if failed:
        raise SafetyStop(f"{len(failed)} chaos scenario(s) failed: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.add_typer(chaos_app, name="chaos")
