"""The engine state answers the gate's one-call read (`read_intent`) exactly as its single
`GateView` methods answer, and keeps its cached answers (equity marks, rate-window counts)
equal to fresh ones while the state changes underneath."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness import T0, D, Harness, of_type
from ordergate.engine.ids import derive_client_order_id
from ordergate.engine.state import EngineState
from ordergate.engine.windows import RateWindows, TimeSeries, WindowKind
from ordergate.gate.context import fingerprint
from ordergate.gate.view import IntentQuery, IntentReads, RateScope, intent_query
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderIntent, OrderType, Side

MINUTE = timedelta(minutes=1)
THROTTLE = {"max": 100, "window": "1m"}
SYMBOLS = ("X", "Y")


def single_reads(view: EngineState, intent: OrderIntent, key: str,
                 query: IntentQuery) -> IntentReads:
    """What `read_intent` must answer, from the single methods."""
    account, strategy, symbol = intent.account, intent.strategy, intent.symbol
    windows = (
        (RateScope.GLOBAL, "", query.rate_global),
        (RateScope.ACCOUNT, account, query.rate_account),
        (RateScope.STRATEGY, strategy, query.rate_strategy),
        (RateScope.SYMBOL, symbol, query.rate_symbol),
    )
    count_global, count_account, count_strategy, count_symbol = (
        0 if window is None else view.order_count(scope, scoped, window)
        for scope, scoped, window in windows
    )
    resting_buy, resting_sell = (
        view.resting_prices(account, symbol) if query.resting else (None, None)
    )
    working_buy, working_sell = view.working(account, symbol)
    client_order_id = intent.client_order_id
    return (
        view.now, view.mode, view.integrity_reasons(),
        view.operator_kill(account, strategy, symbol), view.firm_kill(),
        view.market(symbol), view.account(account) if query.account else None,
        view.position(account, symbol), working_buy, working_sell,
        view.exposure(account) if query.exposure else None,
        count_global, count_account, count_strategy, count_symbol,
        view.client_order_id_seen(client_order_id if client_order_id is not None else
                                  derive_client_order_id(account, strategy, intent.intent_id)),
        query.duplicate_window is not None
        and view.fingerprint_seen(key, query.duplicate_window),
        resting_buy, resting_sell, view.strategy_disabled(account, strategy),
        view.shared_exposure_gross() if query.firm_gross else None,
    )


QUERIES = (
    intent_query(account=True, exposure=True, resting=True, firm_gross=True,
                 duplicate_window=MINUTE, rate_global=MINUTE, rate_account=MINUTE,
                 rate_strategy=MINUTE, rate_symbol=MINUTE),
    intent_query(account=False, exposure=False, resting=False, firm_gross=False,
                 duplicate_window=None, rate_global=None, rate_account=None,
                 rate_strategy=None, rate_symbol=None),
    intent_query(account=True, exposure=False, resting=True, firm_gross=False,
                 duplicate_window=timedelta(seconds=5), rate_global=timedelta(seconds=2),
                 rate_account=None, rate_strategy=timedelta(seconds=30), rate_symbol=None),
)

steps = st.lists(st.tuples(
    st.sampled_from(["intent", "fill", "cancel", "quote", "tick"]),
    st.sampled_from(SYMBOLS), st.sampled_from(list(Side)), st.integers(1, 30),
    st.sampled_from(["99.5", "100", "100.5"]),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_read_intent_answers_as_the_single_methods_while_the_state_changes(
        actions: list[tuple[str, str, Side, int, str]]) -> None:
    harness = Harness(defaults={
        "rate_global": THROTTLE, "rate_account": THROTTLE, "rate_strategy": THROTTLE,
        "rate_symbol": THROTTLE, "duplicate_window": "1m", "self_match": "deny",
    }, symbols=SYMBOLS)
    working: list[str] = []
    # intents sent, by intent_id; every other one names its own client order id
    sent: list[str] = []
    for action, symbol, side, qty, price in actions:
        if action == "intent":
            own = {"client_order_id": f"c-{len(sent)}"} if len(sent) % 2 else {}
            outputs = harness.intent(side, str(qty), symbol=symbol, limit_price=price, **own)
            sent.append(f"i{harness.seq}")
            working += [dispatch.client_order_id for dispatch in of_type(outputs, Dispatch)]
        elif action == "fill" and working:
            harness.fill(working.pop(0), str(qty), price=price)
        elif action == "cancel" and working:
            harness.canceled(working.pop())
        elif action == "quote":
            harness.quote(symbol, price)
        elif action == "tick":
            harness.tick(qty)
        harness.advance(0.5)
        # a fresh intent_id, ones whose derived id is in use, and client order ids in use
        probes = [("probe", None), *((intent_id, None) for intent_id in sent[:2]),
                  *(("probe", f"c-{number}") for number in (1, 3))]
        for intent_id, client_order_id in probes:
            probe = OrderIntent(intent_id=intent_id, ts=harness.now, account="A",
                                strategy="s1", symbol=symbol, side=side, qty=D(qty),
                                order_type=OrderType.LIMIT, limit_price=D(price),
                                client_order_id=client_order_id)
            key = fingerprint(probe)
            for query in QUERIES:
                state = harness.state
                assert state.read_intent(probe, key, query) == single_reads(state, probe, key,
                                                                            query)


def test_the_cached_equity_marks_follow_every_change_of_the_account() -> None:
    harness = Harness()
    state = harness.state
    first = state.account("A")
    assert state.account("A") is first  # unchanged: the same answer
    dispatch = harness.accepted(Side.BUY, "10", limit_price="100")
    harness.fill(dispatch.client_order_id, "10", price="100")
    harness.quote("X", "101")
    moved = state.account("A")
    record = state.accounts["A"]
    assert moved is not first
    assert (moved.cash, moved.equity, moved.day_start_equity, moved.high_water_mark,
            moved.realized_pnl) == (record.cash, record.equity, record.day_start_equity,
                                    record.high_water_mark, record.realized_pnl)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["record", "count", "prune"]), st.integers(0, 3),
                          st.sampled_from([0, 1, 5, 40])), max_size=60))
def test_a_series_counts_as_a_bisect_whatever_the_order_of_counts_records_and_prunes(
        steps_: list[tuple[str, int, int]]) -> None:
    """The count cursor is only a shortcut: every count equals a bisect over the times, with
    windows that change, time that stands still, and prunes that compact the array."""
    series = TimeSeries()
    now = 1000
    for action, advance, span in steps_:
        now += advance
        if action == "record":
            series.record(now)
        elif action == "prune":
            series.prune(now - span)
        else:
            times = array("q", series.export())
            assert series.count_window(now, span) == len(times) - bisect_right(times, now - span)


def test_order_counts_extend_retention_as_counts_do() -> None:
    windows = RateWindows()
    query = QUERIES[2]
    windows.order_counts("A", "s1", "X", T0, query)
    image = {item.kind: item.span for item in windows.image().retention}
    assert image == {WindowKind.GLOBAL: 2_000_000, WindowKind.STRATEGY: 30_000_000}
