"""Named crash points for the crash-restart proof.

The runtime calls `crossing(point)` at every step where a real crash could hurt: between
journaling an input and handling it, between a flush and a submit, after a broker answered
but before the answer is journaled, and so on. When the environment variable
`ORDERGATE_FAULT_KILL_AT` is set to `"<point>:<n>"`, the n-th crossing of `<point>` sends the
process a real SIGKILL: no `finally`, no flush, no atexit, exactly like a power cut or an
OOM kill. When the variable is unset, `crossing` is a module-level no-op function, so the
hot path pays one call and nothing else.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

ENV_VAR = "ORDERGATE_FAULT_KILL_AT"

# Every point the runtime crosses, in the order a batch crosses them (the session close runs
# after the batch that rolls the day). The crash-restart test kills the process at each of
# them that its run crosses.
POINTS: tuple[str, ...] = (
    "after_input_append",  # an input is appended (maybe not yet durable), not yet handled
    "after_engine_handle",  # the engine handled an input, its outputs are not yet appended
    "mid_batch",  # half of a batch is appended
    "before_flush",  # the whole batch is appended, the flush has not happened
    "after_flush",  # the batch is durable, nothing has been acted on
    "before_market_to_broker",  # about to show a market snapshot to a simulated broker
    "before_submit",  # about to call the broker's submit
    "after_submit",  # the broker accepted or rejected, the answer is not yet journaled
    "before_cancel",  # about to call the broker's cancel
    "after_cancel",  # the broker canceled, not yet journaled
    "after_poll",  # broker events polled, not yet journaled
    "after_ack_append",  # broker answers appended, not yet flushed
    "after_feedback_flush",  # broker answers durable
    "before_snapshot",  # about to save a snapshot
    "after_snapshot",  # snapshot saved (in the background: its child forked)
    "before_snapshot_attested",  # a snapshot child stored its snapshot, not yet attested
    "session_close_before_summary",  # a close's cancels are durable, its summary is not
    "after_recovery_replay",  # restart: the journal tail has been replayed
    "after_recovery_resolve",  # restart: unanswered dispatches have been resolved
)


def _noop(point: str) -> None:
    return None


class _KillAt:
    def __init__(self, point: str, nth: int) -> None:
        self.point = point
        self.nth = nth
        self.count = 0

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        self.count += 1
        if self.count == self.nth:
            os.kill(os.getpid(), signal.SIGKILL)


def parse(spec: str) -> tuple[str, int]:
    """`"after_flush:3"` -> ("after_flush", 3); the message names the variable and the fix."""
    point, sep, nth_text = spec.rpartition(":")
    if not sep or point not in POINTS or not nth_text.isdigit() or int(nth_text) < 1:
        known = ", ".join(POINTS)
        raise ValueError(
            f"{ENV_VAR}={spec!r}: expected '<point>:<n>' with n >= 1 and point one of: {known}"
        )
    return point, int(nth_text)


problem = ""
"""Why `ORDERGATE_FAULT_KILL_AT` could not be used ('' when it is unset or valid). Commands
that honour fault plans refuse to start while this is set, instead of running without one."""


def _from_environment() -> Callable[[str], None]:
    global problem
    spec = os.environ.get(ENV_VAR, "")
    problem = ""
    if not spec:
        return _noop
    try:
        point, nth = parse(spec)
    except ValueError as exc:
        problem = str(exc)
        return _noop
    return _KillAt(point, nth)


# Resolved at import: a process is either under a fault plan or not. Callers look it up as
# `faults.crossing(...)` on every call, so `arm_from_environment` takes effect everywhere.
crossing: Callable[[str], None] = _from_environment()


def arm_from_environment() -> None:
    """Re-read the variable (a forked process that changed its environment)."""
    global crossing
    crossing = _from_environment()
