"""The filters of `decisions` and `journal export`: reason codes in any case, an unknown code
or an empty window refused with the option named, never a silent "0 decisions"."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.evidence.support import invoke


def test_a_reason_code_matches_in_any_case(demo_day: Path) -> None:
    journal = str(demo_day / "journal.db")
    upper = invoke("decisions", "--journal", journal, "--reason", "THR-003")
    lower = invoke("decisions", "--journal", journal, "--reason", "thr-003")
    assert upper.code == lower.code == 0, lower.output
    assert "THR-003" in lower.output
    assert lower.output == upper.output


@pytest.mark.parametrize("command", [("decisions",),
                                     ("journal", "export", "--format", "jsonl")])
def test_an_unknown_reason_code_is_refused_and_says_where_the_codes_are(
        demo_day: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    out = ("--out", str(tmp_path / "x.jsonl")) if "export" in command else ()
    result = invoke(*command, "--journal", str(demo_day / "journal.db"), *out,
                    "--reason", "NOPE-999")
    assert result.code == 1, result.output
    assert "--reason 'NOPE-999'" in result.output
    assert "ordergate reasons" in result.output
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("command", [("decisions",),
                                     ("journal", "export", "--format", "jsonl")])
def test_a_window_that_ends_before_it_starts_is_refused(
        demo_day: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    out = ("--out", str(tmp_path / "x.jsonl")) if "export" in command else ()
    result = invoke(*command, "--journal", str(demo_day / "journal.db"), *out,
                    "--since", "2026-03-02T20:00:00Z", "--until", "2026-03-02T15:00:00Z")
    assert result.code == 1, result.output
    assert "--since 2026-03-02T20:00:00Z" in result.output
    assert "--until 2026-03-02T15:00:00Z" in result.output
    assert "0 decisions" not in result.output


def test_a_window_of_one_instant_is_accepted(demo_day: Path) -> None:
    result = invoke("decisions", "--journal", str(demo_day / "journal.db"),
                    "--since", "2026-03-02T15:00:00Z", "--until", "2026-03-02T15:00:00Z")
    assert result.code == 0, result.output
