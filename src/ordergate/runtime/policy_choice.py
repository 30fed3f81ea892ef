"""Which policy a restarted gateway enforces.

The journal knows the policy the gateway enforced last: the engine rebuilt from it holds it
as its active policy, with the document that was journaled when it was activated (at
start-up from a `--policy` file, through POST /v1/policy, or by an operator command). A
restart must never change that policy quietly, so on start-up (`choose_policy`, called by
`Runtime.open_on` once the journal is replayed):

* nothing was enforced yet (a new journal): the `--policy` file's policy is activated;
* the file's policy is the journal's (same hash): nothing changes;
* it differs: the journal's policy stays enforced, and a warning says which file was not
  applied and how to apply it; unless
* the operator asked to replace it (`PolicyReplacement`, `--replace-policy --operator NAME
  --reason TEXT`): the file's policy is activated, journaled as an operator command with
  that operator and reason; unless
* that policy is not in effect yet at the start-up time (its `metadata.effective_from` is
  later): the engine would refuse the activation and keep the journal's policy, so start-up
  refuses the replacement (`PolicyNotInEffect`) rather than serve with an order it cannot
  carry out.

When the start-up time is not known (event time: `run`, an embedded gateway on the event
clock) the engine may still refuse the activation at the first event; the choice then
becomes `PolicyOutcome.REFUSED` with the engine's reason (`PolicyChoice.refused`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import structlog

from ordergate.policy.loader import Policy

log = structlog.get_logger("ordergate.runtime")

START_UP_OPERATOR = "ordergate"


class PolicyChoiceError(ValueError):
    """A replacement without the operator or the reason it must name."""


class PolicyNotInEffect(PolicyChoiceError):
    """A replacement whose policy is not in effect yet at the start-up time."""


def _utc_text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def not_in_effect(policy: Policy, now: datetime | None) -> str:
    """"<name> takes effect at <ts>" when `policy` may not be activated at `now` (its
    `effective_from` is later), else '' (also when `now` is not known)."""
    effective = policy.effective_from
    if now is None or effective is None or now >= effective:
        return ""
    return f"{policy.name} takes effect at {_utc_text(effective)}"


@dataclass(frozen=True, slots=True)
class PolicyReplacement:
    """The operator's explicit order to enforce the `--policy` file over the policy the
    journal enforces. Both fields are journaled with the activation."""

    operator: str
    reason: str

    def __post_init__(self) -> None:
        for name in ("operator", "reason"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise PolicyChoiceError(f"{name}: expected text, got {type(value).__name__}")
        missing = [name for name in ("operator", "reason") if not getattr(self, name).strip()]
        if missing:
            raise PolicyChoiceError(
                f"replacing the journal's policy needs {' and '.join(missing)}")


class PolicyOutcome(StrEnum):
    NEW = "new"  # nothing enforced yet: the file's policy is activated
    SAME = "same"  # the file's policy is the one the journal enforces
    KEPT = "kept"  # they differ: the journal's policy stays enforced
    REPLACED = "replaced"  # they differ: the operator replaces it with the file's
    REFUSED = "refused"  # the engine refused to activate the file's policy (`refusal` says why)


@dataclass(frozen=True, slots=True)
class PolicyChoice:
    """What start-up decided: the policy `enforced` from now on (None when the engine refused
    the file's policy on a journal that enforced none), the `file` policy given on the command
    line and the `journal` policy the replayed engine enforced (None if none)."""

    outcome: PolicyOutcome
    enforced: Policy | None
    file: Policy
    journal: Policy | None
    replacement: PolicyReplacement | None = None
    refusal: str = ""
    """The engine's reason for refusing the file's policy (REFUSED only)."""

    def refused(self, reason: str, enforced: Policy | None) -> PolicyChoice:
        """This choice once the engine refused to activate the file's policy for `reason`,
        keeping `enforced` (its active policy, or None)."""
        return replace(self, outcome=PolicyOutcome.REFUSED, enforced=enforced, refusal=reason)

    @property
    def activation(self) -> tuple[str, str]:
        """(operator, reason) of the activation command journaled when `enforced` is not
        active yet."""
        if self.replacement is not None:
            return self.replacement.operator, self.replacement.reason
        return START_UP_OPERATOR, f"policy {self.file.name} loaded at start-up"

    @property
    def warning(self) -> str:
        """One sentence for operators when the file's policy is not the enforced one ('' when
        it is)."""
        if self.outcome is PolicyOutcome.REFUSED:
            kept = ("no policy is enforced" if self.enforced is None
                    else f"policy {self.enforced.name} {self.enforced.hash} stays enforced")
            return (f"the --policy file's {self.file.name} {self.file.hash} is NOT applied: "
                    f"the engine refused it ({self.refusal}); {kept}")
        if self.outcome is not PolicyOutcome.KEPT or self.journal is None:
            return ""
        return (f"the journal enforces policy {self.journal.name} {self.journal.hash}; "
                f"the --policy file's {self.file.name} {self.file.hash} is NOT applied "
                "(restart with --replace-policy --operator NAME --reason TEXT to enforce the "
                "file's policy)")


def choose_policy(journal_policy: Policy | None, file_policy: Policy,
                  replacement: PolicyReplacement | None = None, *,
                  run_id: str = "", now: datetime | None = None) -> PolicyChoice:
    """Decide (and log) which policy a gateway enforces after replaying its journal. `now`,
    the start-up time when it is known, refuses a replacement that is not in effect at it
    (`PolicyNotInEffect`)."""
    bound = log.bind(run_id=run_id, file_policy=file_policy.name,
                     file_policy_hash=file_policy.hash)
    if journal_policy is None:
        choice = PolicyChoice(PolicyOutcome.NEW, file_policy, file_policy, None, replacement)
        bound.info("policy_from_file")
        return choice
    if journal_policy.hash == file_policy.hash:
        bound.info("policy_unchanged")
        return PolicyChoice(PolicyOutcome.SAME, journal_policy, file_policy, journal_policy)
    bound = bound.bind(journal_policy=journal_policy.name,
                       journal_policy_hash=journal_policy.hash)
    if replacement is not None:
        later = not_in_effect(file_policy, now)
        if later:
            raise PolicyNotInEffect(
                f"cannot replace policy {journal_policy.name} {journal_policy.hash} with "
                f"{file_policy.name} {file_policy.hash}: {later}, after the start-up time "
                f"{_utc_text(now) if now is not None else ''} (the engine would refuse it and "
                f"keep {journal_policy.name}); start without the replacement, or once "
                f"{file_policy.name} is in effect")
        bound.warning("policy_replaced_by_operator", operator=replacement.operator,
                      reason=replacement.reason)
        return PolicyChoice(PolicyOutcome.REPLACED, file_policy, file_policy, journal_policy,
                            replacement)
    choice = PolicyChoice(PolicyOutcome.KEPT, journal_policy, file_policy, journal_policy)
    bound.warning("policy_file_not_applied", detail=choice.warning)
    return choice
