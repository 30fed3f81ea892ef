"""mkdocs hook: fill every `<!-- gen:NAME -->` marker line with `gen.render(NAME)` at build
time, so reference pages are always generated from the code they describe."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen

MARKER = re.compile(r"^<!-- gen:(\w+) -->$", re.MULTILINE)


def expand(markdown: str) -> str:
    """The page with each marker replaced by its generated Markdown."""
    return MARKER.sub(lambda found: gen.render(found.group(1)).rstrip(), markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown)
