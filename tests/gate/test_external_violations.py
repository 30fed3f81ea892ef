"""Conditions raised outside the gate (breaker open, journal down, clock drift, reconciliation
mismatch...) reach the decision as violations with evidence: an observed value built from the
condition's own data (its state, since when, its detail, who raised it) and the limit under
which trading is allowed again, from the one table next to the registry."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from engine.harness import Harness, decision_of, of_type
from gate.build import NOW, decide, view
from ordergate.evidence.reproduce import reproduce
from ordergate.gate.evaluate import external_violation
from ordergate.gate.table import EXTERNAL_CODES
from ordergate.gate.view import ActiveReason
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import DecisionRecord, DependencyStatus, LimitsRecord
from ordergate.model.intent import OrderIntent
from ordergate.model.reasons import CONDITIONS, REGISTRY

SINCE = NOW - timedelta(minutes=3)

# each external code as the runtime raises it: the engine's detail is "<dependency>: <detail>"
RAISED: dict[str, str] = {
    "SYS-006": "journal: disk full",
    "SYS-007": "circuit:broker_submit: CIRCUIT_OPEN_broker_submit",
    "SYS-009": "reconcile:position:A1:XYZ: position mismatch A1/XYZ: gateway 10, broker 0",
    "SYS-010": "intake: 3 malformed intents in a row",
    "SYS-011": "redis: transient_network action=retry scope=provider: ConnectError",
    "CLK-002": "clock:drift: drift +2400.000 ms (reference minus local), tolerance 500 ms",
    "CLK-003": "clock:reference: reference time source failed: TimeoutError",
}


def external(decision: Decision, code: str) -> Violation:
    found = [violation for violation in decision.violations if violation.code == code]
    assert len(found) == 1, decision.violations
    return found[0]


def test_every_code_that_can_be_raised_outside_the_gate_has_its_condition_text() -> None:
    # the engine takes any registered code from a DependencyStatus, so every code needs one
    assert set(RAISED) == set(EXTERNAL_CODES)
    assert set(CONDITIONS) == set(REGISTRY)
    for code, text in CONDITIONS.items():
        assert text.state.strip() and text.limit.strip(), code


@pytest.mark.parametrize("code", sorted(EXTERNAL_CODES))
def test_external_code_yields_a_violation_with_observed_and_limit(code: str) -> None:
    reason = ActiveReason(code=code, detail=RAISED[code], since=SINCE)
    first = decide(world=view(reasons=(reason,)))
    second = decide(world=view(reasons=(reason,)))
    violation = external(first, code)
    assert first.decision is DecisionKind.DENY
    assert first.blocking == code
    assert violation.observed == (
        f"{CONDITIONS[code].state} since 2024-03-01T14:57:00Z: {RAISED[code]}")
    assert violation.limit == CONDITIONS[code].limit != ""
    assert violation.detail == RAISED[code]
    assert msgspec.json.encode(first) == msgspec.json.encode(second)


def test_open_breaker_reads_as_a_breaker_open_since_against_breaker_closed() -> None:
    reason = ActiveReason(code="SYS-007", detail=RAISED["SYS-007"], since=SINCE)
    violation = external(decide(world=view(reasons=(reason,))), "SYS-007")
    assert violation.observed == ("circuit breaker OPEN since 2024-03-01T14:57:00Z: "
                                  "circuit:broker_submit: CIRCUIT_OPEN_broker_submit")
    assert violation.limit == "breaker closed"


def test_operator_raised_condition_names_the_operator_and_a_view_without_since_omits_it(
) -> None:
    reason = ActiveReason(code="SYS-005", detail="config:calendar: XNYS unknown", actor="ops-1")
    assert external_violation(reason).observed == (
        "critical configuration missing or unusable: config:calendar: XNYS unknown "
        "(raised by ops-1)")
    bare = external_violation(ActiveReason(code="CLK-003"))
    assert bare.observed == "reference time source unavailable"
    assert bare.limit == "reference time source answering"


def test_external_violations_sort_by_code_then_observed_whatever_the_view_order() -> None:
    later = ActiveReason(code="SYS-007", detail="circuit:a: CIRCUIT_OPEN_a",
                         since=NOW - timedelta(seconds=1))
    earlier = ActiveReason(code="SYS-007", detail="circuit:b: CIRCUIT_OPEN_b", since=SINCE)
    clock = ActiveReason(code="CLK-002", detail=RAISED["CLK-002"], since=SINCE)
    one = decide(world=view(reasons=(later, clock, earlier)))
    other = decide(world=view(reasons=(earlier, later, clock)))
    assert msgspec.json.encode(one) == msgspec.json.encode(other)
    assert [v.code for v in one.violations] == ["SYS-007", "SYS-007", "CLK-002"]


def test_engine_evidence_carries_since_and_is_rederived_from_the_record_alone() -> None:
    world = Harness()
    opened_at = world.advance(2)
    world.send(DependencyStatus(ts=opened_at, dependency="circuit:broker_submit",
                                healthy=False, code="SYS-007",
                                detail="CIRCUIT_OPEN_broker_submit"))
    world.advance(5)  # the intent comes later: since is when the breaker opened
    outputs = world.intent(limit_price="100")
    decision = decision_of(outputs)
    violation = external(decision, "SYS-007")
    assert decision.decision is DecisionKind.DENY  # the breaker also tightened the mode
    assert violation.observed == (
        "circuit breaker OPEN since 2026-01-05T14:00:02Z: "
        "circuit:broker_submit: CIRCUIT_OPEN_broker_submit")
    assert violation.limit == "breaker closed"
    (record,) = of_type(outputs, DecisionRecord)
    (limits,) = of_type(outputs, LimitsRecord)
    stored = msgspec.json.decode(msgspec.json.encode(record), type=DecisionRecord)
    (intent_event,) = of_type([world.log[-1]], OrderIntent)
    assert reproduce(intent_event, stored, limits) == decision
