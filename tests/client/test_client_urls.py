"""A base URL the client cannot send to is refused when the client is made, with the client's
own error class (also a ValueError) naming the problem: not retried for 1.5 s and reported as
an unreachable gateway, and never a raw httpx error escaping the client's error classes."""

from __future__ import annotations

import pytest

from ordergate.client import AsyncClient, BadURLError, Client, ClientError


@pytest.mark.parametrize(("base_url", "problem"), [
    ("127.0.0.1:8080", "no scheme"),
    ("http://[::1", "not a valid URL"),
    ("", "empty"),
    ("ftp://127.0.0.1:8080", "scheme 'ftp'"),
    ("http://", "no host"),
    ("http://127.0.0.1:99999", "port 99999"),
    (" http://127.0.0.1:8080", "whitespace"),
])
@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_a_base_url_the_client_cannot_use_is_refused_when_it_is_made(
        client_class: type[Client] | type[AsyncClient], base_url: str, problem: str) -> None:
    with pytest.raises(BadURLError) as refused:
        client_class(base_url, "og_token")
    assert isinstance(refused.value, ClientError) and isinstance(refused.value, ValueError)
    assert "base_url" in str(refused.value) and problem in str(refused.value)


def test_the_refusal_never_shows_a_password_in_the_url() -> None:
    with pytest.raises(BadURLError) as refused:
        Client("http://desk:s3cret@127.0.0.1:99999", "og_token")
    assert "s3cret" not in str(refused.value) and "port 99999" in str(refused.value)


def test_a_good_base_url_is_kept_without_its_trailing_slash() -> None:
    with Client("http://127.0.0.1:8080/", "og_token") as client:
        assert client.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("base_url", ["http://u:pass@word@127.0.0.1:1",
                                      "http://u:sesame#xyzzy@127.0.0.1:1",
                                      "http://u:secr/etword@127.0.0.1:1"])
def test_no_piece_of_a_password_written_with_url_delimiters_is_shown(base_url: str) -> None:
    # Cut at its first '@', or its head read by httpx as a port, a password used to show.
    password = base_url.split("://u:", 1)[1].rsplit("@", 1)[0]
    pieces = {password, *password.replace("#", "@").replace("/", "@").split("@")}
    try:
        Client(base_url, "og_token", retries=0, timeout_s=0.5).health()
    except ClientError as exc:
        shown = str(exc)
    else:
        raise AssertionError("a gateway answered on port 1")
    assert "http://u:***@" in shown
    assert not [piece for piece in pieces if len(piece) >= 4 and piece in shown], shown


def test_every_client_error_class_is_importable_from_the_package_root() -> None:
    import ordergate
    import ordergate.client as client

    errors = {name for name, value in vars(client).items()
              if isinstance(value, type) and issubclass(value, ClientError)}
    assert {"ConflictError", "OutcomeUnknown"} <= errors
    assert errors <= set(ordergate.__all__)
    for name in errors:
        assert getattr(ordergate, name) is getattr(client, name)
