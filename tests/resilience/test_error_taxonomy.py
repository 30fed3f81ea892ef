"""Every row of the error taxonomy: what each failure means and what the gateway does."""

from __future__ import annotations

import decimal

import httpx
import msgspec
import pytest

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerError,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
)
from ordergate.model.reasons import REGISTRY
from ordergate.model.values import InvalidValue, utc
from ordergate.resilience.errors import (
    Action,
    BrokerStateMismatch,
    Category,
    InvariantViolation,
    Scope,
    classify,
    to_event,
)


def _http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://broker.example/v2/orders")
    return httpx.HTTPStatusError("boom", request=request,
                                 response=httpx.Response(status, request=request))


def _schema_error() -> msgspec.ValidationError:
    class Quote(msgspec.Struct):
        bid: float

    try:
        msgspec.json.decode(b'{"bid": "x"}', type=Quote)
    except msgspec.ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


# (exception, category, scope, action, reason code, retryable)
ROWS = [
    (BrokerAuthError("expired key", http_status=401), Category.AUTH, Scope.GLOBAL,
     Action.HALT, "SYS-011", False),
    (BrokerError("forbidden", http_status=403), Category.AUTH, Scope.GLOBAL,
     Action.HALT, "SYS-011", False),
    (_http_error(401), Category.AUTH, Scope.GLOBAL, Action.HALT, "SYS-011", False),
    (BrokerRateLimited("slow down", http_status=429), Category.RATE_LIMIT, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (_http_error(429), Category.RATE_LIMIT, Scope.PROVIDER, Action.RETRY, "SYS-011", True),
    (BrokerUnavailable("timeout"), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (BrokerError("bad gateway", http_status=502), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (_http_error(503), Category.TRANSIENT_NETWORK, Scope.PROVIDER, Action.RETRY, "SYS-011",
     True),
    (TimeoutError("read timed out"), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (ConnectionResetError("reset by peer"), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (httpx.ConnectError("refused"), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (httpx.ReadTimeout("slow"), Category.TRANSIENT_NETWORK, Scope.PROVIDER,
     Action.RETRY, "SYS-011", True),
    (BrokerBadResponse("missing field 'status'"), Category.PROVIDER_SCHEMA, Scope.PROVIDER,
     Action.DISABLE_PROVIDER, "SYS-011", False),
    (_schema_error(), Category.PROVIDER_SCHEMA, Scope.PROVIDER, Action.DISABLE_PROVIDER,
     "SYS-011", False),
    (BrokerOrderRejected("insufficient buying power", http_status=422),
     Category.ORDER_REJECTED, Scope.SYMBOL, Action.NONE, "", False),
    (BrokerOrderRejected("market halted: AAPL", http_status=422), Category.ORDER_REJECTED,
     Scope.SYMBOL, Action.SKIP_SYMBOL, "MKT-001", False),
    (BrokerOrderRejected("exchange under maintenance"), Category.ORDER_REJECTED,
     Scope.SYMBOL, Action.SKIP_SYMBOL, "MKT-001", False),
    (BrokerStateMismatch("position AAPL: broker 10, gateway 0"), Category.BROKER_STATE,
     Scope.GLOBAL, Action.HALT, "SYS-009", False),
    (InvalidValue("bid: expected a positive decimal, got '-1'"), Category.BAD_DATA,
     Scope.SYMBOL, Action.SKIP_SYMBOL, "SYS-003", False),
    (InvariantViolation("gross exposure", decimal.Decimal("NaN")),
     Category.INVARIANT_VIOLATION, Scope.GLOBAL, Action.HALT, "SYS-008", False),
    (TypeError("unsupported operand"), Category.PROGRAMMING_ERROR, Scope.GLOBAL,
     Action.HALT, "SYS-008", False),
    (KeyError("AAPL"), Category.PROGRAMMING_ERROR, Scope.GLOBAL, Action.HALT, "SYS-008",
     False),
    (AttributeError("no attribute 'qty'"), Category.PROGRAMMING_ERROR, Scope.GLOBAL,
     Action.HALT, "SYS-008", False),
    (RuntimeError("something odd"), Category.UNKNOWN, Scope.GLOBAL, Action.REDUCE_ONLY,
     "SYS-011", False),
]


@pytest.mark.parametrize(
    ("exc", "category", "scope", "action", "code", "retryable"), ROWS,
    ids=[f"{type(row[0]).__name__}-{row[0]}"[:60] for row in ROWS],
)
def test_each_failure_is_classified_by_its_table_row(
    exc: BaseException, category: Category, scope: Scope, action: Action, code: str,
    retryable: bool,
) -> None:
    verdict = classify(exc, "broker_submit", symbol="AAPL")
    assert (verdict.category, verdict.scope, verdict.action, verdict.reason_code,
            verdict.retryable) == (category, scope, action, code, retryable)
    assert verdict.dependency == "broker_submit"
    assert type(exc).__name__ in verdict.detail


def test_every_reason_code_used_by_the_taxonomy_is_in_the_registry() -> None:
    for row in ROWS:
        code = row[4]
        assert code == "" or code in REGISTRY, code


def test_rate_limit_backoff_honours_retry_after() -> None:
    verdict = classify(BrokerRateLimited("429", http_status=429, retry_after_s=7.5), "feed:x")
    assert verdict.backoff_hint_s == 7.5


def test_rate_limit_without_retry_after_still_hints_a_backoff() -> None:
    verdict = classify(BrokerRateLimited("429", http_status=429), "broker_reads")
    assert verdict.backoff_hint_s is not None and verdict.backoff_hint_s > 0


def test_bad_data_without_a_symbol_disables_the_provider() -> None:
    verdict = classify(InvalidValue("bid: not a number"), "feed:polygon")
    assert (verdict.scope, verdict.action) == (Scope.PROVIDER, Action.DISABLE_PROVIDER)


def test_auth_subclass_wins_over_a_contradicting_status() -> None:
    verdict = classify(BrokerAuthError("denied", http_status=500), "broker_submit")
    assert verdict.category is Category.AUTH


def test_classification_becomes_an_unhealthy_dependency_event_with_its_code() -> None:
    ts = utc(2024, 3, 1, 15)
    event = to_event(classify(BrokerAuthError("expired", http_status=401), "broker_submit"), ts)
    assert (event.ts, event.dependency, event.healthy, event.code) == (
        ts, "broker_submit", False, "SYS-011")
    assert "AUTH" in event.detail and "action=HALT" in event.detail


def test_market_halted_event_names_the_symbol() -> None:
    verdict = classify(BrokerOrderRejected("market halted: TSLA"), "broker_submit", "TSLA")
    event = to_event(verdict, utc(2024, 3, 1))
    assert not event.healthy
    assert event.code == "MKT-001"
    assert "symbol=TSLA" in event.detail


def test_plain_order_rejection_leaves_the_dependency_healthy() -> None:
    verdict = classify(BrokerOrderRejected("insufficient funds"), "broker_submit", "AAPL")
    assert to_event(verdict, utc(2024, 3, 1)).healthy


def test_invariant_violation_names_what_and_value() -> None:
    exc = InvariantViolation("position value", decimal.Decimal("-Infinity"), "AAPL mark")
    assert "position value" in str(exc) and "-Infinity" in str(exc)
