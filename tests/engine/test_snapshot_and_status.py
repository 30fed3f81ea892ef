"""Snapshots restore the exact state; the status view reports it for people."""

from __future__ import annotations

import pytest

from engine.harness import D, Harness, encode
from ordergate.engine.core import Engine
from ordergate.engine.image import SnapshotError
from ordergate.model.events import CommandAction, KillScope
from ordergate.model.intent import Side
from ordergate.model.modes import Mode


def _busy_world() -> Harness:
    world = Harness({"max_position_qty": "100", "rate_account": {"max": 50, "window": "1m"},
                     "duplicate_window": "10s"}, symbols=("X", "Y"))
    first = world.accepted(qty="10", limit_price="99")
    world.fill(first.client_order_id, "4", price="99")
    world.accepted(Side.SELL, qty="3", symbol="Y", limit_price="101")
    world.command(CommandAction.KILL, scope=KillScope.SYMBOL, key="Y", operator="ops1")
    world.dependency("broker_reads", False, "SYS-011")
    return world


def test_restored_engine_plus_remaining_events_equals_the_uninterrupted_engine() -> None:
    world = _busy_world()
    image = world.engine.snapshot()
    restored = Engine.restore(image)
    assert restored.snapshot() == image
    world.advance(2)
    for engine_outputs, replayed in (
        (world.quote("X", "101"), restored.handle(world.log[-1])),
        (world.intent(qty="10", limit_price="99"), restored.handle(world.log[-1])),
        (world.intent(qty="10", limit_price="100"), restored.handle(world.log[-1])),
        (world.tick(30), restored.handle(world.log[-1])),
    ):
        assert encode(replayed) == encode(engine_outputs)
    assert restored.snapshot() == world.engine.snapshot()


def test_snapshot_carries_policies_and_the_active_hash() -> None:
    world = _busy_world()
    restored = Engine.restore(world.engine.snapshot())
    assert restored.active is not None and restored.active.hash == world.policy.hash
    assert list(restored.policies) == [world.policy.hash]


def test_unreadable_snapshot_is_refused_with_a_reason() -> None:
    with pytest.raises(SnapshotError, match="engine snapshot"):
        Engine.restore(b'{"version": 1}')


def test_status_reports_mode_positions_orders_accounts_and_kills() -> None:
    world = _busy_world()
    status = world.engine.status()
    assert status.mode is Mode.REDUCE_ONLY
    assert [reason.code for reason in status.reasons] == ["SYS-011"]
    assert status.policy_hash == world.policy.hash
    assert [(p.symbol, p.qty, p.working_buy, p.working_sell) for p in status.positions] == [
        ("X", D(4), D(6), D(0)), ("Y", D(0), D(0), D(3))]
    assert len(status.open_orders) == 2
    (account,) = status.accounts
    assert account.cash == D(100000) - D(396)
    assert account.max_gross_exposure is None
    assert [(kill.scope, kill.key) for kill in status.kills] == [(KillScope.SYMBOL, "Y")]
    assert status.counters["decision:ALLOW"] == 2
