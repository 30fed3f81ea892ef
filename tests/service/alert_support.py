"""What the alert tests deliver to: a real webhook endpoint on 127.0.0.1, and the structured log
rendered to JSON lines the way `ordergate serve` renders it."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import structlog


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1: answers 503 to the first `failures` posts, then 204."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.attempts = 0
        self.failures = failures
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                with receiver._changed:
                    receiver.attempts += 1
                    refuse = receiver.attempts <= receiver.failures
                    if not refuse:
                        receiver.bodies.append(msgspec.json.decode(body))
                        receiver.arrived.append(time.monotonic())
                        receiver._changed.notify_all()
                self.send_response(503 if refuse else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float) -> None:
        """Until `count` alerts arrived or `timeout` seconds passed."""
        self.wait_until(lambda body: True, timeout, count=count)

    def wait_until(self, matches: Callable[[dict[str, Any]], bool], timeout: float, *,
                   count: int = 1) -> list[dict[str, Any]]:
        """The delivered alerts that match, once there are `count` of them or `timeout`
        seconds passed (whichever comes first)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [body for body in self.bodies if matches(body)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._changed.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _LineLogger:
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def msg(self, message: str) -> None:
        self._lines.append(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


@contextlib.contextmanager
def json_log() -> Iterator[list[str]]:
    """The structured log as `ordergate serve` writes it (level, ISO timestamp, JSON renderer),
    collected as lines. The tests' autouse fixture restores the configuration afterwards."""
    lines: list[str] = []
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=lambda *_args: _LineLogger(lines),
        cache_logger_on_first_use=False,
    )
    yield lines


def logged_alerts(lines: list[str]) -> list[dict[str, Any]]:
    """The `alert` entries among JSON log lines (`list(lines)`: the engine thread may append)."""
    entries = [json.loads(line) for line in list(lines)]
    return [entry for entry in entries if entry.get("event") == "alert"]
