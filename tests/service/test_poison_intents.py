"""POST /v1/intents with a quantity no engine arithmetic can hold (1e400, 35 digits) is a 422
naming `qty`, and is never journaled; one inside the bound whose figures still overflow (10**34
lots of a tiny lot size) is answered DENY SYS-008. Either way the gateway keeps deciding, and
restarts on its journal."""

from __future__ import annotations

from pathlib import Path

import httpx

from ordergate.journal import RecordKind, open_journal
from ordergate.policy.loader import parse_policy
from service.support import POLICY, TRADER, auth, intent, start


def _post(client: httpx.Client, body: object) -> httpx.Response:
    return client.post("/v1/intents", json=body, headers=auth(TRADER))


def _journaled_intent_ids(journal_url: str) -> list[str]:
    handle = open_journal(journal_url, create=False)
    try:
        return [record.payload.decode() for record in handle.read()
                if record.kind is RecordKind.INPUT and b'"type":"intent"' in record.payload]
    finally:
        handle.close()


def test_poison_quantities_are_422_naming_qty_and_never_journaled(tmp_path: Path) -> None:
    served = start(tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            for qty in ("1e400", "9" * 35):
                response = _post(client, {**intent("poison"), "qty": qty})
                assert response.status_code == 422, response.text
                detail = response.json()["detail"]
                assert "qty: expected a decimal below 1E+15 in magnitude" in detail
            batch = _post(client, {"intents": [intent("ok-0"), {**intent("p2"), "qty": "1e400"}]})
            assert batch.status_code == 422 and "$.intents[1]" in batch.json()["detail"]
            assert _post(client, intent("ok-1")).json()["decision"]["decision"] == "ALLOW"
    finally:
        served.stop()
    journaled = _journaled_intent_ids(served.journal_url)
    assert len(journaled) == 1 and '"intent_id":"ok-1"' in journaled[0]


def test_too_many_lots_is_denied_sys_008_and_the_gateway_restarts(tmp_path: Path) -> None:
    policy = parse_policy(POLICY + "instruments:\n  AAPL: {lot_size: 1E-20}\n")
    served = start(tmp_path, policy=policy)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            denied = _post(client, intent("lots", qty="1E+14"))
            assert denied.status_code == 200, denied.text
            decision = denied.json()["decision"]
            assert (decision["decision"], decision["blocking"]) == ("DENY", "SYS-008")
            assert _post(client, intent("next")).json()["decision"]["decision"] == "ALLOW"
    finally:
        served.stop()

    again = start(tmp_path, policy=policy)  # replays the journal, the denied intent with it
    try:
        with httpx.Client(base_url=again.url, timeout=10.0) as client:
            retry = _post(client, intent("lots", qty="1E+14")).json()
            assert retry["replayed"] is True and retry["decision"]["blocking"] == "SYS-008"
            assert _post(client, intent("after", seconds=2)).json()["decision"]["decision"] == (
                "ALLOW")
    finally:
        again.stop()
