"""An order intent: what a strategy would like to trade. Not yet an order."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from ordergate.model.ids import PREFIX
from ordergate.model.values import (
    IDENTIFIER_PATTERN,
    PRINTABLE_PATTERN,
    require_positive,
    require_utc,
)

# Identifiers travel into logs, journals and broker labels: keep them short and printable.
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128,
                                         pattern=IDENTIFIER_PATTERN)]
# What a strategy may say about itself on one intent: a few labels and scores, not a payload.
# Bounded so one intent cannot grow the journal, its decision record and every replay by
# megabytes (an HTTP body is bounded as a whole; an events file line is not).
MAX_TAGS = 32
# No control characters (NUL, escape sequences, line breaks): tags are printed in status,
# decisions and report tables, and a terminal must show them as they are, not obey them.
TagKey = Annotated[str, msgspec.Meta(max_length=64, pattern=PRINTABLE_PATTERN)]
TagValue = Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE_PATTERN)]
Tags = Annotated[dict[TagKey, TagValue], msgspec.Meta(max_length=MAX_TAGS)]
# The prefix of the client order ids the engine derives for intents that name none
# (`model.ids`): a NEW intent's own id never starts with it (`reserved_id_problem`), so it can
# never be the id derived for another intent.
DERIVED_ID_PREFIX = PREFIX


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(enum.StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderIntent(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
    tag="intent", tag_field="type", gc=False,
):
    """A request to trade. `tags` are the strategy's own words about itself (model confidence,
    scores, labels): recorded beside the decision, never used to loosen a limit (invariant 11).
    """

    intent_id: Identifier
    ts: datetime
    account: Identifier
    strategy: Identifier
    symbol: Identifier
    side: Side
    qty: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    reduce_only: bool = False
    client_order_id: Identifier | None = None
    tags: Tags = {}

    def __post_init__(self) -> None:
        require_utc("ts", self.ts)
        require_positive("qty", self.qty)
        if self.limit_price is not None:
            require_positive("limit_price", self.limit_price)
        if self.stop_price is not None:
            require_positive("stop_price", self.stop_price)

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side is Side.BUY else -self.qty


def reserved_id_problem(intent: OrderIntent) -> str | None:
    """Why a NEW intent's client_order_id is refused, or None: it starts with the prefix of
    the ids the engine derives (`model.ids`), so it could be the id derived for another
    intent. Checked where intents enter (events files, HTTP, the embedded Gateway), never
    when a journal is read: a journal written before this check may hold such an id, and
    the engine still follows it (`EngineState.foreign_derived_ids`)."""
    client_order_id = intent.client_order_id
    if client_order_id is None or not client_order_id.startswith(DERIVED_ID_PREFIX):
        return None
    return (f"'{client_order_id}' starts with '{DERIVED_ID_PREFIX}', which is reserved for the "
            "ids derived for intents without one; choose an id that does not start with "
            f"'{DERIVED_ID_PREFIX}' or leave client_order_id out")


# What a retry must repeat: the order itself, all of the intent but its timestamp (a retry is
# sent later, and the embedded gateway stamps an intent given without one when it arrives) and
# its tags (the strategy's words about itself, which no rule reads and no order carries).
_RETRY_FIELDS = tuple(name for name in OrderIntent.__struct_fields__
                      if name not in ("ts", "tags"))


def retry_differences(earlier: OrderIntent, intent: OrderIntent) -> tuple[str, ...]:
    """The fields in which `intent` is not a retry of `earlier`, the intent first decided under
    its intent_id (none: it is one). The engine, the HTTP service and the embedded Gateway
    all tell a retry by this."""
    if earlier is intent:
        return ()
    return tuple(name for name in _RETRY_FIELDS
                 if getattr(earlier, name) != getattr(intent, name))

