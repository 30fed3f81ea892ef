"""A 503 that says the gateway decided (and may have sent) before its answer failed is not
"nothing was done": the client tries the same intent again, and if no attempt then says what
became of it, it raises OutcomeUnknown, never GatewayUnavailable. Driven by a stand-in gateway
on loopback that answers with the real gateway's error bodies (`service.bridge`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from client_support import intent

from ordergate.client import Client, GatewayUnavailable, OutcomeUnknown
from ordergate.service.bridge import DECIDED_NOT_ANSWERED

_DECIDED = {"error": DECIDED_NOT_ANSWERED,
            "detail": "decided and durable, but answering failed: OSError: disk; read the "
                      "decision at GET /v1/decisions/{intent_id}"}
_DOWN = {"error": "unavailable", "detail": "not durable, nothing was done: OSError: disk"}


def _stand_in(answers: list[dict[str, str]]) -> tuple[ThreadingHTTPServer, list[int]]:
    posts: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(answers[min(len(posts), len(answers) - 1)]).encode()
            posts.append(1)
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, posts


@pytest.fixture
def stand_in(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[int]]]:
    server, posts = _stand_in(request.param)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("stand_in", [[_DECIDED, _DOWN], [_DECIDED]], indirect=True)
def test_a_decision_whose_answer_failed_is_an_unknown_outcome(
        stand_in: tuple[str, list[int]]) -> None:
    url, posts = stand_in
    with Client(url, "og_token", retries=2) as client, pytest.raises(OutcomeUnknown) as raised:
        client.submit(intent("d-1"))
    assert len(posts) == 3  # the same intent again, as far as the retries allow
    assert "may have been acted on" in str(raised.value)
    assert "intent_id 'd-1' may have been decided" in str(raised.value)


@pytest.mark.parametrize("stand_in", [[_DOWN]], indirect=True)
def test_a_503_that_did_nothing_is_still_unavailable(stand_in: tuple[str, list[int]]) -> None:
    url, _ = stand_in
    with Client(url, "og_token", retries=1) as client, pytest.raises(GatewayUnavailable):
        client.submit(intent("d-2"))

