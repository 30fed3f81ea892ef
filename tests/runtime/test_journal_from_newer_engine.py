"""A journal a newer version wrote (an engine behaviour this one does not know) is refused by
whatever opens or replays it, in one line, before anything is appended to it; and no input
from outside (the embedded Gateway, like an events file) may carry an engine upgrade."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordergate import Gateway, InvalidInput
from ordergate.brokers.sim import SimBroker
from ordergate.engine.state import ENGINE_BEHAVIOUR
from ordergate.journal import open_journal
from ordergate.model.events import EngineUpgrade

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: newer}
defaults:
  max_market_data_age: 1h
"""
NEWER = ENGINE_BEHAVIOUR + 1
# `ordergate` as a version whose engine knows one behaviour more (the same rules as today's)
_NEWER = f"""
import sys
import ordergate.engine.core as core, ordergate.engine.state as state
import ordergate.runtime.loop as loop
loop.ENGINE_BEHAVIOUR = core.ENGINE_BEHAVIOUR = state.ENGINE_BEHAVIOUR = {NEWER}
state._RESTING_PRICES[{NEWER}] = state._RESTING_PRICES[{ENGINE_BEHAVIOUR}]
from ordergate.cli.main import main
sys.argv[0] = "ordergate"
main()
"""


def _ordergate(*args: str, newer: bool = False) -> subprocess.CompletedProcess[str]:
    command = ([sys.executable, "-c", _NEWER] if newer
               else [sys.executable, "-m", "ordergate.cli.main"])
    return subprocess.run([*command, *args], capture_output=True, text=True, check=False,
                          env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"})


def _last_seq(journal: Path) -> int:
    opened = open_journal(f"sqlite:///{journal}", create=False)
    try:
        return opened.last_seq()
    finally:
        opened.close()


def test_a_journal_written_at_a_newer_behaviour_is_refused_and_left_as_it_is(
        tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(line) for line in [
        {"type": "account", "account": "A", "cash": "100000", "ts": "2026-03-02T14:30:00Z"},
        {"type": "market", "symbol": "X", "bid": "99", "ask": "101", "last": "100",
         "ts": "2026-03-02T14:30:01Z"},
        {"type": "intent", "intent_id": "i-1", "account": "A", "strategy": "s", "symbol": "X",
         "side": "buy", "qty": "1", "order_type": "market", "ts": "2026-03-02T14:30:02Z"},
    ]) + "\n")
    journal = tmp_path / "journal.db"
    written = _ordergate("run", "--quiet", "--policy", str(policy), "--journal", str(journal),
                         str(events), newer=True)
    assert written.returncode == 0, written.stderr
    before = _last_seq(journal)

    # `run` names journal problems as its own errors (exit 1); the readers stop (exit 3)
    for args, code in ((["run", "--quiet", "--policy", str(policy), "--journal", str(journal),
                         str(events)], 1),
                       (["replay", "verify", "--journal", str(journal)], 3),
                       (["status", "--journal", str(journal)], 3)):
        refused = _ordergate(*args)
        assert refused.returncode == code, (args, refused.stdout, refused.stderr)
        assert "Traceback" not in refused.stderr
        assert (f"engine behaviour {NEWER}: written by a newer version of ordergate"
                in refused.stderr)
    assert _last_seq(journal) == before


def test_the_embedded_gateway_refuses_an_engine_upgrade(tmp_path: Path) -> None:
    upgrade = EngineUpgrade(ts=datetime(2026, 3, 2, 14, 30, tzinfo=UTC), behaviour=NEWER)
    with (Gateway.open(POLICY, journal=tmp_path / "journal.db", broker=SimBroker()) as gateway,
          pytest.raises(InvalidInput, match="type engine_upgrade: the gateway journals")):
        gateway.process([upgrade])
