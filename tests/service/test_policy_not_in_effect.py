"""A policy whose `metadata.effective_from` is still ahead is never reported as enforced: a
replacement of the journal's policy by it is refused at start-up (the engine would refuse the
activation and keep the journal's), and a new journal started with it serves with no policy in
effect, which the banner, GET /v1/status and GET /v1/health (not ready) say."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.scale.support import start, stop, wait_for
from tests.service.support import POLICY, TRADER, VIEWER, auth, serve_args

from ordergate import Gateway, PolicyChoiceError, PolicyReplacement
from ordergate.service.status import Inspector, ModeTimeline

_SERVING = re.compile(r"serving on (http://\S+)")
_LATER = "takes effect at 2099-01-01T00:00:00Z"
FUTURE = POLICY.replace("  name: service-test\n",
                        "  name: service-future\n  effective_from: '2099-01-01T00:00:00Z'\n")


def _intent(intent_id: str, qty: str = "10") -> dict[str, str]:
    return {"intent_id": intent_id, "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "account": "ACC-1", "strategy": "momo", "symbol": "AAPL", "side": "buy",
            "qty": qty}


def _with_policy(args: list[str], policy: Path) -> list[str]:
    args = list(args)
    args[args.index("--policy") + 1] = str(policy)
    return args


def test_serve_refuses_a_replacement_not_in_effect_yet(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal) as gateway:  # the journal enforces service-test
        gateway.submit(_intent("i-1"))
        assert gateway.policy is not None and gateway.policy.name == "service-test"
        enforced = gateway.policy.hash
    future = tmp_path / "future.yaml"
    future.write_text(FUTURE)
    args = _with_policy(serve_args(tmp_path, str(journal)), future)
    done = subprocess.run([*args, "--replace-policy", "--operator", "carol", "--reason", "x"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "--replace-policy: cannot replace policy service-test" in said, said
    assert f"service-future {_LATER}" in said, said
    assert "serving on" not in said and "replaced by" not in said, said
    with Gateway.open(POLICY, journal) as gateway:  # nothing was journaled
        assert gateway.policy is not None and gateway.policy.hash == enforced


def test_serve_on_a_new_journal_with_a_policy_not_in_effect_is_not_ready(
        tmp_path: Path) -> None:
    future = tmp_path / "future.yaml"
    future.write_text(FUTURE)
    log = tmp_path / "serve.log"
    served = start(_with_policy(serve_args(tmp_path, str(tmp_path / "j.db")), future), log)
    try:
        found = wait_for(lambda: _SERVING.search(log.read_text()), 60, "serve to start")
        banner = next(line for line in log.read_text().splitlines() if "serving on" in line)
        assert f"no policy in effect: service-future {_LATER}" in banner, banner
        assert "policy service-future sha256" not in banner, banner
        with httpx.Client(base_url=found.group(1), timeout=30) as client:
            decided = client.post("/v1/intents", headers=auth(TRADER), json=_intent("i-1"))
            assert decided.json()["decision"]["blocking"] == "SYS-005", decided.text
            health = client.get("/v1/health")
            assert health.status_code != 200, health.text
            body = health.json()
            assert body["ready"] is False
            assert body["checks"]["engine"] == {
                "ok": False, "detail": f"no policy in effect: service-future {_LATER}"}
            status = client.get("/v1/status", headers=auth(VIEWER)).json()
    finally:
        stop(served)
    assert status["headline"].startswith("No trading: every order is denied (SYS-005)")
    assert _LATER in status["headline"]
    file = status["policy_file"]
    assert file["enforced"] is False
    assert "activated at the first event" not in file["detail"], file
    assert f"is not enforced: no policy in effect: service-future {_LATER}" in file["detail"]


def test_embedded_replacement_not_in_effect_is_refused_on_the_wall_clock(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal) as gateway:
        gateway.submit(_intent("i-1"))
    with pytest.raises(PolicyChoiceError, match=f"service-future {_LATER}"):
        Gateway.open(FUTURE, journal, replace_policy=PolicyReplacement("dave", "tighten"))
    with Gateway.open(POLICY, journal) as gateway:
        assert gateway.policy is not None and gateway.policy.name == "service-test"
        assert gateway.policy_choice is not None and gateway.policy_choice.outcome == "same"


def test_a_replacement_the_engine_refuses_on_event_time_is_said_plainly(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal) as gateway:
        gateway.submit(_intent("i-1"))
    with Gateway.open(FUTURE, journal, clock="event",
                      replace_policy=PolicyReplacement("dave", "tighten")) as gateway:
        # qty 50 exceeds nothing in either policy's max_order_qty; the decision names the
        # policy that decided it
        decision = gateway.submit(_intent("i-2", qty="50"))
        assert gateway.policy is not None and gateway.policy.name == "service-test"
        assert decision.policy_hash == gateway.policy.hash
        choice = gateway.policy_choice
        assert choice is not None and choice.outcome == "refused"
        assert _LATER in choice.refusal
        view = Inspector(gateway._runtime, ModeTimeline()).status_view()
    assert view.policy_name == "service-test"
    assert view.policy_file is not None and view.policy_file.outcome == "refused"
    assert "was activated since start-up" not in view.policy_file.detail
    assert "is NOT applied: the engine refused it" in view.policy_file.detail
    assert "policy service-test" in view.policy_file.detail


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
