"""`ordergate eval --out` never destroys a file it should not: not one of its own inputs, not a
journal, not an existing file when the run fails; and what stops the run is said in one line
naming the file and the field, not as a stack trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.evidence.support import SMALL_DAY, invoke, small_journal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICY = EXAMPLES / "policy.yaml"


def _intents(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes((EXAMPLES / "intents.jsonl").read_bytes())
    return path


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps to the terminal


def test_out_naming_the_intents_file_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    intents = _intents(tmp_path)
    before = intents.read_bytes()

    result = invoke("eval", "--policy", str(POLICY), str(intents), "--out", str(intents))

    assert result.code == 1
    assert f"--out {intents}: is the intents file" in _said(result.output)
    assert intents.read_bytes() == before


def test_out_naming_another_input_through_a_link_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes((EXAMPLES / "state.json").read_bytes())
    link = tmp_path / "link.json"
    link.symlink_to(state)

    result = invoke("eval", "--policy", str(POLICY), "--state", str(state),
                    str(_intents(tmp_path)), "--out", str(link))

    assert result.code == 1
    assert "is the --state file" in _said(result.output)
    assert state.read_bytes() == (EXAMPLES / "state.json").read_bytes()


@pytest.mark.parametrize("suffix", ["", ".manifest.json", ".head"])
def test_out_naming_a_journal_or_its_files_is_refused(tmp_path: Path, suffix: str) -> None:
    journal = small_journal(tmp_path, SMALL_DAY)
    target = Path(f"{journal}{suffix}")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}

    result = invoke("eval", "--policy", str(POLICY), str(_intents(tmp_path)), "--out",
                    str(target))

    assert result.code == 1
    said = _said(result.output)
    assert f"--out {target}: is the journal" in said and "never writes over a journal" in said
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()
             and path.name != "in.jsonl"}
    assert after == {name: data for name, data in before.items() if name != "in.jsonl"}


def test_a_run_that_fails_leaves_an_existing_out_file_as_it_was(tmp_path: Path) -> None:
    state = json.loads((EXAMPLES / "state.json").read_text())
    state["positions"][1]["avg_price"] = "-200"
    bad_state = tmp_path / "state.json"
    bad_state.write_text(json.dumps(state))
    out = tmp_path / "decisions.jsonl"
    out.write_text("yesterday's decisions\n")

    result = invoke("eval", "--policy", str(POLICY), "--state", str(bad_state),
                    str(_intents(tmp_path)), "--out", str(out))

    assert result.code == 1
    assert (f"{bad_state}: field positions[1]: avg_price: expected a non-negative decimal, "
            f"got '-200'") in _said(result.output)
    assert out.read_text() == "yesterday's decisions\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "decisions.jsonl", "in.jsonl", "state.json"]  # no temporary file left behind


def test_a_successful_run_replaces_the_out_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "decisions.jsonl"
    out.write_text("old\n")

    result = invoke("eval", "--policy", str(POLICY), str(_intents(tmp_path)), "--out", str(out))

    assert result.code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) > 1 and all(json.loads(line)["decision"] for line in lines)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_write_that_fails_is_said_in_one_line(tmp_path: Path) -> None:
    result = invoke("eval", "--policy", str(POLICY), str(_intents(tmp_path)), "--out",
                    "/dev/full")

    assert result.code == 1
    assert "--out /dev/full: cannot write the decisions: No space left on device" in _said(
        result.output)


def test_a_state_file_realized_pnl_is_refused_by_name(tmp_path: Path) -> None:
    state = json.loads((EXAMPLES / "state.json").read_text())
    state["accounts"][0]["realized_pnl"] = "-1000000"
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))

    result = invoke("eval", "--policy", str(POLICY), "--state", str(path),
                    str(_intents(tmp_path)))

    assert result.code == 1
    said = _said(result.output)
    assert f"{path}: accounts[0].realized_pnl: not taken" in said
    assert "day_start_equity" in said


def test_bad_lines_with_nothing_decided_do_not_claim_the_rest_was_decided(
        tmp_path: Path) -> None:
    good = (EXAMPLES / "intents.jsonl").read_text().splitlines()[:2]
    cr_only = tmp_path / "cr.jsonl"
    cr_only.write_text("\r".join(good) + "\r")

    result = invoke("eval", "--policy", str(POLICY), str(cr_only))

    assert result.code == 1
    said = _said(result.output)
    assert "1 bad line(s)" in said and "no intent was decided" in said
    assert "the other lines were decided" not in said
    assert "carriage returns (CR)" in said and "not CR alone" in said


def test_a_policy_not_in_effect_yet_is_warned_about(tmp_path: Path) -> None:
    text = POLICY.read_text()
    assert 'effective_from: "2026-01-05T00:00:00Z"' in text
    future = tmp_path / "future.yaml"
    future.write_text(text.replace('effective_from: "2026-01-05T00:00:00Z"',
                                   'effective_from: "2030-01-01T00:00:00Z"'))

    result = invoke("eval", "--policy", str(future), str(_intents(tmp_path)))

    assert result.code == 0, result.output
    said = _said(result.output)
    assert "warning:" in said and "takes effect at 2030-01-01T00:00:00Z" in said
    assert "every intent is denied SYS-005" in said
