"""Gate latency per intent, p50/p99 in microseconds, on three paths:

* the engine's path (`no_working_orders`, `working_orders_10k`): the policy's limits for the
  intent's key, the plan compiled for them (cached per limits value; its screen,
  `gate.screen`, picks the rules an intent could break) and `decide` (`gate.evaluate`);
* the public `evaluate(intent, view, policy)` (`evaluate_no_working_orders`,
  `evaluate_working_orders_10k`), as a program embedding the gate calls it: with this view,
  which answers the screen's one read per intent, it judges through the policy's compiled
  plans, so it costs what the engine's path costs plus the lookup of those plans;
* the full rule table (`full_table_no_working_orders`, `full_table_working_orders_10k`):
  `evaluate_limits`, every rule, no plan, no screen, the view asked one method at a time:
  what `evaluate` costs on a view without `read_intent`, and the reference the plans are
  tested against.

    python -m bench.bench_gate [--quick]

A realistic policy (every rule family on, 500 symbols with instruments and overrides, market
hours on part of them) is built through the policy loader; the view holds 500 quotes, 200
open positions and incrementally kept aggregates, as the engine's state does, counts its rate
and duplicate windows with the engine's own window classes, and answers the gate's one call
per intent (`read_intent`) as the engine's state does. 100,000 intents
(10,000 with --quick) are evaluated one at a time on each path, first with no working orders,
then with 10,000 working orders in the view. Every path must reach the same decisions.
Results go to bench/results/gate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordergate.engine.windows import DuplicateWindow, RateWindows, WindowKind
from ordergate.gate import PlanCache, decide, evaluate, evaluate_limits
from ordergate.gate.exposure import reference_price, symbol_exposure
from ordergate.gate.view import (
    ActiveReason,
    ExposureTotals,
    IntentQuery,
    IntentReads,
    RateScope,
)
from ordergate.model.decision import Decision
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.portfolio import AccountState
from ordergate.model.values import utc
from ordergate.policy.loader import Policy

RESULTS = Path(__file__).parent / "results" / "gate.json"
NOW = utc(2026, 3, 4, 15, 30)  # a Wednesday, 10:30 in New York: XNYS is open
ZERO = Decimal(0)
ACCOUNTS = ("ACC1", "ACC2")
STRATEGIES = ("trend", "meanrev", "burst")
N_SYMBOLS = 500
N_POSITIONS = 200
N_WORKING = 10_000
_RATE_KIND = {
    RateScope.GLOBAL: WindowKind.GLOBAL, RateScope.ACCOUNT: WindowKind.ACCOUNT,
    RateScope.STRATEGY: WindowKind.STRATEGY, RateScope.SYMBOL: WindowKind.SYMBOL,
}
RATE_WINDOW = timedelta(seconds=1)  # every rate limit's window in the policy below
DUPLICATE_WINDOW = timedelta(seconds=5)


def symbols() -> list[str]:
    return [f"S{index:03d}" for index in range(N_SYMBOLS)]


def policy_document() -> dict[str, Any]:
    names = symbols()
    return {
        "apiVersion": "ordergate/v1",
        "kind": "Policy",
        "metadata": {"name": "bench"},
        "require_instrument": True,
        "instruments": {name: {"tick_size": "0.01", "lot_size": "1"} for name in names},
        "restricted_symbols": ["S499"],
        "market_hours": {"calendar": "XNYS", "symbols": names[:250], "years": [2026, 2026]},
        "defaults": {
            "max_market_data_age": "2s",
            "max_intent_skew": "500ms",
            "max_daily_loss": "25000",
            "max_daily_loss_pct": "2.5",
            "max_drawdown_pct": "8",
            "duplicate_window": "5s",
            "allowed_order_types": ["market", "limit", "stop_limit"],
            "max_order_qty": "5000",
            "max_order_value": "250000",
            "price_collar_pct": "5",
            "market_collar_pct": "2",
            "self_match": "deny",
            "rate_global": {"max": 100000, "window": "1s"},
            "rate_account": {"max": 50000, "window": "1s"},
            "rate_strategy": {"max": 20000, "window": "1s"},
            "rate_symbol": {"max": 500, "window": "1s"},
            "max_position_qty": "20000",
            "max_position_value": "1000000",
            "max_gross_exposure": "500000000",
            "max_net_exposure": "200000000",
            "max_firm_gross_exposure": "2000000000",
            "exposure_modify": True,
            "max_volume_participation_pct": "10",
        },
        "accounts": {"ACC2": {"max_daily_loss": "5000", "max_gross_exposure": "400000000"}},
        "strategies": {"burst": {"max_order_qty": "500"}},
        "symbols": {
            name: {"max_order_qty": "1000", "price_collar_pct": "3"}
            for name in names[::3]
        },
    }


class BenchView:
    """The engine's view as the gate sees it: dict lookups over aggregates kept up to date
    as orders are added, so every method is O(1) or O(log n)."""

    def __init__(self, markets: dict[str, MarketSnapshot]) -> None:
        self.now: datetime = NOW
        self.mode = Mode.ACTIVE
        self.markets = markets
        self.accounts = {
            name: AccountState(account=name, equity=Decimal("10100000"),
                               day_start_equity=Decimal("10000000"),
                               high_water_mark=Decimal("10200000"))
            for name in ACCOUNTS
        }
        self.positions: dict[tuple[str, str], Decimal] = {}
        self.working_qty: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self.resting: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = {}
        self.orders: dict[str, tuple[str, str, Side, Decimal, Decimal]] = {}
        self.totals: dict[str, ExposureTotals] = {}
        # the engine's own windows, so counting costs here what it costs there
        self.windows = RateWindows()
        self.duplicates = DuplicateWindow()
        self.client_order_ids: set[str] = set()
        # conditions the gate checks for every intent; none is raised in this bench
        self.reasons: tuple[ActiveReason, ...] = ()
        self.kills: set[str] = set()
        self.firm_killed = False
        self.disabled: set[tuple[str, str]] = set()

    def add_order(self, order_id: str, account: str, symbol: str, side: Side, qty: Decimal,
                  price: Decimal) -> None:
        self.orders[order_id] = (account, symbol, side, qty, price)
        buy, sell = self.working_qty.get((account, symbol), (ZERO, ZERO))
        best_buy, best_sell = self.resting.get((account, symbol), (None, None))
        if side is Side.BUY:
            buy += qty
            best_buy = price if best_buy is None else max(best_buy, price)
        else:
            sell += qty
            best_sell = price if best_sell is None else min(best_sell, price)
        self.working_qty[(account, symbol)] = (buy, sell)
        self.resting[(account, symbol)] = (best_buy, best_sell)

    def rebuild_totals(self) -> None:
        for account in ACCOUNTS:
            gross = net_long = net_short = ZERO
            keys = {key for key in (*self.positions, *self.working_qty) if key[0] == account}
            for _, symbol in keys:
                market = self.markets[symbol]
                mark = reference_price(market.bid, market.ask, market.last)
                assert mark is not None
                buy, sell = self.working(account, symbol)
                part = symbol_exposure(self.position(account, symbol), buy, sell, mark)
                gross += part.gross
                net_long += part.net_long
                net_short += part.net_short
            self.totals[account] = ExposureTotals(gross=gross, net_long=net_long,
                                                  net_short=net_short)

    def integrity_reasons(self) -> tuple[ActiveReason, ...]:
        return self.reasons

    def operator_kill(self, account: str, strategy: str, symbol: str) -> bool:
        kills = self.kills
        return "" in kills or account in kills or strategy in kills or symbol in kills

    def firm_kill(self) -> bool:
        return self.firm_killed

    def market(self, symbol: str) -> MarketSnapshot | None:
        return self.markets.get(symbol)

    def account(self, account: str) -> AccountState | None:
        return self.accounts.get(account)

    def position(self, account: str, symbol: str) -> Decimal:
        return self.positions.get((account, symbol), ZERO)

    def working(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        return self.working_qty.get((account, symbol), (ZERO, ZERO))

    def exposure(self, account: str) -> ExposureTotals:
        return self.totals[account]

    def order_count(self, scope: RateScope, key: str, window: timedelta) -> int:
        return self.windows.count(_RATE_KIND[scope], key, self.now, window)

    def cancel_count(self, account: str, window: timedelta) -> int:
        return 0

    def client_order_id_seen(self, client_order_id: str) -> bool:
        return client_order_id in self.client_order_ids

    def fingerprint_seen(self, key: str, window: timedelta) -> bool:
        return self.duplicates.seen(key, self.now, window)

    def resting_prices(self, account: str, symbol: str, side: Side | None = None
                       ) -> tuple[Decimal | None, Decimal | None]:
        return self.resting.get((account, symbol), (None, None))

    def strategy_disabled(self, account: str, strategy: str) -> bool:
        return (account, strategy) in self.disabled

    def shared_exposure_gross(self) -> Decimal | None:
        return Decimal("40000000")

    def read_intent(self, intent: OrderIntent, fingerprint: str,
                    query: IntentQuery) -> IntentReads:
        """The methods above for one intent in one call, as the engine's state answers it."""
        account, strategy, symbol = intent.account, intent.strategy, intent.symbol
        want_account, want_exposure, want_resting, want_firm_gross = query[:4]
        now = self.now
        position = self.positions.get((account, symbol), ZERO)
        working_buy, working_sell = self.working_qty.get((account, symbol), (ZERO, ZERO))
        count_global, count_account, count_strategy, count_symbol = self.windows.order_counts(
            account, strategy, symbol, now, query)
        resting_buy = resting_sell = None
        if want_resting:
            resting_buy, resting_sell = self.resting.get((account, symbol), (None, None))
        client_order_id = intent.client_order_id
        return (
            now, self.mode, self.integrity_reasons() if self.reasons else (),
            bool(self.kills) and self.operator_kill(account, strategy, symbol),
            self.firm_killed, self.markets.get(symbol),
            self.accounts.get(account) if want_account else None,
            position, working_buy, working_sell,
            self.totals[account] if want_exposure else None,
            count_global, count_account, count_strategy, count_symbol,
            client_order_id is not None and client_order_id in self.client_order_ids,
            query.duplicate_window is not None
            and self.duplicates.seen_within(fingerprint, now, query.duplicate_span),
            resting_buy, resting_sell,
            bool(self.disabled) and (account, strategy) in self.disabled,
            self.shared_exposure_gross() if want_firm_gross else None,
        )


def build_world(rng: random.Random) -> tuple[BenchView, dict[str, Decimal]]:
    mids: dict[str, Decimal] = {}
    markets: dict[str, MarketSnapshot] = {}
    for name in symbols():
        mid = Decimal(rng.randint(1000, 50000)).scaleb(-2)
        mids[name] = mid
        markets[name] = MarketSnapshot(
            symbol=name, ts=NOW - timedelta(milliseconds=200), bid=mid - Decimal("0.01"),
            ask=mid + Decimal("0.01"), last=mid, volume=Decimal(rng.randint(200_000, 5_000_000)),
        )
    world = BenchView(markets)
    for name in rng.sample(symbols(), N_POSITIONS):
        world.positions[(rng.choice(ACCOUNTS), name)] = Decimal(rng.randint(-2000, 2000) or 1)
    # recent history: rate windows and fingerprints the gate looks up, recorded in time
    # order as the engine records accepted intents
    history = []
    for index in range(2000):
        ts = NOW - timedelta(milliseconds=rng.randint(0, 900))
        history.append((ts, index, rng.choice(symbols())))
    for kind in _RATE_KIND.values():
        world.windows.retain(kind, RATE_WINDOW)
    for ts, index, name in sorted(history):
        world.windows.record(WindowKind.SYMBOL, name, ts)
        world.windows.record(WindowKind.GLOBAL, "", ts)
        world.duplicates.record(f"ACC1 trend {name} buy {index} ", ts, DUPLICATE_WINDOW)
    world.rebuild_totals()
    return world, mids


def add_working_orders(world: BenchView, mids: dict[str, Decimal], rng: random.Random) -> None:
    names = symbols()
    for index in range(N_WORKING):
        name = rng.choice(names)
        side = rng.choice((Side.BUY, Side.SELL))
        offset = Decimal(rng.randint(50, 300)).scaleb(-2)  # rest away from the market
        price = mids[name] - offset if side is Side.BUY else mids[name] + offset
        world.add_order(f"w{index}", rng.choice(ACCOUNTS), name, side,
                        Decimal(rng.randint(1, 20)), price)
        world.client_order_ids.add(f"w{index}")
    world.rebuild_totals()


def make_intents(count: int, mids: dict[str, Decimal], rng: random.Random) -> list[OrderIntent]:
    names = symbols()
    intents = []
    for index in range(count):
        name = rng.choice(names)
        side = rng.choice((Side.BUY, Side.SELL))
        order_type = OrderType.LIMIT if rng.random() < 0.8 else OrderType.MARKET
        limit_price = None
        if order_type is OrderType.LIMIT:
            limit_price = mids[name] + Decimal(rng.randint(-40, 40)).scaleb(-2)
        intents.append(OrderIntent(
            intent_id=f"i{index}", ts=NOW - timedelta(milliseconds=rng.randint(0, 100)),
            account=rng.choice(ACCOUNTS), strategy=rng.choice(STRATEGIES), symbol=name,
            side=side, qty=Decimal(rng.randint(1, 300)), order_type=order_type,
            limit_price=limit_price, client_order_id=f"c{index}",
        ))
    return intents


ENGINE_PATH = "engine: decide() on the plan compiled and screened for the intent's limits"
EVALUATE_PATH = ("evaluate(intent, view, policy), the public function: with a view that "
                 "answers read_intent, through the policy's compiled, screened plans")
FULL_TABLE_PATH = "evaluate_limits(): the full rule table, no plan and no screen"
Judge = Callable[[OrderIntent], Decision]


def engine_judge(world: BenchView, policy: Policy) -> Judge:
    """What the engine does for an intent's decision."""
    plans = PlanCache()

    def judge(order: OrderIntent) -> Decision:
        limits = policy.limits_for(order.account, order.strategy, order.symbol)
        return decide(order, world, limits, policy.hash, plans.plan(limits))[0]

    return judge


def evaluate_judge(world: BenchView, policy: Policy) -> Judge:
    """What a program embedding the gate calls."""
    def judge(order: OrderIntent) -> Decision:
        return evaluate(order, world, policy)

    return judge


def full_table_judge(world: BenchView, policy: Policy) -> Judge:
    """Every rule of the table, the view read one method at a time."""
    def judge(order: OrderIntent) -> Decision:
        limits = policy.limits_for(order.account, order.strategy, order.symbol)
        return evaluate_limits(order, world, limits, policy.hash)

    return judge


def run(intents: list[OrderIntent], judge: Judge, path: str) -> dict[str, Any]:
    for order in intents[: min(2000, len(intents))]:  # warm caches and the policy memo
        judge(order)
    samples = []
    kinds: dict[str, int] = defaultdict(int)
    clock = time.perf_counter_ns
    started = clock()
    for order in intents:
        before = clock()
        decision = judge(order)
        samples.append(clock() - before)
        kinds[decision.decision.value] += 1
    elapsed = clock() - started
    samples.sort()
    return {
        "path": path,
        "intents": len(intents),
        "p50_us": round(samples[len(samples) // 2] / 1000, 2),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 2),
        "mean_us": round(statistics.fmean(samples) / 1000, 2),
        "evaluations_per_s": round(len(intents) / (elapsed / 1e9)),
        "decisions": dict(sorted(kinds.items())),
    }


def call_overhead_ns() -> float:
    """ns per empty Python call right now: a yardstick for how busy the machine was."""
    def nothing() -> None:
        return None

    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(100_000):
            nothing()
        best = min(best, (time.perf_counter_ns() - started) / 100_000)
    return round(best, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 intents instead of 100,000")
    args = parser.parse_args()
    rng = random.Random(20260304)
    policy = Policy.from_document(policy_document(), "bench")
    world, mids = build_world(rng)
    intents = make_intents(10_000 if args.quick else 100_000, mids, rng)
    active = sum(
        1 for value in msgspec_fields(policy.limits_for("ACC1", "trend", "S000"))
        if value not in (None, False)
    )
    plain = run(intents, engine_judge(world, policy), ENGINE_PATH)
    plain_evaluate = run(intents, evaluate_judge(world, policy), EVALUATE_PATH)
    plain_full = run(intents, full_table_judge(world, policy), FULL_TABLE_PATH)
    add_working_orders(world, mids, rng)
    loaded = run(intents, engine_judge(world, policy), ENGINE_PATH)
    loaded_evaluate = run(intents, evaluate_judge(world, policy), EVALUATE_PATH)
    loaded_full = run(intents, full_table_judge(world, policy), FULL_TABLE_PATH)
    for runs in ((plain, plain_evaluate, plain_full), (loaded, loaded_evaluate, loaded_full)):
        if len({json.dumps(one["decisions"]) for one in runs}) != 1:
            raise SystemExit("the paths decided differently: "
                             + "; ".join(f"{one['path']}: {one['decisions']}" for one in runs))
    result = {
        "benchmark": "gate",
        "command": "python -m bench.bench_gate" + (" --quick" if args.quick else ""),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "empty_call_ns": call_overhead_ns(),
        "symbols": N_SYMBOLS,
        "positions": N_POSITIONS,
        "limit_fields_set": active,
        "engine_path": ["no_working_orders", "working_orders_10k"],
        "no_working_orders": plain,
        "working_orders_10k": loaded,
        "ratio_p50_working_vs_none": round(loaded["p50_us"] / plain["p50_us"], 3),
        "evaluate_no_working_orders": plain_evaluate,
        "evaluate_working_orders_10k": loaded_evaluate,
        "ratio_p50_evaluate_working_vs_none": round(
            loaded_evaluate["p50_us"] / plain_evaluate["p50_us"], 3),
        "full_table_no_working_orders": plain_full,
        "full_table_working_orders_10k": loaded_full,
        "targets": {"p50_us": 5, "p99_us": 20, "ratio_p50": 1.5},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # the bench's report is its output


def msgspec_fields(limits: Any) -> list[Any]:
    return [getattr(limits, name) for name in limits.__struct_fields__]


if __name__ == "__main__":
    main()
