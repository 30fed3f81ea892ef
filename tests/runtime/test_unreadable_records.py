"""A journaled input is replayed on every start, so it must never stop the gateway with a stack
trace, nor crash it again on every restart.

* An INPUT record this version's model refuses (a journal written before quantities were
  bounded can hold qty 1E+400) stops `run`, `status` and `replay verify` with one line naming
  the record, the field and what the operator can do.
* A line the engine could not compute with (a fill of 1E-1000030 shares: below Decimal's
  smallest exponent the position's size rounds to zero and its average price is 0/0; it used to
  crash the run and every restart) is refused at the edge, naming `qty`, and never journaled."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, write_jsonl

from ordergate.engine.ids import derive_client_order_id
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.model.modes import Mode
from ordergate.runtime.loop import rebuild

TS = "2026-03-02T14:30:00Z"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: unreadable}
defaults:
  max_market_data_age: 1d
"""
OLD_INTENT = (b'{"type":"intent","intent_id":"old","ts":"2026-03-02T14:31:00Z",'
              b'"account":"ACC-1","strategy":"s","symbol":"AAPL","side":"buy","qty":"1e400"}')
ADVICE = "replay the journal with the version that wrote it, or start a new journal"


def _opening(tmp_path: Path, *more: dict[str, Any]) -> Path:
    """Funding, a quote and a buy limit far below the market (it rests: no position)."""
    return write_jsonl(tmp_path / "events.jsonl", [
        {"type": "account", "ts": TS, "account": "ACC-1", "cash": "1000000"},
        {"type": "market", "ts": TS, "symbol": "AAPL", "bid": "99.99", "ask": "100.01"},
        {"type": "intent", "intent_id": "resting", "ts": TS, "account": "ACC-1",
         "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "10",
         "order_type": "limit", "limit_price": "90"},
        *more,
    ])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, columns=1000)  # wide enough that rich never wraps the one line


def _run(tmp_path: Path, journal: Path, events: Path) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return _cli("run", "--policy", str(policy), "--journal", str(journal), "--quiet",
                str(events))


def _append_input(journal: Path, payload: bytes) -> int:
    """Journal an input the way an older version of ordergate would have written it."""
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.ALWAYS)
    try:
        seq = handle.append(RecordKind.INPUT, payload)
        handle.flush()
    finally:
        handle.close()
    return seq


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_input_this_version_cannot_read_stops_every_command_in_one_line(
        tmp_path: Path) -> None:
    events, journal = _opening(tmp_path), tmp_path / "journal.db"
    first = _run(tmp_path, journal, events)
    assert first.returncode == 0, first.stderr
    seq = _append_input(journal, OLD_INTENT)
    said = (f"record {seq} (an input) cannot be read by this version of ordergate: qty: "
            f"expected a decimal below 1E+15 in magnitude, got '1E+400'; {ADVICE}")

    restart = _run(tmp_path, journal, events)
    status = _cli("status", "--journal", str(journal))
    verify = _cli("replay", "verify", "--journal", str(journal))

    assert restart.returncode == 1
    assert _one_line(restart) == f"error: {journal}: {said}"
    assert status.returncode == 1
    assert _one_line(status) == f"error: {journal}: {said}"
    assert verify.returncode == 3
    assert _one_line(verify) == f"SAFETY STOP: {journal}: journal could not be read: {said}"


def test_an_input_of_a_kind_this_version_does_not_know_is_named_too(tmp_path: Path) -> None:
    events, journal = _opening(tmp_path), tmp_path / "journal.db"
    assert _run(tmp_path, journal, events).returncode == 0
    seq = _append_input(journal, b'{"type":"retired_kind","ts":"2026-03-02T14:31:00Z"}')

    status = _cli("status", "--journal", str(journal))

    assert status.returncode == 1
    assert (f"record {seq} (an input) cannot be read by this version of ordergate: "
            f"Invalid value 'retired_kind' - at `$.type`; {ADVICE}"
            in _one_line(status))


def test_a_fill_below_the_smallest_figure_is_refused_naming_qty_and_never_journaled(
        tmp_path: Path) -> None:
    order = derive_client_order_id("ACC-1", "s", "resting")
    events = _opening(
        tmp_path,
        {"type": "fill", "ts": "2026-03-02T14:30:01Z", "client_order_id": order,
         "fill_id": "tiny", "qty": "1E-1000030", "price": "90"},
    )
    journal = tmp_path / "journal.db"

    live = _run(tmp_path, journal, events)  # it used to crash here, and on every restart

    assert live.returncode == 1
    said = " ".join(live.stderr.split())
    assert ("line 4: qty: expected 0 or a decimal of at least 1E-18 in magnitude, got "
            "'1E-1000030'") in said
    handle = open_journal(f"sqlite:///{journal}", durability=Durability.NONE, create=False)
    try:
        assert not [record.seq for record in handle.read() if b'"tiny"' in record.payload]
    finally:
        handle.close()
    assert rebuild(f"sqlite:///{journal}").state.mode is Mode.ACTIVE
    verify = _cli("replay", "verify", "--journal", str(journal))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_reports_stop_at_an_unreadable_input_in_one_line_too(tmp_path: Path) -> None:
    """Every reader of journaled inputs goes through one decoder: the decisions listing, the
    evidence report and the what-if replay name the record as recovery does."""
    events, journal = _opening(tmp_path), tmp_path / "journal.db"
    assert _run(tmp_path, journal, events).returncode == 0
    seq = _append_input(journal, OLD_INTENT)
    said = f"record {seq} (an input) cannot be read by this version of ordergate"

    for command in (["decisions", "--journal", str(journal), "--show", "old"],
                    ["report", "--journal", str(journal), "--out", str(tmp_path / "report")],
                    ["replay", "whatif", "--journal", str(journal), "--policy",
                     str(tmp_path / "policy.yaml")]):
        result = _cli(*command)
        assert result.returncode in (1, 3), (command, result.stdout, result.stderr)
        last = [line for line in result.stderr.splitlines() if line.strip()][-1]
        assert said in last, (command, result.stderr)  # after any progress line, no trace
