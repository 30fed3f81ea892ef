"""`ordergate serve` and its webhook at start-up: a URL alerts cannot be posted to stops the
start with an error naming `--webhook` (or `ORDERGATE_WEBHOOK_URL`) and never the URL's
credentials; the URL can come from that variable instead of the command line (kept out of
`ps`); and alerts raised by the `--feed` processed at start-up reach the webhook like any
other. The serve runs are the real command, in a process of its own (its logging setup stays
there), on a port that is already taken, so each stops (exit 1) right after building the
gateway (feed included), before serving; closing the gateway delivers its pending alerts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.runtime.scenario import START, demo_policy_path

from ordergate.model.market import MarketSnapshot
from ordergate.runtime.demo_data import write_events
from ordergate.service.alerts import WEBHOOK_URL_ENV
from ordergate.service.auth import hash_token
from service.alert_support import WebhookReceiver


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    endpoint = WebhookReceiver()
    yield endpoint
    endpoint.close()


@dataclass(frozen=True)
class Cli:
    code: int
    output: str  # stderr, then stdout


def _ordergate(*args: str, webhook_env: str | None = None) -> Cli:
    env = {name: value for name, value in os.environ.items() if name != WEBHOOK_URL_ENV}
    if webhook_env is not None:
        env[WEBHOOK_URL_ENV] = webhook_env
    done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return Cli(done.returncode, done.stderr + done.stdout)


def _serve(tmp_path: Path, port: int, *extra: str, crossed_feed: bool = False,
           webhook_env: str | None = None) -> Cli:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                      f"    hash: {hash_token('viewer-secret')}\n")
    args = ["serve", "--policy", str(demo_policy_path()), "--journal",
            str(tmp_path / "journal.db"), "--tokens", str(tokens), "--port", str(port), *extra]
    if crossed_feed:
        feed = tmp_path / "feed.jsonl"
        write_events(feed, [  # bid above ask: not a sane quote; the feed's circuit opens
            MarketSnapshot(symbol="AAPL", ts=START + timedelta(seconds=second),
                           bid=Decimal("190.10"), ask=Decimal("190.00"),
                           last=Decimal("190.00"), volume=Decimal(1000))
            for second in range(1, 6)])
        args += ["--feed", str(feed)]
    return _ordergate(*args, webhook_env=webhook_env)


@pytest.mark.parametrize(("url", "problem"), [
    ("notaurl", "no scheme"),
    ("ftp://x", "scheme 'ftp'"),
    ("http://", "no host"),
    (" https://alerts.example.internal/x", "whitespace"),
    ("https://alerts.example.internal:99999/x", "port 99999"),
    ("https://alerts.example.internal:443a/x", "Invalid port"),
])
def test_serve_refuses_a_webhook_url_it_cannot_post_to(
        tmp_path: Path, taken_port: int, url: str, problem: str) -> None:
    served = _serve(tmp_path, taken_port, "--webhook", url)
    assert served.code == 1 and "--webhook: " in served.output, served.output
    assert problem in served.output
    assert not (tmp_path / "journal.db").exists()  # refused before anything was opened


def test_the_refusal_never_shows_credentials_in_the_url(tmp_path: Path,
                                                         taken_port: int) -> None:
    served = _serve(tmp_path, taken_port, "--webhook",
                    "https://desk:s3cret@alerts.example.internal:99999/x?token=t0ken")
    assert served.code == 1 and "--webhook: " in served.output, served.output
    assert "alerts.example.internal:99999" in served.output
    assert "s3cret" not in served.output and "t0ken" not in served.output


def test_the_webhook_url_can_come_from_the_environment(tmp_path: Path,
                                                       taken_port: int) -> None:
    served = _serve(tmp_path, taken_port, webhook_env="notaurl")
    assert served.code == 1 and f"{WEBHOOK_URL_ENV}: " in served.output, served.output
    assert "--webhook: " not in served.output
    helped = _ordergate("serve", "--help")
    assert "--webhook" in helped.output and WEBHOOK_URL_ENV in helped.output


def test_alerts_raised_by_the_startup_feed_reach_the_webhook(
        tmp_path: Path, taken_port: int, receiver: WebhookReceiver) -> None:
    served = _serve(tmp_path, taken_port, "--webhook", receiver.url, crossed_feed=True)
    assert served.code == 1 and "cannot listen" in served.output, served.output
    # Closing the gateway delivered what the feed raised: the mode change and the breaker.
    kinds = {body["kind"] for body in receiver.bodies}
    assert {"mode_change", "breaker_open"} <= kinds, receiver.bodies
    [mode_change] = [body for body in receiver.bodies if body["kind"] == "mode_change"]
    assert mode_change["mode"] == "REDUCE_ONLY" and mode_change["alert_id"]


def test_the_startup_feed_alerts_reach_a_webhook_named_by_the_environment(
        tmp_path: Path, taken_port: int, receiver: WebhookReceiver) -> None:
    served = _serve(tmp_path, taken_port, crossed_feed=True, webhook_env=receiver.url)
    assert served.code == 1 and "cannot listen" in served.output, served.output
    assert "mode_change" in {body["kind"] for body in receiver.bodies}, receiver.bodies
