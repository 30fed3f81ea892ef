"""An engine block that says nothing beyond the defaults is formatting: it hashes as no block
does. A real engine setting is policy and changes the hash."""

from __future__ import annotations

import pytest

from ordergate.policy import parse_policy

HEAD = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: engine-defaults}
defaults:
  max_market_data_age: 2s
"""
RESTATED = """\
engine:
  cancel_all_on_kill: false
  on_stale_data: REDUCE_ONLY
  on_bad_data: REDUCE_ONLY
  on_clock_fault: REDUCE_ONLY
  on_dependency_down: REDUCE_ONLY
  on_reconciliation_mismatch: REDUCE_ONLY
  on_drawdown: HALTED
  resume_requires_two_operators: false
"""


def _hash(extra: str = "") -> str:
    return parse_policy(HEAD + extra).hash


@pytest.mark.parametrize("block", ["engine: {}\n", "engine:\n  {}\n", RESTATED,
                                   "engine: {on_drawdown: HALTED}\n"])
def test_an_engine_block_of_defaults_hashes_as_no_block(block: str) -> None:
    assert _hash(block) == _hash()
    assert "engine" not in parse_policy(HEAD + block).document


@pytest.mark.parametrize("block", ["engine: {cancel_all_on_kill: true}\n",
                                   "engine: {on_stale_data: HALTED}\n",
                                   "engine: {reset_window: 1h}\n",
                                   "engine: {day_roll_calendar: XNYS}\n"])
def test_a_real_engine_setting_changes_the_hash(block: str) -> None:
    assert _hash(block) != _hash()


def test_a_real_setting_beside_restated_defaults_hashes_as_the_setting_alone() -> None:
    restated_and_real = RESTATED.replace("cancel_all_on_kill: false", "cancel_all_on_kill: true")
    assert _hash(restated_and_real) == _hash("engine: {cancel_all_on_kill: true}\n")
