"""No input may crash the engine or make a journal unrestartable. An intent whose qty is
1e400 (or 35 digits) used to be journaled and then raise in the gate, on that run and on every
restart after it. Now such a line is bad input naming `qty` (`run`, `eval`), never journaled;
and an intent inside the bound whose figures still overflow exact decimal arithmetic (10**34
lots of a tiny lot size) is denied with SYS-008, so the journal restarts and replays clean."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.runtime.harness import cli, journaled_outputs, write_jsonl

from ordergate.model.decision import Decision, DecisionKind

TS = "2026-03-02T14:30:00Z"
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: poison}
instruments:
  AAPL: {tick_size: 0.01, lot_size: LOT}
defaults:
  max_market_data_age: 1d
  max_order_qty: 500000000000000
"""
HUGE = "1e400"
DIGITS_35 = "9" * 35


def _intent(intent_id: str, qty: str) -> dict[str, Any]:
    return {"type": "intent", "intent_id": intent_id, "ts": TS, "account": "ACC-1",
            "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": qty,
            "order_type": "market"}


def _events(tmp_path: Path, *intents: dict[str, Any]) -> Path:
    return write_jsonl(tmp_path / "events.jsonl", [
        {"type": "account", "ts": TS, "account": "ACC-1", "cash": "1000000"},
        {"type": "market", "ts": TS, "symbol": "AAPL", "bid": "99.99", "ask": "100.01"},
        *intents,
    ])


def _policy(tmp_path: Path, lot: str = "1") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("LOT", lot))
    return path


def _run(policy: Path, journal: Path, events: Path,
         *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("run", "--policy", str(policy), "--journal", str(journal), "--quiet", *extra,
                str(events))


def _decisions(journal: Path) -> dict[str, Decision]:
    return {output.intent_id: output for output in journaled_outputs(journal, Decision)}


def _verified(journal: Path) -> None:
    chain = cli("journal", "verify", "--journal", str(journal))
    assert chain.returncode == 0, chain.stdout + chain.stderr
    replay = cli("replay", "verify", "--journal", str(journal))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "mismatching steps    │ 0" in replay.stdout


def test_poison_quantities_are_bad_lines_naming_qty_and_the_journal_restarts(
        tmp_path: Path) -> None:
    events = _events(tmp_path, _intent("good-1", "10"), _intent("huge", HUGE),
                     _intent("digits", DIGITS_35), _intent("good-2", "5"))
    policy, journal = _policy(tmp_path), tmp_path / "journal.db"

    first = _run(policy, journal, events, "--skip-bad-lines")

    assert first.returncode == 0, first.stdout + first.stderr
    said = " ".join((first.stdout + first.stderr).split())  # rich wraps long lines
    assert "line 4: qty: expected a decimal below 1E+15 in magnitude, got '1E+400'" in said
    assert (f"line 5: qty: expected a decimal below 1E+15 in magnitude, got '{DIGITS_35}'"
            in said)
    decided = _decisions(journal)
    assert sorted(decided) == ["good-1", "good-2"]  # the poison lines were never journaled
    assert all(d.decision is DecisionKind.ALLOW for d in decided.values())

    again = _run(policy, journal, events, "--skip-bad-lines")  # the restart
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(_decisions(journal)) == ["good-1", "good-2"]
    _verified(journal)


def test_without_skip_bad_lines_the_run_stops_at_the_poison_line_naming_qty(
        tmp_path: Path) -> None:
    events = _events(tmp_path, _intent("good-1", "10"), _intent("huge", HUGE))
    result = _run(_policy(tmp_path), tmp_path / "journal.db", events)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "line 4: qty: expected a decimal below 1E+15 in magnitude" in said
    assert sorted(_decisions(tmp_path / "journal.db")) == ["good-1"]


def test_event_times_near_the_ends_of_the_calendar_are_bad_lines_naming_ts(
        tmp_path: Path) -> None:
    """A year-9999 event time used to be journaled and then overflow the engine's next day roll
    (OverflowError), on that run and on every restart after it."""
    far = {"type": "clock", "ts": "9999-12-31T23:59:59.999999Z"}
    ancient = {**_intent("ancient", "1"), "ts": "0001-01-01T00:00:00Z"}
    events = _events(tmp_path, _intent("good-1", "10"), far, ancient, _intent("good-2", "5"))
    policy, journal = _policy(tmp_path), tmp_path / "journal.db"

    first = _run(policy, journal, events, "--skip-bad-lines")

    assert first.returncode == 0, first.stdout + first.stderr
    said = " ".join((first.stdout + first.stderr).split())
    window = "expected a time from 1970-01-01 up to (not including) 2200-01-01"
    assert f"line 4: ts: {window}, got '9999-12-31T23:59:59.999999Z'" in said
    assert f"line 5: ts: {window}, got '0001-01-01T00:00:00Z'" in said
    assert sorted(_decisions(journal)) == ["good-1", "good-2"]
    again = _run(policy, journal, events, "--skip-bad-lines")  # the restart
    assert again.returncode == 0, again.stdout + again.stderr
    _verified(journal)


def test_too_many_lots_is_denied_sys_008_and_the_journal_replays_and_shows_it(
        tmp_path: Path) -> None:
    events = _events(tmp_path, _intent("lots", "1E+14"), _intent("next", "3"))
    policy, journal = _policy(tmp_path, lot="1E-20"), tmp_path / "journal.db"

    first = _run(policy, journal, events)

    assert first.returncode == 0, first.stdout + first.stderr
    decided = _decisions(journal)
    assert (decided["lots"].decision, decided["lots"].blocking) == (DecisionKind.DENY, "SYS-008")
    assert decided["lots"].violations[0].observed == "InvalidOperation qty=1E+14"
    assert decided["next"].decision is DecisionKind.ALLOW
    assert _run(policy, journal, events).returncode == 0  # the restart replays it
    _verified(journal)
    shown = cli("decisions", "--journal", str(journal), "--show", "lots")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "SYS-008" in text and "figures within exact decimal precision" in text
    assert "re-derived from the record alone: identical decision" in text


def test_eval_reports_poison_lines_and_state_figures_naming_the_field(tmp_path: Path) -> None:
    events = _events(tmp_path, _intent("good-1", "10"), _intent("huge", HUGE),
                     _intent("digits", DIGITS_35))
    policy = _policy(tmp_path)

    result = cli("eval", "--policy", str(policy), str(events))

    assert result.returncode == 1
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["intent_id"] for d in decisions] == ["good-1"]
    said = " ".join(result.stderr.split())
    assert "line 4: qty: expected a decimal below 1E+15 in magnitude, got '1E+400'" in said
    assert "line 5: qty: expected a decimal below 1E+15 in magnitude" in said

    state = write_jsonl(tmp_path / "state.json", [])
    state.write_text(json.dumps({"accounts": [{"account": "ACC-1", "cash": "5e20"}]}))
    refused = cli("eval", "--policy", str(policy), "--state", str(state),
                   str(_events(tmp_path, _intent("good-1", "10"))))
    assert refused.returncode == 1
    assert ("accounts[0].cash: expected a decimal below 1E+15 in magnitude, got '5E+20'"
            in " ".join(refused.stderr.split()))

    lots = cli("eval", "--policy", str(_policy(tmp_path, lot="1E-20")),
                str(_events(tmp_path, _intent("lots", "1E+14"), _intent("next", "3"))))
    assert lots.returncode == 0, lots.stderr
    answers = {d["intent_id"]: d for d in map(json.loads, lots.stdout.splitlines())}
    assert answers["lots"]["blocking"] == "SYS-008"
    assert answers["next"]["decision"] == "ALLOW"
