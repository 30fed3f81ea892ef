"""The start-up policy flags `serve`, `gateway` and `run` share, and the warnings they (and
`policy check`) print about a policy.

On a journal that already enforces a policy, the `--policy` file is applied only when it is
that policy, or when an operator says so: `--replace-policy --operator NAME --reason TEXT`
(journaled as an operator's policy activation). Otherwise the journal's policy stays
enforced and a warning says so (`runtime.policy_choice`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ordergate.cli.console import err
from ordergate.cli.errors import UserError
from ordergate.policy import Policy
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


def years_ending_warning(policy: Policy, source: Path, before_year: int) -> str | None:
    """One line saying that the policy's `market_hours.years` end before `before_year`, or
    None. Sessions exist only for those years, so after the last one the gate refuses every
    order in the listed symbols as outside its trading session (MKT-001), which on a normal
    trading day reads as a wrong reason: this says why before it happens."""
    hours = policy.document.get("market_hours")
    if not hours:
        return None
    last = hours["years"][1]
    if last >= before_year:
        return None
    return (f"WARNING: {source}: market_hours.years ends in {last}: from {last + 1}-01-01 "
            f"every {', '.join(hours['symbols'])} order is denied as outside its "
            f"{hours['calendar']} trading session (MKT-001); extend market_hours.years")


def warn_if_years_ended(policy: Policy, source: Path) -> None:
    """At start-up: the years warning when the policy's sessions ended before this year."""
    warning = years_ending_warning(policy, source, datetime.now(UTC).year)
    if warning is not None:
        err.print(warning, style="bold yellow", markup=False, highlight=False, soft_wrap=True)
