"""A bot trading Deribit's testnet through ordergate (ccxt underneath).

    export DERIBIT_CLIENT_ID=...  DERIBIT_CLIENT_SECRET=...
    python examples/deribit_bot.py [--journal PATH]

`execution_mode: paper` selects Deribit's testnet (test.deribit.com); live needs
`execution_mode: live` AND `live_confirmed: true`. Credentials come from environment variables
whose NAMES the config holds. `ORDERGATE_DERIBIT_BASE_URL` overrides the endpoint (the test
suite points it at a local Deribit API, so this example runs offline).

Deribit semantics kept by the adapter: amounts are in the instrument's contract units (USD for
BTC-PERPETUAL, multiples of 10), our client order id travels in Deribit's `label`, and
reduce-only orders are sent with the venue's own `reduce_only` flag. The bot buys 100 USD of
BTC-PERPETUAL, sees an oversized order refused by the gateway, then sells reduce-only to close.
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

ACCOUNT = "DERIBIT-TEST"
INSTRUMENT = "BTC-PERPETUAL"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: deribit-testnet-bot
defaults:
  max_market_data_age: 30s
  allowed_order_types: [market, limit]
  max_order_qty: 1000              # contracts (USD for BTC-PERPETUAL)
  max_position_qty: 2000
  market_collar_pct: 1
instruments:
  BTC-PERPETUAL: {tick_size: 0.5, lot_size: 10}
"""


def broker() -> ordergate.BrokerAdapter:
    config = ordergate.BrokerConfig(
        broker=ordergate.BrokerKind.DERIBIT,
        execution_mode=ordergate.ExecutionMode.PAPER,
        account=ACCOUNT,
        api_key_env="DERIBIT_CLIENT_ID",
        api_secret_env="DERIBIT_CLIENT_SECRET",
        base_url=os.environ.get("ORDERGATE_DERIBIT_BASE_URL") or None,
        currencies=("BTC",),
        timeout_s=5.0,
        client_rate_limit=False,
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
    parser.add_argument("--price", default="50000", help="BTC-PERPETUAL price for the quote")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        adapter = broker()
    except ordergate.BrokerConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    journal = args.journal or Path(tempfile.mkdtemp(prefix="ordergate-deribit-")) / "journal.db"
    price = Decimal(args.price)
    with ordergate.Gateway.open(POLICY, journal=journal, broker=adapter) as gateway:
        if not gateway.is_funded(ACCOUNT):  # a new journal; a restart keeps its cash
            gateway.fund(ACCOUNT, "100000")
        # Quotes come from your market data feed; one quote stands in for it here.
        gateway.on_market({"symbol": INSTRUMENT, "bid": str(price - Decimal("0.5")),
                           "ask": str(price + Decimal("0.5")), "last": str(price)})
        intent = {"account": ACCOUNT, "strategy": "perp-bot", "symbol": INSTRUMENT}
        buy = gateway.submit({**intent, "intent_id": "deribit-buy-1", "side": "buy",
                              "qty": "100"})
        print(f"buy 100 {INSTRUMENT}: {explain(buy)}")
        gateway.tick()  # poll Deribit for the fill
        big = gateway.submit({**intent, "intent_id": "deribit-too-big", "side": "buy",
                              "qty": "5000"})
        print(f"buy 5000 {INSTRUMENT}: {explain(big)}")
        close = gateway.submit({**intent, "intent_id": "deribit-close-1", "side": "sell",
                                "qty": "100", "reduce_only": True})
        print(f"sell 100 reduce-only: {explain(close)}")
        gateway.tick()
        open_positions = [p for p in gateway.status().positions if p.qty != 0]
        print(f"gateway positions: {[(p.symbol, str(p.qty)) for p in open_positions] or 'flat'}")
        try:
            venue = [(held.symbol, str(held.qty)) for held in adapter.positions()
                     if held.qty != 0]
            print(f"deribit positions: {venue or 'flat'}")
        except BrokerError as exc:
            print(f"deribit positions unavailable: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
