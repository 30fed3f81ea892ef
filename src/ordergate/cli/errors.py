"""How the CLI fails. Exit codes are part of the external contract:
0 success, 1 a policy/data error the user can fix, 2 usage, 3 a safety stop."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ordergate.journal import redact_url

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
