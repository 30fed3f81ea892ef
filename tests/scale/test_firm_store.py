"""The firm store's atomic scripts on the real Redis, and how a firm-rate refusal joins the
gate's decision in the engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordergate.engine.core import with_firm_rate_limit
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import FirmRateLimited
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.modes import Mode
from ordergate.model.values import utc
from ordergate.runtime.firm import FirmRate, FirmStore

TS = utc(2026, 3, 2, 15, 0)
WINDOW = FirmRate(max_orders=5, window=timedelta(minutes=10))


def _intent(number: int, account: str = "ACC-1") -> OrderIntent:
    return OrderIntent(intent_id=f"i-{number}", ts=TS, account=account, strategy="s",
                       symbol="AAPL", side=Side.BUY, qty=Decimal(1))


@pytest.fixture
def stores(redis_url: str) -> Iterator[tuple[FirmStore, FirmStore]]:
    prefix = os.environ["ORDERGATE_TEST_REDIS_PREFIX"]
    first = FirmStore(redis_url, "a", prefix=prefix)
    second = FirmStore(redis_url, "b", prefix=prefix)
    yield first, second
    first.close()
    second.close()


@pytest.mark.redis
def test_firm_gross_is_the_exact_decimal_sum_of_the_other_shards(
        stores: tuple[FirmStore, FirmStore]) -> None:
    first, second = stores
    assert first.exchange(Decimal("0.1")).others_gross == 0
    reading = second.exchange(Decimal("0.2"))
    assert reading.others_gross == Decimal("0.1") and reading.shards == 2
    third = first.exchange(Decimal("0.1"))
    assert third.others_gross == Decimal("0.2")
    assert sum(first.published().values()) == Decimal("0.3")  # exact, no float rounding
    assert not third.kill
    second.set_kill(True, "desk: drill")
    reading = first.exchange(Decimal("0.1"))
    assert reading.kill and reading.kill_detail == "desk: drill (firm kill #1)"
    second.set_kill(False)
    assert not first.exchange(Decimal("0.1")).kill


@pytest.mark.redis
def test_a_retried_intent_reuses_its_firm_rate_slot(stores: tuple[FirmStore, FirmStore]) -> None:
    first, second = stores
    result = first.reserve([_intent(1), _intent(2)], WINDOW)
    assert [item.granted for item in result.reservations] == [True, True]
    again = second.reserve([_intent(1)], WINDOW)
    assert again.reservations[0].granted and again.count == 2
    first.release([result.reservations[1].member])
    assert first.order_count(WINDOW) == 1


@pytest.mark.redis
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.integers(min_value=0, max_value=12), max_size=6),
                        min_size=1, max_size=5))
def test_the_firm_window_never_grants_more_than_its_maximum(
        stores: tuple[FirmStore, FirmStore], batches: list[list[int]]) -> None:
    first, second = stores
    first.release([f"ACC-1\x1fs\x1fi-{n}" for n in range(13)])  # each example starts empty
    granted: set[int] = set()
    for index, batch in enumerate(batches):
        store = first if index % 2 else second
        result = store.reserve([_intent(n) for n in batch], WINDOW)
        for number, item in zip(batch, result.reservations, strict=True):
            if item.granted:
                granted.add(number)
            else:
                assert len(granted) == WINDOW.max_orders and number not in granted
        if batch:  # an empty batch does not ask Redis
            assert result.count == len(granted) <= WINDOW.max_orders
    assert first.order_count(WINDOW) == len(granted)


def _limited() -> FirmRateLimited:
    return FirmRateLimited(ts=TS, account="ACC-1", strategy="s", intent_id="i-1", count=5,
                           max_count=5, window=timedelta(seconds=1))


def _decision(**fields: object) -> Decision:
    base: dict[str, object] = {"intent_id": "i-1", "decision": DecisionKind.ALLOW,
                               "mode": Mode.ACTIVE}
    base.update(fields)
    return Decision(**base)  # type: ignore[arg-type]


def test_firm_rate_refusal_denies_an_allowed_intent_with_thr_007() -> None:
    decision = with_firm_rate_limit(_decision(), _limited())
    assert decision.decision is DecisionKind.DENY and decision.blocking == "THR-007"
    assert [(v.code, v.observed, v.limit) for v in decision.violations] == [
        ("THR-007", "5", "5")]


def test_firm_rate_refusal_never_blocks_a_risk_reducing_intent() -> None:
    decision = with_firm_rate_limit(_decision(risk_reducing=True), _limited())
    assert decision.decision is DecisionKind.ALLOW and decision.blocking == ""
    assert [v.code for v in decision.violations] == ["THR-007"]


def test_firm_rate_refusal_keeps_a_higher_precedence_blocking_rule_and_lists_both() -> None:
    earlier = Violation(code="ORD-006", observed="2000", limit="1000")
    later = Violation(code="EXP-003", observed="9", limit="1")
    decision = with_firm_rate_limit(
        _decision(decision=DecisionKind.DENY, blocking="ORD-006", violations=(earlier, later)),
        _limited())
    assert decision.blocking == "ORD-006"
    assert [v.code for v in decision.violations] == ["ORD-006", "THR-007", "EXP-003"]
    modified = with_firm_rate_limit(
        _decision(decision=DecisionKind.MODIFY, blocking="EXP-003", violations=(later,),
                  modified_qty=Decimal(1)), _limited())
    assert modified.decision is DecisionKind.DENY and modified.blocking == "THR-007"
    assert modified.modified_qty is None


def test_firm_rate_refusal_in_monitor_mode_only_would_block() -> None:
    decision = with_firm_rate_limit(_decision(monitor=True), _limited())
    assert decision.decision is DecisionKind.ALLOW and decision.would_block == "THR-007"
