"""The HTTP API's request and response bodies, as strict msgspec structs.

Requests forbid unknown fields (the error names the path, e.g. `$.intents[3]`); responses are
encoded with msgspec. The OpenAPI document is generated from these same types, so the docs
cannot drift from what the server accepts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from ordergate.model.decision import Decision
from ordergate.model.events import KillScope, OutputEvent, ShadowDecision
from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.service.limits import MAX_BATCH_INTENTS

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500,
                                     description="Why, in plain words; journaled.")]


class _Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# ---------------------------------------------------------------- requests


class IntentBatch(_Request, frozen=True):
    """Several intents decided in one request (one journal flush)."""

    intents: Annotated[list[OrderIntent], msgspec.Meta(min_length=1,
                                                       max_length=MAX_BATCH_INTENTS)]


class ModeRequest(_Request, frozen=True):
    reason: Reason


class HaltRequest(_Request, frozen=True):
    reason: Reason
    cancel_all: bool = False


ScopeName = Annotated[str, msgspec.Meta(
    max_length=128,
    description="The account, strategy or symbol the kill switch covers; empty (or left out) "
                "for scope firm.")]


class KillRequest(_Request, frozen=True):
    """Engage a kill switch: no new risk in its scope (the whole firm, an account, a strategy
    or a symbol) until an operator releases it; with `cancel_all`, also cancel every working
    order in the scope."""

    scope: KillScope
    reason: Reason
    name: ScopeName = ""
    cancel_all: bool = False


class UnkillRequest(_Request, frozen=True):
    """Release the kill switch of one scope."""

    scope: KillScope
    reason: Reason
    name: ScopeName = ""


class EnableStrategyRequest(_Request, frozen=True):
    """Re-enable a strategy the engine disabled after repeated executions (THR-006), in every
    account where it is disabled."""

    strategy: Annotated[str, msgspec.Meta(min_length=1, max_length=128,
                                          description="The strategy to re-enable.")]
    reason: Reason


class PolicyRequest(_Request, frozen=True):
    """A new policy: YAML text (`document`) as the policy file would hold it. With `dry_run`
    it becomes the shadow policy: every intent is also judged under it and its would-be
    decision recorded beside the real one, while the enforced policy stays exactly as it was;
    send it again without `dry_run` to enforce it (which ends the dry run). `reason` is
    journaled as the operator's reason for the activation (or the dry run)."""

    document: Annotated[str, msgspec.Meta(min_length=1, max_length=1_000_000)]
    reason: Reason
    dry_run: bool = False


class MarketBatch(_Request, frozen=True):
    """Several market snapshots journaled and applied in order, in one request."""

    snapshots: Annotated[list[MarketSnapshot], msgspec.Meta(min_length=1,
                                                            max_length=MAX_BATCH_INTENTS)]


# ---------------------------------------------------------------- responses


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: str
    detail: str


class IntentResult(msgspec.Struct, frozen=True, kw_only=True):
    """One decision. `replayed` is true when the intent_id was decided before and this is the
    original decision returned again (no second order was sent). `run_id` is the run that made
    the decision, as its journal records carry it (after a restart, the earlier run's).
    `decision_run_known` is false only for a replay of a decision older than the gateway's
    decision index holds, answered from the engine's memory of decided intents: that memory
    does not say which run decided, and `run_id` is then the run serving this request (the
    journal names the deciding run: `ordergate decisions --journal JOURNAL --show ID`)."""

    intent_id: str
    run_id: str
    replayed: bool
    decision: Decision
    blocking_meaning: str = ""
    decision_run_known: bool = True


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """The decisions of a batch, in order. `run_id` is the run serving this request; each
    result's own `run_id` is the run that made its decision."""

    run_id: str
    results: list[IntentResult]


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an operator action did: the mode after it and every engine output it caused."""

    run_id: str
    action: str
    operator: str
    mode: str
    outputs: list[OutputEvent]
    message: str = ""


class PolicyResult(msgspec.Struct, frozen=True, kw_only=True):
    """`policy_hash` is the submitted policy (SHA-256 of its normalized document, as
    journaled; `document_hash` repeats it). `activated` is true when the engine now enforces
    it (never for a dry run); `shadow_policy_hash` is the engine's shadow policy after the
    request (the submitted one after a dry run, "" once it is enforced) and
    `enforced_policy_hash` the policy that decides. `monitor` is the policy's own
    `monitor: true` setting."""

    run_id: str
    policy_hash: str
    name: str
    activated: bool
    monitor: bool
    message: str
    outputs: list[OutputEvent] = []
    dry_run: bool = False
    document_hash: str = ""
    shadow_policy_hash: str = ""
    enforced_policy_hash: str = ""


class MarketResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch of market snapshots caused: the mode after it and every engine output
    (mode changes on bad or stale data, a drawdown halt, alerts)."""

    run_id: str
    accepted: int
    mode: str
    outputs: list[OutputEvent]


class ActiveReasonView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    meaning: str
    detail: str = ""
    actor: str = ""
    since: datetime | None = None


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    symbol: str
    qty: str
    avg_price: str


class ExposureView(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    gross: str
    net: str
    gross_cap: str | None = None
    net_cap: str | None = None


class RateWindowView(msgspec.Struct, frozen=True, kw_only=True):
    scope: str
    key: str
    count: int
    max_count: int
    window_s: float
    utilisation: float


class RateWindowsOmitted(msgspec.Struct, frozen=True, kw_only=True):
    """More windows of one scope are in use than the status lists: the `shown` busiest (by
    utilisation) of `in_use` are in `rate_windows`."""

    scope: str
    shown: int
    in_use: int


class RestrictionView(msgspec.Struct, frozen=True, kw_only=True):
    """Something that denies new risk for part of the book (or all of it) whatever the mode:
    a kill switch (an operator's for the firm, an account, a strategy or a symbol, KIL-002;
    the policy's, KIL-001; the firm-wide one, KIL-003) or a strategy disabled after repeated
    executions (THR-006, `account` names its account). `text` says it in plain words."""

    code: str
    name: str
    meaning: str
    scope: str
    key: str
    account: str = ""
    text: str = ""
    detail: str = ""
    actor: str = ""
    since: datetime | None = None


class PendingApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    """An operator command that waits for a second operator (a resume after a drawdown halt
    when the policy sets `resume_requires_two_operators`): who approved first, when and why."""

    action: str
    first_operator: str
    reason: str = ""
    since: datetime | None = None
    text: str = ""


class DependencyView(msgspec.Struct, frozen=True, kw_only=True):
    """A dependency or circuit breaker: `state` is closed/open/half_open or healthy/down."""

    name: str
    healthy: bool
    state: str
    detail: str = ""


class BreakerView(msgspec.Struct, frozen=True, kw_only=True):
    """One circuit breaker (broker_submit, broker_reads, clock, feed:<name>): `state` is
    CLOSED, OPEN or HALF_OPEN, `opened_until` when an open period ends (null unless OPEN),
    `failures` how many failures fall in its longest window."""

    name: str
    state: str
    opened_until: datetime | None = None
    failures: int = 0


class JournalView(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    last_seq: int
    snapshot_seq: int
    lag: int
    last_batch_seconds: float


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One mode change, from the journal. Once the gateway stopped on a failed journal write
    the last entry is that stop: `mode` STOPPED, `journaled` false (no journal holds it: the
    write that failed is what it reports) and `note` saying so."""

    ts: datetime
    mode: str
    previous: str
    actor: str
    reasons: list[str]
    journaled: bool = True
    note: str = ""


class AlertView(msgspec.Struct, frozen=True, kw_only=True):
    """A critical or warning alert the engine journaled: `meaning` says what its `code` means
    in plain words ("" for a code without one), `message` is the alert's own words (naming the
    order, account or strategy), `intent_id` the intent it is about, when one."""

    ts: datetime
    severity: str
    code: str
    meaning: str
    message: str
    intent_id: str = ""


class PolicyFileView(msgspec.Struct, frozen=True, kw_only=True):
    """The `--policy` file the gateway was started with: its policy's `name` and `hash`,
    whether that policy is the one `enforced` now, and what start-up did with it (`outcome`):
    `new` (activated on a journal that enforced no policy yet), `same` (the journal enforced
    it already), `kept` (NOT applied: the journal enforces another policy, which stays
    enforced until a restart with `--replace-policy --operator NAME --reason TEXT`) or
    `replaced` (an operator replaced the journal's policy with it). `detail` says in one
    sentence why the file's policy is not enforced ("" when it is)."""

    name: str
    hash: str
    enforced: bool
    outcome: str
    detail: str = ""


class StatusView(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway's live state. The enforced policy is identified by `policy_name` and
    `policy_hash` (SHA-256 of its normalized document, as journaled); `policy_monitor` is true
    when that policy itself sets `monitor: true` (its limits are evaluated and recorded, not
    enforced; operator and firm kill switches, the trading mode and data-integrity checks
    still are). `shadow_policy_hash` / `shadow_policy_name` name the policy in a dry run
    ("" when none): judged for every intent beside the enforced one, never enforced.
    `headline` says in one line whether trading is normal, restricted or why not;
    `all_orders_denied` is true while a firm-wide kill switch is engaged (an operator's of
    scope firm, the policy's `kill_switch` or the one shared by all gateways): every order is
    then denied, reducing or not, whatever `mode` says, and `headline` says which switch and
    why; `restrictions` lists what denies part of the book while the mode allows trading (kill
    switches, disabled strategies); `pending_approvals` the commands waiting for a second
    operator. `rate_windows` lists the global and per-account windows and the busiest
    per-strategy and per-symbol ones; `rate_windows_omitted` says which scopes had more.
    `policy_file` is the `--policy` file given at start-up and whether it is the enforced
    policy (null when the gateway was started without one). `stopped` says why the gateway
    takes no intent, market data or operator command any more ("" while it does): its journal
    could not be written, every such request is refused with 503, `headline` says so, `mode`
    reads STOPPED (the engine's own mode, which it tightened for the failure, is not what
    applies: risk-reducing orders and operator commands are refused too) and the `timeline`
    ends with the stop, marked as not journaled; it takes them again only after a restart on a
    healthy journal. Once stopped, `positions`, `exposure` and `rate_windows` are the engine's
    figures at the failure and may include work that was never stored (what the failed write
    did: an order reserved, a rate window counted, a fill booked); a restart rebuilds them from
    the journal, whose `journal.last_seq` is then the last record written. `recent_alerts`
    lists the latest critical and warning alerts the engine journaled (at most 20, oldest
    first): a fill past its order's limit (FILL_PRICE), a cancel the broker refused
    (CANCEL_REFUSED) and the like, which change no mode and so show nowhere else; an accepted
    operator command's note is not among them."""

    run_id: str
    mode: str
    reasons: list[ActiveReasonView]
    positions: list[PositionView]
    exposure: list[ExposureView]
    rate_windows: list[RateWindowView]
    dependencies: list[DependencyView]
    journal: JournalView
    policy_hash: str
    policy_name: str
    event_time: datetime | None
    timeline: list[TimelineEntry]
    policy_monitor: bool = False
    breakers: list[BreakerView] = msgspec.field(default_factory=list)
    shadow_policy_hash: str = ""
    shadow_policy_name: str = ""
    headline: str = ""
    restrictions: list[RestrictionView] = msgspec.field(default_factory=list)
    pending_approvals: list[PendingApprovalView] = msgspec.field(default_factory=list)
    rate_windows_omitted: list[RateWindowsOmitted] = msgspec.field(default_factory=list)
    policy_file: PolicyFileView | None = None
    all_orders_denied: bool = False
    stopped: str = ""
    recent_alerts: list[AlertView] = msgspec.field(default_factory=list)


class HealthCheck(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    detail: str = ""


class HealthView(msgspec.Struct, frozen=True, kw_only=True):
    live: bool
    ready: bool
    checks: dict[str, HealthCheck]


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    """The full decision record of one intent. `decision` is what was enforced; `shadow`,
    when a dry-run policy was set, is what that policy would have answered from the same
    state (null otherwise) and `shadow_differs` whether its outcome (decision, blocking code
    or modified quantity) differs from the enforced one. `run_id` is the run that made the
    decision, as its journal records carry it (after a restart, the earlier run's)."""

    intent_id: str
    run_id: str
    intent: OrderIntent
    decision: Decision
    blocking_meaning: str = ""
    shadow: ShadowDecision | None = None
    shadow_differs: bool = False


class DecisionPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DecisionView]
    next_cursor: str | None = None
