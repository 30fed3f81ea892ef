"""GET /v1/status's headline never reads "Trading normally" while it is not: a policy in
monitor mode (its limits recorded, not enforced: orders that break them are still sent) and
a gateway without market data (every intent denied, SYS-001) say so in the headline."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from ordergate.policy.loader import parse_policy
from service.support import (
    FEEDER,
    OPERATOR,
    POLICY,
    T0,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    quote,
    stamp,
    start,
)


def _headline(url: str) -> str:
    status = httpx.get(f"{url}/v1/status", headers=auth(VIEWER), timeout=10.0)
    assert status.status_code == 200, status.text
    headline: str = status.json()["headline"]
    return headline


def test_monitor_mode_headline_says_limits_are_not_enforced(served: Served) -> None:
    activated = httpx.post(f"{served.url}/v1/policy", headers=auth(OPERATOR), timeout=10.0,
                           json={"document": POLICY + "monitor: true\n",
                                 "reason": "watch the new limits"})
    assert activated.status_code == 200, activated.text
    headline = _headline(served.url)
    assert "Trading normally" not in headline
    assert headline.startswith("Limits NOT enforced (monitor mode)")
    assert "orders that break the policy's limits are still sent" in headline

    halted = httpx.post(f"{served.url}/v1/mode/halt", headers=auth(OPERATOR), timeout=10.0,
                        json={"reason": "desk review"})
    assert halted.status_code == 200, halted.text
    # the halt is enforced in monitor mode too: the limits apply once trading resumes
    headline = _headline(served.url)
    assert headline.startswith("Trading is HALTED")
    assert "Limits NOT enforced (monitor mode): orders that break" not in headline
    assert "Once trading resumes the policy's limits are NOT enforced (monitor mode)" in headline


def test_headline_without_market_data_says_orders_are_denied_until_it_arrives(
        tmp_path: Path) -> None:
    served = start(tmp_path, fund=False)  # a fresh journal, no feed
    try:
        denied = httpx.post(f"{served.url}/v1/intents", json=intent("no-data"),
                            headers=auth(TRADER), timeout=10.0)
        assert denied.json()["decision"]["blocking"] == "SYS-001", denied.text
        health = httpx.get(f"{served.url}/v1/health", timeout=10.0).json()
        assert health["checks"]["data"]["detail"] == "no market data received yet"
        headline = _headline(served.url)
        assert "Trading normally" not in headline
        assert headline == ("Orders are denied until market data arrives (no market data "
                            "received yet).")
    finally:
        served.stop()


def test_headline_with_market_data_reads_normally(served: Served) -> None:
    assert _headline(served.url) == "Trading normally: no active reason."


def test_one_stale_symbol_is_named_and_the_others_still_trade(tmp_path: Path) -> None:
    # MSFT's quote (t=0) is older than a 5 s limit at t=61; AAPL's is fresh: AAPL trades.
    policy = parse_policy(POLICY.replace("max_market_data_age: 1d", "max_market_data_age: 5s"))
    served = start(tmp_path, policy=policy,
                   wall_clock=lambda: T0 + timedelta(seconds=61))
    try:
        posted = httpx.post(f"{served.url}/v1/market", json=quote("AAPL", "100.00", 61),
                            headers=auth(FEEDER), timeout=10.0)
        assert posted.status_code in (200, 202), posted.text
        allowed = httpx.post(f"{served.url}/v1/intents",
                             json={**intent("fresh"), "ts": stamp(61)},
                             headers=auth(TRADER), timeout=10.0)
        assert allowed.json()["decision"]["decision"] == "ALLOW", allowed.text
        headline = _headline(served.url)
        assert "Orders are denied until market data arrives" not in headline
        assert headline.startswith("Orders for MSFT are denied until fresh market data arrives "
                                   "for them (stale market data (older than 0:00:05): MSFT)")
        assert headline.endswith("other symbols trade.")
    finally:
        served.stop()
