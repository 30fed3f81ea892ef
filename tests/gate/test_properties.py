"""Invariants of the gate over generated worlds, intents and limits."""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.build import NOW, intent, limits, quote
from gate.views import MemoryView
from ordergate.engine.ids import derive_client_order_id
from ordergate.gate import evaluate_limits, fingerprint
from ordergate.gate.view import ActiveReason, RateScope
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.reasons import REGISTRY, Family
from ordergate.policy.limits import Instrument, RateLimit, ResolvedLimits

D = Decimal
SYMBOLS = ("XYZ", "ABC", "QQQ")
RISK_FAMILIES = {Family.LOSS, Family.THROTTLE, Family.EXPOSURE, Family.LIQUIDITY}

quantities = st.integers(min_value=1, max_value=300).map(D)
positions = st.integers(min_value=-200, max_value=200).map(D)
working = st.integers(min_value=0, max_value=100).map(D)
prices = st.integers(min_value=9500, max_value=10500).map(lambda cents: D(cents).scaleb(-2))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


DERIVED_ID = derive_client_order_id("A1", "S1", "i-1")


@st.composite
def intents(draw: st.DrawFn) -> OrderIntent:
    order_type = draw(st.sampled_from([OrderType.LIMIT, OrderType.MARKET]))
    return intent(
        symbol=draw(st.sampled_from(SYMBOLS)), side=draw(st.sampled_from(list(Side))),
        qty=draw(quantities), order_type=order_type,
        limit_price=draw(prices) if order_type is OrderType.LIMIT else None,
        reduce_only=draw(st.booleans()),
        client_order_id=draw(st.sampled_from([None, "c-1", "c-2"])),
    )


@st.composite
def resolved_limits(draw: st.DrawFn) -> ResolvedLimits:
    rate = RateLimit(max_count=draw(st.integers(1, 5)), window=timedelta(minutes=1))
    return limits(
        monitor=draw(st.booleans()),
        max_market_data_age=draw(st.sampled_from([None, timedelta(seconds=5)])),
        max_daily_loss=draw(optional(st.sampled_from([D(500), D(5000)]))),
        max_drawdown_pct=draw(optional(st.sampled_from([D(5), D(20)]))),
        duplicate_window=draw(optional(st.just(timedelta(seconds=10)))),
        max_order_qty=draw(optional(st.sampled_from([D(50), D(250)]))),
        max_order_value=draw(optional(st.sampled_from([D(5000), D(25000)]))),
        price_collar_pct=draw(optional(st.sampled_from([D("0.5"), D(3)]))),
        market_collar_pct=draw(optional(st.sampled_from([D("0.05"), D(1)]))),
        restricted=draw(st.booleans()),
        rate_account=draw(optional(st.just(rate))),
        rate_symbol=draw(optional(st.just(rate))),
        max_position_qty=draw(optional(st.sampled_from([D(100), D(400)]))),
        max_position_value=draw(optional(st.sampled_from([D(10000), D(40000)]))),
        max_gross_exposure=draw(optional(st.sampled_from([D(20000), D(80000)]))),
        max_net_exposure=draw(optional(st.sampled_from([D(10000), D(60000)]))),
        exposure_modify=draw(st.booleans()),
        max_volume_participation_pct=draw(optional(st.sampled_from([D("0.1"), D(10)]))),
        instrument=draw(optional(st.just(Instrument(tick_size=D("0.01"), lot_size=D(1))))),
    )


@st.composite
def worlds(draw: st.DrawFn) -> MemoryView:
    markets = {}
    for symbol in SYMBOLS:
        kind = draw(st.sampled_from(["good", "good", "stale", "nan", "crossed", "missing"]))
        if kind == "missing":
            continue
        fields: dict[str, Any] = {}
        if kind == "stale":
            fields["ts"] = NOW - timedelta(minutes=1)
        elif kind == "nan":
            fields["bid"] = D("NaN")
        elif kind == "crossed":
            fields["bid"], fields["ask"] = D("100.2"), D("100.1")
        markets[symbol] = quote(symbol, **fields)
    equity = draw(st.sampled_from([D(90000), D(99900), D(110000)]))
    rate_times = [NOW - timedelta(seconds=index) for index in range(draw(st.integers(0, 6)))]
    return MemoryView(
        now=NOW,
        mode=draw(st.sampled_from(list(Mode))),
        reasons=draw(st.sampled_from([(), (ActiveReason(code="SYS-007", detail="broker"),)])),
        operator_kills=draw(st.sampled_from([set(), {("symbol", "ABC")}])),
        firm_killed=draw(st.booleans()),
        markets=markets,
        accounts={"A1": AccountState(account="A1", equity=equity, day_start_equity=D(100000),
                                     high_water_mark=D(110000))},
        positions={("A1", symbol): draw(positions) for symbol in SYMBOLS},
        working_orders={("A1", symbol): (draw(working), draw(working)) for symbol in SYMBOLS},
        accepted={(RateScope.ACCOUNT, "A1"): rate_times, (RateScope.SYMBOL, "XYZ"): rate_times},
        # "c-1" for intents naming it, the derived id for intents naming none (`intent()`'s
        # account, strategy and intent_id)
        client_order_ids=draw(st.sampled_from([set(), {"c-1"}, {DERIVED_ID}])),
        fingerprints={},
        disabled=draw(st.sampled_from([set(), {("A1", "S1")}])),
    )


def run(order: OrderIntent, world: MemoryView, policy: ResolvedLimits) -> Decision:
    return evaluate_limits(order, world, policy, "h")


def allowed(decision: Decision) -> bool:
    return decision.decision is not DecisionKind.DENY


COMMON = settings(max_examples=100, deadline=None)


@COMMON
@given(intents(), worlds(), resolved_limits())
def test_kill_switch_supremacy(order: OrderIntent, world: MemoryView,
                               policy: ResolvedLimits) -> None:
    enforcing = msgspec.structs.replace(policy, monitor=False, kill_switch=True)
    assert not allowed(run(order, world, enforcing))
    world.firm_killed = True
    assert not allowed(run(order, world, policy))
    world.firm_killed = False
    world.operator_kills = {("account", "A1")}
    assert not allowed(run(order, world, policy))


@COMMON
@given(intents(), worlds(), resolved_limits())
def test_mode_monotonicity(order: OrderIntent, world: MemoryView,
                           policy: ResolvedLimits) -> None:
    results = {}
    for mode in Mode:
        world.mode = mode
        results[mode] = allowed(run(order, world, policy))
    if results[Mode.HALTED]:
        assert results[Mode.REDUCE_ONLY]
    if results[Mode.REDUCE_ONLY]:
        assert results[Mode.ACTIVE]


def shuffled(world: MemoryView, seed: int) -> MemoryView:
    rng = random.Random(seed)
    clone = copy.deepcopy(world)
    for name in ("markets", "accounts", "positions", "working_orders", "accepted"):
        items = list(getattr(clone, name).items())
        rng.shuffle(items)
        setattr(clone, name, dict(items))
    kills = list(clone.operator_kills)
    rng.shuffle(kills)
    clone.operator_kills = set(kills)
    return clone


@COMMON
@given(intents(), worlds(), resolved_limits(), st.integers(0, 2**32))
def test_same_inputs_give_identical_decision_bytes(
    order: OrderIntent, world: MemoryView, policy: ResolvedLimits, seed: int,
) -> None:
    first = msgspec.json.encode(run(order, world, policy))
    assert msgspec.json.encode(run(order, world, policy)) == first
    assert msgspec.json.encode(run(order, shuffled(world, seed), policy)) == first


@COMMON
@given(intents(), worlds(), resolved_limits())
def test_rejection_has_no_side_effects(order: OrderIntent, world: MemoryView,
                                       policy: ResolvedLimits) -> None:
    before = copy.deepcopy(world)
    run(order, world, policy)
    assert world == before


@COMMON
@given(intents(), worlds(), resolved_limits())
def test_capital_supremacy_risk_gates_never_block_a_reducing_intent(
    order: OrderIntent, world: MemoryView, policy: ResolvedLimits,
) -> None:
    decision = run(order, world, policy)
    if decision.risk_reducing:
        for code in (decision.blocking, decision.would_block):
            if code:
                assert REGISTRY[code].family not in RISK_FAMILIES, code
        assert decision.decision is not DecisionKind.MODIFY


@COMMON
@given(intents(), worlds(), resolved_limits(),
       st.dictionaries(st.sampled_from(["confidence", "score", "override", "monitor"]),
                       st.text(max_size=5), max_size=4))
def test_signals_cannot_buy_permission(order: OrderIntent, world: MemoryView,
                                       policy: ResolvedLimits, tags: dict[str, str]) -> None:
    tagged = msgspec.structs.replace(order, tags=tags)
    assert msgspec.json.encode(run(order, world, policy)) == \
        msgspec.json.encode(run(tagged, world, policy))


@COMMON
@given(intents(), worlds(), resolved_limits())
def test_a_modified_quantity_passes_every_rule_when_resubmitted(
    order: OrderIntent, world: MemoryView, policy: ResolvedLimits,
) -> None:
    decision = run(order, world, policy)
    if decision.decision is DecisionKind.MODIFY:
        assert decision.modified_qty is not None
        assert 0 < decision.modified_qty < order.qty
        smaller = msgspec.structs.replace(order, qty=decision.modified_qty)
        assert run(smaller, world, policy).decision is DecisionKind.ALLOW


def test_fingerprint_is_what_the_duplicate_rule_looks_up() -> None:
    order = intent()
    world = MemoryView(now=NOW, markets={"XYZ": quote()},
                       fingerprints={fingerprint(order): [NOW]})
    policy = limits(duplicate_window=timedelta(seconds=1))
    assert run(order, world, policy).blocking == "DUP-002"
