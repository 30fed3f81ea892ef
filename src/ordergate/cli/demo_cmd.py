"""`ordergate demo`: a simulated trading day through the real pipeline, explained.

Writes the day's events and its policy to the output directory (a new or empty one, or an
earlier demo's, which it marks as its own: `refuse_foreign_out`), runs them through the
journal, the engine and the simulated broker exactly like `ordergate run`, and ends with a
summary a non-engineer can read: what was allowed, shrunk and refused and why, when and why
the trading mode changed, the positions and PnL at the close, and how to check the journal.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from time import perf_counter
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ordergate.brokers.sim import SimBroker
from ordergate.cli.broker_spec import sim_config_for
from ordergate.cli.console import err
from ordergate.cli.errors import SafetyStop, UserError, require_writable_dir
from ordergate.cli.run_cmd import (
    configure_logging,
    loss_limit_words,
    money,
    plain_reason,
    pnl_parts,
)
from ordergate.engine.status import EngineStatus
from ordergate.journal import Durability, format_head, head_of, snapfiles
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import InputEvent
from ordergate.model.intent import OrderIntent
from ordergate.policy.loader import load_policy
from ordergate.runtime.demo_data import demo_events
from ordergate.runtime.loop import BatchReport, Runtime, RuntimeStopped
from ordergate.runtime.runfile import Tally, run_file

DEFAULT_OUT = Path("ordergate-demo")
DEMO_BATCH_SIZE = 512
# The simulated broker of the day, written beside the events so `ordergate run --broker` can
# trade with the very same one.
DEMO_SIM = """\
# The simulated broker the demo trades with: ordergate run --broker this-file
sim:
  fill_model: immediate
  slippage_bps: "1"
  fee_bps: "0.5"
  seed: 7
"""
_MODE_COLOUR = {"ACTIVE": "green", "REDUCE_ONLY": "yellow", "HALTED": "red"}
_MODE_WORDS = {
    "ACTIVE": "normal trading",
    "REDUCE_ONLY": "only orders that shrink a position",
    "HALTED": "no new orders at all",
}


class DemoResult:
    """What the demo did, for the summary and for tests."""

    def __init__(self, out: Path, tally: Tally, status: EngineStatus,
                 by_strategy: dict[str, Counter[str]], seconds: float,
                 head: tuple[int, str] | None = None) -> None:
        self.out = out
        self.tally = tally
        self.status = status
        self.by_strategy = by_strategy
        self.seconds = seconds
        self.head = head  # (seq, hash) of the journal's newest record

    @property
    def journal(self) -> Path:
        return self.out / "journal.db"


def prepare(out: Path) -> tuple[Path, Path, list[InputEvent]]:
    """Write the bundled policy, the simulated broker's config (`sim.yaml`) and the generated
    day into `out`; clear the previous run's journal and broker files (they are the demo's
    own outputs). A directory holding anything else is refused before anything is touched
    (`refuse_foreign_out`)."""
    refuse_foreign_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the directory: "
                        f"{exc.strerror or exc}") from None
    require_writable_dir(out)
    # Marked before anything is written, so that a demo stopped half-way is still known as
    # the demo's: its files are recorded as being written (no size and time to match yet).
    write_mark(out, dict.fromkeys(_RECORDED))
    policy_path = out / "policy.yaml"
    policy_path.write_bytes(_demo_policy())
    (out / "sim.yaml").write_bytes(DEMO_SIM.encode("utf-8"))
    events_path = out / "events.jsonl"
    events = demo_events()
    events_path.write_bytes(_events_bytes(events))
    for name in ("journal.db", "journal.db-wal", "journal.db-shm", "journal.db.manifest.json",
                 "journal.db.head"):
        (out / name).unlink(missing_ok=True)
    # The previous day's snapshots go with its journal: left beside a new, empty journal they
    # would (rightly) be taken for proof that its records were cut.
    shutil.rmtree(snapfiles.directory_for(str(out / "journal.db")), ignore_errors=True)
    return policy_path, events_path, events


def _demo_policy() -> bytes:
    """The bundled demo policy, as the demo writes it (`policy.yaml`)."""
    return (resources.files("ordergate") / "data" / "demo_policy.yaml").read_bytes()


def _events_bytes(events: list[InputEvent]) -> bytes:
    """The day's events as the demo writes them (`events.jsonl`): JSON Lines, one event a
    line with its `type` field (as `runtime.demo_data.write_events`)."""
    encoder = msgspec.json.Encoder()
    return b"".join(encoder.encode(event) + b"\n" for event in events)


# What the demo writes into its directory. `DEMO_MARK` records the size and modification
# time of each of the `_RECORDED` files as the demo left them: the next demo replaces them
# only while they are still the demo's (a journal run on since, or a file put in its place,
# is not). The `_COMPANIONS` are made by the journal itself, or by the commands that read it.
DEMO_MARK = ".ordergate-demo"
_MARK_TEMPORARY = DEMO_MARK + ".tmp"
_JOURNAL = "journal.db"
_RECORDED = ("policy.yaml", "sim.yaml", "events.jsonl", _JOURNAL, f"{_JOURNAL}.head",
             f"{_JOURNAL}.manifest.json")
_COMPANIONS = (f"{_JOURNAL}-wal", f"{_JOURNAL}-shm", f"{_JOURNAL}-journal", f"{_JOURNAL}.lock",
               snapfiles.directory_for(_JOURNAL).name)
_SNAPSHOTS = snapfiles.directory_for("").name  # ".snapshots"
_OWN_NAMES = frozenset({*_RECORDED, *_COMPANIONS, DEMO_MARK, _MARK_TEMPORARY})


class _Mark(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The demo's mark: each recorded file's [size, modification time in ns], or None for
    one the demo was still writing when the mark was last written."""

    written_by: str = "ordergate demo"
    files: dict[str, list[int] | None]


def _stamp(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def write_mark(out: Path, files: dict[str, list[int] | None]) -> None:
    """Write the demo's mark into `out` (a temporary file renamed into place)."""
    mark, temporary = out / DEMO_MARK, out / _MARK_TEMPORARY
    temporary.write_bytes(msgspec.json.encode(_Mark(files=files)) + b"\n")
    os.replace(temporary, mark)


def mark_written(out: Path) -> None:
    """Record the demo's files as the finished demo left them."""
    write_mark(out, {name: _stamp(out / name) for name in _RECORDED
                     if (out / name).exists()})


def _read_mark(out: Path) -> _Mark | None:
    try:
        return msgspec.json.decode((out / DEMO_MARK).read_bytes(), type=_Mark)
    except (OSError, msgspec.DecodeError):
        return None


def _demo_wrote(out: Path, name: str, mark: _Mark | None) -> bool:
    """Whether the entry `name` of `out` is an earlier demo's, as it left it."""
    if name in (DEMO_MARK, _MARK_TEMPORARY):
        return True
    if mark is None:
        return False
    if name in _COMPANIONS:
        return True
    if name not in _RECORDED or name not in mark.files:
        return False
    recorded = mark.files[name]
    return recorded is None or _stamp(out / name) == recorded


def _unlike_the_demo(out: Path) -> tuple[list[str], list[str]]:
    """Of the files the demo writes (its policy, its simulated broker's config, the day's
    events), those in `out` that are not byte for byte what this demo writes, and those that
    are missing (or no plain file). The events are generated again to compare, never
    written."""
    expected: dict[str, Callable[[], bytes]] = {
        "policy.yaml": _demo_policy, "sim.yaml": lambda: DEMO_SIM.encode("utf-8"),
        "events.jsonl": lambda: _events_bytes(demo_events())}
    differ: list[str] = []
    missing: list[str] = []
    for name, content in expected.items():
        path = out / name
        if not path.exists() and not path.is_symlink():
            missing.append(name)
            continue
        try:
            same = path.is_file() and not path.is_symlink() and \
                path.stat().st_size == len(wanted := content()) and path.read_bytes() == wanted
        except OSError:
            same = False
        if not same:
            differ.append(name)
    return differ, missing


def refuse_foreign_out(out: Path) -> None:
    """Refuse, before anything is written, an `--out` the demo would destroy something in:
    inside a journal's snapshot directory, or a directory holding a file the demo did not
    write (the demo deletes its journal and overwrites its policy and events). A new or empty
    directory, or one holding only an earlier demo's files as it left them (marked, or from
    before the mark), is the demo's."""
    absolute = Path(os.path.abspath(out))
    for folder in (absolute, *absolute.parents):
        if folder.name.endswith(_SNAPSHOTS):
            raise UserError(f"--out {out}: {folder} is a journal's snapshot directory (where "
                            "it keeps the snapshots it is checked against); the demo writes "
                            "only into a directory of its own: choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory; choose another --out")
    if not out.is_dir():
        return  # a new directory (making it says why it cannot be made)
    try:
        names = sorted(entry.name for entry in os.scandir(out))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot read the directory: {exc.strerror or exc}") \
            from None
    if not names:
        return
    mark = _read_mark(out)
    unlike = ""
    if mark is None:
        # The demo marks its directory only since efc2eda: an earlier demo's is known by its
        # contents, the demo's own file names only, with its policy, simulated broker and
        # events byte for byte what this demo writes. Else nothing in it is the demo's.
        outside = [name for name in names if name not in _OWN_NAMES]
        differ, missing = _unlike_the_demo(out) if not outside else ([], [])
        if not outside and not differ and not missing:
            return
        foreign = outside + [name for name in names if name in _OWN_NAMES]
        if differ:
            unlike += f"; {', '.join(differ)} {'is' if len(differ) == 1 else 'are'} not " \
                      "what the demo writes"
        if missing:
            unlike += f"; {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    else:
        foreign = [name for name in names if not _demo_wrote(out, name, mark)]
        if not foreign:
            return
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5:,} more" if len(foreign) > 5
                                      else "")
    since = (" or changed since the demo wrote them" if mark is not None else "")
    raise UserError(f"--out {out}: holds files the demo did not write{since} ({shown}"
                    f"{unlike}); the demo deletes its journal and overwrites its policy and "
                    "events, so it writes only into a new or empty directory or over an "
                    "earlier demo's own output: choose another --out")


def run_demo(out: Path, console: Console | None = None) -> DemoResult:
    """The demo, end to end. With a console, a live progress display is shown on it."""
    started = perf_counter()
    policy_path, events_path, events = prepare(out)
    policy = load_policy(policy_path)
    strategy_of = {
        event.intent_id: event.strategy for event in events if isinstance(event, OrderIntent)
    }
    sim = sim_config_for(str(out / "sim.yaml"))
    assert sim is not None  # the file prepare() just wrote has its 'sim' section
    broker = SimBroker(sim)
    tally = Tally()
    by_strategy: dict[str, Counter[str]] = {}

    def on_report(report: BatchReport) -> None:
        tally.add(report)
        for item in report.emitted:
            if isinstance(item, Decision):
                strategy = strategy_of.get(item.intent_id, "other")
                by_strategy.setdefault(strategy, Counter())[item.decision.value] += 1

    runtime = Runtime.open(f"sqlite:///{(out / 'journal.db').resolve()}", policy, broker,
                           Durability.BATCH, snapshot_every=10_000, on_batch=on_report)
    total = len(events)
    progress = Progress(TextColumn("[bold]trading day"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console, transient=True,
                        disable=console is None or not console.is_terminal)
    task = progress.add_task("", total=total)

    def on_progress(line: int) -> None:
        mode = runtime.engine.state.mode.value
        progress.update(task, completed=line, description=(
            f"allowed {tally.decisions.get('ALLOW', 0)}  "
            f"denied {tally.decisions.get('DENY', 0)}  "
            f"mode [{_MODE_COLOUR[mode]}]{mode}[/]"))

    try:
        with progress:
            run_file(runtime, events_path, on_report=on_report, on_progress=on_progress,
                     batch_size=DEMO_BATCH_SIZE, start_line=1)
    except RuntimeStopped as exc:
        raise SafetyStop(str(exc)) from None
    finally:
        runtime.close()
    mark_written(out)
    status = runtime.engine.status()
    return DemoResult(out, tally, status, by_strategy, perf_counter() - started,
                      head_of(runtime.journal))


def render(console: Console, result: DemoResult) -> None:
    tally, status = result.tally, result.status
    decided = sum(tally.decisions.values())
    console.rule("[bold]ordergate demo: one simulated trading day")
    console.print(
        f"{tally.inputs:,} events went through the gateway: market quotes for AAPL, MSFT, "
        f"TSLA, GME and BTC-USD, timer ticks, an operator command, and {decided:,} order "
        "requests from two strategies: [bold]trend[/] (well-behaved) and [bold]burst[/] "
        "(misbehaving)."
    )
    console.print(
        f"[green]allowed {tally.decisions.get('ALLOW', 0):,}[/]   "
        f"[yellow]modified (shrunk to fit a limit) {tally.decisions.get('MODIFY', 0):,}[/]   "
        f"[red]denied {tally.decisions.get('DENY', 0):,}[/]   "
        f"orders sent to the broker {tally.orders:,}   fills {tally.fills:,}"
    )
    strategies = Table(title="per strategy", title_justify="left")
    for column in ("strategy", "allowed", "modified", "denied"):
        strategies.add_column(column)
    for name, counts in sorted(result.by_strategy.items()):
        strategies.add_row(name, str(counts.get(DecisionKind.ALLOW.value, 0)),
                           str(counts.get(DecisionKind.MODIFY.value, 0)),
                           str(counts.get(DecisionKind.DENY.value, 0)))
    console.print(strategies)
    reasons = Table(title="why orders were stopped or shrunk", title_justify="left")
    for column in ("times", "reason", "what it means"):
        reasons.add_column(column)
    for code, count in tally.reasons.most_common():  # every reason: they add up to the total
        reasons.add_row(f"{count:,}", code, plain_reason(code))
    console.print(reasons)

    console.print("[bold]trading mode over the day[/]")
    if not tally.transitions:
        console.print("  the mode stayed ACTIVE all day")
    for change in tally.transitions:
        colour = _MODE_COLOUR[change.mode]
        why = "; ".join(f"{plain_reason(code)} ({detail})" if detail else plain_reason(code)
                        for code, detail in change.why)
        if not why:
            why = f"resumed by {change.actor}" if change.actor != "system" else "reset"
        console.print(f"  {change.ts:%H:%M:%S} UTC  {change.previous} -> "
                      f"[bold {colour}]{change.mode}[/] ({_MODE_WORDS[change.mode]}): {why}")

    positions = Table(title="positions at the close", title_justify="left")
    for column in ("symbol", "quantity", "average price", "last price", "unrealized PnL"):
        positions.add_column(column, justify="right" if column != "symbol" else "left")
    for position in status.positions:
        if position.qty == 0:
            continue
        positions.add_row(position.symbol, f"{position.qty:,}", money(position.avg_price),
                          money(position.mark) if position.mark is not None else "-",
                          money(position.unrealized_pnl))
    console.print(positions)
    for account in status.accounts:
        console.print(
            f"account {account.account}: started the day with {money(account.day_start_equity)}"
            f", ends with equity {money(account.equity)}: PnL {money(account.daily_pnl)} "
            f"({pnl_parts(account)})")
        if (words := loss_limit_words(account)) is not None:
            console.print(words)
    mode = status.mode.value
    console.print(Panel(f"[bold {_MODE_COLOUR[mode]}]final mode: {mode}[/] — "
                        f"{_MODE_WORDS[mode]}", expand=False))
    journal = result.journal
    heads = f" --head {format_head(*result.head)}" if result.head is not None else ""
    command = program()
    console.print(f"Every event and decision is in the journal [bold]{journal}[/] "
                  f"(hash-chained, {result.seconds:.1f} s for the whole day).")
    # one command a line, never wrapped, so that each can be copied and run as it stands
    for what, line in (
        ("check it has not been altered",
         f"{command} journal verify --journal {journal}{heads}"),
        ("see the mode and positions", f"{command} status --journal {journal}"),
        ("prove every decision replays", f"{command} replay verify --journal {journal}"),
        ("write the evidence pack", f"{command} report --journal {journal} --out report"),
        ("replay the day yourself", replay_command(result.out, command)),
    ):
        console.print(f"  {what + ':':<32}{line}", markup=False, highlight=False,
                      soft_wrap=True, emoji=False)  # the head's ":sha256:" is no emoji code


def program() -> str:
    """How to type `ordergate` in the shell that ran this: its name when it is on the PATH,
    else the script installed beside this interpreter (`.venv/bin/ordergate` after `make
    demo`, whose virtual environment is not activated), relative to the current directory
    when it is below it."""
    if shutil.which("ordergate") is not None:
        return "ordergate"
    script = Path(sys.executable).parent / "ordergate"
    if not script.exists():
        return "ordergate"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def replay_command(out: Path, command: str = "ordergate") -> str:
    """The `ordergate run` command that trades the demo's day again, exactly: same policy,
    same simulated broker, same batch size (fills are seen after their batch)."""
    return (f"{command} run --policy {out / 'policy.yaml'} --broker {out / 'sim.yaml'} "
            f"--batch-size {DEMO_BATCH_SIZE} --journal my.db {out / 'events.jsonl'}")


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the day's events, policy "
                                                    "and journal.")] = DEFAULT_OUT,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs.")]
    = False,
) -> None:
    """Run a simulated trading day through the gateway and explain what happened."""
    configure_logging(verbose, logging.ERROR)  # the summary tells the story, not the logs
    result = run_demo(out, err)
    render(err, result)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
