"""A read-only picture of the engine for people and the HTTP layer: mode and why, positions,
working orders, accounts with PnL and exposure against their caps, kills, disabled
strategies and the active policy. Built on demand (O(state)); never on the hot path."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from ordergate.engine.records import OrderStatus
from ordergate.model.events import KillScope, ModeReason
from ordergate.model.intent import OrderType, Side
from ordergate.model.modes import Mode
from ordergate.model.values import in_standard_arithmetic

if TYPE_CHECKING:
    from ordergate.engine.core import Engine

HUNDRED = Decimal(100)


class PositionStatus(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    symbol: str
    qty: Decimal
    avg_price: Decimal
    mark: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    working_buy: Decimal
    working_sell: Decimal


class OrderStatusView(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    intent_id: str
    account: str
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    remaining: Decimal
    filled: Decimal
    limit_price: Decimal | None
    status: OrderStatus
    acked: bool
    cancel_requested: bool
    created: datetime


class AccountStatus(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    day_start_equity: Decimal
    high_water_mark: Decimal
    daily_pnl: Decimal
    drawdown_pct: Decimal | None
    gross_exposure: Decimal
    net_exposure: Decimal
    max_gross_exposure: Decimal | None
    max_net_exposure: Decimal | None
    # the day's loss at which new risk is refused (LOS-001/LOS-002): the smaller of the
    # policy's amount and its percentage of day-start equity; None when neither is set
    daily_loss_limit: Decimal | None = None

    @property
    def daily_loss_reached(self) -> bool:
        """The day's loss has reached its limit: only orders that shrink a position pass."""
        return (self.daily_loss_limit is not None
                and self.day_start_equity - self.equity >= self.daily_loss_limit)


class KillStatus(msgspec.Struct, frozen=True, kw_only=True):
    scope: KillScope
    key: str
    operator: str
    reason: str
    since: datetime


class DisabledStatus(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    strategy: str
    fills: int
    window: timedelta
    since: datetime


class EngineStatus(msgspec.Struct, frozen=True, kw_only=True):
    now: datetime | None
    mode: Mode
    reasons: tuple[ModeReason, ...]
    policy_hash: str
    policy_name: str
    positions: tuple[PositionStatus, ...]
    open_orders: tuple[OrderStatusView, ...]
    accounts: tuple[AccountStatus, ...]
    kills: tuple[KillStatus, ...]
    disabled_strategies: tuple[DisabledStatus, ...]
    counters: dict[str, int]
    # the dry-run policy judged beside the active one, never enforced ("" when none)
    shadow_policy_hash: str = ""
    shadow_policy_name: str = ""
    # A mode held tighter than its remaining reasons demand: the reason that cleared last
    # (what put it there), when it cleared, and when the reset window loosens it (None: only
    # an operator's resume does).
    held_after: ModeReason | None = None
    cleared_at: datetime | None = None
    loosens_at: datetime | None = None
    # When the trading day ends (the next day roll: 00:00 UTC, or the session close of the
    # policy's `day_roll_calendar`, so a weekend belongs to Friday's day): PnL today and the
    # daily loss limit start again at the first event from then on. None before any event.
    day_ends_at: datetime | None = None


@in_standard_arithmetic  # a drawdown and a loss limit worked out as in any clean process
def build_status(engine: Engine) -> EngineStatus:
    state = engine.state
    positions = tuple(
        PositionStatus(
            account=book.account, symbol=book.symbol, qty=book.qty, avg_price=book.avg_price,
            mark=state.marks.get(book.symbol), market_value=book.market_value,
            unrealized_pnl=book.unrealized, working_buy=book.working_buy,
            working_sell=book.working_sell,
        )
        for book in sorted(state.books.values(), key=lambda book: (book.account, book.symbol))
    )
    orders = tuple(
        OrderStatusView(
            client_order_id=order.client_order_id, intent_id=order.intent_id,
            account=order.account, strategy=order.strategy, symbol=order.symbol,
            side=order.side, order_type=order.order_type, qty=order.qty,
            remaining=order.remaining, filled=order.filled, limit_price=order.limit_price,
            status=order.status, acked=order.acked, cancel_requested=order.cancel_requested,
            created=order.created,
        )
        for order in sorted(state.open_orders.values(), key=lambda o: o.client_order_id)
    )
    accounts = []
    for record in sorted(state.accounts.values(), key=lambda record: record.account):
        limits = engine.account_limits(record.account)
        high = record.high_water_mark
        drawdown = (high - record.equity) * HUNDRED / high if high > 0 else None
        accounts.append(AccountStatus(
            account=record.account, cash=record.cash, equity=record.equity,
            realized_pnl=record.realized_pnl, unrealized_pnl=record.unrealized_pnl,
            fees=record.fees, day_start_equity=record.day_start_equity,
            high_water_mark=high, daily_pnl=record.equity - record.day_start_equity,
            drawdown_pct=drawdown, gross_exposure=record.gross,
            net_exposure=max(abs(record.net_long), abs(record.net_short)),
            max_gross_exposure=None if limits is None else limits.max_gross_exposure,
            max_net_exposure=None if limits is None else limits.max_net_exposure,
            daily_loss_limit=None if limits is None else loss_limit_today(
                limits.max_daily_loss, limits.max_daily_loss_pct, record.day_start_equity),
        ))
    kills = tuple(
        KillStatus(scope=kill.scope, key=kill.key, operator=kill.operator, reason=kill.reason,
                   since=kill.since)
        for kill in state.kills.values()
    )
    disabled = tuple(
        DisabledStatus(account=item.account, strategy=item.strategy, fills=item.fills,
                       window=item.window, since=item.since)
        for item in state.disabled.values()
    )
    active = engine.active
    held = state.guard.held_after()
    return EngineStatus(
        now=state.clock if state.started else None,
        mode=state.mode,
        reasons=state.guard.reasons(),
        policy_hash="" if active is None else active.hash,
        policy_name="" if active is None else active.name,
        positions=positions,
        open_orders=orders,
        accounts=tuple(accounts),
        kills=kills,
        disabled_strategies=disabled,
        counters=dict(sorted(state.counters.items())),
        shadow_policy_hash="" if engine.shadow is None else engine.shadow.hash,
        shadow_policy_name="" if engine.shadow is None else engine.shadow.name,
        held_after=None if held is None else held[0],
        cleared_at=None if held is None else held[1],
        # the reset window runs from the last clearance of any reason (`ModeGuard.on_time`)
        loosens_at=(state.guard.last_cleared + engine.settings.reset_window
                    if held is not None and state.guard.last_cleared is not None
                    and engine.settings.reset_window is not None else None),
        day_ends_at=state.next_roll_at if state.started else None,
    )


def loss_limit_today(amount: Decimal | None, pct: Decimal | None,
                      day_start_equity: Decimal) -> Decimal | None:
    """The loss at which the loss rules refuse new risk: the smaller of the two limits (the
    percentage one only with a positive day-start equity, as the rule reads it)."""
    limits = [amount] if amount is not None else []
    if pct is not None and day_start_equity > 0:
        limits.append(pct * day_start_equity / HUNDRED)
    return min(limits) if limits else None


# The dependency a trade bust is raised under, one per order (`brokers.labels.OrderWatch`:
# `broker_fills:<client order id>`); the engine may not import the shell that names it.
BUST_DEPENDENCY = "broker_fills"
BUST_CODE = "SYS-009"


def only_reported(reason: ModeReason) -> bool:
    """Whether a reason is one that is only ever marked reported, never resolved: a trade
    bust, raised as a SYS-009 under `broker_fills:<order>` and taken off the list at once by
    its healthy pair (`model.reasons.REPORTED`). Decided from the reason, since the engine
    keeps no record of the words that cleared it; its raising Alert's detail starts with the
    dependency (`core.Engine._dependency`). A reason that came off the list at the instant
    it was raised is not enough: a submit that timed out and was resent at once cleared."""
    return reason.code == BUST_CODE and reason.detail.startswith(f"{BUST_DEPENDENCY}:")


def held_words(status: EngineStatus, meaning: str) -> str | None:
    """Why the mode is tighter than its reasons, in words (`meaning`: the plain words of the
    reason that cleared last); None when it is not."""
    held = status.held_after
    if held is None:
        return None
    reported = only_reported(held)
    if status.cleared_at is None:  # a snapshot from before the guard kept when
        cleared = " It was reported" if reported else " It has cleared"
    else:
        cleared = (f" {'It was reported' if reported else 'It cleared'} at "
                   f"{status.cleared_at:%Y-%m-%d %H:%M:%S} UTC")
    detail = f" ({held.detail})" if held.detail else ""
    until = (f"until {status.loosens_at:%Y-%m-%d %H:%M:%S} UTC, when the reset window has "
             "passed, or until an operator resumes sooner" if status.loosens_at is not None
             else "until an operator resumes")
    mode = status.mode.value
    return (f"{mode} since {held.code}: {meaning.rstrip('.')}{detail}.{cleared}, but the mode "
            f"is never loosened by itself: it stays {mode} {until}.")


def standing_firm_kills(engine: Engine) -> list[str]:
    """The kill switches no operator command of this gateway engaged that deny every order of
    the firm, in words: the active policy's own `kill_switch`, and the one shared by all
    gateways. (An operator's firm-wide kill is in `EngineStatus.kills`.)"""
    kills: list[str] = []
    active = engine.active
    if active is not None and active.limits_for("", "", "").kill_switch:
        kills.append(f"the policy {active.name} sets kill_switch")
    firm = engine.state.firm
    if firm is not None and firm.kill:
        kills.append("the firm-wide kill switch shared by all gateways is engaged"
                     + (f" ({firm.detail})" if firm.detail else ""))
    return kills
