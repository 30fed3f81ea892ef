"""The reason-code registry: the one list of every reason ordergate can give.

Each code has a stable id (`EXP-001`), a stable name, a family, a severity, a precedence
rank and a one-line meaning. Codes are never renamed or reused: add new ones at the end of
their family. Precedence follows the architecture page, first wins as the blocking reason:

kill switch → trading mode → system/data integrity → clock → loss and drawdown → duplicate
→ order sanity → throttles → exposure and portfolio → liquidity → market hours and canary.
"""

from __future__ import annotations

import enum

import msgspec


class Family(enum.StrEnum):
    KILL = "kill_switch"
    MODE = "trading_mode"
    INTEGRITY = "system_integrity"
    CLOCK = "clock"
    LOSS = "loss"
    DUPLICATE = "duplicate"
    SANITY = "order_sanity"
    THROTTLE = "throttle"
    EXPOSURE = "exposure"
    LIQUIDITY = "liquidity"
    HOURS = "market_hours"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# Family order fixes the precedence; the codes inside a family keep their listed order.
FAMILY_ORDER: tuple[Family, ...] = (
    Family.KILL,
    Family.MODE,
    Family.INTEGRITY,
    Family.CLOCK,
    Family.LOSS,
    Family.DUPLICATE,
    Family.SANITY,
    Family.THROTTLE,
    Family.EXPOSURE,
    Family.LIQUIDITY,
    Family.HOURS,
)


class ReasonCode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    family: Family
    severity: Severity
    precedence: int
    meaning: str


_C = Severity.CRITICAL
_W = Severity.WARNING
_I = Severity.INFO

# (id, name, family, severity, meaning). Order inside a family = precedence inside it.
_TABLE: tuple[tuple[str, str, Family, Severity, str], ...] = (
    ("KIL-001", "KILL_SWITCH_POLICY", Family.KILL, _C,
     "The policy's kill switch is on: no new risk."),
    ("KIL-002", "KILL_SWITCH_OPERATOR", Family.KILL, _C,
     "An operator engaged the kill switch for this firm, account, strategy or symbol."),
    ("KIL-003", "KILL_SWITCH_FIRM", Family.KILL, _C,
     "The firm-wide kill switch shared by all gateways is engaged."),
    ("MOD-001", "MODE_HALTED", Family.MODE, _C,
     "Trading is HALTED: only cancels and an operator-ordered flatten are allowed."),
    ("MOD-002", "MODE_REDUCE_ONLY", Family.MODE, _W,
     "Trading is REDUCE_ONLY: only orders that shrink an existing position are allowed."),
    ("SYS-001", "MARKET_DATA_MISSING", Family.INTEGRITY, _C,
     "No market data for the symbol: the order cannot be valued, so it is refused."),
    ("SYS-002", "MARKET_DATA_STALE", Family.INTEGRITY, _C,
     "The latest market data is older than the policy allows."),
    ("SYS-003", "MARKET_DATA_INVALID", Family.INTEGRITY, _C,
     "Market data is NaN, infinite, zero, negative or crossed."),
    ("SYS-004", "INSTRUMENT_UNKNOWN", Family.INTEGRITY, _C,
     "The policy requires instrument metadata and the symbol has none."),
    ("SYS-005", "CONFIG_MISSING", Family.INTEGRITY, _C,
     "A critical configuration value is missing: no safe default is assumed."),
    ("SYS-006", "JOURNAL_UNAVAILABLE", Family.INTEGRITY, _C,
     "The journal could not be written: nothing new is decided or sent until the gateway "
     "restarts on a journal it can write."),
    ("SYS-007", "CIRCUIT_OPEN", Family.INTEGRITY, _C,
     "A critical dependency's circuit breaker is open, or the firm limits store shared by "
     "all gateways lost its data or came back holding older data."),
    ("SYS-008", "INVARIANT_VIOLATION", Family.INTEGRITY, _C,
     "An internal consistency check failed (NaN or impossible value in risk math)."),
    ("SYS-009", "RECONCILIATION_MISMATCH", Family.INTEGRITY, _C,
     "Positions or open orders disagree with the broker."),
    ("SYS-010", "INTENT_INVALID", Family.INTEGRITY, _C,
     "The intent is malformed (missing or contradictory fields)."),
    ("SYS-011", "DEPENDENCY_UNAVAILABLE", Family.INTEGRITY, _C,
     "A dependency the gate needs (e.g. the shared limit store) is unavailable."),
    ("CLK-001", "INTENT_TIMESTAMP_SKEW", Family.CLOCK, _W,
     "The intent's timestamp is too far from the gateway's event time."),
    ("CLK-002", "CLOCK_DRIFT", Family.CLOCK, _C,
     "The local clock drifts from the broker/exchange clock beyond tolerance."),
    ("CLK-003", "CLOCK_UNAVAILABLE", Family.CLOCK, _C,
     "No reference time source is available to check the local clock."),
    ("LOS-001", "DAILY_LOSS_LIMIT", Family.LOSS, _C,
     "The account's loss today reached the absolute daily loss limit."),
    ("LOS-002", "DAILY_LOSS_PCT", Family.LOSS, _C,
     "The account's loss today reached the daily loss limit in % of day-start equity."),
    ("LOS-003", "MAX_DRAWDOWN", Family.LOSS, _C,
     "Equity fell from its high-water mark by more than the drawdown limit."),
    ("DUP-001", "DUPLICATE_CLIENT_ORDER_ID", Family.DUPLICATE, _W,
     "An order with this client order id was already accepted."),
    ("DUP-002", "DUPLICATE_ORDER", Family.DUPLICATE, _W,
     "The same order (account, strategy, symbol, side, qty, price) was accepted within the "
     "duplicate window."),
    ("DUP-003", "INTENT_ID_REUSED", Family.DUPLICATE, _W,
     "The intent_id was already used for a different intent: a retry repeats the intent "
     "exactly, a new intent needs a new intent_id."),
    ("ORD-001", "ORDER_TYPE_NOT_ALLOWED", Family.SANITY, _W,
     "The policy does not allow this order type."),
    ("ORD-002", "ORDER_TYPE_UNSUPPORTED", Family.SANITY, _W,
     "The broker does not support this order type or time in force."),
    ("ORD-003", "PRICE_MISSING", Family.SANITY, _W,
     "A limit or stop order lacks its price, or a market order carries one."),
    ("ORD-004", "PRICE_TICK", Family.SANITY, _W,
     "The price is not a multiple of the instrument's tick size."),
    ("ORD-005", "QTY_LOT", Family.SANITY, _W,
     "The quantity is not a multiple of the instrument's lot size."),
    ("ORD-006", "MAX_ORDER_QTY", Family.SANITY, _W,
     "The order quantity exceeds the maximum order quantity."),
    ("ORD-007", "MAX_ORDER_VALUE", Family.SANITY, _W,
     "The order value exceeds the maximum order value."),
    ("ORD-008", "PRICE_COLLAR", Family.SANITY, _W,
     "The price is further from the reference price than the collar allows."),
    ("ORD-009", "RESTRICTED_SYMBOL", Family.SANITY, _W,
     "The symbol is on the restricted list."),
    ("ORD-010", "SELF_MATCH", Family.SANITY, _W,
     "The order would trade against the same account's resting order."),
    ("ORD-011", "REDUCE_ONLY_WOULD_INCREASE", Family.SANITY, _W,
     "The intent is flagged reduce-only but would open or grow a position."),
    ("ORD-012", "ORDER_LABEL_TOO_LONG", Family.SANITY, _W,
     "The client order id or label is longer than the broker accepts."),
    ("THR-001", "RATE_GLOBAL", Family.THROTTLE, _W,
     "Too many orders in the window across the gateway."),
    ("THR-002", "RATE_ACCOUNT", Family.THROTTLE, _W,
     "Too many orders in the window for this account."),
    ("THR-003", "RATE_STRATEGY", Family.THROTTLE, _W,
     "Too many orders in the window for this strategy."),
    ("THR-004", "RATE_SYMBOL", Family.THROTTLE, _W,
     "Too many orders in the window for this symbol."),
    ("THR-005", "CANCEL_RATE", Family.THROTTLE, _W,
     "Too many cancels in the window for this account."),
    ("THR-006", "STRATEGY_DISABLED", Family.THROTTLE, _C,
     "The strategy was disabled after repeated executions; an operator must re-enable it."),
    ("THR-007", "RATE_FIRM", Family.THROTTLE, _W,
     "Too many orders in the window across all gateways of the firm."),
    ("EXP-001", "POSITION_QTY_CAP", Family.EXPOSURE, _W,
     "The position (with working orders) would exceed the maximum position quantity."),
    ("EXP-002", "POSITION_VALUE_CAP", Family.EXPOSURE, _W,
     "The position value (with working orders) would exceed the maximum position value."),
    ("EXP-003", "GROSS_EXPOSURE_CAP", Family.EXPOSURE, _W,
     "The account's gross exposure would exceed its cap."),
    ("EXP-004", "NET_EXPOSURE_CAP", Family.EXPOSURE, _W,
     "The account's net exposure would exceed its cap."),
    ("EXP-005", "FIRM_GROSS_EXPOSURE_CAP", Family.EXPOSURE, _W,
     "The firm-wide gross exposure across all gateways would exceed its cap."),
    ("LIQ-001", "VOLUME_PARTICIPATION", Family.LIQUIDITY, _W,
     "The order is too large a share of the symbol's traded volume."),
    ("MKT-001", "MARKET_CLOSED", Family.HOURS, _W,
     "The market for this symbol is closed."),
    ("MKT-002", "CANARY_NOT_ALLOWED", Family.HOURS, _W,
     "Canary mode: only the canary symbols may trade."),
)


def _build() -> dict[str, ReasonCode]:
    family_rank = {family: index for index, family in enumerate(FAMILY_ORDER)}
    ordered = sorted(
        enumerate(_TABLE), key=lambda item: (family_rank[item[1][2]], item[0])
    )
    registry: dict[str, ReasonCode] = {}
    for precedence, (_, (code_id, name, family, severity, meaning)) in enumerate(ordered):
        registry[code_id] = ReasonCode(
            id=code_id, name=name, family=family, severity=severity,
            precedence=precedence, meaning=meaning,
        )
    return registry


REGISTRY: dict[str, ReasonCode] = _build()
BY_NAME: dict[str, ReasonCode] = {code.name: code for code in REGISTRY.values()}


class ConditionText(msgspec.Struct, frozen=True):
    """How a condition raised outside the gate (`gate.view.ActiveReason`) reads as a
    violation: `state`, what is the case while it is raised (the violation's observed value
    starts with it, then since when and the condition's own detail); `limit`, the condition
    under which trading is allowed again."""

    state: str
    limit: str


# The evidence for every code raised as an external condition. The engine takes any registered
# code from a DependencyStatus (a classified broker error can say MKT-001), so every code has
# one: `_check_conditions` refuses to import a registry with a code missing here.
CONDITIONS: dict[str, ConditionText] = {
    "KIL-001": ConditionText("policy kill switch on", "policy kill switch off"),
    "KIL-002": ConditionText("operator kill switch engaged", "no operator kill switch engaged"),
    "KIL-003": ConditionText("firm-wide kill switch engaged", "firm-wide kill switch released"),
    "MOD-001": ConditionText("trading HALTED", "trading not halted"),
    "MOD-002": ConditionText("trading REDUCE_ONLY", "trading ACTIVE"),
    "SYS-001": ConditionText("market data missing", "market data present"),
    "SYS-002": ConditionText("market data stale", "market data within its maximum age"),
    "SYS-003": ConditionText("market data invalid",
                             "finite, positive, uncrossed market data"),
    "SYS-004": ConditionText("instrument metadata missing", "instrument metadata present"),
    "SYS-005": ConditionText("critical configuration missing or unusable",
                             "every critical configuration value present and usable"),
    "SYS-006": ConditionText("journal not writable", "journal writes durable"),
    "SYS-007": ConditionText("circuit breaker OPEN", "breaker closed"),
    "SYS-008": ConditionText("internal consistency check failed",
                             "every consistency check passes"),
    "SYS-009": ConditionText("broker and gateway disagree", "broker and journal agree"),
    "SYS-010": ConditionText("malformed intents reported", "well-formed intents"),
    "SYS-011": ConditionText("dependency unavailable", "every dependency available"),
    "CLK-001": ConditionText("timestamp skew beyond tolerance",
                             "intent timestamps within tolerance of event time"),
    "CLK-002": ConditionText("clock drift beyond tolerance", "clock drift within tolerance"),
    "CLK-003": ConditionText("reference time source unavailable",
                             "reference time source answering"),
    "LOS-001": ConditionText("daily loss limit reached", "daily loss below its limit"),
    "LOS-002": ConditionText("daily loss % limit reached", "daily loss below its % limit"),
    "LOS-003": ConditionText("drawdown beyond its limit", "drawdown within its limit"),
    "DUP-001": ConditionText("client order id already accepted", "unique client order ids"),
    "DUP-002": ConditionText("duplicate order within the window",
                             "no repeat within the duplicate window"),
    "DUP-003": ConditionText("intent_id reused for a different intent",
                             "a new intent_id for every new intent"),
    "ORD-001": ConditionText("order type not allowed", "order types the policy allows"),
    "ORD-002": ConditionText("order type unsupported by the broker",
                             "order types the broker supports"),
    "ORD-003": ConditionText("order price missing or misplaced",
                             "prices as the order type requires"),
    "ORD-004": ConditionText("price off the tick size", "prices on the tick size"),
    "ORD-005": ConditionText("quantity off the lot size", "quantities in whole lots"),
    "ORD-006": ConditionText("order quantity above its maximum",
                             "order quantity within its maximum"),
    "ORD-007": ConditionText("order value above its maximum", "order value within its maximum"),
    "ORD-008": ConditionText("price outside the collar", "prices within the collar"),
    "ORD-009": ConditionText("symbol restricted", "symbol not restricted"),
    "ORD-010": ConditionText("order would self-match", "no trade against own resting orders"),
    "ORD-011": ConditionText("reduce-only order would increase the position",
                             "reduce-only orders shrink the position"),
    "ORD-012": ConditionText("order label too long", "labels within the broker's length"),
    "THR-001": ConditionText("gateway order rate above its limit",
                             "gateway order rate within its limit"),
    "THR-002": ConditionText("account order rate above its limit",
                             "account order rate within its limit"),
    "THR-003": ConditionText("strategy order rate above its limit",
                             "strategy order rate within its limit"),
    "THR-004": ConditionText("symbol order rate above its limit",
                             "symbol order rate within its limit"),
    "THR-005": ConditionText("cancel rate above its limit", "cancel rate within its limit"),
    "THR-006": ConditionText("strategy disabled", "strategy re-enabled by an operator"),
    "THR-007": ConditionText("firm-wide order rate above its limit",
                             "firm-wide order rate within its limit"),
    "EXP-001": ConditionText("position quantity above its cap", "position quantity within its cap"),
    "EXP-002": ConditionText("position value above its cap", "position value within its cap"),
    "EXP-003": ConditionText("gross exposure above its cap", "gross exposure within its cap"),
    "EXP-004": ConditionText("net exposure above its cap", "net exposure within its cap"),
    "EXP-005": ConditionText("firm-wide gross exposure above its cap",
                             "firm-wide gross exposure within its cap"),
    "LIQ-001": ConditionText("volume participation above its limit",
                             "volume participation within its limit"),
    "MKT-001": ConditionText("market closed", "market open"),
    "MKT-002": ConditionText("canary mode: symbol not a canary", "canary symbols only"),
}


# The detail of a healthy `DependencyStatus` that only marks its reason reported, not resolved
# (a trade bust: nothing the gateway sees later says the books were put right). The engine
# takes the reason off its list, since one left standing would hold the mode for good, but
# from behaviour 5 on announces nothing: the dependency is not healthy again, and the mode
# stays until an operator resumes.
REPORTED = "reported"


def _check_conditions() -> None:
    missing = sorted(REGISTRY.keys() - CONDITIONS.keys())
    unknown = sorted(CONDITIONS.keys() - REGISTRY.keys())
    if missing or unknown:
        raise LookupError(f"model/reasons.py CONDITIONS: no text for {missing}, "
                          f"text for unregistered {unknown}")


_check_conditions()


def reason(code_id: str) -> ReasonCode:
    """Look a code up by id; an unknown id is a programming error."""
    return REGISTRY[code_id]


def all_reasons() -> list[ReasonCode]:
    """Every code, in precedence order."""
    return sorted(REGISTRY.values(), key=lambda code: code.precedence)
