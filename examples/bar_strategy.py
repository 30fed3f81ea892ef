"""A bar-driven strategy behind ordergate, on the simulated broker, over bundled 1-minute bars.

    python examples/bar_strategy.py [--journal PATH] [--bars CSV]

Every bar becomes a market snapshot for the gateway; a moving-average crossover decides a
target position and sends the difference as an order intent. The gateway answers ALLOW, DENY
or MODIFY with reason codes; allowed orders go to the SimBroker and fill. At the end the
script prints what was decided and why, the position and PnL, and where the journal is
(`ordergate journal verify --journal PATH` proves it unaltered).

Only the public API is used: `import ordergate`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
from collections import Counter, deque
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import structlog

import ordergate

HERE = Path(__file__).resolve().parent
BARS = HERE / "data" / "aapl_2026-03-02_1m.csv"
ACCOUNT = "PAPER-1"
SYMBOL = "AAPL"
FAST, SLOW = 10, 30
TARGET = Decimal(400)
TICK = Decimal("0.01")

# The policy for this example. A real deployment keeps it in a file under review
# (see examples/policy.yaml); it is inline here so the example is self-contained.
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: bar-strategy-example
defaults:
  max_market_data_age: 2m          # one-minute bars: a quote is at most one bar old
  max_order_qty: 1000
  max_order_value: 200000
  allowed_order_types: [market, limit]
  max_position_qty: 300            # the strategy wants 400: the gateway trims it to 300
  exposure_modify: true
  max_daily_loss: 5000
  max_drawdown_pct: 5
  rate_strategy: {max: 5, window: 1m}
"""


def read_bars(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot(bar: dict[str, str], at: datetime) -> ordergate.MarketSnapshot:
    close = Decimal(bar["close"])
    return ordergate.MarketSnapshot(symbol=SYMBOL, ts=at, bid=close - TICK, ask=close + TICK,
                                    last=close, volume=Decimal(bar["volume"]))


def position_of(gateway: ordergate.Gateway) -> Decimal:
    for position in gateway.status().positions:
        if position.symbol == SYMBOL:
            return position.qty
    return Decimal(0)


def run(journal: Path, bars_path: Path) -> Counter[str]:
    bars = read_bars(bars_path)
    outcomes: Counter[str] = Counter()
    closes: deque[Decimal] = deque(maxlen=SLOW)
    with ordergate.Gateway.open(POLICY, journal=journal, clock="event") as gateway:
        first = datetime.fromisoformat(bars[0]["ts"])
        if not gateway.is_funded(ACCOUNT):  # a new journal; a restart keeps its cash
            gateway.fund(ACCOUNT, "100000", ts=first)
        for number, bar in enumerate(bars):
            at = datetime.fromisoformat(bar["ts"]) + timedelta(seconds=59)  # the bar's close
            gateway.on_market(snapshot(bar, at))
            closes.append(Decimal(bar["close"]))
            if len(closes) < SLOW:
                continue
            fast = sum(list(closes)[-FAST:]) / FAST
            slow = sum(closes) / SLOW
            target = TARGET if fast > slow else Decimal(0)
            held = position_of(gateway)
            if target == held or (target > 0 and held > 0):
                continue  # already in (perhaps trimmed by the gateway) or already out
            delta = target - held
            decision = gateway.submit(ordergate.OrderIntent(
                intent_id=f"bar-{number:04d}", ts=at, account=ACCOUNT, strategy="sma-cross",
                symbol=SYMBOL, side=ordergate.Side.BUY if delta > 0 else ordergate.Side.SELL,
                qty=abs(delta), tags={"fast": str(fast.quantize(TICK)),
                                      "slow": str(slow.quantize(TICK))},
            ))
            outcomes[f"{decision.decision.value} {decision.blocking}".strip()] += 1
            if decision.decision is ordergate.DecisionKind.MODIFY and decision.modified_qty:
                # The gateway trimmed the order to fit max_position_qty.
                outcomes["trimmed shares"] += int(abs(delta) - decision.modified_qty)

        # A fat-fingered order: 50x the usual size. The gateway refuses it.
        fat = gateway.submit({"intent_id": "fat-finger", "ts": at, "account": ACCOUNT,
                              "strategy": "sma-cross", "symbol": SYMBOL, "side": "buy",
                              "qty": "20000"})
        outcomes[f"{fat.decision.value} {fat.blocking}"] += 1

        status = gateway.status()
        account = status.accounts[0]
        print(f"bars: {len(bars)}  decisions: {dict(sorted(outcomes.items()))}")
        for code in sorted({key.split()[-1] for key in outcomes if "-" in key}):
            print(f"  {code}: {ordergate.reason(code).meaning}")
        print(f"position {SYMBOL}: {position_of(gateway)}  mode: {status.mode.value}")
        print(f"equity: {account.equity:.2f}  realized PnL: {account.realized_pnl:.2f}  "
              f"fees: {account.fees:.2f}")
        print(f"journal: {journal}  (verify: ordergate journal verify --journal {journal})")
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", type=Path, default=None,
                        help="journal file (default: a new temporary directory)")
    parser.add_argument("--bars", type=Path, default=BARS, help="CSV of 1-minute bars")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    journal = args.journal or Path(tempfile.mkdtemp(prefix="ordergate-bars-")) / "journal.db"
    run(journal, args.bars)


if __name__ == "__main__":
    main()
