"""The webhook sink against receivers that misbehave, on a real loopback server: a URL it cannot
post to is refused when the sink is made (shown redacted); every alert carries a stable id in
the body and the Idempotency-Key header; a slow receiver gets one POST, not three; a receiver
that answers a byte at a time holds neither later alerts nor its own attempt past the
deadline; alerts still queued or in flight when the sink closes are each logged at error level.

No timed assertions: the tests wait generously and assert what arrived, and in which order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ordergate.service.alerts import (
    AlertNotice,
    WebhookSink,
    WebhookURLError,
    check_webhook_url,
    redact_webhook_url,
)
from service.alert_support import json_log

TS = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
PATIENCE_S = 20.0  # how long a test waits for something that should happen well before


def _notice(message: str, severity: str = "critical", code: str = "KIL-002") -> AlertNotice:
    return AlertNotice(kind="mode_change", severity=severity, code=code, message=message, ts=TS)


class MisbehavingReceiver:
    """A webhook endpoint on 127.0.0.1 whose answer depends on the alert's message:
    `stuck...` is answered one byte at a time (forever, until the receiver closes), `hang...`
    never, `slow...` with 204 after `slow_s`, anything else at once with 204 (after
    `failures` 503s in total). Every POST is recorded, answered or not."""

    def __init__(self, *, slow_s: float = 0.0, failures: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []  # {"body": ..., "headers": ...}
        self.answered: list[str] = []  # messages answered with 2xx, in order
        self.trickling = 0  # answers being dribbled right now
        self.failures = failures
        self._stop = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                message = str(body["message"])
                with receiver._changed:
                    receiver.posts.append({"body": body, "headers": {
                        name.lower(): value for name, value in self.headers.items()}})
                    refuse = len(receiver.posts) <= receiver.failures
                    receiver._changed.notify_all()
                if message.startswith("stuck"):
                    self._trickle()
                    return
                if message.startswith("hang"):
                    receiver._stop.wait()
                    return
                if message.startswith("slow"):
                    receiver._stop.wait(slow_s)
                if not refuse:
                    # noted before the answer leaves: once the sink has it (and a test reads
                    # `answered` right after the sink says delivered), it is here
                    with receiver._changed:
                        receiver.answered.append(message)
                        receiver._changed.notify_all()
                self.send_response(503 if refuse else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def _trickle(self) -> None:
                with receiver._changed:
                    receiver.trickling += 1
                try:
                    for byte in b"HTTP/1.1 200 OK\r\n" + b"x-pad: 1\r\n" * 10_000:
                        if receiver._stop.wait(0.2):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:  # the sink gave up and closed the connection
                    return
                finally:
                    with receiver._changed:
                        receiver.trickling -= 1
                        receiver._changed.notify_all()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, condition: Callable[[], bool], timeout: float = PATIENCE_S) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def posts_of(self, message: str) -> list[dict[str, Any]]:
        return [post for post in self.posts if post["body"]["message"] == message]

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[MisbehavingReceiver]:
    endpoint = MisbehavingReceiver(slow_s=2.5)
    yield endpoint
    endpoint.close()


def _poll(condition: Callable[[], bool], timeout: float = PATIENCE_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _undelivered(lines: list[str]) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in list(lines)]
    return [entry for entry in entries if entry.get("event") == "alert_webhook_undelivered"]


# ---------------------------------------------------------------- the URL


@pytest.mark.parametrize(("url", "problem"), [
    ("https://alerts.example.internal:443a/ordergate", "Invalid port"),
    ("notaurl", "no scheme"),
    ("ftp://alerts.example.internal/x", "scheme 'ftp'"),
    ("http://", "no host"),
    (" https://alerts.example.internal/x", "whitespace"),
    ("https://alerts.example.internal:99999/x", "port 99999"),
    ("", "empty"),
])
def test_a_webhook_url_that_cannot_be_posted_to_is_refused_when_the_sink_is_made(
        url: str, problem: str) -> None:
    with pytest.raises(WebhookURLError, match=problem):
        WebhookSink(url)


def test_webhook_url_errors_never_show_its_credentials() -> None:
    url = "https://desk:s3cret@alerts.example.internal:99999/services/T1/B2/hooktoken?token=abc"
    with pytest.raises(WebhookURLError) as refused:
        check_webhook_url(url)
    shown = str(refused.value)
    assert "alerts.example.internal:99999" in shown and "port 99999" in shown
    for secret in ("desk", "s3cret", "hooktoken", "abc"):
        assert secret not in shown
    assert redact_webhook_url("https://alerts.example.internal:443a/x?token=abc") == \
        "https://alerts.example.internal:443a/***"


# ---------------------------------------------------------------- ids and repeats


def test_every_attempt_of_an_alert_carries_the_same_id_in_body_and_idempotency_key() -> None:
    endpoint = MisbehavingReceiver(failures=2)
    sink = WebhookSink(endpoint.url, first_backoff_s=0.05)
    try:
        sink.send(_notice("halted by ops-1"))
        assert endpoint.wait(lambda: endpoint.answered == ["halted by ops-1"])
    finally:
        sink.close()
        endpoint.close()
    assert len(endpoint.posts) == 3  # two 503s, then delivered
    ids = {post["body"]["alert_id"] for post in endpoint.posts}
    keys = {post["headers"]["idempotency-key"] for post in endpoint.posts}
    assert len(ids) == 1 and ids == keys and all(ids)


def test_different_alerts_have_different_ids(receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url)
    try:
        for index in range(3):
            sink.send(_notice(f"alert {index}"))
        assert receiver.wait(lambda: len(receiver.answered) == 3)
    finally:
        sink.close()
    assert len({post["body"]["alert_id"] for post in receiver.posts}) == 3


def test_a_slow_receiver_gets_the_alert_once_and_the_sink_counts_it_delivered(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url)  # the receiver answers after 2.5 s, within the 5 s
    with json_log() as lines:
        try:
            sink.send(_notice("slow receiver"))
            assert _poll(lambda: sink.delivered == 1)
        finally:
            sink.close()
    assert len(receiver.posts_of("slow receiver")) == 1
    assert sink.dropped == 0 and _undelivered(lines) == []


# ---------------------------------------------------------------- stuck receivers


def test_a_receiver_stuck_on_one_alert_does_not_hold_back_the_next(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url, drain_s=0.5)
    try:
        sink.send(_notice("stuck: answered a byte at a time", severity="warning"))
        assert receiver.wait(lambda: receiver.trickling == 1)
        sink.send(_notice("HALT after the warning"))
        assert receiver.wait(lambda: receiver.answered == ["HALT after the warning"])
        # ...while the first alert's answer was still being dribbled.
        assert receiver.trickling == 1
    finally:
        sink.close()


def test_an_attempt_answered_a_byte_at_a_time_ends_at_its_deadline_and_is_logged(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url, deadline_s=1.0, attempt_timeout_s=1.0)
    with json_log() as lines:
        try:
            sink.send(_notice("stuck: answered a byte at a time", code="SYS-007"))
            assert _poll(lambda: sink.dropped == 1)
            # The sink gave up while the receiver was still dribbling: a per-read timeout
            # would have waited as long as the bytes kept coming.
            assert receiver.trickling == 1
        finally:
            sink.close()
    [entry] = _undelivered(lines)
    assert entry["level"] == "error" and entry["code"] == "SYS-007"
    assert entry["severity"] == "critical" and entry["message"].startswith("stuck")
    assert "no answer within" in entry["reason"]
    assert entry["alert_id"] == receiver.posts[0]["body"]["alert_id"]


def test_the_sender_goes_on_after_an_alert_it_could_not_deliver(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url, senders=1, deadline_s=0.5, attempt_timeout_s=0.5)
    try:
        sink.send(_notice("hang: never answered"))
        assert _poll(lambda: sink.dropped == 1)
        sink.send(_notice("the next alert"))
        assert receiver.wait(lambda: receiver.answered == ["the next alert"])
    finally:
        sink.close()


# ---------------------------------------------------------------- closing


def test_alerts_undelivered_when_the_sink_closes_are_each_logged_at_error_level(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url, senders=1, drain_s=0.3, attempt_timeout_s=60.0)
    with json_log() as lines:
        sink.send(_notice("hang: in flight", code="KIL-002"))
        assert receiver.wait(lambda: len(receiver.posts) == 1)
        sink.send(_notice("queued one", severity="warning", code="SYS-007"))
        sink.send(_notice("queued two", severity="info", code="SYS-009"))
        sink.close()
        sink.send(_notice("after close", code="KIL-001"))
    logged = {entry["message"]: entry for entry in _undelivered(lines)}
    assert set(logged) == {"hang: in flight", "queued one", "queued two", "after close"}
    assert all(entry["level"] == "error" for entry in logged.values())
    assert (logged["queued one"]["code"], logged["queued one"]["severity"]) == \
        ("SYS-007", "warning")
    assert (logged["queued two"]["code"], logged["queued two"]["severity"]) == \
        ("SYS-009", "info")
    assert "closed" in logged["hang: in flight"]["reason"]


def test_close_delivers_what_is_queued_to_a_healthy_receiver(
        receiver: MisbehavingReceiver) -> None:
    sink = WebhookSink(receiver.url, senders=1)
    for index in range(5):
        sink.send(_notice(f"alert {index}"))
    sink.close()
    assert sorted(receiver.answered) == [f"alert {index}" for index in range(5)]
    assert sink.delivered == 5
