"""`ordergate status --url`: a user, password or query in the URL (any may carry a token)
is never repeated in what the command says."""

from __future__ import annotations

import socket

import pytest
import structlog
from typer.testing import CliRunner

from ordergate.cli.errors import UserError
from ordergate.cli.main import app
from ordergate.service.status_view import shown_url
from service.support import VIEWER, Served

SECRET = "TOKLEAK5sQ"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _said(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    structlog.reset_defaults()
    assert isinstance(result.exception, UserError), result.output
    return result.output + str(result.exception)


def test_an_unreachable_gateway_is_named_without_userinfo_or_query() -> None:
    port = _closed_port()
    url = f"http://u{SECRET}:{SECRET}@127.0.0.1:{port}/x?t={SECRET}"
    said = _said("status", "--url", url, "--token", "viewer-token")
    assert SECRET not in said
    assert f"--url http://***@127.0.0.1:{port}/x?***: cannot reach the gateway" in said


def test_an_http_error_is_named_without_userinfo_or_query(served: Served) -> None:
    scheme, _, rest = served.url.partition("://")
    url = f"{scheme}://ops:{SECRET}@{rest}/no-such-prefix?t={SECRET}"
    said = _said("status", "--url", url, "--token", VIEWER)
    assert SECRET not in said
    assert f"{scheme}://***@{rest}/no-such-prefix?***: HTTP " in said


@pytest.mark.parametrize(("url", "shown"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://u:p/a?s#s@gw:80/x?y#z", "http://***@gw:80/x?***"),  # a password holding /?#@
    ("http://tok@gw#frag", "http://***@gw?***"),
    ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
])
def test_shown_url_keeps_scheme_host_port_and_path(url: str, shown: str) -> None:
    assert shown_url(url) == shown
