"""Market data as the gate sees it: one snapshot per symbol."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from ordergate.model.intent import Identifier
from ordergate.model.values import require_utc


class MarketSnapshot(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
    tag="market", tag_field="type", gc=False,
):
    """Bid/ask/last as received from a feed. Values are NOT validated for sign or finiteness
    here on purpose: bad data must reach the gate so it can fail closed with a reason code
    (invariant 5) instead of being dropped at the edge.
    """

    symbol: Identifier
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    volume: Decimal | None = None

    def __post_init__(self) -> None:
        require_utc("ts", self.ts)
