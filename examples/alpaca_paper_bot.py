"""A bot trading Alpaca's paper account through ordergate.

    export ALPACA_API_KEY_ID=...  ALPACA_API_SECRET_KEY=...
    python examples/alpaca_paper_bot.py [--journal PATH]

The broker is configured the same way as for `ordergate serve --broker broker.yaml`:
`execution_mode: paper` (live needs `execution_mode: live` AND `live_confirmed: true`), and the
credentials come from environment variables whose NAMES the config holds; their values print
as "***". `ORDERGATE_ALPACA_BASE_URL` overrides the endpoint (the test suite points it at a
local Alpaca API, so this example runs offline).

The bot buys 10 AAPL at market (allowed, sent to Alpaca, filled), tries a fat-fingered 5000
(denied by the gateway, never sent), then halts with cancel-all: the emergency stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import structlog

import ordergate
from ordergate.brokers.base import BrokerError

ACCOUNT = "ALPACA-PAPER"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: alpaca-paper-bot
defaults:
  max_market_data_age: 30s
  allowed_order_types: [market, limit]     # checked against what Alpaca offers at start-up
  max_order_qty: 1000
  max_order_value: 50000
  max_position_qty: 500
  market_collar_pct: 2
  rate_strategy: {max: 10, window: 1s}
"""


def broker() -> ordergate.BrokerAdapter:
    config = ordergate.BrokerConfig(
        broker=ordergate.BrokerKind.ALPACA,
        execution_mode=ordergate.ExecutionMode.PAPER,
        account=ACCOUNT,
        api_key_env="ALPACA_API_KEY_ID",
        api_secret_env="ALPACA_API_SECRET_KEY",
        base_url=os.environ.get("ORDERGATE_ALPACA_BASE_URL") or None,
        timeout_s=5.0,
    )
    policy = ordergate.parse_policy(POLICY)
    allowed = policy.limits_for(ACCOUNT, "*", "*").allowed_order_types or ()
    return ordergate.make_adapter(config, allowed_order_types=allowed)


def explain(decision: ordergate.Decision) -> str:
    """ALLOW, or DENY/MODIFY with the blocking rule's code and meaning."""
    if not decision.blocking:
        return decision.decision.value
    return (f"{decision.decision.value} {decision.blocking} "
            f"({ordergate.reason(decision.blocking).meaning})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", type=Path, default=None)
    parser.add_argument("--price", default="190.00", help="AAPL price for the demo quote")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        adapter = broker()
    except ordergate.BrokerConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    journal = args.journal or Path(tempfile.mkdtemp(prefix="ordergate-alpaca-")) / "journal.db"
    price = Decimal(args.price)
    with ordergate.Gateway.open(POLICY, journal=journal, broker=adapter) as gateway:
        if not gateway.is_funded(ACCOUNT):  # a new journal; a restart keeps its cash
            gateway.fund(ACCOUNT, "100000")
        # Quotes come from your market data feed; one quote stands in for it here.
        gateway.on_market({"symbol": "AAPL", "bid": str(price - Decimal("0.01")),
                           "ask": str(price + Decimal("0.01")), "last": str(price)})
        buy = gateway.submit({"intent_id": "alpaca-buy-1", "account": ACCOUNT,
                              "strategy": "paper-bot", "symbol": "AAPL", "side": "buy",
                              "qty": "10"})
        print(f"buy 10 AAPL: {explain(buy)}")
        gateway.tick()  # poll Alpaca for the fill
        fat = gateway.submit({"intent_id": "alpaca-fat-finger", "account": ACCOUNT,
                              "strategy": "paper-bot", "symbol": "AAPL", "side": "buy",
                              "qty": "5000"})
        print(f"buy 5000 AAPL: {explain(fat)}")
        for position in gateway.status().positions:
            print(f"position {position.symbol}: {position.qty} @ {position.avg_price}")
        try:
            for held in adapter.positions():
                print(f"alpaca says: {held.symbol} {held.qty}")
        except BrokerError as exc:
            print(f"alpaca positions unavailable: {exc}", file=sys.stderr)
        stop = gateway.halt("paper-bot-operator", "end of session", cancel_all=True)
        print(f"mode after halt: {stop.mode.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
