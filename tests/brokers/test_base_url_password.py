"""A password in a broker's `base_url` is never logged, journaled or shown: not when the
adapter is ready, not in a venue's error text (ccxt quotes the request URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PASSWORD = "BUPASSLEAK7"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: base-url-password
defaults:
  max_market_data_age: 1h
  max_order_qty: 500
  max_position_qty: 1000
  allowed_order_types: [market, limit]
"""
EVENTS = """\
{"type":"account","ts":"2026-03-02T14:30:00Z","account":"ACC1","cash":"100000"}
{"type":"market","ts":"2026-03-02T14:30:00Z","symbol":"AAPL","bid":"189.99","ask":"190.01","last":"190.00"}
{"type":"intent","ts":"2026-03-02T14:30:01Z","intent_id":"i-1","account":"ACC1","strategy":"demo","symbol":"AAPL","side":"buy","qty":"4"}
"""
BROKER = """\
broker:
  broker: {venue}
  execution_mode: paper
  account: ACC1
  api_key_env: VENUE_KEY
  api_secret_env: VENUE_SECRET
  base_url: "http://bu:{password}@127.0.0.1:9"
  timeout_s: 2
"""


@pytest.mark.parametrize("venue", ["deribit", "alpaca", "tradier"])
def test_a_base_url_password_never_reaches_the_log_or_the_journal(
        venue: str, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "events.jsonl").write_text(EVENTS)
    broker = BROKER.format(venue=venue, password=PASSWORD)
    if venue == "tradier":
        broker += "  broker_account: VA000001\n"
    (tmp_path / "broker.yaml").write_text(broker)
    env = {**os.environ, "VENUE_KEY": "key-id", "VENUE_SECRET": "key-secret",
           "TRADIER_TOKEN": "tradier-token"}
    ran = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "run", "-v", "--policy", "policy.yaml",
         "--journal", "j.db", "--broker", "broker.yaml", "events.jsonl"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    said = ran.stdout + ran.stderr
    assert "broker_adapter_ready" in said, said
    assert "127.0.0.1:9" in said  # the venue's error is still told, its URL masked
    assert PASSWORD not in said
    journal_files = sorted(tmp_path.glob("j.db*"))
    assert journal_files
    for path in journal_files:
        assert PASSWORD.encode() not in path.read_bytes(), path.name
