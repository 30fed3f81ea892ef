from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from client_support import Served, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)
