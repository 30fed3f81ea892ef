"""Crash points: `ORDERGATE_FAULT_KILL_AT="<point>:<n>"` kills the process with a real
SIGKILL at exactly the n-th crossing of that point; a malformed plan is reported, not
silently ignored; without a plan crossing a point does nothing."""

from __future__ import annotations

import os

import pytest

from ordergate.runtime import faults


def test_parse_accepts_known_points_and_names_the_variable_on_error() -> None:
    assert faults.parse("after_flush:3") == ("after_flush", 3)
    for bad in ("after_flush", "nowhere:1", "after_flush:0", "after_flush:x"):
        with pytest.raises(ValueError, match=faults.ENV_VAR):
            faults.parse(bad)


def _child_crossings(spec: str, crossings: int) -> tuple[int, int]:
    """(exit code, crossings completed) of a child that crosses `after_flush` repeatedly."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.environ[faults.ENV_VAR] = spec
        faults.arm_from_environment()
        for _ in range(crossings):
            faults.crossing("before_flush")  # another point never counts
            faults.crossing("after_flush")
            os.write(write_end, b".")
        os._exit(0)
    os.close(write_end)
    completed = b""
    while chunk := os.read(read_end, 64):
        completed += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), len(completed)


def test_the_nth_crossing_sends_a_real_sigkill() -> None:
    assert _child_crossings("after_flush:3", 10) == (-9, 2)
    assert _child_crossings("after_flush:11", 10) == (0, 10)


def test_a_malformed_plan_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENV_VAR, "after_flush")
    faults.arm_from_environment()
    try:
        assert faults.ENV_VAR in faults.problem
        faults.crossing("after_flush")  # no plan armed: nothing happens
    finally:
        monkeypatch.delenv(faults.ENV_VAR)
        faults.arm_from_environment()
    assert faults.problem == ""
