"""An intent_id names one intent. The same intent again is a retry (its first answer, never a
second order); a different intent under a known intent_id was never judged, so it is denied,
DUP-003, naming the fields it differs in, and sends nothing. Its refusal leaves the first
intent's answer the one a retry gets, in monitor mode too, and after a snapshot restore."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from tests.engine.harness import D, Harness, decision_of, encode, of_type
from tests.runtime.harness import cli, write_jsonl
from typer.testing import CliRunner

from ordergate.cli.main import app
from ordergate.engine.core import Engine
from ordergate.model.decision import DecisionKind
from ordergate.model.events import Dispatch
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.reasons import REGISTRY


def _reuse(world: Harness, **changes: object) -> tuple[OrderIntent, OrderIntent]:
    """The first intent sent (i1), and a copy with `changes`."""
    first = next(event for event in world.log if isinstance(event, OrderIntent))
    return first, msgspec.structs.replace(first, **changes)


def test_a_different_intent_under_a_known_intent_id_is_denied_naming_the_fields() -> None:
    world = Harness()
    world.accepted(qty="10")
    first, other = _reuse(world, qty=D("500"), side=Side.SELL)
    before = world.book_image()
    outputs = world.send(other)
    decision = decision_of(outputs)
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "DUP-003")
    (violation,) = decision.violations
    assert violation.code == "DUP-003"
    assert violation.observed == "differs in side, qty"
    assert first.intent_id in violation.detail
    assert decision.intent_id == first.intent_id
    # no order, no reservation, no record for a decision no policy made
    assert of_type(outputs, Dispatch) == []
    assert [type(output).__name__ for output in outputs] == ["Decision"]
    assert world.book_image() == before
    assert len(world.state.open_orders) == 1
    assert REGISTRY["DUP-003"].name == "INTENT_ID_REUSED"


def test_the_first_intent_s_retry_still_gets_its_first_answer_after_a_reuse() -> None:
    world = Harness()
    original = world.intent(qty="10")
    first, other = _reuse(world, limit_price=D("99"))
    assert decision_of(world.send(other)).blocking == "DUP-003"
    assert world.send(first) == [original[0]]
    assert decision_of(world.send(other)).blocking == "DUP-003"  # and the reuse again: denied
    assert world.state.counters["intent_id_reused"] == 2
    assert world.state.counters["intent_retry"] == 1


def test_the_same_order_resent_later_is_a_retry_not_a_reuse() -> None:
    # a retry is sent later, and may say something else about itself: neither its timestamp
    # nor its tags (which no rule reads) are the order
    world = Harness()
    original = world.intent(qty="10", tags={"try": "1"})
    first, later = _reuse(world, ts=world.advance(5), tags={"try": "2"})
    assert world.send(later) == [original[0]]
    # equal figures written differently are the same intent
    assert world.send(msgspec.structs.replace(first, qty=D("10.00"))) == [original[0]]
    assert len(world.state.open_orders) == 1
    assert "intent_id_reused" not in world.state.counters


def test_a_reused_intent_id_is_denied_in_monitor_mode_too() -> None:
    # monitor mode allows what it would block, but an order for the reuse would carry the
    # first intent's client order id: it is never sent
    world = Harness({"max_order_qty": "1"}, monitor=True)
    world.accepted(qty="10")
    _, other = _reuse(world, symbol="Y", reduce_only=True)
    outputs = world.send(other)
    decision = decision_of(outputs)
    assert (decision.decision, decision.blocking) == (DecisionKind.DENY, "DUP-003")
    assert decision.violations[0].observed == "differs in symbol, reduce_only"
    assert of_type(outputs, Dispatch) == []


def test_a_denied_first_intent_is_not_replaced_by_a_reuse() -> None:
    world = Harness({"max_order_qty": "5"})
    denied = decision_of(world.intent(qty="10"))
    assert denied.blocking == "ORD-006"
    first, smaller = _reuse(world, qty=D("1"))
    assert decision_of(world.send(smaller)).blocking == "DUP-003"
    assert of_type(world.outputs[-1], Dispatch) == []
    assert decision_of(world.send(first)) == denied


def test_a_restored_engine_refuses_the_reuse_as_the_live_one_does() -> None:
    world = Harness()
    world.accepted(qty="10")
    restored = Engine.restore(world.engine.snapshot())
    assert restored.snapshot() == world.engine.snapshot()
    _, other = _reuse(world, qty=D("11"), ts=world.advance(1))
    assert encode(restored.handle(other)) == encode(world.send(other))
    assert decision_of(world.outputs[-1]).blocking == "DUP-003"


def test_the_intent_is_remembered_as_long_as_its_decision() -> None:
    world = Harness()
    world.accepted(qty="10")
    key = ("A", "s1", "i1")
    assert world.state.decided_intents.get(key) == _reuse(world)[0]
    world.tick(86_400)  # the next trading day: yesterday's intent still names its id
    world.quote("X", "100")
    _, other = _reuse(world, qty=D("3"), ts=world.now)
    assert decision_of(world.send(other)).blocking == "DUP-003"
    world.tick(86_400)  # two rolls later both are forgotten: the id is new again, as before
    world.quote("X", "100")
    assert world.state.decided.get(key) is None
    assert world.state.decided_intents.get(key) is None
    _, other = _reuse(world, qty=D("3"), ts=world.now)
    outputs = world.send(other)  # judged by the gate (the mode the ticks left it in decides)
    assert decision_of(outputs).blocking != "DUP-003"
    assert "DecisionRecord" in [type(output).__name__ for output in outputs]


# ------------------------------------------------------------------ through the command line

RUN_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: reuse
defaults:
  max_market_data_age: 15s
  max_order_qty: 1000
"""


def _reuse_events(tmp_path: Path) -> tuple[Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(RUN_POLICY)
    intent = {"type": "intent", "intent_id": "i1", "account": "DEMO-1", "strategy": "trend",
              "symbol": "AAPL", "side": "buy", "order_type": "market"}
    events = write_jsonl(tmp_path / "events.jsonl", [
        {"type": "account", "account": "DEMO-1", "cash": "1000000",
         "ts": "2026-03-02T14:29:00Z"},
        {"type": "market", "symbol": "AAPL", "bid": "189.86", "ask": "189.94", "last": "189.90",
         "volume": "1000", "ts": "2026-03-02T14:30:00Z"},
        {**intent, "qty": "10", "ts": "2026-03-02T14:30:01Z"},
        {**intent, "qty": "500", "ts": "2026-03-02T14:30:02Z"},
    ])
    return policy, events


def test_run_denies_a_reused_intent_id_and_sends_one_order(tmp_path: Path) -> None:
    policy, events = _reuse_events(tmp_path)
    result = cli("run", "--policy", str(policy), "--journal", str(tmp_path / "j.db"),
                 str(events), columns=400)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    decisions = [item for item in printed if item["type"] == "decision"]
    assert [(item["intent_id"], item["decision"], item.get("blocking", ""))
            for item in decisions] == [("i1", "ALLOW", ""), ("i1", "DENY", "DUP-003")]
    assert decisions[1]["violations"][0]["observed"] == "differs in qty"
    dispatches = [item for item in printed if item["type"] == "dispatch"]
    assert [item["qty"] for item in dispatches] == ["10"]


def test_eval_denies_a_reused_intent_id(tmp_path: Path) -> None:
    policy, events = _reuse_events(tmp_path)
    out = tmp_path / "decisions.jsonl"
    result = CliRunner().invoke(app, ["eval", "--policy", str(policy), str(events),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    decided = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(item["decision"], item.get("blocking", "")) for item in decided] == [
        ("ALLOW", ""), ("DENY", "DUP-003")]
