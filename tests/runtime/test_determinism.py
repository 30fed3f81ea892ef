"""Invariant 4, determinism: the same events file run twice, in two separately started
`ordergate run` processes, gives byte-identical stdout and journal payloads.

Left out of the comparison by design, because they say which process wrote a record and
when, not what was decided: each record's `run_id` and `recorded_at_ns`, and the META notes
that carry wall-clock measurements (`evidence.*`: the run manifest and per-batch decision
latencies). They still occupy their sequence numbers, so every INPUT and OUTPUT record must
match in seq, kind and payload, and so must every other META record (batch marks).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.journal import Durability, open_journal

ORDERGATE = Path(sys.executable).with_name("ordergate")
WALL_CLOCK_NOTES = b'{"type":"evidence.'


def _run(events: Path, directory: Path) -> bytes:
    directory.mkdir()
    result = subprocess.run(
        [str(ORDERGATE), "run", "--policy", str(demo_policy_path()),
         "--journal", str(directory / "journal.db"), "--fill-model", "next_market",
         "--batch-size", "32", str(events)],
        capture_output=True, check=False, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _records(journal: Path) -> list[tuple[int, str, bytes]]:
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        return [
            (r.seq, r.kind.value, b"" if r.payload.startswith(WALL_CLOCK_NOTES) else r.payload)
            for r in handle.read()
        ]
    finally:
        handle.close()


def test_same_events_give_identical_stdout_and_journal_across_processes(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=40)
    first = _run(events, tmp_path / "one")
    second = _run(events, tmp_path / "two")
    assert first.count(b"\n") > 50 and b'"type":"decision"' in first
    assert first == second
    one = _records(tmp_path / "one" / "journal.db")
    two = _records(tmp_path / "two" / "journal.db")
    assert len(one) > 300
    assert one == two
