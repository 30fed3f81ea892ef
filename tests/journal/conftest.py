"""Journal fixtures: one `backend` parameter over SQLite (a temp file) and PostgreSQL (the real
server, a fresh schema and stream per test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from journal_support import Backend


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'journal.db'}")
    else:
        base = request.getfixturevalue("postgres_url")
        yield Backend("postgres", f"{base}&stream=shard-{uuid.uuid4().hex[:6]}")

