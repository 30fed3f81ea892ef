"""Where the CLI's library logs go: stderr, resolved at the moment each line is written.

structlog's PrintLoggerFactory(file=sys.stderr) binds the stream when it is configured. A
command run inside another program that swaps stderr and closes it afterwards (a test runner,
an embedding application) would leave every later log line pointing at a closed file; this
logger looks stderr up on every write instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class StderrLogger:
    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def stderr_logger_factory(*_args: Any) -> StderrLogger:
    return StderrLogger()


def configure_stderr_logging(level: int = logging.WARNING) -> None:
    """Plain, human-readable lines on stderr from `level` up."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=stderr_logger_factory,
        cache_logger_on_first_use=False,
    )
