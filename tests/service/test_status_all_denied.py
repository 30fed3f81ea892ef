"""An owner glancing at the status sees at once when nothing can trade: while a firm-wide kill
switch is engaged (an operator's of scope firm, or the policy's own `kill_switch`), GET
/v1/status says `all_orders_denied` and a headline naming the switch and its reason, and
`ordergate status --url` shows a red KILL SWITCH — ALL ORDERS DENIED banner instead of
ACTIVE — RESTRICTED. Decimals shown to people there are in plain notation (an average price
of 190 reads "190", never "1.9E+2")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ordergate.policy.loader import parse_policy
from service.support import (
    OPERATOR,
    POLICY,
    TRADER,
    Served,
    auth,
    intent,
    start,
    status_cli_words,
    status_of,
)

ALL_DENIED = "KILL SWITCH — ALL ORDERS DENIED"



def _post(served: Served, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    response = httpx.post(f"{served.url}{path}", json=body, headers=auth(token), timeout=10.0)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_firm_kill_switch_says_all_orders_are_denied_in_status_and_cli(served: Served) -> None:
    _post(served, "/v1/kill", {"scope": "account", "name": "ACC-2", "reason": "desk review"},
          OPERATOR)
    scoped = status_of(served)
    assert scoped["all_orders_denied"] is False  # one account's kill leaves the rest trading
    assert scoped["headline"].startswith("Trading restricted")

    _post(served, "/v1/kill", {"scope": "firm", "reason": "fat finger incident"}, OPERATOR)
    denied = _post(served, "/v1/intents", intent("after-kill"), TRADER)["decision"]
    assert denied["decision"] == "DENY" and denied["blocking"] == "KIL-002"

    status = status_of(served)
    assert status["mode"] == "ACTIVE"  # the mode's meaning is unchanged
    assert status["all_orders_denied"] is True
    assert status["headline"] == (
        "No trading: every order is denied. Kill switch engaged for the whole firm by "
        "ops-alice (fat finger incident); an operator must release it. Also 1 other "
        "restriction (listed below).")
    words = status_cli_words(served)
    assert ALL_DENIED in words and "RESTRICTED" not in words
    assert "No trading: every order is denied" in words and "fat finger incident" in words

    _post(served, "/v1/mode/halt", {"reason": "investigating"}, OPERATOR)
    halted = status_of(served)
    assert halted["all_orders_denied"] is True
    assert "The mode is HALTED as well." in halted["headline"]
    assert f"{ALL_DENIED} · HALTED" in status_cli_words(served)

    _post(served, "/v1/unkill", {"scope": "firm", "reason": "explained"}, OPERATOR)
    released = status_of(served)
    assert released["all_orders_denied"] is False
    assert released["headline"] == ("Trading is HALTED: only cancels and an operator-ordered "
                                    "flatten are allowed. Also 1 restriction (listed below).")


def test_policy_kill_switch_says_all_orders_are_denied(tmp_path: Path) -> None:
    served = start(tmp_path, policy=parse_policy(POLICY + "kill_switch: true\n"))
    try:
        status = status_of(served)
        assert status["all_orders_denied"] is True
        assert status["headline"] == (
            "No trading: every order is denied. The policy service-test sets kill_switch; an "
            "operator must activate a policy without it.")
        words = status_cli_words(served)
        assert ALL_DENIED in words and "ACTIVE — RESTRICTED" not in words
    finally:
        served.stop()
