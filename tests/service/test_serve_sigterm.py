"""`ordergate serve` stopped by SIGTERM (systemd, Kubernetes, `kill`) closes the gateway the way
it closes on Ctrl-C: uvicorn finishes its requests, then the journal is flushed and closed,
pending alerts are delivered and the writer's lock released, and the process exits 0."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from tests.scale.support import start, stop, wait_for
from tests.service.support import POLICY, TRADER, auth

from ordergate.model.events import AccountFunding
from ordergate.model.market import MarketSnapshot
from ordergate.runtime.demo_data import write_events
from ordergate.service.auth import hash_token

_SERVING = re.compile(r"serving on (http://\S+)")


def test_sigterm_closes_the_gateway_and_exits_0(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    feed = tmp_path / "feed.jsonl"
    write_events(feed, [
        AccountFunding(ts=now, account="ACC-1", cash=Decimal("1000000")),
        MarketSnapshot(symbol="AAPL", ts=now, bid=Decimal("99.99"), ask=Decimal("100.01"),
                       last=Decimal("100.00")),
    ])
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: desk-a\n    role: trader\n    accounts: [ACC-1]\n"
                      f"    hash: {hash_token(TRADER)}\n")
    log = tmp_path / "serve.log"
    served = start([sys.executable, "-m", "ordergate.cli.main", "serve", "--policy", str(policy),
                    "--journal", str(tmp_path / "j.db"), "--tokens", str(tokens), "--port", "0",
                    "--feed", str(feed), "--log-level", "info"], log)
    try:
        found = wait_for(lambda: _SERVING.search(log.read_text()), 60, "serve to start")
        with httpx.Client(base_url=found.group(1), timeout=30) as client:
            decided = client.post("/v1/intents", headers=auth(TRADER), json={
                "type": "intent", "intent_id": "before-sigterm",
                "ts": now.isoformat().replace("+00:00", "Z"), "account": "ACC-1",
                "strategy": "momo", "symbol": "AAPL", "side": "buy", "qty": "10"})
            assert decided.status_code == 200, decided.text
    finally:
        code = stop(served)  # SIGTERM
    text = log.read_text()
    assert code == 0, text
    assert "journal.closed" in text, text  # Runtime.close ran: last flush, lock released
