"""The run summary's reasons table adds up to the orders denied or modified: past its eight
rows, the other codes are one row that counts them and names them, never dropped."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from ordergate.cli.run_cmd import render_summary
from ordergate.engine.status import EngineStatus
from ordergate.model.modes import Mode
from ordergate.runtime.runfile import Tally


def test_reasons_past_the_eighth_are_counted_in_one_row_that_names_them() -> None:
    codes = [f"ORD-{number:03d}" for number in range(1, 12)]  # 11 codes, counts 11 .. 1
    reasons = Counter({code: 12 - index for index, code in enumerate(codes, start=1)})
    tally = Tally(decisions=Counter({"DENY": sum(reasons.values())}), reasons=reasons)
    status = EngineStatus(now=None, mode=Mode.ACTIVE, reasons=(), policy_hash="",
                          policy_name="", positions=(), open_orders=(), accounts=(), kills=(),
                          disabled_strategies=(), counters={})
    screen = io.StringIO()
    render_summary(Console(file=screen, width=200, color_system=None), tally, status)
    rows = [line for line in screen.getvalue().splitlines() if line.startswith("│")]
    assert len(rows) == 9
    assert [row.split("│")[2].strip() for row in rows[:8]] == codes[:8]
    assert rows[8].split("│")[1].strip() == "6"  # 3 + 2 + 1
    assert rows[8].split("│")[2].strip() == "3 more"
    assert rows[8].split("│")[3].strip() == "ORD-009, ORD-010, ORD-011"
    assert sum(int(row.split("│")[1]) for row in rows) == sum(reasons.values())
