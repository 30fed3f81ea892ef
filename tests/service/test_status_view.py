"""`ordergate status --url` renders the live status of a running gateway in the terminal."""

from __future__ import annotations

import json

import httpx
import pytest
import structlog
from rich.console import Console
from typer.testing import CliRunner, Result

from ordergate.cli.errors import UserError
from ordergate.cli.main import app
from ordergate.service.status_view import show_remote_status
from service.support import OPERATOR, VIEWER, Served, auth


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    # The command binds structlog to the runner's (now closed) stderr; the gateway's engine
    # thread, still running in this process, must not log there.
    structlog.reset_defaults()
    return result


def test_remote_status_shows_mode_reason_and_exposure(served: Served) -> None:
    httpx.post(f"{served.url}/v1/mode/reduce-only", headers=auth(OPERATOR),
               json={"reason": "earnings call"})
    console = Console(record=True, width=160)
    view = show_remote_status(served.url, VIEWER, console)
    text = console.export_text()
    assert view.mode == "REDUCE_ONLY"
    assert "REDUCE_ONLY" in text and "earnings call" in text and "ops-alice" in text
    assert "Exposure vs caps" in text and "ACC-1" in text


def test_remote_status_with_a_bad_token_is_a_user_error(served: Served) -> None:
    with pytest.raises(UserError, match="HTTP 401"):
        show_remote_status(served.url, "wrong", Console(record=True))
    with pytest.raises(UserError, match="cannot reach"):
        show_remote_status("http://127.0.0.1:9", VIEWER, Console(record=True))


def test_ordergate_status_url_renders_the_live_status(served: Served) -> None:
    httpx.post(f"{served.url}/v1/mode/halt", headers=auth(OPERATOR),
               json={"reason": "fat finger review"})
    result = invoke("status", "--url", served.url, "--token", VIEWER)
    assert result.exit_code == 0, result.output
    # The panel wraps to the terminal's width: compare words, not layout.
    words = " ".join(result.output.replace("│", " ").split())
    assert "HALTED" in words and "fat finger review" in words
    assert "ops-alice" in words and "policy service-test" in words
    from_env = invoke("status", "--url", served.url, "--json", env={"ORDERGATE_TOKEN": VIEWER})
    assert from_env.exit_code == 0, from_env.output
    assert json.loads(from_env.output)["mode"] == "HALTED"


def test_ordergate_status_url_failures_are_user_errors(served: Served) -> None:
    wrong = invoke("status", "--url", served.url, "--token", "wrong")
    assert wrong.exit_code != 0 and isinstance(wrong.exception, UserError)
    assert "HTTP 401" in str(wrong.exception)
    both = invoke("status", "--url", served.url, "--journal", "x.db")
    assert isinstance(both.exception, UserError) and "exactly one" in str(both.exception)
    missing = invoke("status", "--url", served.url, env={"ORDERGATE_TOKEN": ""})
    assert isinstance(missing.exception, UserError) and "--token" in str(missing.exception)
