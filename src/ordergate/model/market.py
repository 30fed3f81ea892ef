"""Market data as the gate sees it: one snapshot per symbol."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from ordergate.model.intent import Identifier
from ordergate.model.values import (
    MAX_ADJUSTED,
    MIN_ADJUSTED,
    InvalidValue,
    raise_out_of_range,
    require_utc,
)


class MarketSnapshot(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
    tag="market", tag_field="type", gc=False,
):
    """Bid/ask/last as received from a feed. Values are NOT validated for sign or finiteness
    here on purpose: bad data must reach the gate so it can fail closed with a reason code
    (invariant 5) instead of being dropped at the edge. A finite value of a magnitude no real
    price or volume has (`values.MAGNITUDE_LIMIT`) is refused here, like every decimal of
    every input: it would overflow the engine's exact arithmetic, not just fail a rule.
    """

    symbol: Identifier
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    volume: Decimal | None = None

    def __post_init__(self) -> None:
        require_utc("ts", self.ts)
        bid, ask, last, volume = self.bid, self.ask, self.last, self.volume
        # `adjusted()` is 0 for NaN and infinities: those pass, for the gate to judge
        try:
            if (
                (bid is None or MIN_ADJUSTED <= bid.adjusted() < MAX_ADJUSTED)
                and (ask is None or MIN_ADJUSTED <= ask.adjusted() < MAX_ADJUSTED)
                and (last is None or MIN_ADJUSTED <= last.adjusted() < MAX_ADJUSTED)
                and (volume is None or MIN_ADJUSTED <= volume.adjusted() < MAX_ADJUSTED)
            ):
                return  # every snapshot of every feed passes here: one test per field
        except AttributeError:  # a float or str built in code: only the error path pays
            for name, value in (("bid", bid), ("ask", ask), ("last", last),
                                ("volume", volume)):
                if value is not None and not isinstance(value, Decimal):
                    raise InvalidValue(
                        f"{name}: expected a Decimal (exact; e.g. Decimal('99.5')), got "
                        f"{type(value).__name__} {value!r}") from None
            raise
        for name, value in (("bid", bid), ("ask", ask), ("last", last), ("volume", volume)):
            if value is not None and not MIN_ADJUSTED <= value.adjusted() < MAX_ADJUSTED \
                    and value:
                raise_out_of_range(name, value)
