"""`ordergate decisions --show` opens with the decision in plain words: the outcome, the rule
that decided it with its meaning and evidence, every other limit broken, and what was sent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rich.text import Text
from tests.evidence.support import invoke

from ordergate.cli.decisions_cmd import plain_words
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.modes import Mode
from ordergate.model.reasons import REGISTRY

TS = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _intent(**changes: object) -> OrderIntent:
    fields: dict[str, object] = dict(
        intent_id="i-1", ts=TS, account="ACC", strategy="trend", symbol="AAPL", side=Side.BUY,
        qty=Decimal(300), order_type=OrderType.LIMIT, limit_price=Decimal("101.5"))
    fields.update(changes)
    return OrderIntent(**fields)  # type: ignore[arg-type]


def _text(lines: list[str]) -> str:
    """What the terminal shows: the markup rendered away."""
    return Text.from_markup("\n".join(lines)).plain


def test_a_denial_names_the_blocking_rule_its_meaning_and_evidence_then_the_others() -> None:
    decision = Decision(
        intent_id="i-1", decision=DecisionKind.DENY, blocking="ORD-006",
        violations=(Violation(code="ORD-006", observed="300", limit="200"),
                    Violation(code="EXP-001", observed="900", limit="500",
                              detail="position 600 with working orders and qty 300")),
    )
    shown = _text(plain_words(decision, _intent(), None))
    assert "order: buy 300 AAPL limit 101.5, account ACC, strategy trend" in shown
    assert f"DENIED by ORD-006: {REGISTRY['ORD-006'].meaning}" in shown
    assert "observed 300, limit 200" in shown
    assert (f"• EXP-001 {REGISTRY['EXP-001'].meaning} (observed 900, limit 500; position 600 "
            "with working orders and qty 300)") in shown
    assert "trading mode then: ACTIVE" in shown
    assert "sent to the broker" not in shown


def test_a_modification_says_how_much_was_cut_and_what_was_sent() -> None:
    decision = Decision(
        intent_id="i-1", decision=DecisionKind.MODIFY, blocking="EXP-001",
        violations=(Violation(code="EXP-001", observed="900", limit="500"),),
        modified_qty=Decimal(100),
    )
    sent = Dispatch(ts=TS, client_order_id="og-abc", intent_id="i-1", account="ACC",
                    strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal(100),
                    order_type=OrderType.LIMIT, limit_price=Decimal("101.5"))
    shown = _text(plain_words(decision, _intent(), sent))
    assert f"MODIFIED: quantity cut from 300 to 100 to fit EXP-001: " \
           f"{REGISTRY['EXP-001'].meaning}" in shown
    assert "sent to the broker as order og-abc (buy 100)" in shown


def test_allowed_orders_say_why_nothing_stopped_them() -> None:
    clean = Decision(intent_id="i-1", decision=DecisionKind.ALLOW)
    assert "ALLOWED: no limit was broken" in _text(plain_words(clean, _intent(), None))
    assert "no order was sent in the same step" in _text(plain_words(clean, _intent(), None))

    monitored = Decision(intent_id="i-1", decision=DecisionKind.ALLOW, monitor=True,
                         would_block="THR-001",
                         violations=(Violation(code="THR-001", observed="11", limit="10"),))
    shown = _text(plain_words(monitored, _intent(), None))
    assert "monitor mode" in shown and "THR-001" in shown
    assert REGISTRY["THR-001"].meaning in shown

    market = _text(plain_words(clean, _intent(order_type=OrderType.MARKET, limit_price=None,
                                              reduce_only=True), None))
    assert "order: buy 300 AAPL at market, reduce-only, account ACC" in market

    reducing = Decision(intent_id="i-1", decision=DecisionKind.ALLOW, risk_reducing=True,
                        mode=Mode.REDUCE_ONLY,
                        violations=(Violation(code="LOS-001", observed="9", limit="5"),))
    shown = _text(plain_words(reducing, _intent(side=Side.SELL), None))
    assert "shrinks the position" in shown
    assert "• LOS-001" in shown and "trading mode then: REDUCE_ONLY" in shown


def test_values_from_the_intent_are_printed_literally_not_as_markup() -> None:
    decision = Decision(intent_id="i-1", decision=DecisionKind.DENY, blocking="ORD-009",
                        violations=(Violation(code="ORD-009", detail="[bold]x[/bold] restricted"),))
    shown = _text(plain_words(decision, _intent(account="[red]ACC"), None))
    assert "account [red]ACC" in shown
    assert "[bold]x[/bold] restricted" in shown


def test_show_opens_with_the_plain_words_panel_on_a_real_journal(demo_day: Path) -> None:
    listed = invoke("decisions", "--journal", str(demo_day / "journal.db"), "--decision",
                    "MODIFY", "--limit", "1")
    assert listed.code == 0, listed.output
    intent_id = next(word for line in listed.output.splitlines() for word in line.split()
                     if word.startswith("burst-"))
    shown = invoke("decisions", "--journal", str(demo_day / "journal.db"), "--show", intent_id)
    assert shown.code == 0, shown.output
    words = shown.output.index("in plain words")
    assert words < shown.output.index("intent (input)")
    assert "MODIFIED: quantity cut from" in shown.output
    assert "sent to the broker as order og-" in shown.output


def test_figures_are_written_out_never_in_exponent_form() -> None:
    decision = Decision(
        intent_id="i-1", decision=DecisionKind.MODIFY, blocking="ORD-004",
        violations=(Violation(code="ORD-004", observed="1.25E-7", limit="1E-8",
                              detail="limit_price 1.25E-7 is not a multiple of tick 1E-8"),
                    Violation(code="ORD-006", observed="2E+9", limit="1000000000"),
                    Violation(code="SYS-002", observed="3 s", limit="1E-3 s")),
        modified_qty=Decimal("1E+3"),
    )
    sent = Dispatch(ts=TS, client_order_id="og-abc", intent_id="i-1", account="ACC",
                    strategy="trend", symbol="AAPL", side=Side.BUY, qty=Decimal("1E+3"),
                    order_type=OrderType.LIMIT, limit_price=Decimal("1.25E-7"))
    shown = _text(plain_words(decision, _intent(qty=Decimal("2E+9"),
                                                limit_price=Decimal("1.25E-7")), sent))
    assert "order: buy 2000000000 AAPL limit 0.000000125, account ACC" in shown
    assert "quantity cut from 2000000000 to 1000 to fit ORD-004" in shown
    assert "observed 0.000000125, limit 0.00000001" in shown
    assert "observed 2000000000, limit 1000000000" in shown
    assert "sent to the broker as order og-abc (buy 1000)" in shown
    # only a whole figure is rewritten: a duration with its unit, and the recorded detail,
    # are shown as journaled
    assert "observed 3 s, limit 1E-3 s" in shown
    assert "not a multiple of tick 1E-8" in shown
    assert "1.25E-7" not in shown.replace("limit_price 1.25E-7", "")


def test_monitor_mode_says_a_cap_the_gate_may_trim_to_could_have_cut_the_order() -> None:
    monitored = Decision(intent_id="i-1", decision=DecisionKind.ALLOW, monitor=True,
                         would_block="EXP-001",
                         violations=(Violation(code="EXP-001", observed="150", limit="100"),))
    shown = _text(plain_words(monitored, _intent(), None))
    assert ("enforced, it would have been refused, or cut to fit where the policy sets "
            "exposure_modify, by EXP-001") in shown
    throttled = Decision(intent_id="i-1", decision=DecisionKind.ALLOW, monitor=True,
                         would_block="THR-001",
                         violations=(Violation(code="THR-001", observed="11", limit="10"),))
    assert "enforced, it would have been refused by THR-001" in _text(
        plain_words(throttled, _intent(), None))


def test_a_self_match_cancel_is_said_as_the_cancel_it_was_not_as_a_broken_limit() -> None:
    # Under self_match: cancel_resting an allowed order carries an ORD-010 note naming the
    # account's own orders the gate cancelled; nothing was broken.
    decision = Decision(
        intent_id="i-1", decision=DecisionKind.ALLOW,
        violations=(Violation(code="ORD-010", observed="101.5", limit="101",
                              detail="cancelled the account's own order it would trade "
                                     "against (self_match: cancel_resting): og-abc at 101"),),
    )
    shown = _text(plain_words(decision, _intent(), None))
    assert "ALLOWED: no limit was broken" in shown
    assert "broken:" not in shown
    assert ("to keep it from trading with the account's own orders, the gate cancelled the "
            "account's own order it would trade against: og-abc at 101") in shown
