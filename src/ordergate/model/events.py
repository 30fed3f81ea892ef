"""Events in and outputs out of the engine. Every one is journaled.

Inputs (`InputEvent`) come from sources: strategies (intents), feeds (market), brokers
(acks, rejects, fills, cancels, refused cancels), operators (commands), timers (clock) and
dependency monitors. Outputs (`OutputEvent`) are what the engine decided: decisions, dispatches,
cancels, mode changes and alerts. On the wire each is a JSON object with a `type` field.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.intent import Identifier, OrderIntent, OrderType, Side, TimeInForce
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import (
    InvalidValue,
    require_finite,
    require_finite_sum,
    require_non_negative,
    require_positive,
    require_utc,
)


class _Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
             tag_field="type", gc=False):
    ts: datetime

    def __post_init__(self) -> None:
        require_utc("ts", self.ts)


# ---------------------------------------------------------------- broker callbacks (inputs)


class OrderAck(_Event, frozen=True, tag="ack"):
    client_order_id: Identifier
    broker_order_id: str = ""


class OrderReject(_Event, frozen=True, tag="reject"):
    client_order_id: Identifier
    reason: str = ""
    code: str = ""


class Fill(_Event, frozen=True, tag="fill"):
    """A partial or full execution. `fill_id` makes a redelivered fill harmless."""

    client_order_id: Identifier
    fill_id: Identifier
    qty: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("qty", self.qty)
        require_positive("price", self.price)
        require_non_negative("fee", self.fee)


class OrderCanceled(_Event, frozen=True, tag="canceled"):
    """The broker confirms the order is done with its remaining quantity unfilled."""

    client_order_id: Identifier
    reason: str = ""


class CancelRefused(_Event, frozen=True, tag="cancel_refused"):
    """The broker refused to cancel a working order (Alpaca's 422 "order is not cancelable",
    say): the order goes on working there, and `reason` is the broker's answer."""

    client_order_id: Identifier
    reason: str = ""


# ---------------------------------------------------------------- requests and control (inputs)


class CancelRequest(_Event, frozen=True, tag="cancel_request"):
    """A strategy or operator asks to cancel a working order."""

    client_order_id: Identifier
    account: Identifier
    requested_by: str = ""


class CommandAction(enum.StrEnum):
    KILL = "kill"
    UNKILL = "unkill"
    REDUCE_ONLY = "reduce_only"
    HALT = "halt"
    RESUME = "resume"
    ENABLE_STRATEGY = "enable_strategy"
    FLATTEN = "flatten"
    ACTIVATE_POLICY = "activate_policy"
    SHADOW_POLICY = "shadow_policy"


class KillScope(enum.StrEnum):
    FIRM = "firm"
    ACCOUNT = "account"
    STRATEGY = "strategy"
    SYMBOL = "symbol"


class Command(_Event, frozen=True, tag="command"):
    """An operator's action. Loosening (resume, unkill, enable_strategy) needs `operator` and
    `reason`; the engine refuses a command without them and says so in an Alert.

    `shadow_policy` installs the stored policy `policy_hash` as the shadow policy (every
    intent is also judged under it and the would-be answer journaled as a ShadowDecision,
    while the active policy alone decides); an empty `policy_hash` clears the shadow."""

    action: CommandAction
    operator: str = ""
    reason: str = ""
    scope: KillScope = KillScope.FIRM
    key: str = ""
    cancel_all: bool = False
    policy_hash: str = ""


class PolicyDocument(_Event, frozen=True, tag="policy"):
    """A policy version, stored in the journal once per hash so any past decision can be
    re-derived. `document` is the normalized policy (canonical JSON object)."""

    policy_hash: str
    document: dict[str, Any]


class ClockTick(_Event, frozen=True, tag="clock"):
    """Event time advances without any other event (timers, window expiry, day roll)."""


class DependencyStatus(_Event, frozen=True, tag="dependency"):
    """A dependency (broker_submit, broker_reads, feed:<name>, clock, journal, redis) changed
    health. `code` is a registry reason code raised while unhealthy."""

    dependency: str
    healthy: bool
    code: str = ""
    detail: str = ""


class AccountFunding(_Event, frozen=True, tag="account", omit_defaults=True):
    """Seed an account: its cash, and from it the starting equity, day-start equity and
    high-water mark. Sent at start-up (or when funds move) by the shell. For an account already
    funded (engine behaviour 5 on) it moves money: the cash is set and the day-start equity and
    high-water mark move by the same change in equity, so the day's PnL and the drawdown stay
    what they were (behaviour 4 and before started both again at the new equity).

    The equity marks may be given instead of derived (a state file's own figures): `equity`
    when it is not cash plus the positions' value (the engine then keeps as cash the given
    equity minus the positions' value, so the limits see the given equity and later fills and
    marks move it from there), `day_start_equity` and `high_water_mark` when the day or the
    account's history began before this event (a high-water mark below the equity is raised
    to it, as any new high raises it); given, they are taken as given for a funded account too.
    Unset, each is derived as before, and the event's bytes are what they always were."""

    account: Identifier
    cash: Decimal
    equity: Decimal | None = None
    day_start_equity: Decimal | None = None
    high_water_mark: Decimal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_finite("cash", self.cash)
        for name in ("equity", "day_start_equity", "high_water_mark"):
            value = getattr(self, name)
            if value is not None:
                require_finite(name, value)



class PositionSeed(_Event, frozen=True, tag="position"):
    """Set an account's position in a symbol: start-up from a state file or from the broker's
    own positions. Valued at `avg_price` until the symbol has a valid mark."""

    account: Identifier
    symbol: Identifier
    qty: Decimal
    avg_price: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_finite("qty", self.qty)
        require_non_negative("avg_price", self.avg_price)

class FirmState(_Event, frozen=True, tag="firm"):
    """What the firm-wide store (Redis) said at a gateway heartbeat, journaled when it
    changes: the firm kill switch, and `gross_exposure`, the sum of the gross exposure every
    OTHER shard published (this shard's own gross is the engine's, always current)."""

    kill: bool
    gross_exposure: Decimal
    shard: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        # a sum of other shards' exposures the firm store holds, not one figure: only added
        # and compared, so it has no magnitude bound
        require_finite_sum("gross_exposure", self.gross_exposure)
        if self.gross_exposure < 0:
            raise InvalidValue("gross_exposure: expected a non-negative decimal, "
                               f"got '{self.gross_exposure}'")


class FirmRateLimited(_Event, frozen=True, tag="firm_rate"):
    """The firm-wide order-rate window (THR-007, across all gateways) had no room for this
    intent. The shell reserves a slot for every intent in the shared store before the intent
    is journaled; a refusal is journaled as this event right before the intent, so replay
    decides it the same way without asking the store again."""

    account: Identifier
    strategy: Identifier
    intent_id: Identifier
    count: int
    max_count: int
    window: timedelta


class EngineUpgrade(_Event, frozen=True, tag="engine_upgrade"):
    """The engine decides the inputs after this one under behaviour epoch `behaviour`
    (`engine.state.ENGINE_BEHAVIOUR`). An engine starts at behaviour 1, and this event raises
    it, never lowers it: a runtime whose engine is older than its code journals one at
    start-up, so a journal replays every input under the behaviour it was written with."""

    behaviour: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.behaviour < 1:
            raise InvalidValue(f"behaviour: expected a positive integer, got {self.behaviour}")


InputEvent = (
    OrderIntent | MarketSnapshot | OrderAck | OrderReject | Fill | OrderCanceled
    | CancelRefused | CancelRequest | Command | PolicyDocument | ClockTick | DependencyStatus
    | PositionSeed | AccountFunding | FirmState | FirmRateLimited | EngineUpgrade
)


# ---------------------------------------------------------------- outputs


class Dispatch(_Event, frozen=True, tag="dispatch"):
    """An order to send to the broker. `client_order_id` is deterministic (invariant 3)."""

    client_order_id: Identifier
    intent_id: Identifier
    account: Identifier
    strategy: Identifier
    symbol: Identifier
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    reduce_only: bool = False


class CancelOrder(_Event, frozen=True, tag="cancel"):
    client_order_id: Identifier
    reason: str = ""


class ModeReason(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why the mode is what it is: a registry code, plain words, who set it, since when."""

    code: str
    detail: str = ""
    actor: str = "system"
    since: datetime | None = None


class ModeChanged(_Event, frozen=True, tag="mode"):
    mode: Mode
    previous: Mode
    reasons: tuple[ModeReason, ...] = ()
    actor: str = "system"


class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(_Event, frozen=True, tag="alert"):
    severity: AlertSeverity
    code: str
    message: str
    intent_id: str = ""


class LimitsRecord(_Event, frozen=True, tag="limits"):
    """The resolved limits (after overrides) that decisions cite by `limits_hash`, journaled
    once per distinct value. `limits` is the canonical JSON of a `ResolvedLimits`, kept as
    raw bytes so `limits_hash` (sha256 of exactly those bytes) can be checked."""

    limits_hash: str
    limits: msgspec.Raw


class RateCount(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One order-rate window as the gate read it: accepted orders in (now - window, now]."""

    scope: str
    key: str
    window: timedelta
    count: int
    max_count: int


class DecisionContext(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Every state value an intent was judged on, read right after the gate ran and before
    the engine changed anything. With the intent and the cited limits it is enough to
    re-derive the decision. Exposure values are the account's totals at current marks."""

    mode: Mode
    mode_reasons: tuple[ModeReason, ...] = ()
    integrity: tuple[ModeReason, ...] = ()
    operator_kill: bool
    firm_kill: bool
    strategy_disabled: bool
    market: MarketSnapshot | None
    reference_price: Decimal | None
    market_age: timedelta | None
    position: Decimal
    working_buy: Decimal
    working_sell: Decimal
    gross_exposure: Decimal
    net_long_exposure: Decimal
    net_short_exposure: Decimal
    firm_gross_exposure: Decimal | None
    account: AccountState | None
    daily_loss: Decimal | None
    drawdown: Decimal | None
    rates: tuple[RateCount, ...] = ()
    client_order_id_seen: bool
    fingerprint: str
    fingerprint_seen: bool
    resting_buy: Decimal | None
    resting_sell: Decimal | None


class DecisionRecord(_Event, frozen=True, tag="decision_record"):
    """Why a decision came out as it did: journaled right after the Decision it explains,
    citing the policy and the resolved limits (`LimitsRecord` with the same `limits_hash`;
    empty when no policy was active)."""

    intent_id: Identifier
    account: Identifier
    strategy: Identifier
    symbol: Identifier
    policy_hash: str
    limits_hash: str
    context: DecisionContext


class ShadowDecision(_Event, frozen=True, tag="shadow_decision"):
    """What the shadow policy `policy_hash` would have answered to an intent, judged on the
    same state as the real Decision it follows in the journal. Informational only: it never
    dispatches, reserves or changes anything; the real Decision is what was enforced."""

    intent_id: Identifier
    policy_hash: str
    decision: DecisionKind
    blocking: str = ""
    violations: tuple[Violation, ...] = ()
    modified_qty: Decimal | None = None
    would_block: str = ""


OutputEvent = (
    Decision | Dispatch | CancelOrder | ModeChanged | Alert | LimitsRecord | DecisionRecord
    | ShadowDecision
)
