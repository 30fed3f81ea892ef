"""An events file cannot carry an engine upgrade: the gateway journals its engine's upgrades
itself, at start-up. Such a line is a bad line naming what it is; the lines around it stand."""

from __future__ import annotations

import json
from pathlib import Path

from ordergate.model.market import MarketSnapshot
from ordergate.runtime.sources import BadLine, read_lines


def test_an_engine_upgrade_line_is_a_bad_line(tmp_path: Path) -> None:
    quote = {"type": "market", "symbol": "X", "bid": "99", "ask": "101", "last": "100",
             "ts": "2026-03-02T14:30:00Z"}
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join([
        json.dumps(quote),
        json.dumps({"type": "engine_upgrade", "behaviour": 2, "ts": "2026-03-02T14:30:01Z"}),
        json.dumps({**quote, "ts": "2026-03-02T14:30:02Z"}),
    ]) + "\n")
    (_, first), (_, second), (_, third) = read_lines(source, 1)
    assert isinstance(first, MarketSnapshot) and isinstance(third, MarketSnapshot)
    assert isinstance(second, BadLine) and second.line == 2
    assert second.problem.startswith("type engine_upgrade: the gateway journals")
