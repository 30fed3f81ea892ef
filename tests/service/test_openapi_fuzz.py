"""schemathesis against /v1/openapi.json of a real gateway: whatever it sends, no 5xx.

Two passes: a trader token for POST /v1/intents (so bodies reach the decoder and the engine)
and an operator token for every other route. The SSE stream is left out (it never ends)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.support import OPERATOR, TRADER, Served

pytestmark = pytest.mark.slow

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


def _run(served: Served, token: str, *filters: str) -> subprocess.CompletedProcess[str]:
    assert SCHEMATHESIS is not None
    command = [SCHEMATHESIS, "run", f"{served.url}/v1/openapi.json",
               "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing",
               "--max-examples", "10", "--workers", "1", "--request-timeout", "10",
               "--seed", "1", "--no-color",
               "-H", f"Authorization: Bearer {token}", *filters]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (dev extra)")
def test_no_request_from_the_openapi_document_causes_a_server_error(served: Served) -> None:
    intents = _run(served, TRADER, "--include-path", "/v1/intents")
    assert intents.returncode == 0, intents.stdout[-4000:] + intents.stderr[-2000:]
    rest = _run(served, OPERATOR, "--exclude-path", "/v1/intents",
                "--exclude-path", "/v1/events")
    assert rest.returncode == 0, rest.stdout[-4000:] + rest.stderr[-2000:]
