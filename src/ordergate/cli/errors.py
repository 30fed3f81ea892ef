"""How the CLI fails. Exit codes are part of the external contract:
0 success, 1 a policy/data error the user can fix, 2 usage, 3 a safety stop."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ordergate.journal import JournalError, redact_url, writer_lock_path
from ordergate.journal.headfile import head_path
from ordergate.journal.snapfiles import directory_for
from ordergate.journal.urls import Backend, parse_journal_url

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_SAFETY_STOP = 3


class UserError(Exception):
    """A problem in the user's files or data; the message names the file, line or field."""

    exit_code = EXIT_USER_ERROR


class SafetyStop(Exception):
    """Something that must stop the operator cold (e.g. journal verification failed)."""

    exit_code = EXIT_SAFETY_STOP


def journal_problem(journal: str, exc: Exception) -> str:
    """What went wrong with the journal the user named as `journal`, said once: a journal's
    own errors begin with where it is, so the user's value is added only when the message does
    not name it. Passwords in either are masked."""
    text = redact_url(str(exc))
    where = redact_url(journal)
    path = where.removeprefix("sqlite://").removeprefix("/") if where.startswith("sqlite:") \
        else where
    if where in text or (path and path in text):
        return text
    return f"{where}: {text}"


def require_writable_dir(directory: Path, flag: str = "--out") -> None:
    """A directory the command cannot write into is the user's to fix (exit 1), found before
    anything runs. A probe file tells what permissions do not (root, read-only mounts, /sys)."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".ordergate-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{flag} {directory}: cannot write into the directory: "
                        f"{exc.strerror or exc}") from None


def journal_files(url: str) -> list[tuple[str, str]]:
    """(real path, what it is) of every file a SQLite journal at `url` is made of: the
    database, SQLite's own companions, the head file, the writer lock, the run manifest;
    the snapshot directory ends in a separator (everything under it counts). None for a
    database journal (or a URL that does not parse: opening it says why)."""
    # The manifest module brings in the policy loader, which most commands never need.
    from ordergate.evidence.manifest import manifest_path

    try:
        location = parse_journal_url(url)
    except JournalError:
        return []
    if location.backend is not Backend.SQLITE:
        return []
    target = location.target
    files = [(target, "the journal"), (target + "-wal", "the journal's write-ahead log"),
             (target + "-shm", "the journal's shared-memory file"),
             (target + "-journal", "the journal's rollback journal"),
             (writer_lock_path(target), "the journal's writer lock"),
             (str(directory_for(target)) + os.sep, "the journal's snapshot directory")]
    head, manifest = head_path(url), manifest_path(url)
    if head is not None:
        files.append((str(head), "the journal's head file"))
    if manifest is not None:
        files.append((str(manifest), "the journal's run manifest"))
    return [(os.path.realpath(path) + (os.sep if path.endswith(os.sep) else ""), what)
            for path, what in files]


def journal_file_at(journal: str, path: Path) -> str | None:
    """What `path` is of the journal at `journal` (through a symbolic link, a `..` or a hard
    link), said as "the journal" or "in the journal's snapshot directory"; None when it is
    none of its files."""
    real = os.path.realpath(path)
    for file, what in journal_files(journal):
        if file.endswith(os.sep) and (real + os.sep).startswith(file):
            return what if real + os.sep == file else f"in {what}"
        if real == file or (path.exists() and os.path.exists(file)
                            and os.path.samefile(path, file)):
            return what
    return None


def refuse_journal_output(journal: str, option: str, path: Path, *, force_option: str = "",
                          kind: str = "file") -> None:
    """Refuse, before anything is written, an output `path` (a `kind`) that is the journal
    being read or one of its files (`journal_file_at`). A command with an overwrite option
    names it as `force_option`: it does not change the refusal."""
    what = journal_file_at(journal, path)
    if what is not None:
        unchanged = f" ({force_option} does not change that)" if force_option else ""
        raise UserError(f"{option} {path}: is {what} ({redact_url(journal)}); ordergate "
                        f"never writes over the journal it reads{unchanged}: choose another "
                        f"{kind}")
