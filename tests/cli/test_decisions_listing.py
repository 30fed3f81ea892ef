"""`ordergate decisions` lists the latest decisions so they read at a glance in the terminal
the user has: no value is ever cut across lines ("HALT/ED", "3442/6"), what every row
shares goes into the title, the columns least needed go first on a narrow terminal (and a
line says which), and a modified order shows the quantity it was cut to."""

from __future__ import annotations

from pathlib import Path

from tests.evidence.support import read
from tests.runtime.harness import cli

from ordergate.evidence.decisions import DecisionFilter, DecisionRow, iter_decisions


def _rows(journal: Path, where: DecisionFilter | None = None) -> list[DecisionRow]:
    opened = read(journal)
    try:
        return list(iter_decisions(opened, where or DecisionFilter()))
    finally:
        opened.close()


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│")]


def test_at_80_columns_every_value_is_whole_and_shared_values_are_in_the_title(
        demo_day: Path) -> None:
    journal = demo_day / "journal.db"
    latest = _rows(journal)[-10:]
    shown = cli("decisions", "--journal", str(journal), "--limit", "10", columns=80)
    assert shown.returncode == 0, shown.stderr
    lines = _table_lines(shown.stdout)
    assert len(lines) == 10  # one line per decision: nothing folded onto a second line
    assert all(len(line) <= 80 for line in shown.stdout.splitlines() if line[:1] in "┏┃┡│└")
    assert "…" not in shown.stdout
    for row, line in zip(latest, lines, strict=True):
        assert f" {row.intent_id} " in line
        assert f" {row.symbol} " in line
        assert f" {row.decision} " in line
    title = shown.stdout.splitlines()[0]
    # what all 899 share, not only the 10 shown (they are all HALTED, the day is not)
    assert title == "899 decisions (latest 10), account DEMO-1, 2026-03-02 (UTC)"
    assert "hidden to fit 80 columns: latency, seq, strategy, mode" in shown.stdout


def test_narrower_than_any_table_each_decision_is_one_line_of_whole_values(
        demo_day: Path) -> None:
    journal = demo_day / "journal.db"
    latest = _rows(journal)[-5:]
    shown = cli("decisions", "--journal", str(journal), "--limit", "5", columns=50)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1] == "time (UTC)  intent  symbol  side  qty  decision  blocking"
    for row, line in zip(latest, lines[2:7], strict=True):
        assert line.split("  ") == [row.ts.strftime("%H:%M:%S.%f")[:12], row.intent_id,
                                    row.symbol, row.side, str(row.qty), row.decision,
                                    row.blocking]


def test_a_wide_terminal_shows_every_column_and_hides_nothing(demo_day: Path) -> None:
    journal = demo_day / "journal.db"
    latest = _rows(journal)[-3:]
    shown = cli("decisions", "--journal", str(journal), "--limit", "3", columns=200)
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        "seq", "time (UTC)", "intent", "strategy", "symbol", "side", "qty", "decision",
        "blocking", "mode", "latency"]
    for row, line in zip(latest, _table_lines(shown.stdout), strict=True):
        assert line.startswith(f"│ {row.seq} ")
        assert " µs " in line
    assert "hidden" not in shown.stdout


def test_a_modified_order_shows_the_quantity_asked_for_and_the_one_sent(
        demo_day: Path) -> None:
    journal = demo_day / "journal.db"
    modified = _rows(journal, DecisionFilter(decision="MODIFY"))
    assert modified and all(row.modified_qty is not None for row in modified)
    shown = cli("decisions", "--journal", str(journal), "--decision", "MODIFY", columns=100)
    assert shown.returncode == 0, shown.stderr
    for row, line in zip(modified, _table_lines(shown.stdout), strict=True):
        assert f" {row.qty}→{row.modified_qty} " in line


def test_a_filter_nothing_matches_says_so_instead_of_an_empty_table(demo_day: Path) -> None:
    shown = cli("decisions", "--journal", str(demo_day / "journal.db"), "--symbol", "NONE",
                columns=80)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "no decisions match"
