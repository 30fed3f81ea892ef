"""`ordergate serve` stopped while a dashboard holds GET /v1/events open: the stream ends (its
last chunk sent, the response complete), the gateway closes and the process exits, instead of
uvicorn waiting forever for the stream's connection to close (a supervisor's stop hung, and a
standby never got the stream's lease)."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
from tests.scale.support import start, wait_for
from tests.service.support import VIEWER, auth, serve_args

_SERVING = re.compile(r"serving on (http://\S+)")
# A safety net for a stuck process, not a measure of speed.
_EXIT_BOUND_S = 60


def _stop_while_streaming(tmp_path: Path, signum: signal.Signals) -> tuple[int, list[str], str]:
    """Serve, open GET /v1/events, send `signum`: the exit code, the stream's lines after the
    signal (read to the response's end) and the log."""
    log = tmp_path / "serve.log"
    served = start(serve_args(tmp_path, str(tmp_path / "j.db"), log_level="info"), log)
    try:
        found = wait_for(lambda: _SERVING.search(log.read_text()), 60, "serve to start")
        with httpx.Client(base_url=found.group(1), timeout=30) as client, \
                client.stream("GET", "/v1/events", headers=auth(VIEWER)) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: status"  # the stream is open and sending
            served.send_signal(signum)
            code = served.wait(timeout=_EXIT_BOUND_S)
            # A cut-off body (chunked encoding never finished) raises here.
            rest = list(lines)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"serve still running after {signum.name}:\n"
                             f"{log.read_text()}") from None
    finally:
        if served.poll() is None:
            served.kill()
            served.wait()
    return code, rest, log.read_text()


def test_sigterm_ends_open_event_streams_and_exits_0(tmp_path: Path) -> None:
    code, rest, text = _stop_while_streaming(tmp_path, signal.SIGTERM)
    assert code == 0, text
    assert all(line.startswith(("event: ", "data: ")) or line == "" for line in rest), rest
    assert "journal.closed" in text, text  # Runtime.close ran: last flush, lock released
    assert "timeout graceful shutdown exceeded" not in text, text  # ended, not cancelled


def test_ctrl_c_ends_open_event_streams(tmp_path: Path) -> None:
    _, _, text = _stop_while_streaming(tmp_path, signal.SIGINT)
    assert "journal.closed" in text, text
    assert "timeout graceful shutdown exceeded" not in text, text
