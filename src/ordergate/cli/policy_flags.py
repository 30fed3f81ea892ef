"""The start-up policy flags `serve`, `gateway` and `run` share.

On a journal that already enforces a policy, the `--policy` file is applied only when it is
that policy, or when an operator says so: `--replace-policy --operator NAME --reason TEXT`
(journaled as an operator's policy activation). Otherwise the journal's policy stays
enforced and a warning says so (`runtime.policy_choice`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ordergate.cli.console import err
from ordergate.cli.errors import UserError
from ordergate.runtime.policy_choice import PolicyChoice, PolicyOutcome, PolicyReplacement

ReplacePolicy = Annotated[bool, typer.Option(
    "--replace-policy",
    help="On a journal that enforces another policy (e.g. one activated with POST "
         "/v1/policy), enforce the --policy file's policy instead (needs --operator and "
         "--reason). Without it, a restart keeps the journal's policy.")]
PolicyOperator = Annotated[str, typer.Option(
    "--operator", help="Who replaces the journal's policy (journaled; with --replace-policy).")]
PolicyReason = Annotated[str, typer.Option(
    "--reason", help="Why the journal's policy is replaced (journaled; with --replace-policy).")]


def policy_replacement(replace: bool, operator: str, reason: str) -> PolicyReplacement | None:
    """The operator's replacement order from the flags, or None; a flag without the others is
    a usage error naming it."""
    if not replace:
        given = [flag for flag, value in (("--operator", operator), ("--reason", reason))
                 if value]
        if given:
            raise UserError(f"{' and '.join(given)}: only with --replace-policy")
        return None
    missing = [flag for flag, value in (("--operator", operator), ("--reason", reason))
               if not value.strip()]
    if missing:
        raise UserError(f"--replace-policy: needs {' and '.join(missing)} (journaled with the "
                        "activation)")
    return PolicyReplacement(operator=operator.strip(), reason=reason.strip())


def announce_policy_choice(choice: PolicyChoice | None) -> None:
    """Say on stderr, loudly, when the --policy file is not what is enforced, and when an
    operator replaced the journal's policy."""
    if choice is None:
        return
    if choice.outcome is PolicyOutcome.KEPT:
        err.print(f"WARNING: {choice.warning}", style="bold yellow", markup=False,
                  highlight=False, soft_wrap=True)
    elif choice.outcome is PolicyOutcome.REPLACED and choice.journal is not None:
        operator, reason = choice.activation
        err.print(f"policy {choice.journal.name} {choice.journal.hash} replaced by "
                  f"{choice.file.name} {choice.file.hash} (operator {operator}: {reason})",
                  style="bold yellow", markup=False, highlight=False, soft_wrap=True)
