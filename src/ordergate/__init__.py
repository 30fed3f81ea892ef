"""ordergate: a pre-trade risk and capital-policy gateway for automated trading.

The public API is exactly the names in `__all__`; everything else is internal and may change.

* Embedding: `Gateway` / `AsyncGateway` run the gateway inside your process
  (`PolicyReplacement` for `Gateway.open(..., replace_policy=...)`; building one without an
  operator or a reason raises `PolicyChoiceError`).
* HTTP: `Client` / `AsyncClient` talk to a running `ordergate serve`.
* Nouns: `OrderIntent`, `MarketSnapshot`, `Decision` and their enums.

Names are imported on first use, so `import ordergate` stays cheap and needs none of the
optional extras (the HTTP client needs httpx, from the `server` or `brokers` extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ordergate.brokers.base import BrokerAdapter
    from ordergate.brokers.config import (
        BrokerConfig,
        BrokerConfigError,
        BrokerKind,
        ExecutionMode,
        make_adapter,
    )
    from ordergate.brokers.sim import SimBroker, SimConfig
    from ordergate.client import (
        AsyncClient,
        AuthError,
        BadURLError,
        Client,
        ClientError,
        ConflictError,
        ForbiddenError,
        GatewayUnavailable,
        NotFoundError,
        OutcomeUnknown,
        RateLimitedError,
        ServerError,
        ValidationError,
    )
    from ordergate.engine.status import EngineStatus
    from ordergate.gateway import (
        AsyncGateway,
        CommandOutcome,
        Gateway,
        GatewayClosed,
        InvalidInput,
    )
    from ordergate.journal import Durability, JournalError
    from ordergate.model.decision import Decision, DecisionKind, Violation
    from ordergate.model.events import (
        Alert,
        CancelRefused,
        Dispatch,
        Fill,
        KillScope,
        ModeChanged,
        OrderAck,
        OrderCanceled,
        OrderReject,
    )
    from ordergate.model.intent import OrderIntent, OrderType, Side, TimeInForce
    from ordergate.model.market import MarketSnapshot
    from ordergate.model.modes import Mode
    from ordergate.model.reasons import ReasonCode, all_reasons, reason
    from ordergate.policy.errors import PolicyError
    from ordergate.policy.loader import Policy, load_policy, parse_policy
    from ordergate.runtime.policy_choice import PolicyChoiceError, PolicyReplacement

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Alert": "ordergate.model.events",
    "AsyncClient": "ordergate.client",
    "AsyncGateway": "ordergate.gateway",
    "AuthError": "ordergate.client",
    "BadURLError": "ordergate.client",
    "BrokerAdapter": "ordergate.brokers.base",
    "BrokerConfig": "ordergate.brokers.config",
    "BrokerConfigError": "ordergate.brokers.config",
    "BrokerKind": "ordergate.brokers.config",
    "CancelRefused": "ordergate.model.events",
    "ExecutionMode": "ordergate.brokers.config",
    "make_adapter": "ordergate.brokers.config",
    "Client": "ordergate.client",
    "ClientError": "ordergate.client",
    "CommandOutcome": "ordergate.gateway",
    "ConflictError": "ordergate.client",
    "Decision": "ordergate.model.decision",
    "DecisionKind": "ordergate.model.decision",
    "Dispatch": "ordergate.model.events",
    "Durability": "ordergate.journal",
    "EngineStatus": "ordergate.engine.status",
    "Fill": "ordergate.model.events",
    "ForbiddenError": "ordergate.client",
    "Gateway": "ordergate.gateway",
    "GatewayClosed": "ordergate.gateway",
    "GatewayUnavailable": "ordergate.client",
    "InvalidInput": "ordergate.gateway",
    "JournalError": "ordergate.journal",
    "KillScope": "ordergate.model.events",
    "MarketSnapshot": "ordergate.model.market",
    "Mode": "ordergate.model.modes",
    "ModeChanged": "ordergate.model.events",
    "NotFoundError": "ordergate.client",
    "OrderAck": "ordergate.model.events",
    "OrderCanceled": "ordergate.model.events",
    "OrderIntent": "ordergate.model.intent",
    "OrderReject": "ordergate.model.events",
    "OrderType": "ordergate.model.intent",
    "OutcomeUnknown": "ordergate.client",
    "Policy": "ordergate.policy.loader",
    "PolicyError": "ordergate.policy.errors",
    "PolicyChoiceError": "ordergate.runtime.policy_choice",
    "PolicyReplacement": "ordergate.runtime.policy_choice",
    "RateLimitedError": "ordergate.client",
    "ReasonCode": "ordergate.model.reasons",
    "ServerError": "ordergate.client",
    "Side": "ordergate.model.intent",
    "SimBroker": "ordergate.brokers.sim",
    "SimConfig": "ordergate.brokers.sim",
    "TimeInForce": "ordergate.model.intent",
    "ValidationError": "ordergate.client",
    "Violation": "ordergate.model.decision",
    "all_reasons": "ordergate.model.reasons",
    "load_policy": "ordergate.policy.loader",
    "parse_policy": "ordergate.policy.loader",
    "reason": "ordergate.model.reasons",
}


__all__ = [
    "Alert",
    "AsyncClient",
    "AsyncGateway",
    "AuthError",
    "BadURLError",
    "BrokerAdapter",
    "BrokerConfig",
    "BrokerConfigError",
    "BrokerKind",
    "CancelRefused",
    "Client",
    "ClientError",
    "CommandOutcome",
    "ConflictError",
    "Decision",
    "DecisionKind",
    "Dispatch",
    "Durability",
    "EngineStatus",
    "ExecutionMode",
    "Fill",
    "ForbiddenError",
    "Gateway",
    "GatewayClosed",
    "GatewayUnavailable",
    "InvalidInput",
    "JournalError",
    "KillScope",
    "MarketSnapshot",
    "Mode",
    "ModeChanged",
    "NotFoundError",
    "OrderAck",
    "OrderCanceled",
    "OrderIntent",
    "OrderReject",
    "OrderType",
    "OutcomeUnknown",
    "Policy",
    "PolicyChoiceError",
    "PolicyError",
    "PolicyReplacement",
    "RateLimitedError",
    "ReasonCode",
    "ServerError",
    "Side",
    "SimBroker",
    "SimConfig",
    "TimeInForce",
    "ValidationError",
    "Violation",
    "__version__",
    "all_reasons",
    "load_policy",
    "make_adapter",
    "parse_policy",
    "reason",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ordergate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
