"""The run (and gateway) summary says when decisions were taken in monitor mode, in the words
`ordergate report` uses, and lists by rule the orders let through that the policy, enforced,
would have blocked: "allowed 3" alone read as if those orders had kept to the limits."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from ordergate.cli.run_cmd import OperatorNotes, render_summary
from ordergate.engine.status import EngineStatus
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.modes import Mode
from ordergate.runtime.loop import BatchReport
from ordergate.runtime.runfile import Tally

_STATUS = EngineStatus(now=None, mode=Mode.ACTIVE, reasons=(), policy_hash="", policy_name="",
                       positions=(), open_orders=(), accounts=(), kills=(),
                       disabled_strategies=(), counters={})


def _decision(intent_id: str, kind: DecisionKind, *codes: str, monitor: bool = True,
              blocking: str = "") -> Decision:
    return Decision(intent_id=intent_id, decision=kind, blocking=blocking,
                    violations=tuple(Violation(code=code, observed="2", limit="1")
                                     for code in codes),
                    monitor=monitor, would_block=codes[0] if codes and monitor else "",
                    modified_qty=Decimal(1) if kind is DecisionKind.MODIFY else None)


def _summary(*decisions: Decision) -> str:
    report = BatchReport(emitted=list(decisions), inputs=len(decisions))
    tally, notes = Tally(), OperatorNotes()
    tally.add(report)
    notes.add(report)
    screen = io.StringIO()
    render_summary(Console(file=screen, width=300, color_system=None), tally, _STATUS,
                   notes=notes)
    return screen.getvalue()


def test_summary_says_monitor_mode_and_what_it_let_through() -> None:
    shown = _summary(
        _decision("i1", DecisionKind.ALLOW, "ORD-006", "EXP-001"),
        _decision("i2", DecisionKind.ALLOW, "EXP-001"),
        _decision("i3", DecisionKind.ALLOW, "ORD-006"),
        _decision("i4", DecisionKind.ALLOW),
        _decision("i5", DecisionKind.DENY, "MOD-001", blocking="MOD-001"))

    assert ("MONITOR: 5 of 5 decision(s) were taken in monitor mode: the policy sets monitor: "
            "true, so its limits were evaluated and recorded, not enforced (kill switches, the "
            "mode and data checks still were). 3 order(s) the policy would have blocked were "
            "let through.") in shown
    table = shown.split("would have been blocked (let through in monitor mode)", 1)[1]
    rows = [[cell.strip() for cell in line.split("│")[1:4]]
            for line in table.splitlines() if line.startswith("│")]
    assert rows[:2] == [["2", "ORD-006", "The order quantity exceeds the maximum order "
                                         "quantity."],
                        ["1", "EXP-001", rows[1][2]]]
    assert len(rows) == 2  # the enforced denial (MOD-001) is not one of them


def test_summary_without_monitor_mode_says_nothing_of_it() -> None:
    shown = _summary(_decision("i1", DecisionKind.ALLOW, monitor=False),
                     _decision("i2", DecisionKind.DENY, "ORD-006", monitor=False,
                               blocking="ORD-006"))
    assert "MONITOR" not in shown and "would have been blocked" not in shown
