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
from ordergate.service.status_view import RECENT_DECISIONS, show_remote_status
from service.support import OPERATOR, TRADER, VIEWER, Served, auth, intent


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


def _words(text: str) -> str:
    """Table text with its borders and line breaks folded away (compare words, not layout)."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


def test_remote_status_lists_recent_decisions_with_code_and_plain_reason(
        served: Served) -> None:
    allowed = httpx.post(f"{served.url}/v1/intents", headers=auth(TRADER),
                         json=intent("dec-allow", qty="7"))
    denied = httpx.post(f"{served.url}/v1/intents", headers=auth(TRADER),
                        json=intent("dec-deny", symbol="MSFT", qty="5000", seconds=2.0))
    assert allowed.status_code == denied.status_code == 200
    meaning = denied.json()["blocking_meaning"]
    assert meaning  # the plain words the terminal must show

    console = Console(record=True, width=220)
    show_remote_status(served.url, VIEWER, console)
    text = console.export_text()
    assert "Recent decisions" in text
    rows = {line.split("│")[2].strip(): line for line in text.splitlines()
            if line.count("│") == 9 and "dec-" in line}
    assert set(rows) == {"dec-allow", "dec-deny"}
    deny_cells = [cell.strip() for cell in rows["dec-deny"].split("│")[1:-1]]
    assert deny_cells[:7] == ["2026-03-02 14:30:02Z", "dec-deny", "ACC-1", "MSFT",
                              "buy 5000", "DENY", "ORD-006"]
    assert _words(meaning) in _words(text)
    allow_cells = [cell.strip() for cell in rows["dec-allow"].split("│")[1:-1]]
    assert allow_cells == ["2026-03-02 14:30:01Z", "dec-allow", "ACC-1", "AAPL", "buy 7",
                           "ALLOW", "", ""]
    # newest first, as on the dashboard
    assert text.index("dec-deny") < text.index("dec-allow")


def test_remote_status_shows_only_the_newest_decisions(served: Served) -> None:
    batch = {"intents": [intent(f"dec-{n:02d}", qty="1") for n in range(RECENT_DECISIONS + 2)]}
    assert httpx.post(f"{served.url}/v1/intents", headers=auth(TRADER),
                      json=batch).status_code == 200
    console = Console(record=True, width=220)
    show_remote_status(served.url, VIEWER, console)
    text = console.export_text()
    shown = [n for n in range(RECENT_DECISIONS + 2) if f"dec-{n:02d}" in text]
    assert shown == list(range(2, RECENT_DECISIONS + 2))


def test_status_without_decisions_says_so(served: Served) -> None:
    console = Console(record=True, width=160)
    show_remote_status(served.url, VIEWER, console)
    assert "Recent decisions: none yet." in console.export_text()


def test_ordergate_status_url_shows_recent_decisions(served: Served) -> None:
    httpx.post(f"{served.url}/v1/intents", headers=auth(TRADER),
               json=intent("dec-cli", qty="5000"))
    result = invoke("status", "--url", served.url, "--token", VIEWER)
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    assert "Recent decisions" in words and "ORD-006" in words and "DENY" in words


def test_ordergate_status_url_shows_ids_names_and_reasons_as_written(served: Served) -> None:
    """Text traders and operators choose is shown literally: "[/x]" does not break the
    rendering and "[red]" or ":x:" neither styles nor turns into an emoji."""
    posted = httpx.post(f"{served.url}/v1/intents", headers=auth(TRADER),
                        json=intent("evil[/x]", qty="5"))
    assert posted.status_code == 200, posted.text
    killed = httpx.post(f"{served.url}/v1/kill", headers=auth(OPERATOR),
                        json={"scope": "symbol", "name": "<b>MSFT</b>[/x]",
                              "reason": "[red]halt[/red] :x: [/b]"})
    assert killed.status_code == 200, killed.text

    result = invoke("status", "--url", served.url,
                    env={"ORDERGATE_TOKEN": VIEWER, "COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    for written in ("evil[/x]", "<b>MSFT</b>[/x]", "[red]halt[/red] :x: [/b]"):
        assert written in words, written

    # the same through a console that reads markup and emoji codes, as a caller's may
    console = Console(record=True, width=220)
    show_remote_status(served.url, VIEWER, console)
    words = _words(console.export_text())
    for written in ("evil[/x]", "<b>MSFT</b>[/x]", "[red]halt[/red] :x: [/b]"):
        assert written in words, written
