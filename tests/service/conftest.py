from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.support import Served, start


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    gateway = start(tmp_path)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        yield http
