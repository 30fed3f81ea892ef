"""Shared rich consoles: results go to stdout, human summaries and errors to stderr.

Markup is ours only: anything that comes from the user's files or the journal (names, ids,
reasons, paths, error messages) goes through `plain` before it meets markup, so a `[/]` in
an account name or a reason is shown as written instead of breaking the output. Emoji codes
are off: `feed:x:` is a dependency's name, not a cross."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


def plain(value: object) -> str:
    """`value` as text that rich markup prints literally."""
    return escape(str(value))
