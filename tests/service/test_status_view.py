"""`ordergate status --url` renders the live status of a running gateway in the terminal."""

from __future__ import annotations

import httpx
import pytest
from rich.console import Console

from ordergate.cli.errors import UserError
from ordergate.service.status_view import show_remote_status
from service.support import OPERATOR, VIEWER, Served, auth


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
