"""The error taxonomy: what a failure means and what the gateway does about it.

`classify(exc, dependency, symbol)` reads one table, top row first, and answers with a
`Classification`: a category (what went wrong), a scope (how much of the system it touches),
an action (retry, skip the symbol, disable the provider, reduce-only, halt) and a registry
reason code. `to_event` turns it into the `DependencyStatus` the engine consumes, so every
failure the shell sees becomes a journaled event with a reason.

A `BrokerNotSent` (the order never left: a read the adapter needed before sending failed) is
classified by what stopped it, its cause: a timeout there says the venue is not answering
(TRANSIENT_NETWORK), a 429 that it is rate limiting (RATE_LIMIT). Without a cause its own
HTTP status decides, as for any broker error.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime

import msgspec

from ordergate.brokers.base import (
    BrokerAuthError,
    BrokerBadResponse,
    BrokerError,
    BrokerNotSent,
    BrokerOrderRejected,
    BrokerRateLimited,
    BrokerUnavailable,
)
from ordergate.model.events import DependencyStatus
from ordergate.model.values import InvalidValue

try:  # httpx is an optional dependency (server and broker extras); classify it when present.
    import httpx

    _HTTPX_TRANSPORT: tuple[type[BaseException], ...] = (httpx.TransportError,)
    _HTTPX_ALL: tuple[type[BaseException], ...] = (httpx.HTTPError,)
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _HTTPX_TRANSPORT = ()
    _HTTPX_ALL = ()


class Category(enum.StrEnum):
    TRANSIENT_NETWORK = "TRANSIENT_NETWORK"
    RATE_LIMIT = "RATE_LIMIT"
    AUTH = "AUTH"
    BAD_DATA = "BAD_DATA"
    PROVIDER_SCHEMA = "PROVIDER_SCHEMA"
    ORDER_REJECTED = "ORDER_REJECTED"
    BROKER_STATE = "BROKER_STATE"
    INVARIANT_VIOLATION = "INVARIANT_VIOLATION"
    PROGRAMMING_ERROR = "PROGRAMMING_ERROR"
    UNKNOWN = "UNKNOWN"


class Scope(enum.StrEnum):
    SYMBOL = "SYMBOL"
    PROVIDER = "PROVIDER"
    GLOBAL = "GLOBAL"


class Action(enum.StrEnum):
    # NONE: nothing degrades; the failure is reported as its own event (an order rejection
    # reaches the engine as an OrderReject, the broker itself is fine).
    NONE = "NONE"
    RETRY = "RETRY"
    SKIP_SYMBOL = "SKIP_SYMBOL"
    DISABLE_PROVIDER = "DISABLE_PROVIDER"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALT = "HALT"


class InvariantViolation(ArithmeticError):
    """Risk math produced an impossible value (NaN, infinity, a negative price...).

    `what` names the quantity, `value` is what was found. Always halts: numbers the gateway
    cannot trust must not size or value an order.
    """

    def __init__(self, what: str, value: object, detail: str = "") -> None:
        message = f"{what}: impossible value '{value}'" + (f" ({detail})" if detail else "")
        super().__init__(message)
        self.what = what
        self.value = value


class BrokerStateMismatch(Exception):
    """The broker's orders or positions contradict the gateway's (found by reconciliation)."""


# Errors that a dependency (broker, feed, reference clock, network) may raise. Only these are
# candidates for a retry or a health report; anything else is a bug and propagates.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    BrokerError, OSError, TimeoutError, ValueError, *_HTTPX_ALL,
)


class Classification(msgspec.Struct, frozen=True, kw_only=True):
    category: Category
    scope: Scope
    action: Action
    reason_code: str  # a registry id (model/reasons.py), or "" when nothing degrades
    retryable: bool
    dependency: str
    symbol: str | None = None
    backoff_hint_s: float | None = None  # the provider's Retry-After, or a sensible minimum
    detail: str = ""


_DEPENDENCY_UNAVAILABLE = "SYS-011"
_MARKET_DATA_INVALID = "SYS-003"
_INVARIANT = "SYS-008"
_MARKET_CLOSED = "MKT-001"

# What each category means, before refinements: (scope, action, reason code, retryable, backoff).
_POLICY: dict[Category, tuple[Scope, Action, str, bool, float | None]] = {
    Category.TRANSIENT_NETWORK: (Scope.PROVIDER, Action.RETRY, _DEPENDENCY_UNAVAILABLE, True, 0.5),
    Category.RATE_LIMIT: (Scope.PROVIDER, Action.RETRY, _DEPENDENCY_UNAVAILABLE, True, 1.0),
    Category.AUTH: (Scope.GLOBAL, Action.HALT, _DEPENDENCY_UNAVAILABLE, False, None),
    Category.BAD_DATA: (Scope.SYMBOL, Action.SKIP_SYMBOL, _MARKET_DATA_INVALID, False, None),
    Category.PROVIDER_SCHEMA: (
        Scope.PROVIDER, Action.DISABLE_PROVIDER, _DEPENDENCY_UNAVAILABLE, False, None),
    Category.ORDER_REJECTED: (Scope.SYMBOL, Action.NONE, "", False, None),
    Category.BROKER_STATE: (Scope.GLOBAL, Action.HALT, "SYS-009", False, None),
    Category.INVARIANT_VIOLATION: (Scope.GLOBAL, Action.HALT, _INVARIANT, False, None),
    Category.PROGRAMMING_ERROR: (Scope.GLOBAL, Action.HALT, _INVARIANT, False, None),
    Category.UNKNOWN: (Scope.GLOBAL, Action.REDUCE_ONLY, _DEPENDENCY_UNAVAILABLE, False, None),
}


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, BrokerError):
        return exc.http_status
    response = getattr(exc, "response", None) if _HTTPX_ALL else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _is(*types: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, types)


def _status(*codes: int) -> Callable[[BaseException], bool]:
    return lambda exc: _http_status(exc) in codes


def _server_error(exc: BaseException) -> bool:
    status = _http_status(exc)
    return status is not None and (status >= 500 or status == 408)


# The table. First matching row wins; an explicit subclass beats a status code only where
# the subclass is listed first.
_RULES: tuple[tuple[str, Callable[[BaseException], bool], Category], ...] = (
    ("invariant violation", _is(InvariantViolation), Category.INVARIANT_VIOLATION),
    ("broker auth error", _is(BrokerAuthError), Category.AUTH),
    ("HTTP 401/403", _status(401, 403), Category.AUTH),
    ("broker rate limited", _is(BrokerRateLimited), Category.RATE_LIMIT),
    ("HTTP 429", _status(429), Category.RATE_LIMIT),
    ("broker bad response", _is(BrokerBadResponse), Category.PROVIDER_SCHEMA),
    ("provider payload fails its schema", _is(msgspec.DecodeError), Category.PROVIDER_SCHEMA),
    ("broker order rejected", _is(BrokerOrderRejected), Category.ORDER_REJECTED),
    ("broker unavailable", _is(BrokerUnavailable), Category.TRANSIENT_NETWORK),
    ("HTTP 5xx/408", _server_error, Category.TRANSIENT_NETWORK),
    ("network transport", _is(TimeoutError, ConnectionError, *_HTTPX_TRANSPORT),
     Category.TRANSIENT_NETWORK),
    ("broker state mismatch", _is(BrokerStateMismatch), Category.BROKER_STATE),
    ("invalid value in data", _is(InvalidValue), Category.BAD_DATA),
    ("programming error", _is(TypeError, KeyError, AttributeError), Category.PROGRAMMING_ERROR),
)

_MARKET_HALTED_WORDS = ("halt", "maintenance", "suspended")


def what_stopped(exc: BaseException) -> BaseException:
    """The error to classify for `exc`: the cause of a `BrokerNotSent` (explicit, or the
    error it was raised while handling), followed down; `exc` itself otherwise."""
    while isinstance(exc, BrokerNotSent):
        cause = exc.__cause__
        if cause is None and not exc.__suppress_context__:
            cause = exc.__context__
        if cause is None:
            break
        exc = cause
    return exc


def retry_after_s(exc: BaseException) -> float | None:
    """The provider's Retry-After carried by `exc` (or by what stopped it), if any."""
    for candidate in (exc, what_stopped(exc)):
        if isinstance(candidate, BrokerError) and candidate.retry_after_s:
            return max(candidate.retry_after_s, 0.0)
    return None


def category_of(exc: BaseException) -> Category:
    subject = what_stopped(exc)
    for _, matches, category in _RULES:
        if matches(subject):
            return category
    return Category.UNKNOWN


def classify(exc: BaseException, dependency: str, symbol: str | None = None) -> Classification:
    """What `exc`, raised while talking to `dependency` (about `symbol`), means and demands."""
    category = category_of(exc)
    scope, action, code, retryable, backoff = _POLICY[category]
    detail = f"{type(exc).__name__}: {exc}"
    cause = what_stopped(exc)
    if cause is not exc:
        detail += f" (caused by {type(cause).__name__}: {cause})"

    if category is Category.RATE_LIMIT and retry_after_s(exc) is not None:
        backoff = retry_after_s(exc)
    elif category is Category.ORDER_REJECTED and any(
        word in str(exc).lower() for word in _MARKET_HALTED_WORDS
    ):
        action, code = Action.SKIP_SYMBOL, _MARKET_CLOSED
    elif category is Category.BAD_DATA and symbol is None:
        # Bad data that cannot be pinned to a symbol: the whole provider is suspect.
        scope, action = Scope.PROVIDER, Action.DISABLE_PROVIDER

    return Classification(
        category=category, scope=scope, action=action, reason_code=code, retryable=retryable,
        dependency=dependency, symbol=symbol, backoff_hint_s=backoff, detail=detail,
    )


def to_event(classification: Classification, ts: datetime) -> DependencyStatus:
    """The engine event for a classification. Healthy only when nothing degrades."""
    parts = [classification.category.value, f"action={classification.action.value}",
             f"scope={classification.scope.value}"]
    if classification.symbol is not None:
        parts.append(f"symbol={classification.symbol}")
    return DependencyStatus(
        ts=ts,
        dependency=classification.dependency,
        healthy=classification.action is Action.NONE,
        code=classification.reason_code,
        detail=" ".join(parts) + f": {classification.detail}",
    )
