"""The command line fed what a clumsy user feeds it: files in the wrong encoding, pipes and
directories for files, names with brackets, timestamps out of order, outputs that cannot be
written. Each answer is one clear line naming the file, line or field (exit 1), never a stack
trace, and what was accepted is neither lost nor duplicated."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.harness import cli, write_jsonl

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: clumsy
defaults:
  max_market_data_age: 15s
  duplicate_window: 5s
  max_daily_loss: 60000
  max_order_qty: 1000
  max_order_value: 250000
  max_position_qty: 10000
  max_gross_exposure: 3000000
"""
WIDE = 400  # one error, one line


def _events(account: str = "DEMO-1") -> list[dict[str, Any]]:
    market = {"type": "market", "symbol": "AAPL", "bid": "189.86", "ask": "189.94",
              "last": "189.90", "volume": "1000"}
    intent = {"type": "intent", "account": account, "strategy": "trend", "symbol": "AAPL",
              "side": "buy", "order_type": "market"}
    return [
        {"type": "account", "account": account, "cash": "1000000",
         "ts": "2026-03-02T14:29:00Z"},
        {**market, "ts": "2026-03-02T14:30:00Z"},
        {**intent, "intent_id": "i1", "qty": "10", "ts": "2026-03-02T14:30:01Z"},
        {**market, "ts": "2026-03-02T14:30:02Z"},
        {**intent, "intent_id": "i2", "qty": "5", "ts": "2026-03-02T14:30:03Z"},
    ]


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _run(policy: Path, journal: Path, events: Path | str) -> Any:
    return cli("run", "--policy", str(policy), "--journal", str(journal), str(events),
               columns=WIDE)


def _printed(stdout: str, kind: str) -> list[dict[str, Any]]:
    return [item for item in map(json.loads, stdout.splitlines()) if item["type"] == kind]


# ------------------------------------------------------------------ events files


def test_an_event_stamped_before_the_orders_does_not_leave_their_fills_at_the_broker(
        policy: Path, tmp_path: Path) -> None:
    # The file's last line is older than both intents: the run's time must not go back with
    # it, or the simulator's fills (stamped at the orders' time) are never collected.
    events = write_jsonl(tmp_path / "events.jsonl",
                         [*_events(), {"type": "clock", "ts": "2026-03-02T09:00:00Z"}])
    result = _run(policy, tmp_path / "j.db", events)
    assert result.returncode == 0, result.stderr
    assert len(_printed(result.stdout, "dispatch")) == 2
    fills = _printed(result.stdout, "fill")
    assert sorted(fill["qty"] for fill in fills) == ["10", "5"]
    status = cli("status", "--journal", str(tmp_path / "j.db"), "--json")
    assert json.loads(status.stdout)["open_orders"] == []


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_line(policy: Path,
                                                                tmp_path: Path) -> None:
    plain_file = write_jsonl(tmp_path / "plain.jsonl", _events())
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain_file.read_bytes())
    journal = tmp_path / "j.db"
    first = _run(policy, journal, with_bom)
    assert first.returncode == 0, first.stderr
    assert len(_printed(first.stdout, "decision")) == 2
    again = _run(policy, journal, with_bom)  # resumes after the last line: nothing twice
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_a_line_that_is_not_utf8_is_named_and_the_lines_before_it_are_kept(
        policy: Path, tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "latin1.jsonl", _events())
    events.write_bytes(events.read_bytes().replace(b'"i2"', b'"i\xe92"'))
    result = _run(policy, tmp_path / "j.db", events)
    assert result.returncode == 1
    assert "latin1.jsonl: line 5: not UTF-8 text (byte 0xe9 at column" in result.stderr
    assert [d["intent_id"] for d in _printed(result.stdout, "decision")] == ["i1"]


def test_utf16_events_are_named_as_such(policy: Path, tmp_path: Path) -> None:
    events = tmp_path / "utf16.jsonl"
    events.write_bytes("".join(json.dumps(e) + "\n" for e in _events()).encode("utf-16"))
    result = _run(policy, tmp_path / "j.db", events)
    assert result.returncode == 1
    assert "utf16.jsonl: line 1: the file is UTF-16 text; save it as UTF-8" in result.stderr


def test_events_that_are_not_a_regular_file_are_refused_by_name(policy: Path,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    journal = tmp_path / "j.db"
    expected = {
        str(folder): f"{folder}: is a directory",
        str(fifo): f"{fifo}: not a regular file (a pipe or a device)",
        "-": "-: events cannot come from standard input; write them to a file",
    }
    for events, message in expected.items():
        result = _run(policy, journal, events)
        assert result.returncode == 1
        assert message in result.stderr
    assert not journal.exists()


# ------------------------------------------------------------------ what users named


def test_brackets_and_emoji_codes_in_names_are_shown_as_written(policy: Path,
                                                                 tmp_path: Path) -> None:
    # An account called "[/]" and a dependency "feed:x:" are legal; rich must not read them
    # as markup (a crash after the run was journaled) or as an emoji (a cross for "x").
    events = write_jsonl(tmp_path / "events.jsonl", [
        *_events(account="[/]"),
        {"type": "dependency", "dependency": "feed:x:", "healthy": False,
         "detail": "[bold]down[/]", "ts": "2026-03-02T14:30:04Z"},
    ])
    journal = tmp_path / "j.db"
    result = _run(policy, journal, events)
    assert result.returncode == 0, result.stderr
    assert "account [/]: equity" in result.stderr
    assert "held by SYS-011 feed:x:: [bold]down[/]" in result.stderr
    status = cli("status", "--journal", str(journal), columns=WIDE)
    assert status.returncode == 0, status.stderr
    assert "[/]  equity" in status.stdout
    assert "[bold]down[/]" in status.stdout
    listing = cli("decisions", "--journal", str(journal), columns=WIDE)
    assert listing.returncode == 0, listing.stderr
    assert "account [/]" in listing.stdout


def test_an_error_about_a_path_with_brackets_is_one_line(policy: Path,
                                                          tmp_path: Path) -> None:
    missing = tmp_path / "day[/]1.jsonl"
    result = _run(policy, tmp_path / "j.db", missing)
    assert result.returncode == 1
    assert f"error: {missing}: no such events file" in result.stderr


# ------------------------------------------------------------------ eval's files


def test_eval_reads_files_with_a_byte_order_mark_and_names_ones_that_are_not_utf8(
        policy: Path, tmp_path: Path) -> None:
    intents = write_jsonl(tmp_path / "intents.jsonl", _events()[1:3])
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"accounts": [{"account": "DEMO-1", "cash": "1000000"}]}))
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + state.read_bytes())
    intents_bom = tmp_path / "bom.jsonl"
    intents_bom.write_bytes(b"\xef\xbb\xbf" + intents.read_bytes())
    ok = cli("eval", "--policy", str(policy), "--state", str(with_bom), str(intents_bom),
             columns=WIDE)
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(line)["intent_id"] for line in ok.stdout.splitlines()] == ["i1"]

    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(state.read_bytes().replace(b"DEMO-1", b"D\xc9MO-1"))
    bad_state = cli("eval", "--policy", str(policy), "--state", str(latin1), str(intents),
                    columns=WIDE)
    assert bad_state.returncode == 1
    assert f"{latin1}: not UTF-8 text (byte 0xc9 at column" in bad_state.stderr

    intents_latin1 = tmp_path / "intents-latin1.jsonl"
    intents_latin1.write_bytes(intents.read_bytes().replace(b'"trend"', b'"tr\xe9nd"'))
    bad_line = cli("eval", "--policy", str(policy), str(intents_latin1), columns=WIDE)
    assert bad_line.returncode == 1
    assert "intents-latin1.jsonl: line 2: not UTF-8 text" in bad_line.stderr


def test_eval_out_that_cannot_be_written_is_named(policy: Path, tmp_path: Path) -> None:
    intents = write_jsonl(tmp_path / "intents.jsonl", _events()[1:3])
    result = cli("eval", "--policy", str(policy), "--out", str(tmp_path), str(intents),
                 columns=WIDE)
    assert result.returncode == 1
    assert f"--out {tmp_path}: cannot write the decisions: Is a directory" in result.stderr


# ------------------------------------------------------------------ outputs


def test_report_and_whatif_outputs_that_cannot_be_written_are_named(policy: Path,
                                                                     tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", _events())
    journal = tmp_path / "j.db"
    assert _run(policy, journal, events).returncode == 0
    onto_file = cli("report", "--journal", str(journal), "--out", str(events), columns=WIDE)
    assert onto_file.returncode == 1
    assert f"--out {events}: is a file" in onto_file.stderr
    blocked = tmp_path / "pack"
    (blocked / "report.html").mkdir(parents=True)
    into_dir = cli("report", "--journal", str(journal), "--out", str(blocked), columns=WIDE)
    assert into_dir.returncode == 1
    assert f"cannot write the evidence pack: {blocked / 'report.html'}: Is a directory" \
        in into_dir.stderr
    whatif = cli("replay", "whatif", "--journal", str(journal), "--policy", str(policy),
                 "--html", str(tmp_path), columns=WIDE)
    assert whatif.returncode == 1
    assert f"--html {tmp_path}: cannot write: Is a directory" in whatif.stderr


# ------------------------------------------------------------------ policies


def test_a_duration_too_long_to_hold_is_a_policy_error(policy: Path) -> None:
    policy.write_text(POLICY.replace("duplicate_window: 5s", "duplicate_window: 99999999999d"))
    result = cli("policy", "check", str(policy), columns=WIDE)
    assert result.returncode == 1
    assert "defaults.duplicate_window: expected a duration of at most 999999999d, got " \
           "'99999999999d'" in result.stderr
