"""The run (and gateway) summary says when decisions were taken in monitor mode, in the words
`ordergate report` uses, and lists by rule the orders let through that the policy, enforced,
would have blocked: "allowed 3" alone read as if those orders had kept to the limits. A retry's
repeated answer sent no second order, so it is not counted again; the cancels sent that the
policy's cancel_rate would have refused (info THR-005 alerts) are counted too."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console

from engine.harness import Harness
from ordergate.cli.run_cmd import OperatorNotes, render_summary
from ordergate.engine.status import EngineStatus
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import DecisionContext, DecisionRecord, OutputEvent
from ordergate.model.intent import Side
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


def _judged(decision: Decision) -> list[OutputEvent]:
    """`decision` as the engine emits an intent judged anew: its DecisionRecord follows (a
    retry's repeated answer comes alone)."""
    context = DecisionContext(
        mode=Mode.ACTIVE, operator_kill=False, firm_kill=False, strategy_disabled=False,
        market=None, reference_price=None, market_age=None, position=Decimal(0),
        working_buy=Decimal(0), working_sell=Decimal(0), gross_exposure=Decimal(0),
        net_long_exposure=Decimal(0), net_short_exposure=Decimal(0), firm_gross_exposure=None,
        account=None, daily_loss=None, drawdown=None, client_order_id_seen=False,
        fingerprint="", fingerprint_seen=False, resting_buy=None, resting_sell=None)
    return [decision, DecisionRecord(
        ts=datetime(2026, 3, 2, 14, 31, tzinfo=UTC), intent_id=decision.intent_id,
        account="A1", strategy="s1", symbol="AAPL", policy_hash="", limits_hash="",
        context=context)]


def _summary(*decisions: Decision) -> str:
    return _shown([output for decision in decisions for output in _judged(decision)])


def _shown(emitted: list[OutputEvent]) -> str:
    report = BatchReport(emitted=list(emitted), inputs=len(emitted))
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
            "let through; 0 cancel(s) the policy would have refused were sent.") in shown
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


def _rows(shown: str) -> list[list[str]]:
    table = shown.split("would have been blocked (let through in monitor mode)", 1)[1]
    return [[cell.strip() for cell in line.split("\u2502")[1:3]]
            for line in table.splitlines() if line.startswith("\u2502")]


def test_summary_counts_a_resent_intent_once_and_the_cancels_over_the_rate_it_sent() -> None:
    world = Harness({"max_order_qty": "1000", "cancel_rate": {"max": 1, "window": "1m"}},
                    monitor=True)
    start = len(world.outputs)
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100")
    sells = [world.accepted(Side.SELL, qty="1", limit_price=str(200 + index)).client_order_id
             for index in range(3)]
    for order in sells:  # the first within the rate; the other two over it, sent anyway
        world.cancel_request(order)
    world.intent(qty="2000", intent_id="a1")
    world.intent(qty="2000", intent_id="a1")  # resent: answered again, no second order
    world.intent(qty="2000", intent_id="a2")
    assert world.state.counters["cancel_would_deny"] == 2
    shown = _shown([output for outputs in world.outputs[start:] for output in outputs])

    assert ("were taken in monitor mode: the policy sets monitor: true, so its limits were "
            "evaluated and recorded, not enforced (kill switches, the mode and data checks "
            "still were). 2 order(s) the policy would have blocked were let through; 2 "
            "cancel(s) the policy would have refused were sent.") in shown
    assert _rows(shown) == [["2", "ORD-006"]]


def test_summary_says_monitor_mode_for_cancels_alone() -> None:
    world = Harness({"cancel_rate": {"max": 1, "window": "1m"}}, monitor=True)
    opening = world.accepted(qty="100")
    world.fill(opening.client_order_id, "100")
    sells = [world.accepted(Side.SELL, qty="1", limit_price=str(200 + index)).client_order_id
             for index in range(2)]
    start = len(world.outputs)
    for order in sells:
        world.cancel_request(order)
    shown = _shown([output for outputs in world.outputs[start:] for output in outputs])
    assert ("MONITOR: 0 of 0 decision(s) were taken in monitor mode" in shown
            and "1 cancel(s) the policy would have refused were sent." in shown)
