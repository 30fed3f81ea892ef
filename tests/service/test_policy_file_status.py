"""GET /v1/status, and `ordergate status --url` from it, say whether the `--policy` file the
gateway was started with is the enforced policy: a restart with another file on a journal that
enforces a policy keeps the journal's (the file is NOT applied), and the status says so, with
the file's name and hash and how to apply it, until that policy is activated. Against a real
gateway (SQLite journal, simulator broker, uvicorn on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from ordergate.policy.loader import parse_policy
from ordergate.service.status_view import show_remote_status
from service.support import OPERATOR, OTHER_POLICY, POLICY, VIEWER, Served, auth, start


def status(served: Served) -> dict[str, Any]:
    response = httpx.get(f"{served.url}/v1/status", headers=auth(VIEWER), timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def restarted_with_another_file(tmp_path: Path) -> Iterator[Served]:
    """A gateway whose journal enforces POLICY, restarted with OTHER_POLICY as its file."""
    start(tmp_path).stop()
    served = start(tmp_path, policy=parse_policy(OTHER_POLICY))
    yield served
    served.stop()


def test_the_policy_file_of_a_new_journal_is_the_enforced_one(served: Served) -> None:
    body = status(served)
    enforced = parse_policy(POLICY)
    assert body["policy_hash"] == enforced.hash
    assert body["policy_file"] == {"name": "service-test", "hash": enforced.hash,
                                   "enforced": True, "outcome": "new", "detail": ""}


def test_a_policy_file_the_journal_overrides_is_reported_not_enforced(
        restarted_with_another_file: Served) -> None:
    served = restarted_with_another_file
    body = status(served)
    file = parse_policy(OTHER_POLICY)
    assert body["policy_name"] == "service-test"
    assert body["policy_hash"] == parse_policy(POLICY).hash
    view = body["policy_file"]
    assert (view["name"], view["hash"], view["enforced"], view["outcome"]) == (
        "service-test-2", file.hash, False, "kept")
    assert f"the --policy file's service-test-2 {file.hash} is NOT applied" in view["detail"]
    assert "--replace-policy" in view["detail"]

    activated = httpx.post(f"{served.url}/v1/policy",
                           json={"document": OTHER_POLICY, "reason": "new limits"},
                           headers=auth(OPERATOR), timeout=10.0)
    assert activated.status_code == 200, activated.text
    after = status(served)["policy_file"]
    assert (after["enforced"], after["outcome"], after["detail"]) == (True, "kept", "")


def test_ordergate_status_url_says_the_policy_file_is_not_enforced(
        restarted_with_another_file: Served) -> None:
    console = Console(record=True, width=400)
    view = show_remote_status(restarted_with_another_file.url, VIEWER, console)
    words = " ".join(console.export_text().split())
    assert view.policy_file is not None and not view.policy_file.enforced
    file = parse_policy(OTHER_POLICY)
    assert f"--policy file service-test-2 {file.hash[:16]} NOT enforced" in words
    assert "--replace-policy" in words


def test_ordergate_status_url_is_quiet_about_an_enforced_policy_file(served: Served) -> None:
    console = Console(record=True, width=400)
    show_remote_status(served.url, VIEWER, console)
    assert "--policy file" not in console.export_text()
