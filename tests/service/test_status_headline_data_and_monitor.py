"""GET /v1/status's headline never reads "Trading normally" while it is not: a policy in
monitor mode (its limits recorded, not enforced: orders that break them are still sent) and
a gateway without market data (every intent denied, SYS-001) say so in the headline."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.support import OPERATOR, POLICY, TRADER, VIEWER, Served, auth, intent, start


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
    assert "Limits NOT enforced (monitor mode)" in _headline(served.url)  # in any mode


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
