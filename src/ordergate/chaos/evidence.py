"""Evidence files for a chaos scenario: `evidence.json` for machines, `evidence.md` for people,
next to the scenario's journal (which anyone can re-check with `ordergate journal verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from ordergate.chaos.runner import ScenarioResult


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: ScenarioResult) -> str:
    lines = [
        f"# Chaos scenario: {result.title}",
        "",
        f"* scenario: `{result.name}`",
        f"* result: **{'PASS' if result.passed else 'FAIL'}**",
        f"* started: {result.started_at.isoformat()}, took {result.duration_s:.3f} s",
        f"* expected mode: {result.expected_mode}"
        + (f" within {result.deadline_s:g} s (event time)" if result.deadline_s else ""),
        f"* final mode: {result.final_mode}",
        f"* broker submissions: {result.broker_submissions}",
        f"* journal: `{result.journal}`",
        "",
        "| # | check | expected | observed | result |",
        "|---|---|---|---|---|",
    ]
    for number, check in enumerate(result.checks, start=1):
        lines.append(f"| {number} | {_cell(check.name)} | {_cell(check.expected)} | "
                     f"{_cell(check.observed)} | {'pass' if check.passed else '**FAIL**'} |")
    if result.mode_timeline:
        lines += ["", "## Mode changes (event time)", ""]
        lines += [f"* {ts}: {mode}" for ts, mode in result.mode_timeline]
    return "\n".join(lines) + "\n"


def write_evidence(result: ScenarioResult, directory: Path) -> tuple[Path, Path]:
    json_path, md_path = directory / "evidence.json", directory / "evidence.md"
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
    md_path.write_text(to_markdown(result), encoding="utf-8")
    return json_path, md_path
