"""How the CLI fails. Exit codes are part of the external contract:
0 success, 1 a policy/data error the user can fix, 2 usage, 3 a safety stop."""

from __future__ import annotations

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
