"""`ordergate status --journal` says, in the words of `status --url`, that the enforced policy
only monitors (`monitor: true`) and that a dry run is judging every intent beside it; --json
carries policy_monitor as GET /v1/status does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import structlog
from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.cli.status_cmd import MONITOR_NOTE, dry_run_note
from service.support import OPERATOR, OTHER_POLICY, POLICY, auth, start, status_cli_words

MONITOR_POLICY = POLICY.replace("service-test", "service-monitor") + "monitor: true\n"


def _journal_status(journal: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["status", "--journal", str(journal), *extra],
                                env={"COLUMNS": "240"})
    structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    return result.output


def _words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def test_journal_status_says_monitor_and_dry_run_as_the_live_status_does(
        tmp_path: Path) -> None:
    served = start(tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as http:
            for body in ({"document": MONITOR_POLICY, "reason": "monitor only"},
                         {"document": OTHER_POLICY, "reason": "try it", "dry_run": True}):
                answer = http.post("/v1/policy", json=body, headers=auth(OPERATOR))
                assert answer.status_code == 200, answer.text
        live = status_cli_words(served)
    finally:
        served.stop()
    journal = Path(served.journal_url.removeprefix("sqlite:///"))

    shown = _words(_journal_status(journal))

    assert _words(MONITOR_NOTE) in live and _words(MONITOR_NOTE) in shown
    dry_run = [sentence for sentence in live.split(". ") if sentence.startswith("DRY RUN")]
    assert dry_run and dry_run[0].startswith("DRY RUN of policy service-test-2 sha256:")
    assert dry_run[0] in shown
    status = json.loads(_journal_status(journal, "--json"))
    assert status["policy_monitor"] is True
    assert status["policy_name"] == "service-monitor"
    assert status["shadow_policy_name"] == "service-test-2"
    assert _words(dry_run_note(status["shadow_policy_name"],
                               status["shadow_policy_hash"])) in shown


def test_journal_status_of_an_enforcing_policy_says_no_monitor(tmp_path: Path) -> None:
    served = start(tmp_path)
    served.stop()
    journal = Path(served.journal_url.removeprefix("sqlite:///"))

    shown = _words(_journal_status(journal))

    assert "MONITOR" not in shown and "DRY RUN" not in shown
    status = json.loads(_journal_status(journal, "--json"))
    assert status["policy_monitor"] is False and status["shadow_policy_hash"] == ""
