"""`ordergate run` on a journal that already read the events file, under its name or another.

A restart applies no line twice (docs/deployment.md): not only when the file is the one the
journal read last, but also when other files came in between (day1, day2, day1 again), and
not when the same events come back under a new name (a renamed or copied file) either. Run
again, day1's `account` line would fund the account anew, forgetting the day's loss: an
intent the daily loss limit denies (LOS-001) would then be allowed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.evidence.support import invoke

from ordergate.engine.status import EngineStatus
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.runtime.loop import rebuild
from ordergate.runtime.sources import SourceMark, decode_note

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: acct-test}
defaults:
  max_market_data_age: 1h
  max_order_qty: 500
  max_daily_loss: 1000
"""


def _market(ts: str, bid: str, ask: str, last: str) -> str:
    return json.dumps({"type": "market", "ts": ts, "symbol": "AAPL", "bid": bid, "ask": ask,
                       "last": last})


def _buy(ts: str, intent_id: str) -> str:
    return json.dumps({"type": "intent", "ts": ts, "intent_id": intent_id, "account": "ACC-1",
                       "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "100"})


# The account is funded, buys 200 AAPL and loses 1,700 on them: i-3 is denied LOS-001.
DAY1 = [
    json.dumps({"type": "account", "ts": "2026-03-02T14:30:00Z", "account": "ACC-1",
                "cash": "100000"}),
    _market("2026-03-02T14:30:00Z", "189.99", "190.01", "189.99"),
    _buy("2026-03-02T14:30:01Z", "i-1"),
    _market("2026-03-02T14:31:00Z", "180.99", "181.01", "180.99"),
    _buy("2026-03-02T14:31:01Z", "i-2"),
    _market("2026-03-02T14:32:00Z", "176.99", "177.01", "175.99"),
    _buy("2026-03-02T14:32:01Z", "i-3"),
]
DAY2 = [_market("2026-03-02T14:40:00Z", "176.99", "177.01", "176.99")]
DAY3 = [_market("2026-03-02T14:41:00Z", "176.99", "177.01", "176.99"),
        _buy("2026-03-02T14:41:01Z", "i-4")]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _run(tmp_path: Path, journal: str, events: Path) -> tuple[int, str, list[dict[str, str]]]:
    """Exit code, everything said (stdout and stderr, unwrapped) and the decisions shown."""
    policy = tmp_path / "policy.yaml"
    if not policy.exists():
        policy.write_text(POLICY)
    result = invoke("run", "--batch-size", "1", "--policy", str(policy), "--journal",
                    str(tmp_path / journal), str(events))
    decisions = [json.loads(line) for line in result.output.splitlines()
                 if line.startswith('{"type":"decision"')]
    return result.code, " ".join(result.output.split()), decisions


def _lines_journaled(tmp_path: Path, journal: str) -> list[tuple[str, int]]:
    """(file name, line) of every source event the journal holds, in journal order."""
    handle = open_journal(f"sqlite:///{tmp_path / journal}", durability=Durability.NONE,
                          create=False, reader=True)
    try:
        lines: list[tuple[str, int]] = []
        mark: SourceMark | None = None
        taken = 0
        for record in handle.read(1):
            if record.kind is RecordKind.META:
                note = decode_note(record.payload)
                if note is not None:
                    mark = note if isinstance(note, SourceMark) else None
                    taken = 0
            elif record.kind is RecordKind.INPUT and mark is not None:
                lines.append((mark.source, mark.line + taken))
                taken += 1
        return lines
    finally:
        handle.close()


def _status(tmp_path: Path, journal: str) -> EngineStatus:
    return rebuild(f"sqlite:///{tmp_path / journal}").status()


def test_a_file_run_again_after_another_applies_nothing_and_says_so(tmp_path: Path) -> None:
    day1 = _write(tmp_path / "day1.jsonl", DAY1)
    day2 = _write(tmp_path / "day2.jsonl", DAY2)
    day3 = _write(tmp_path / "day3.jsonl", DAY3)
    # what the days give when each is run once
    for events in (day1, day2, day3):
        assert _run(tmp_path, "once.db", events)[0] == 0
    once = _status(tmp_path, "once.db")

    for events in (day1, day2):
        assert _run(tmp_path, "again.db", events)[0] == 0
    held = _lines_journaled(tmp_path, "again.db")
    code, said, decisions = _run(tmp_path, "again.db", day1)
    assert code == 0
    assert decisions == []
    assert (f"nothing new: {day1} was read to its end before (this journal holds its lines "
            "through line 7), so no line of it was applied again") in said
    assert _lines_journaled(tmp_path, "again.db") == held
    # the account was not funded again: its equity and the day's loss are as they were
    assert _status(tmp_path, "again.db").accounts == _status(tmp_path, "once.db").accounts

    code, _, decisions = _run(tmp_path, "again.db", day3)
    assert code == 0
    assert [(d["intent_id"], d["decision"], d.get("blocking")) for d in decisions] == [
        ("i-4", "DENY", "LOS-001")]
    again = _status(tmp_path, "again.db")
    assert (again.accounts, again.positions) == (once.accounts, once.positions)
    assert [account.equity for account in again.accounts] == [98_300]


def test_a_file_cut_short_goes_on_after_its_last_line_when_run_again_later(
        tmp_path: Path) -> None:
    """day1's first four lines were written (and run) when day2 came; run again once the
    file is whole, day1 goes on at line 5."""
    day1 = _write(tmp_path / "day1.jsonl", DAY1[:4])
    day2 = _write(tmp_path / "day2.jsonl", DAY2)
    for events in (day1, day2):
        assert _run(tmp_path, "journal.db", events)[0] == 0
    _write(day1, DAY1)
    code, _, decisions = _run(tmp_path, "journal.db", day1)
    assert code == 0
    assert [d["intent_id"] for d in decisions] == ["i-2", "i-3"]  # i-1 was decided before
    assert _lines_journaled(tmp_path, "journal.db") == [
        *(("day1.jsonl", line) for line in range(1, 5)), ("day2.jsonl", 1),
        *(("day1.jsonl", line) for line in range(5, 8))]


def test_a_renamed_copy_of_a_file_already_read_is_refused(tmp_path: Path) -> None:
    day1 = _write(tmp_path / "day1.jsonl", DAY1)
    day2 = _write(tmp_path / "day2.jsonl", DAY2)
    for events in (day1, day2):
        assert _run(tmp_path, "journal.db", events)[0] == 0
    held = _lines_journaled(tmp_path, "journal.db")
    copy = _write(tmp_path / "day1-copy.jsonl", DAY1)
    code, said, decisions = _run(tmp_path, "journal.db", copy)
    assert code == 1
    assert decisions == []
    assert (f"{copy}: its first 7 events are already in this journal, read from 'day1.jsonl'"
            in said)
    assert "run it under its journaled name 'day1.jsonl'" in said
    assert _lines_journaled(tmp_path, "journal.db") == held
    # also when the copy is the file the journal read last
    code, said, _ = _run(tmp_path, "other.db", day1)
    assert code == 0
    code, said, _ = _run(tmp_path, "other.db", copy)
    assert code == 1
    assert "read from 'day1.jsonl'" in said


def test_a_file_that_starts_with_a_whole_shorter_file_already_read_is_refused_as_such(
        tmp_path: Path) -> None:
    """Not called a copy of that file (it is longer): its repeated opening lines are named."""
    opening = _write(tmp_path / "opening.jsonl", DAY1[:2])
    assert _run(tmp_path, "journal.db", opening)[0] == 0
    held = _lines_journaled(tmp_path, "journal.db")
    day = _write(tmp_path / "day.jsonl", DAY1)
    code, said, decisions = _run(tmp_path, "journal.db", day)
    assert code == 1 and decisions == []
    said = " ".join(said.split())
    assert (f"{day}: its first 2 events are the 2 events this journal read from "
            "'opening.jsonl'") in said, said
    assert "take those lines out of it" in said
    assert "run it under its journaled name" not in said
    assert _lines_journaled(tmp_path, "journal.db") == held


def test_a_file_of_an_earlier_name_with_other_lines_is_refused(tmp_path: Path) -> None:
    day1 = _write(tmp_path / "day1.jsonl", DAY1)
    day2 = _write(tmp_path / "day2.jsonl", DAY2)
    for events in (day1, day2):
        assert _run(tmp_path, "journal.db", events)[0] == 0
    held = _lines_journaled(tmp_path, "journal.db")
    _write(day1, [*DAY1[:6], _buy("2026-03-02T14:32:01Z", "i-3b")])
    code, said, decisions = _run(tmp_path, "journal.db", day1)
    assert code == 1
    assert decisions == []
    assert (f"{day1}: line 7 differs from what this journal recorded from a file of this "
            "name") in said
    assert _lines_journaled(tmp_path, "journal.db") == held


def test_a_new_file_of_later_events_starts_at_its_first_line(tmp_path: Path) -> None:
    """Its first event is newer than any the journal holds: read from line 1, no lookup."""
    day1 = _write(tmp_path / "day1.jsonl", DAY1)
    day3 = _write(tmp_path / "day3.jsonl", DAY3)
    assert _run(tmp_path, "journal.db", day1)[0] == 0
    code, said, decisions = _run(tmp_path, "journal.db", day3)
    assert code == 0
    assert "nothing new" not in said
    assert [d["intent_id"] for d in decisions] == ["i-4"]
    assert _lines_journaled(tmp_path, "journal.db")[-2:] == [("day3.jsonl", 1), ("day3.jsonl", 2)]
