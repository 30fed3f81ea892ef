"""`ordergate eval` judges intents with today's engine behaviour (`ENGINE_BEHAVIOUR`), as a
new journal does: an untriggered stop-loss is not a resting order, so a buy of the same
account is no self-match (the oldest behaviour, kept for replaying old journals, said it was).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ordergate.cli.main import app

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: eval-behaviour}
defaults:
  max_market_data_age: 1h
  self_match: deny
  allowed_order_types: [market, limit, stop_limit]
"""


def test_eval_judges_with_the_current_engine_behaviour(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    base = {"type": "intent", "account": "A", "strategy": "s", "symbol": "X",
            "ts": "2026-03-02T14:30:01Z"}
    lines = [
        {"type": "market", "symbol": "X", "bid": "99.99", "ask": "100.01", "last": "100",
         "ts": "2026-03-02T14:30:00Z"},
        {**base, "intent_id": "stop", "side": "sell", "qty": "10", "order_type": "stop_limit",
         "stop_price": "95", "limit_price": "94"},
        {**base, "intent_id": "buy", "side": "buy", "qty": "10", "order_type": "limit",
         "limit_price": "100.01"},
    ]
    intents = tmp_path / "intents.jsonl"
    intents.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(app, ["eval", "--policy", str(policy), str(intents),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    decisions = {d["intent_id"]: d for d in map(json.loads, out.read_text().splitlines())}
    assert decisions["stop"]["decision"] == "ALLOW"
    assert decisions["buy"]["decision"] == "ALLOW", decisions["buy"]
