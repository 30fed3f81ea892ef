"""Shared fixtures. Tests of PostgreSQL and Redis features use the real servers on loopback;
they skip with a clear message when a server is absent, unless ORDERGATE_REQUIRE_SERVICES=1
(set by CI), where absence fails the test."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

POSTGRES_HOST = os.environ.get("ORDERGATE_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("ORDERGATE_TEST_PG_PORT", "5432"))
REDIS_HOST = os.environ.get("ORDERGATE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("ORDERGATE_TEST_REDIS_PORT", "6379"))


def services_required() -> bool:
    return os.environ.get("ORDERGATE_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and ORDERGATE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; start it or set ORDERGATE_REQUIRE_SERVICES=1 to make this a failure")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema in the `test` database; dropped afterwards."""
    need_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    import psycopg

    base = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"
    schema = f"og_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL with a unique key prefix in `ORDERGATE_TEST_REDIS_PREFIX`; keys removed after."""
    need_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    prefix = f"ogtest:{uuid.uuid4().hex[:12]}:"
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    os.environ["ORDERGATE_TEST_REDIS_PREFIX"] = prefix
    try:
        yield url
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


@pytest.fixture(scope="session")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ordergate demo` output (events.jsonl, policy.yaml, journal.db), written once per session
    and shared by the evidence and analytics tests."""
    from tests.evidence.support import invoke

    out = tmp_path_factory.mktemp("demo")
    result = invoke("demo", "--out", str(out))
    assert result.code == 0, result.output
    return out


@pytest.fixture(autouse=True)
def _structlog_config_restored() -> Iterator[None]:
    """A CLI test configures structlog for its process (stderr, warnings and up); the next
    test starts from the configuration every test starts with, whatever ran before it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
