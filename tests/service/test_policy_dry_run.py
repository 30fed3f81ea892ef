"""POST /v1/policy with dry_run never loosens what is enforced: the new policy becomes the
shadow policy (journaled with the operator), every intent is still decided by the enforced
policy and also judged under the shadow, whose would-be decision is shown beside the real one;
activating it for real then enforces it and ends the dry run."""

from __future__ import annotations

from pathlib import Path

import httpx

from ordergate.evidence.replay import verify_journal
from ordergate.journal import RecordKind, open_journal
from ordergate.model.events import Command, CommandAction, PolicyDocument, ShadowDecision
from ordergate.runtime.loop import decode_input, decode_output
from service.support import (
    OPERATOR,
    OTHER_POLICY,
    TRADER,
    VIEWER,
    Served,
    auth,
    intent,
    start,
)


def _status(client: httpx.Client) -> dict[str, object]:
    status: dict[str, object] = client.get("/v1/status", headers=auth(VIEWER)).json()
    return status


def _dry_run(client: httpx.Client) -> dict[str, object]:
    response = client.post("/v1/policy", json={"document": OTHER_POLICY, "reason": "try it",
                                                   "dry_run": True},
                           headers=auth(OPERATOR))
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_a_dry_run_keeps_the_enforced_policy_deciding_and_shows_the_shadow_beside_it(
        served: Served, client: httpx.Client) -> None:
    enforced = _status(client)["policy_hash"]
    result = _dry_run(client)
    assert result["dry_run"] is True and result["activated"] is False
    assert result["shadow_policy_hash"] == result["policy_hash"] == result["document_hash"]
    assert result["enforced_policy_hash"] == enforced
    assert "unchanged" in str(result["message"])
    status = _status(client)
    assert status["policy_hash"] == enforced and status["policy_name"] == "service-test"
    assert status["shadow_policy_hash"] == result["policy_hash"]
    assert status["shadow_policy_name"] == "service-test-2"
    assert status["policy_monitor"] is False

    # max_order_qty is 1000 enforced, 50 in the dry-run policy: 60 is allowed and sent.
    answer = client.post("/v1/intents", json=intent("dry-1", qty="60"), headers=auth(TRADER))
    decision = answer.json()["decision"]
    assert decision["decision"] == "ALLOW" and decision["policy_hash"] == enforced
    assert "monitor" not in decision
    assert len(served.sent()) == 1
    client.post("/v1/intents", json=intent("dry-2", qty="10", seconds=2), headers=auth(TRADER))

    view = client.get("/v1/decisions/dry-1", headers=auth(VIEWER)).json()
    assert view["decision"]["decision"] == "ALLOW"
    assert view["shadow"]["decision"] == "DENY" and view["shadow"]["blocking"] == "ORD-006"
    assert view["shadow"]["policy_hash"] == result["policy_hash"]
    assert view["shadow_differs"] is True
    agreeing = client.get("/v1/decisions/dry-2", headers=auth(VIEWER)).json()
    assert agreeing["shadow"]["decision"] == "ALLOW" and agreeing["shadow_differs"] is False

    differs = client.get("/v1/decisions", params={"shadow_differs": "true"},
                         headers=auth(VIEWER)).json()["items"]
    assert [item["intent_id"] for item in differs] == ["dry-1"]
    agree = client.get("/v1/decisions", params={"shadow_differs": "false"},
                       headers=auth(VIEWER)).json()["items"]
    assert [item["intent_id"] for item in agree] == ["dry-2"]

    live = client.post("/v1/policy", json={"document": OTHER_POLICY, "reason": "enforce it"},
                       headers=auth(OPERATOR))
    assert live.status_code == 200, live.text
    assert live.json()["activated"] is True and live.json()["dry_run"] is False
    assert live.json()["shadow_policy_hash"] == ""
    status = _status(client)
    assert status["policy_hash"] == result["policy_hash"] and status["shadow_policy_hash"] == ""

    denied = client.post("/v1/intents", json=intent("live-1", qty="60", seconds=3),
                         headers=auth(TRADER)).json()["decision"]
    assert denied["decision"] == "DENY" and denied["blocking"] == "ORD-006"
    assert len(served.sent()) == 2
    after = client.get("/v1/decisions/live-1", headers=auth(VIEWER)).json()
    assert after["shadow"] is None and after["shadow_differs"] is False


def test_a_dry_run_is_journaled_with_the_operator_survives_a_restart_and_replays_clean(
        tmp_path: Path) -> None:
    served = start(tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            dry = _dry_run(client)
            client.post("/v1/intents", json=intent("dry-3", qty="60"), headers=auth(TRADER))
    finally:
        served.stop()

    journal = open_journal(served.journal_url, create=False)
    try:
        records = list(journal.read(1))
        report = verify_journal(journal)
    finally:
        journal.close()
    inputs = [decode_input(record.payload) for record in records
              if record.kind is RecordKind.INPUT]
    outputs = [decode_output(record.payload) for record in records
               if record.kind is RecordKind.OUTPUT]
    assert any(isinstance(event, PolicyDocument) and event.policy_hash == dry["policy_hash"]
               for event in inputs)
    commands = [event for event in inputs if isinstance(event, Command)
                and event.policy_hash == dry["policy_hash"]]
    assert [(c.action, c.operator) for c in commands] == [
        (CommandAction.SHADOW_POLICY, "ops-alice")]
    shadows = [output for output in outputs if isinstance(output, ShadowDecision)]
    assert [(s.intent_id, s.blocking) for s in shadows] == [("dry-3", "ORD-006")]
    assert report.ok, report.message
    assert report.decisions_reproduced == report.decisions >= 1

    again = start(tmp_path)
    try:
        with httpx.Client(base_url=again.url, timeout=10.0) as client:
            assert _status(client)["shadow_policy_hash"] == dry["policy_hash"]
            view = client.get("/v1/decisions/dry-3", headers=auth(VIEWER)).json()
            assert view["decision"]["decision"] == "ALLOW"
            assert view["shadow"]["blocking"] == "ORD-006"
    finally:
        again.stop()


def test_a_dry_run_of_an_invalid_policy_changes_nothing(client: httpx.Client) -> None:
    before = _status(client)
    broken = OTHER_POLICY.replace("max_order_qty: 50", "max_order_qty: -5")
    response = client.post("/v1/policy", json={"document": broken, "reason": "try it",
                                                   "dry_run": True},
                           headers=auth(OPERATOR))
    assert response.status_code == 422 and "max_order_qty" in response.json()["detail"]
    status = _status(client)
    assert status["policy_hash"] == before["policy_hash"]
    assert status["shadow_policy_hash"] == "" and status["policy_monitor"] is False


def test_an_operator_ends_a_dry_run_and_the_enforced_policy_is_untouched(
        served: Served, client: httpx.Client) -> None:
    enforced = _status(client)["policy_hash"]
    shadow = _dry_run(client)["policy_hash"]
    assert client.post("/v1/intents", json=intent("during", qty="60"),
                       headers=auth(TRADER)).status_code == 200
    body = {"reason": "dry run looked good"}
    for token in (TRADER, VIEWER):
        refused = client.post("/v1/policy/dry-run/end", json=body, headers=auth(token))
        assert refused.status_code == 403, refused.text
    assert _status(client)["shadow_policy_hash"] == shadow

    ended = client.post("/v1/policy/dry-run/end", json=body, headers=auth(OPERATOR))
    assert ended.status_code == 200, ended.text
    assert "cleared" in ended.json()["message"] and ended.json()["operator"] == "ops-alice"
    status = _status(client)
    assert status["shadow_policy_hash"] in ("", None)
    assert status["policy_hash"] == enforced
    after = client.post("/v1/intents", json=intent("after", qty="60"), headers=auth(TRADER))
    assert after.json()["decision"]["decision"] == "ALLOW"
    again = client.post("/v1/policy/dry-run/end", json=body, headers=auth(OPERATOR))
    assert again.status_code == 200 and again.json()["message"] == ""

    served.stop()
    journal = open_journal(served.journal_url, create=False)
    try:
        records = list(journal.read(1))
    finally:
        journal.close()
    inputs = [decode_input(r.payload) for r in records if r.kind is RecordKind.INPUT]
    outputs = [decode_output(r.payload) for r in records if r.kind is RecordKind.OUTPUT]
    shadowed = {o.intent_id for o in outputs if isinstance(o, ShadowDecision)}
    assert "during" in shadowed and "after" not in shadowed
    ends = [(e.policy_hash, e.operator, e.reason) for e in inputs
            if isinstance(e, Command) and e.action is CommandAction.SHADOW_POLICY
            and not e.policy_hash]
    assert ends == [("", "ops-alice", "dry run looked good")] * 2


def test_a_policy_not_yet_in_force_is_not_activated_and_the_answer_says_when(
        served: Served, client: httpx.Client) -> None:
    enforced = _status(client)["policy_hash"]
    name = "  name: service-test-2\n"
    future = OTHER_POLICY.replace(name, name + "  effective_from: 2027-01-04T00:00:00Z\n")
    assert "effective_from" in future
    response = client.post("/v1/policy", json={"document": future, "reason": "next week"},
                           headers=auth(OPERATOR))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["activated"] is False
    assert "takes effect at 2027-01-04T00:00:00Z" in result["message"]
    assert _status(client)["policy_hash"] == enforced
