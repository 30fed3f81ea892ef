"""`ordergate serve` stopped by SIGTERM (systemd, Kubernetes, `kill`) closes the gateway the way
it closes on Ctrl-C: uvicorn finishes its requests, then the journal is flushed and closed,
pending alerts are delivered and the writer's lock released, and the process exits 0."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from tests.scale.support import start, stop, wait_for
from tests.service.support import TRADER, auth, serve_args

_SERVING = re.compile(r"serving on (http://\S+)")


def test_sigterm_closes_the_gateway_and_exits_0(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    log = tmp_path / "serve.log"
    served = start(serve_args(tmp_path, str(tmp_path / "j.db"), log_level="info"), log)
    try:
        found = wait_for(lambda: _SERVING.search(log.read_text()), 60, "serve to start")
        with httpx.Client(base_url=found.group(1), timeout=30) as client:
            decided = client.post("/v1/intents", headers=auth(TRADER), json={
                "type": "intent", "intent_id": "before-sigterm",
                "ts": now.isoformat().replace("+00:00", "Z"), "account": "ACC-1",
                "strategy": "momo", "symbol": "AAPL", "side": "buy", "qty": "10"})
            assert decided.status_code == 200, decided.text
    finally:
        code = stop(served)  # SIGTERM
    text = log.read_text()
    assert code == 0, text
    assert "journal.closed" in text, text  # Runtime.close ran: last flush, lock released
