"""Shared rich consoles: results go to stdout, human summaries and errors to stderr.

Markup is ours only: anything that comes from the user's files or the journal (names, ids,
reasons, paths, error messages) goes through `plain` before it meets markup, so a `[/]` in
an account name or a reason is shown as written instead of breaking the output. Emoji codes
are off: `feed:x:` is a dependency's name, not a cross.

Output never fails on a character the terminal cannot take: in a locale whose encoding is
not UTF-8 (`LANG=C`) our typographic marks are written as ASCII (`…` as `...`, `µs` as `us`)
and anything else as a backslash escape, instead of a UnicodeEncodeError cutting a table off
before the verdict (a failed `replay verify` must still say SAFETY STOP and exit 3). JSON
Lines results are bytes written to `sys.stdout.buffer`, so this touches them in no locale."""

from __future__ import annotations

import codecs
import io
import sys

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

# The marks our own words use, as a terminal without them should read them.
_ASCII_MARKS = {"…": "...", "·": "-", "—": "--", "–": "-", "→": "->", "•": "*", "×": "x",
                "µ": "u", "Σ": "sum", "²": "^2"}
ENCODING_ERRORS = "ordergate-ascii"


def _ascii_marks(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    unwritable = error.object[error.start:error.end]
    written = "".join(_ASCII_MARKS.get(char)
                      or char.encode("ascii", "backslashreplace").decode("ascii")
                      for char in unwritable)
    return written, error.end


codecs.register_error(ENCODING_ERRORS, _ascii_marks)


def _writes_unicode(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def guard_output_encoding() -> None:
    """Make stdout and stderr take any text: streams in an encoding that is not UTF-8 write
    what it lacks as `_ascii_marks` says, and a strict UTF-8 stdout escapes what UTF-8 cannot
    encode (a lone surrogate from an undecodable file name). Text UTF-8 can encode is written
    exactly as before."""
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):
            continue  # replaced (a test's capture, an embedding host): not ours to change
        if not _writes_unicode(stream.encoding) or stream.errors == "strict":
            stream.reconfigure(errors=ENCODING_ERRORS)


def print_json(document: bytes) -> None:
    """One JSON document (UTF-8 bytes) on stdout, then a newline, as bytes: no locale's
    encoding touches what is inside its strings (`guard_output_encoding` would escape them, and
    the result would no longer be JSON). A stdout without bytes (a test's capture) takes text."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        out.print(document.decode(), markup=False, highlight=False)
        return
    out.file.flush()
    sys.stdout.flush()
    buffer.write(document + b"\n")
    buffer.flush()


def plain(value: object) -> str:
    """`value` as text that rich markup prints literally."""
    return escape(str(value))
