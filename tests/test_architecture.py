"""The house plan's structural promises, checked on the source itself (ARCHITECTURE.md):
imports point downward only, only `journal/` knows its backends, and the core does no I/O
and reads no clock or random source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ordergate"

# layer of each top-level package/module: a module may import its own layer or lower ones
LAYERS = {
    "model": 0,
    "gate": 1, "policy": 1, "engine": 1,
    "journal": 2, "evidence": 2,
    "runtime": 3, "brokers": 3, "resilience": 3, "analytics": 3, "compliance": 3, "chaos": 3,
    "cli": 4, "service": 4, "client": 4, "gateway": 4,
}
CORE = ("model", "gate", "policy", "engine")
# modules the deterministic core may not import: clocks, randomness, processes, sockets, files
CORE_FORBIDDEN = {"time", "random", "secrets", "socket", "subprocess", "threading", "asyncio",
                  "sqlite3", "psycopg", "redis", "httpx", "requests", "uuid"}
CORE_FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "urandom"}


def modules() -> Iterator[tuple[Path, str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        top = path.relative_to(SRC).parts[0].removesuffix(".py")
        yield path, top, ast.parse(path.read_text(), filename=str(path))


def imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def test_imports_point_downward_only() -> None:
    upward = []
    for path, top, tree in modules():
        if top not in LAYERS:
            continue
        for line, name in imported(tree):
            parts = name.split(".")
            if parts[0] != "ordergate" or len(parts) < 2 or parts[1] not in LAYERS:
                continue
            if LAYERS[parts[1]] > LAYERS[top]:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not upward, "\n".join(upward)


def test_every_package_has_a_layer() -> None:
    tops = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in SRC.rglob("*.py")}
    assert tops - set(LAYERS) <= {"__init__", "data"}


def test_only_the_journal_package_imports_a_journal_backend() -> None:
    backends = {"ordergate.journal.sqlite", "ordergate.journal.postgres"}
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path, top, tree in modules() if top != "journal"
        for line, name in imported(tree) if name in backends
    ]
    assert not offenders, offenders


def test_core_reads_no_clock_randomness_or_io() -> None:
    offenders = []
    for path, top, tree in modules():
        if top not in CORE:
            continue
        for line, name in imported(tree):
            if name.split(".")[0] in CORE_FORBIDDEN:
                offenders.append(f"{path.relative_to(SRC)}:{line} imports {name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in CORE_FORBIDDEN_CALLS):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} calls .{node.func.attr}()")
    assert not offenders, "\n".join(offenders)
