from __future__ import annotations

from pathlib import Path

import pytest
from tests.evidence.support import invoke


@pytest.fixture(scope="session")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ordergate demo` output (events.jsonl, policy.yaml, journal.db), written once."""
    out = tmp_path_factory.mktemp("demo")
    result = invoke("demo", "--out", str(out))
    assert result.code == 0, result.output
    return out
