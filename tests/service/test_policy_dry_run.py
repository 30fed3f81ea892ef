"""POST /v1/policy with dry_run: the new policy runs in monitor mode (a copy of it with its own
hash, journaled like any policy) so its decisions are recorded but allowed; activating it for
real then enforces it."""

from __future__ import annotations

import httpx

from ordergate.evidence.replay import verify_journal
from ordergate.journal import RecordKind, open_journal
from ordergate.model.events import Command, CommandAction, PolicyDocument
from ordergate.runtime.loop import decode_input
from service.support import OPERATOR, OTHER_POLICY, TRADER, VIEWER, Served, auth, intent


def _status(client: httpx.Client) -> dict[str, object]:
    status: dict[str, object] = client.get("/v1/status", headers=auth(VIEWER)).json()
    return status


def test_dry_run_allows_what_the_policy_would_deny_and_activation_then_denies_it(
        served: Served, client: httpx.Client) -> None:
    before = _status(client)["policy_hash"]
    dry = client.post("/v1/policy", json={"document": OTHER_POLICY, "dry_run": True},
                      headers=auth(OPERATOR))
    assert dry.status_code == 200, dry.text
    result = dry.json()
    assert result["dry_run"] is True and result["monitor"] is True
    assert result["activated"] is True and "NOT enforced" in result["message"]
    # The monitor copy is a policy version of its own, distinct from the one submitted.
    assert result["policy_hash"] not in (before, result["document_hash"])
    status = _status(client)
    assert status["policy_hash"] == result["policy_hash"] and status["policy_monitor"] is True
    assert status["policy_name"] == "service-test-2"

    # max_order_qty is 50 in the new policy: 60 would be denied, but the dry run allows it.
    watched = client.post("/v1/intents", json=intent("dry-1", qty="60"), headers=auth(TRADER))
    decision = watched.json()["decision"]
    assert decision["decision"] == "ALLOW"
    assert decision["monitor"] is True and decision["would_block"] == "ORD-006"
    assert decision["policy_hash"] == result["policy_hash"]
    assert len(served.broker.submissions()) == 1

    listed = client.get("/v1/decisions", params={"monitor": "true"},
                        headers=auth(VIEWER)).json()["items"]
    assert [item["intent_id"] for item in listed] == ["dry-1"]
    assert listed[0]["decision"]["would_block"] == "ORD-006"

    live = client.post("/v1/policy", json={"document": OTHER_POLICY}, headers=auth(OPERATOR))
    assert live.status_code == 200, live.text
    assert live.json()["dry_run"] is False and live.json()["monitor"] is False
    assert live.json()["policy_hash"] == result["document_hash"]
    status = _status(client)
    assert status["policy_hash"] == result["document_hash"]
    assert status["policy_monitor"] is False

    enforced = client.post("/v1/intents", json=intent("live-1", qty="60", seconds=2),
                           headers=auth(TRADER)).json()["decision"]
    assert enforced["decision"] == "DENY" and enforced["blocking"] == "ORD-006"
    assert "monitor" not in enforced
    assert len(served.broker.submissions()) == 1
    enforced_only = client.get("/v1/decisions", params={"monitor": "false"},
                               headers=auth(VIEWER)).json()["items"]
    assert [item["intent_id"] for item in enforced_only] == ["live-1"]


def test_dry_run_is_journaled_with_its_own_hash_and_the_operator_and_replays_clean(
        served: Served, client: httpx.Client) -> None:
    dry = client.post("/v1/policy", json={"document": OTHER_POLICY, "dry_run": True},
                      headers=auth(OPERATOR)).json()
    client.post("/v1/intents", json=intent("dry-2", qty="60"), headers=auth(TRADER))
    served.stop()
    journal = open_journal(served.journal_url, create=False)
    try:
        inputs = [decode_input(record.payload) for record in journal.read(1)
                  if record.kind is RecordKind.INPUT]
        report = verify_journal(journal)
    finally:
        journal.close()
    documents = {event.policy_hash: event.document for event in inputs
                 if isinstance(event, PolicyDocument)}
    assert documents[dry["policy_hash"]]["monitor"] is True
    activation = [event for event in inputs if isinstance(event, Command)
                  and event.action is CommandAction.ACTIVATE_POLICY
                  and event.policy_hash == dry["policy_hash"]]
    assert len(activation) == 1 and activation[0].operator == "ops-alice"
    assert dry["document_hash"] in activation[0].reason
    assert report.ok, report.message
    assert report.decisions_reproduced == report.decisions >= 1


def test_dry_run_of_an_invalid_policy_changes_nothing(client: httpx.Client) -> None:
    before = _status(client)["policy_hash"]
    broken = OTHER_POLICY.replace("max_order_qty: 50", "max_order_qty: -5")
    response = client.post("/v1/policy", json={"document": broken, "dry_run": True},
                           headers=auth(OPERATOR))
    assert response.status_code == 422 and "max_order_qty" in response.json()["detail"]
    status = _status(client)
    assert status["policy_hash"] == before and status["policy_monitor"] is False
