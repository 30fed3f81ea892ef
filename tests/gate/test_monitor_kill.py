"""A kill switch stops trading in monitor mode too, and the docs name exactly the rules that still
deny in monitor mode."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from gate.build import D, intent, quote, view
from ordergate import DecisionKind, Gateway
from ordergate.gate import PlanCache, decide, evaluate
from ordergate.gate.table import EXTERNAL_CODES, RULES
from ordergate.model.decision import Decision
from ordergate.model.intent import Side
from ordergate.policy import parse_policy

CONCEPTS = Path(__file__).resolve().parents[2] / "docs" / "concepts.md"
MONITOR_AND_KILL = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: dry-run-killed}
monitor: true
kill_switch: true
defaults:
  max_market_data_age: 1m
  max_order_qty: 1
"""
# long 100 XYZ: a sell of 10 reduces risk
LONG = {("A1", "XYZ"): D("100")}


def both_paths(side: Side, positions: dict[tuple[str, str], D] | None = None) -> Decision:
    policy = parse_policy(MONITOR_AND_KILL)
    world = view(positions=positions or {})
    order = intent(side=side)
    full = evaluate(order, world, policy)
    limits = policy.limits_for("A1", "S1", "XYZ")
    planned, _ = decide(order, world, limits, policy.hash, PlanCache().plan(limits))
    assert msgspec.json.encode(full) == msgspec.json.encode(planned)
    return full


def test_the_policy_kill_switch_denies_in_monitor_mode() -> None:
    decision = both_paths(Side.BUY)
    assert decision.monitor
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "KIL-001"
    assert decision.would_block == "KIL-001"
    # what else it broke is still recorded
    assert [v.code for v in decision.violations] == ["KIL-001", "ORD-006"]


def test_the_policy_kill_switch_denies_a_reducing_intent_in_monitor_mode() -> None:
    decision = both_paths(Side.SELL, LONG)
    assert decision.risk_reducing
    assert decision.blocking == "KIL-001"


def test_a_monitored_gateway_with_its_kill_switch_engaged_sends_nothing(tmp_path: Path) -> None:
    with Gateway.open(MONITOR_AND_KILL, journal=str(tmp_path / "j.db"),
                      clock="event") as gateway:
        gateway.fund("A1", "100000", ts="2026-03-02T14:30:00Z")
        gateway.on_market({"symbol": "XYZ", "ts": "2026-03-02T14:30:00Z",
                           "bid": "99.99", "ask": "100.01", "last": "100"})
        decision = gateway.submit({"intent_id": "i-1", "ts": "2026-03-02T14:30:01Z",
                                   "account": "A1", "strategy": "S1", "symbol": "XYZ",
                                   "side": "buy", "qty": "1"})
    assert decision.decision is DecisionKind.DENY
    assert decision.blocking == "KIL-001"


def test_without_the_kill_switch_the_same_monitored_intent_is_allowed() -> None:
    policy = parse_policy(MONITOR_AND_KILL.replace("kill_switch: true", "kill_switch: false"))
    decision = evaluate(intent(), view(markets={"XYZ": quote()}), policy)
    assert decision.decision is DecisionKind.ALLOW
    assert decision.would_block == "ORD-006"


def documented_monitor_codes() -> set[str]:
    """The codes in the bullet list that follows 'still deny in monitor mode' in concepts.md."""
    text = CONCEPTS.read_text(encoding="utf-8")
    start = text.index("still deny in monitor mode")
    block = text[start:].split("\n\n", 2)[1]
    assert block.startswith("* "), block
    return set(re.findall(r"\b[A-Z]{3}-\d{3}\b", block))


def test_the_docs_list_exactly_the_rules_that_deny_in_monitor_mode() -> None:
    enforced = {rule.code for rule in RULES if rule.in_monitor} | EXTERNAL_CODES
    assert documented_monitor_codes() == enforced


@pytest.mark.parametrize("code", ["KIL-001", "KIL-002", "KIL-003", "MOD-001", "MOD-002"])
def test_kill_switches_and_modes_are_in_the_monitor_list(code: str) -> None:
    assert code in documented_monitor_codes()
