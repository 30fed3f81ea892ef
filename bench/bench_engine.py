"""Engine cost per event: `Engine.handle(event)` on a realistic stream, and replay speed.

    python -m bench.bench_engine [--quick]

The policy is the gate bench's without the firm-wide cap (every other rule family on, 500
symbols with instruments and overrides). Two funded accounts, quotes for 500 symbols, then a
stream where 70% of events are intents, 25% quotes (round robin) and the rest clock ticks,
100 µs of event time apart; every dispatch is answered like a broker would (ack, then a fill
for most orders, a cancel for some, the rest left working), so positions, working orders and
rate windows grow as they do in production.

Reported: per-intent `handle` time (p50/p99, µs) including the decision record, over the
intents of an (account, strategy, symbol) already seen (the first one of each key also
resolves, compiles and journals its limits: reported apart as a mean), events/s
through `handle` alone, and replay events/s (a fresh engine handling the same inputs and
encoding every output, which is what verifying a journal does). 100,000 intents (10,000 with
--quick). Results go to bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bench.bench_gate import (
    ACCOUNTS,
    NOW,
    STRATEGIES,
    call_overhead_ns,
    policy_document,
    symbols,
)
from ordergate.engine import Engine
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.model.decision import Decision
from ordergate.model.events import (
    AccountFunding,
    ClockTick,
    Command,
    CommandAction,
    Dispatch,
    EngineUpgrade,
    Fill,
    InputEvent,
    OrderAck,
    OrderCanceled,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent, OrderType, Side
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import Policy

RESULTS = Path(__file__).parent / "results" / "engine.json"
STEP = timedelta(microseconds=100)
CENT = Decimal("0.01")
_encoder = msgspec.json.Encoder(order="deterministic")


def engine_policy_document() -> dict[str, Any]:
    """The gate bench's policy without the firm-wide cap: a lone engine has no shared store,
    so that cap would fail closed and refuse every intent."""
    document = policy_document()
    del document["defaults"]["max_firm_gross_exposure"]
    return document


class Feed:
    """A seeded stream of events, with a broker that answers the engine's dispatches."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = symbols()
        self.mids = {
            name: Decimal(self.rng.randint(1000, 50000)).scaleb(-2) for name in self.names
        }
        self.ts = NOW - timedelta(seconds=1)
        self.intents = 0
        self.fills = 0
        self.quotes = 0

    def tick(self) -> None:
        self.ts += STEP

    def quote(self, name: str) -> MarketSnapshot:
        mid = self.mids[name]
        return MarketSnapshot(symbol=name, ts=self.ts, bid=mid - CENT, ask=mid + CENT, last=mid,
                              volume=Decimal(self.rng.randint(200_000, 5_000_000)))

    def start(self, policy: Policy) -> list[InputEvent]:
        events: list[InputEvent] = [
            # today's engine behaviour, as a new journal starts with
            EngineUpgrade(ts=self.ts, behaviour=ENGINE_BEHAVIOUR),
            PolicyDocument(ts=self.ts, policy_hash=policy.hash, document=policy.document),
            Command(ts=self.ts, action=CommandAction.ACTIVATE_POLICY, policy_hash=policy.hash,
                    operator="bench", reason="bench"),
        ]
        events += [AccountFunding(ts=self.ts, account=name, cash=Decimal("10000000"))
                   for name in ACCOUNTS]
        for name in self.names:
            self.tick()
            events.append(self.quote(name))
        return events

    def next_event(self) -> InputEvent:
        self.tick()
        roll = self.rng.random()
        if roll < 0.25:  # round robin, so every symbol stays fresh
            self.quotes += 1
            name = self.names[self.quotes % len(self.names)]
            if self.rng.random() < 0.5:
                self.mids[name] += CENT if self.rng.random() < 0.5 else -CENT
            return self.quote(name)
        if roll < 0.251:
            return ClockTick(ts=self.ts)
        return self.intent()

    def intent(self) -> OrderIntent:
        rng = self.rng
        name = rng.choice(self.names)
        self.intents += 1
        index = self.intents
        limit_price = None
        order_type = OrderType.LIMIT if rng.random() < 0.8 else OrderType.MARKET
        if order_type is OrderType.LIMIT:
            limit_price = self.mids[name] + Decimal(rng.randint(-40, 40)).scaleb(-2)
        return OrderIntent(
            intent_id=f"i{index}", ts=self.ts - timedelta(microseconds=rng.randint(0, 50_000)),
            account=rng.choice(ACCOUNTS), strategy=rng.choice(STRATEGIES), symbol=name,
            side=rng.choice((Side.BUY, Side.SELL)), qty=Decimal(rng.randint(1, 300)),
            order_type=order_type, limit_price=limit_price,
        )

    def answer(self, order: Dispatch) -> list[InputEvent]:
        """Ack; then fill 60%, cancel 25%, leave 15% working."""
        self.tick()
        answers: list[InputEvent] = [OrderAck(ts=self.ts, client_order_id=order.client_order_id,
                                              broker_order_id=f"b-{order.client_order_id}")]
        roll = self.rng.random()
        if roll < 0.6:
            self.fills += 1
            price = order.limit_price or self.mids[order.symbol]
            answers.append(Fill(ts=self.ts, client_order_id=order.client_order_id,
                                fill_id=f"f{self.fills}", qty=order.qty, price=price))
        elif roll < 0.85:
            answers.append(OrderCanceled(ts=self.ts, client_order_id=order.client_order_id))
        return answers


def build_stream(policy: Policy, intents: int, seed: int) -> list[InputEvent]:
    """The input events of a run, answers included, as a journal would hold them."""
    feed = Feed(seed)
    engine = Engine()
    stream: list[InputEvent] = []
    pending = feed.start(policy)
    while feed.intents < intents or pending:
        event = pending.pop(0) if pending else feed.next_event()
        stream.append(event)
        for output in engine.handle(event):
            if isinstance(output, Dispatch):
                pending.extend(feed.answer(output))
    return stream


def measure_handle(stream: list[InputEvent]) -> dict[str, Any]:
    engine = Engine()
    handle = engine.handle
    clock = time.perf_counter_ns
    intent_ns: list[int] = []
    first_ns: list[int] = []
    seen: set[tuple[str, str, str]] = set()
    decisions: dict[str, int] = {}
    started = clock()
    for event in stream:
        before = clock()
        outputs = handle(event)
        spent = clock() - before
        if isinstance(event, OrderIntent):
            key = (event.account, event.strategy, event.symbol)
            if key in seen:
                intent_ns.append(spent)
            else:  # the first intent of a key resolves, compiles and journals its limits
                seen.add(key)
                first_ns.append(spent)
            for output in outputs:
                if isinstance(output, Decision):
                    kind = output.decision.value
                    decisions[kind] = decisions.get(kind, 0) + 1
    elapsed = clock() - started
    intent_ns.sort()
    return {
        "events": len(stream),
        "intents": len(intent_ns) + len(first_ns),
        "first_intent_of_a_key_mean_us": round(statistics.fmean(first_ns) / 1000, 2),
        "later_intents": len(intent_ns),
        "intent_p50_us": round(intent_ns[len(intent_ns) // 2] / 1000, 2),
        "intent_p99_us": round(intent_ns[int(len(intent_ns) * 0.99)] / 1000, 2),
        "intent_mean_us": round(statistics.fmean(intent_ns) / 1000, 2),
        "events_per_s": round(len(stream) / (elapsed / 1e9)),
        "decisions": dict(sorted(decisions.items())),
        "open_orders_at_end": len(engine.state.open_orders),
    }


def measure_replay(stream: list[InputEvent]) -> dict[str, Any]:
    """A fresh engine re-handles every input and encodes every output (replay verify)."""
    payloads = [_encoder.encode(event) for event in stream]
    decoder = msgspec.json.Decoder(InputEvent)
    engine = Engine()
    encode = _encoder.encode
    outputs = 0
    started = time.perf_counter_ns()
    for payload in payloads:
        for output in engine.handle(decoder.decode(payload)):
            encode(output)
            outputs += 1
    elapsed = time.perf_counter_ns() - started
    return {
        "inputs": len(payloads),
        "outputs": outputs,
        "inputs_per_s": round(len(payloads) / (elapsed / 1e9)),
        "records_per_s": round((len(payloads) + outputs) / (elapsed / 1e9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 intents instead of 100,000")
    args = parser.parse_args()
    policy = Policy.from_document(engine_policy_document(), "bench")
    count = 10_000 if args.quick else 100_000
    stream = build_stream(policy, count, seed=20260305)
    handle = measure_handle(stream)
    replay = measure_replay(stream)
    result = {
        "benchmark": "engine",
        "command": "python -m bench.bench_engine" + (" --quick" if args.quick else ""),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "empty_call_ns": call_overhead_ns(),
        "handle": handle,
        "replay": replay,
        "targets": {"replay_inputs_per_s": 100_000},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # the bench's report is its output


if __name__ == "__main__":
    main()
