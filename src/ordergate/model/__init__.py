"""Nouns: frozen msgspec structs shared by every layer. Data, not behaviour."""

from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.intent import OrderIntent, OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import PortfolioState, Position

__all__ = [
    "Decision",
    "DecisionKind",
    "MarketSnapshot",
    "Mode",
    "OrderIntent",
    "OrderType",
    "PortfolioState",
    "Position",
    "Side",
    "TimeInForce",
    "Violation",
]
