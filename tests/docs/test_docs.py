"""The docs cannot rot: the site builds with `mkdocs build --strict`, the generated reference
pages hold everything the code defines, and every shell and Python block in every page runs.

A block that must not run (live trading, long-running servers, the whole test suite) is marked
with `<!-- docs-test: skip (why) -->` on the line just before its fence."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(DOCS))

import gen  # noqa: E402
import hooks  # noqa: E402

RUNNABLE = {"bash": "bash", "sh": "bash", "python": "python"}
SKIP = "<!-- docs-test: skip"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    skipped: bool


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append(Block(page=str(page.relative_to(DOCS)),
                           line=text.count("\n", 0, match.start()) + 1,
                           language=match.group(1), code=match.group(2),
                           skipped=before.startswith(SKIP)))
    return found


PAGES = sorted(DOCS.rglob("*.md"))


def test_every_skipped_block_says_why() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith(SKIP):
                assert re.match(r"<!-- docs-test: skip \(.+\) -->$", line), (page, line)


def test_most_shell_and_python_blocks_run() -> None:
    every = [b for page in PAGES for b in blocks(page) if b.language in RUNNABLE]
    skipped = [b for b in every if b.skipped]
    assert every and len(skipped) < len(every) / 2, [f"{b.page}:{b.line}" for b in skipped]


@pytest.mark.parametrize("page", [p for p in PAGES if any(
    b.language in RUNNABLE and not b.skipped for b in blocks(p))],
    ids=lambda p: str(p.relative_to(DOCS)))
def test_every_code_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    """Blocks of one page run in order in one fresh directory (with a copy of examples/), as a
    reader following the page would run them."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ORDERGATE_", "ALPACA_", "DERIBIT_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    started: list[int] = []
    try:
        for number, block in enumerate(blocks(page)):
            if block.language not in RUNNABLE or block.skipped:
                continue
            if RUNNABLE[block.language] == "bash":
                command = ["bash", "-eo", "pipefail", "-c", block.code]
            else:
                script = tmp_path / f"block_{number}.py"
                script.write_text(block.code, encoding="utf-8")
                command = [str(BIN / "python"), str(script)]
            process = subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
            started.append(process.pid)
            try:
                out, err = process.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
                pytest.fail(f"{block.page}:{block.line}: timed out\n{out}\n{err}")
            assert process.returncode == 0, (
                f"{block.page}:{block.line} ({block.language}) failed with exit "
                f"{process.returncode}\n--- stdout\n{out}\n--- stderr\n{err}")
            assert "Traceback" not in err, f"{block.page}:{block.line}\n{err}"
    finally:
        # Anything a block left running in the background (a served gateway) ends here.
        for pgid in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    reasons = (site / "reference" / "reasons" / "index.html").read_text(encoding="utf-8")
    assert "KIL-001" in reasons and "MKT-002" in reasons
    assert "gen:" not in (site / "performance" / "index.html").read_text(encoding="utf-8")


def test_generated_pages_hold_everything_the_code_defines() -> None:
    from ordergate.model.reasons import all_reasons
    from ordergate.service.openapi import ROUTES

    reasons = hooks.expand("<!-- gen:reasons -->")
    assert all(f"`{code.id}`" in reasons for code in all_reasons())
    http = hooks.expand("<!-- gen:http -->")
    assert all(f"`{route.method} {route.path}`" in http for route in ROUTES)
    cli = hooks.expand("<!-- gen:cli -->")
    for command in ("ordergate run", "ordergate serve", "ordergate journal verify",
                    "ordergate drill break-glass", "ordergate policy schema"):
        assert f"### `{command}`" in cli
    policy = hooks.expand("<!-- gen:policy -->")
    for section, field, _, _ in gen.policy_fields():
        assert f"`{field}`" in policy, f"{section}.{field}"


def test_every_policy_field_is_explained() -> None:
    assert gen.missing_field_docs() == []


def test_every_marker_names_a_generator() -> None:
    for page in PAGES:
        for name in hooks.MARKER.findall(page.read_text(encoding="utf-8")):
            assert name in gen.GENERATORS, f"{page}: unknown generator {name}"
