"""Engine snapshots as files beside an SQLite journal (`<journal>.snapshots/`).

The runtime writes them from a forked child process (`runtime.loop`), so a snapshot of a large
state costs the order path nothing: the child encodes the copy-on-write image of the engine
and writes it here, while the parent goes on deciding. A file is written under a temporary
name, fsynced and renamed, so a reader sees a complete file or none. It names the journal
record it was taken at and that record's hash; like a snapshot stored in the journal, it is
used only if that record is in the chain with that hash and a later record attests the digest
in its header (`journal.attestation`); the digest is checked against the state when it is
read. This module touches no SQLite connection: a forked child must not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from ordergate.journal.attestation import DIGEST_PREFIX
from ordergate.journal.chain import SnapshotDamaged

SUFFIX = ".snap"
_UNFINISHED = ".tmp"
_UNFINISHED_NAME = re.compile(r"[0-9]{20}" + re.escape(SUFFIX + _UNFINISHED))
"""A file `write` had not finished (`path_for`'s name + `.tmp`): nothing else is removed."""
_MAGIC = b"ordergate-snapshot 1\n"
_HEADER_LIMIT = 512


def directory_for(journal_path: str) -> Path:
    return Path(journal_path + ".snapshots")


def path_for(directory: Path, seq: int) -> Path:
    """The file of the snapshot taken at journal record `seq`."""
    return directory / f"{seq:020d}{SUFFIX}"


def write(directory: Path, seq: int, chain_hash: str, state: bytes) -> str:
    """Write the snapshot at journal record `seq` durably; returns the digest of its state
    (`attestation.state_digest`), the one its header holds."""
    digest = hashlib.sha256(state).hexdigest()
    header = _MAGIC + f"{seq} {chain_hash} {digest} {len(state)}\n".encode()
    final = path_for(directory, seq)
    temporary = final.with_name(final.name + _UNFINISHED)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    renamed = False
    try:
        try:
            for chunk in (header, state):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        renamed = True
    finally:
        if not renamed:
            # A part written (the disk filled, say) is never used: it would only keep the
            # space taken, one more for every snapshot that fails while the disk is full.
            with contextlib.suppress(OSError):
                temporary.unlink()
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return DIGEST_PREFIX + digest


def header_digest(directory: Path, seq: int) -> str | None:
    """The digest the header of the snapshot file at `seq` holds (its first bytes only), or
    None if there is no such file."""
    path = path_for(directory, seq)
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEADER_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotDamaged(f"{path}: cannot read the snapshot: {exc}") from exc
    return DIGEST_PREFIX + _parse(head, path)[2]


def index(directory: Path) -> list[tuple[int, str]]:
    """(seq, chain_hash) of every snapshot file with a readable header, newest first."""
    return _scan(directory)[0]


def unreadable(directory: Path) -> list[tuple[int, str]]:
    """(seq, why) of every snapshot file (named by `path_for`) whose header cannot be read:
    cut short or overwritten. `index` leaves them out, so they are never used, but one the
    journal attests was stored whole, so it is damage (`journal verify` reports it)."""
    return _scan(directory)[1]


def _scan(directory: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """`index`, and `unreadable` in seq order."""
    if not directory.is_dir():
        return [], []
    found = []
    damaged = []
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            with path.open("rb") as handle:
                seq, chain_hash, _, _ = _parse(handle.read(_HEADER_LIMIT), path)
        except (OSError, SnapshotDamaged) as exc:
            named = path.name.removesuffix(SUFFIX)
            if len(named) == 20 and named.isdigit() and named.isascii():
                damaged.append((int(named), _reason(exc, path)))
            continue  # unreadable: never offered, so never trusted
        found.append((seq, chain_hash))
    return sorted(found, reverse=True), sorted(damaged)


def _reason(exc: OSError | SnapshotDamaged, path: Path) -> str:
    if isinstance(exc, OSError):
        return f"{path}: cannot read the snapshot: {exc.strerror or exc}"
    return str(exc)


def read(directory: Path, seq: int) -> tuple[bytes, str]:
    """The state in the snapshot file at `seq`, checked against the digest in its header,
    and that digest (`attestation.state_digest`)."""
    path = path_for(directory, seq)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotDamaged(f"{path}: cannot read the snapshot: {exc}") from exc
    stored_seq, _, digest, length = _parse(data[:_HEADER_LIMIT], path)
    state = data[data.index(b"\n", len(_MAGIC)) + 1:]
    if stored_seq != seq or len(state) != length or \
            hashlib.sha256(state).hexdigest() != digest:
        raise SnapshotDamaged(f"{path}: the snapshot is damaged (its digest or length differs)")
    return state, DIGEST_PREFIX + digest


def snapshot_files(directory: Path) -> list[Path]:
    """Every snapshot file (finished) in `directory`, readable or not, by name."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob(f"*{SUFFIX}") if path.is_file())


def remove_unfinished(directory: Path) -> None:
    """Delete the files a snapshot write left unfinished in `directory` (a write that failed,
    a process killed while it wrote): named as `write` names them, nothing else. Raises
    OSError if the directory cannot be read."""
    if not directory.is_dir():
        return
    for stale in directory.iterdir():
        if _UNFINISHED_NAME.fullmatch(stale.name):
            stale.unlink(missing_ok=True)


def prune(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` snapshot files, and any unfinished one."""
    if not directory.is_dir():
        return
    remove_unfinished(directory)
    for seq, _ in index(directory)[keep:]:
        path_for(directory, seq).unlink(missing_ok=True)


def _parse(head: bytes, path: Path) -> tuple[int, str, str, int]:
    if not head.startswith(_MAGIC) and not _MAGIC.startswith(head):
        raise SnapshotDamaged(f"{path}: not an ordergate snapshot file")
    if b"\n" not in head[len(_MAGIC):]:
        raise SnapshotDamaged(f"{path}: the snapshot header is cut short")
    line = head[len(_MAGIC):head.index(b"\n", len(_MAGIC))].decode("ascii", "replace")
    parts = line.split(" ")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[3].isdigit():
        raise SnapshotDamaged(f"{path}: the snapshot header is damaged")
    return int(parts[0]), parts[1], parts[2], int(parts[3])
