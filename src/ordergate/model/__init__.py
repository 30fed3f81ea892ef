"""Nouns: frozen msgspec structs shared by every layer. Data, not behaviour.

The structs a gateway keeps by the hundred thousand (intents, decisions, decision records,
dispatches, market snapshots) are declared `gc=False`: they hold only values and other such
structs, never a reference back to whatever holds them, so they cannot be part of a cycle,
and the garbage collector need not walk them on every full collection (which otherwise
stalls a long-running gateway for hundreds of milliseconds).
"""

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
