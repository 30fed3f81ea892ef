"""The head file: the newest record's seq and hash, kept beside a file journal.

A hash chain shows any record edited, removed or reordered before its newest record, and the
snapshots anchor it, but records cut from the end after the newest snapshot leave a shorter
chain that is still intact. So does an older copy of the journal restored over the current
one. A journal that closes healthy after appending therefore writes `<journal>.head` next to
its SQLite file: which journal it belongs to (the hash of record 1), and the seq and hash of
its newest record. `journal verify`, `replay verify` and every start-up check the journal
against it (`file_heads`), as they check a head given with `--head`.

The file proves nothing against someone who can rewrite both it and the journal (keep heads
off the host for that: docs/deployment.md); it catches the cut or the restored copy that
nobody meant to make. It only ever lags the journal (it is written at a clean close; a crash
leaves the previous one), so a journal that kept writing after it is never refused. A head
file of another journal (another journal's file put in its place; start-up creates no new
journal beside a head file left behind, `journal.sqlite`) is ignored with a note, and so is
one that cannot be read: the chain is still checked.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import msgspec

from ordergate.journal.base import Journal
from ordergate.journal.urls import Backend, parse_journal_url

HEAD_SUFFIX = ".head"
HASH_PREFIX = "sha256:"


class HeadFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What `<journal>.head` holds (JSON). Hashes are `sha256:` + 64 hex digits."""

    first: str  # record 1's hash: which journal this head belongs to
    seq: int
    hash: str


_decoder = msgspec.json.Decoder(HeadFile)
_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def head_path(url: str) -> Path | None:
    """`<journal file>.head` for a SQLite journal; None for a database journal."""
    location = parse_journal_url(url)
    if location.backend is not Backend.SQLITE:
        return None
    return Path(location.target + HEAD_SUFFIX)


def write_head(path: Path, first: str, seq: int, chain_hash: str) -> None:
    """Replace the head file atomically (a temporary file renamed over it). Raises OSError."""
    body = msgspec.json.encode(
        HeadFile(first=HASH_PREFIX + first, seq=seq, hash=HASH_PREFIX + chain_hash))
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(body + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def file_heads(journal: Journal) -> tuple[list[tuple[int, str]], str]:
    """The head kept in the journal's head file, as `check_heads` takes heads, and a note for
    the operator when there is a file but it is not used (empty when there is none, or when
    it is used). No head file, or a database journal: no heads."""
    path = head_path(journal.url)
    if path is None:
        return [], ""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], ""
    except OSError as exc:
        return [], f"head file {path} not read ({exc.strerror or exc}); the chain alone checked"
    try:
        head = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        return [], f"head file {path} is not a head ({exc}); the chain alone checked"
    if not (_HASH.fullmatch(head.first) and _HASH.fullmatch(head.hash) and head.seq >= 1):
        return [], f"head file {path} is not a head (a bad seq or hash); the chain alone checked"
    first = next((record.hash for record in journal.read(1, 1)), None)
    if first is None or HASH_PREFIX + first != head.first:
        return [], (f"head file {path} belongs to another journal (its record 1 differs); "
                    "ignored: delete it if that journal is gone")
    return [(head.seq, head.hash.removeprefix(HASH_PREFIX))], ""
