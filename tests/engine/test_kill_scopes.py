"""Operator kill switches by scope, at engine level: a kill scoped to an account, a strategy or
the firm denies the new-risk intents it covers (KIL-002), with no side effect on the books,
and leaves every intent it does not cover to the policy (the symbol scope is in
test_commands.py)."""

from __future__ import annotations

from engine.harness import Harness, decision_of, of_type
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import CommandAction, Dispatch, KillScope


def _denied_by_kill(world: Harness, **fields: str) -> Decision:
    before = world.book_image()
    outputs = world.intent(**fields)
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.DENY, decision
    assert decision.blocking == "KIL-002"
    assert of_type(outputs, Dispatch) == []
    assert world.book_image() == before  # a rejection has no side effects
    return decision


def _allowed(world: Harness, **fields: str) -> Dispatch:
    outputs = world.intent(**fields)
    decision = decision_of(outputs)
    assert decision.decision is DecisionKind.ALLOW, decision
    (dispatch,) = of_type(outputs, Dispatch)
    assert dispatch.intent_id == decision.intent_id
    return dispatch


def test_an_account_kill_denies_that_account_and_not_another() -> None:
    world = Harness(accounts=("A", "B"))
    world.command(CommandAction.KILL, scope=KillScope.ACCOUNT, key="A", operator="ops1",
                  reason="account A is misbehaving")
    for strategy in ("s1", "s2"):
        decision = _denied_by_kill(world, account="A", strategy=strategy)
        (violation,) = [v for v in decision.violations if v.code == "KIL-002"]
        assert f"account=A strategy={strategy}" in violation.detail
    dispatch = _allowed(world, account="B", strategy="s1")
    assert dispatch.account == "B"
    assert world.state.operator_kill("A", "any", "ANY")
    assert not world.state.operator_kill("B", "s1", "X")


def test_a_strategy_kill_denies_that_strategy_in_every_account_and_not_another() -> None:
    world = Harness(accounts=("A", "B"))
    world.command(CommandAction.KILL, scope=KillScope.STRATEGY, key="s1", operator="ops1",
                  reason="runaway loop")
    for account in ("A", "B"):
        _denied_by_kill(world, account=account, strategy="s1")
        dispatch = _allowed(world, account=account, strategy="s2")
        assert (dispatch.account, dispatch.strategy) == (account, "s2")
    assert world.state.operator_kill("B", "s1", "X")
    assert not world.state.operator_kill("A", "s2", "X")


def test_a_firm_kill_denies_every_account_and_strategy_until_unkilled() -> None:
    world = Harness(accounts=("A", "B"), symbols=("X", "Y"))
    world.command(CommandAction.KILL, scope=KillScope.FIRM, operator="ops1", reason="outage")
    for account, strategy, symbol in (("A", "s1", "X"), ("A", "s2", "Y"), ("B", "s3", "X")):
        _denied_by_kill(world, account=account, strategy=strategy, symbol=symbol)
    world.command(CommandAction.UNKILL, scope=KillScope.FIRM, operator="ops1",
                  reason="outage over")
    assert _allowed(world, account="B", strategy="s3").account == "B"


def test_lifting_an_account_kill_leaves_a_strategy_kill_in_force() -> None:
    world = Harness(accounts=("A", "B"))
    world.command(CommandAction.KILL, scope=KillScope.ACCOUNT, key="A", operator="ops1")
    world.command(CommandAction.KILL, scope=KillScope.STRATEGY, key="s1", operator="ops2")
    world.command(CommandAction.UNKILL, scope=KillScope.ACCOUNT, key="A", operator="ops1",
                  reason="checked")
    _denied_by_kill(world, account="A", strategy="s1")
    _denied_by_kill(world, account="B", strategy="s1")
    assert _allowed(world, account="A", strategy="s2").account == "A"
