"""The structs a gateway keeps by the hundred thousand are invisible to the garbage
collector (`gc=False`): full collections must not walk every decision and order ever kept."""

from __future__ import annotations

import gc
from decimal import Decimal

from ordergate.engine.records import AccountRecord, Book, OrderRecord
from ordergate.model.decision import Decision, DecisionKind, Violation
from ordergate.model.events import (
    DecisionContext,
    DecisionRecord,
    Dispatch,
    ModeReason,
    RateCount,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import utc

NOW = utc(2026, 3, 2, 14, 30)


def test_decisions_and_their_records_are_not_tracked() -> None:
    violation = Violation(code="ORD-006", observed="5", limit="1")
    decision = Decision(intent_id="i-1", decision=DecisionKind.DENY, blocking="ORD-006",
                        violations=(violation,), mode=Mode.ACTIVE)
    market = MarketSnapshot(symbol="AAPL", ts=NOW, bid=Decimal("1"), ask=Decimal("2"))
    context = DecisionContext(
        mode=Mode.ACTIVE, mode_reasons=(ModeReason(code="SYS-002", detail="stale"),),
        market=market, position=Decimal(0), working_buy=Decimal(0), working_sell=Decimal(0),
        gross_exposure=Decimal(0), net_long_exposure=Decimal(0), net_short_exposure=Decimal(0),
        rates=(RateCount(scope="global", key="", window=NOW - NOW, count=1, max_count=2),),
        operator_kill=False, firm_kill=False, strategy_disabled=False, reference_price=None,
        market_age=None, firm_gross_exposure=None, account=None, daily_loss=None,
        drawdown=None, client_order_id_seen=False, fingerprint="", fingerprint_seen=False,
        resting_buy=None, resting_sell=None,
    )
    record = DecisionRecord(ts=NOW, intent_id="i-1", account="A", strategy="s", symbol="AAPL",
                            policy_hash="sha256:x", limits_hash="sha256:y", context=context)
    for kept in (violation, decision, market, context, record):
        assert not gc.is_tracked(kept), type(kept).__name__


def test_intents_dispatches_and_engine_records_are_not_tracked() -> None:
    intent = OrderIntent(intent_id="i-1", ts=NOW, account="A", strategy="s", symbol="AAPL",
                         side=Side.BUY, qty=Decimal(1), order_type=OrderType.MARKET,
                         tags={"model": "v1"})
    dispatch = Dispatch(ts=NOW, client_order_id="og-1", intent_id="i-1", account="A",
                        strategy="s", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
                        order_type=OrderType.MARKET)
    order = OrderRecord(client_order_id="og-1", intent_id="i-1", account="A", strategy="s",
                        symbol="AAPL", side=Side.BUY, qty=Decimal(1), remaining=Decimal(1),
                        order_type=OrderType.MARKET, created=NOW)
    for kept in (intent, dispatch, order, Book(account="A", symbol="AAPL"),
                 AccountRecord(account="A")):
        assert not gc.is_tracked(kept), type(kept).__name__
