"""`ordergate drill break-glass`: rehearse the emergency path on a simulated broker and keep the
evidence.

    ordergate drill break-glass --out drills/

The drill runs a real gateway (journal, engine, dispatcher, SimBroker) through the emergency
sequence an operator must be able to trust, checks each outcome, and writes a dated evidence
record (JSON for machines, Markdown for people) beside the drill's own journal, which anyone
can re-verify with `ordergate journal verify`:

1. a runaway strategy floods orders: the throttle caps what reaches the broker;
2. an operator halts trading (kill) with cancel-all;
3. while HALTED no new opening order is dispatched;
4. REDUCE_ONLY: an opening order is refused, a risk-reducing one still goes through;
5. a drawdown breach halts trading automatically;
6. resuming after it needs two different operators (`engine.resume_requires_two_operators`):
   the first approval and a repeat by the same operator leave the mode HALTED;
7. the drill's journal hash chain verifies.

The drill always runs under its own built-in `DRILL_POLICY`, which turns on every feature it
exercises; it proves that this version's emergency machinery works, not that the user's policy
enables it (docs/runbooks/break-glass.md says how to check that).

Event time is synthetic (the drill is deterministic); the record is dated with the wall clock.
Exit 0 when every step passed, 3 (safety stop) when any failed: the evidence is written either way.
An --out that cannot be written is a user error (exit 1) found before any step runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from ordergate.cli.console import out
from ordergate.cli.errors import SafetyStop, UserError, require_writable_dir

drill_app = typer.Typer(help="Rehearse emergency procedures and record the evidence.",
                        no_args_is_help=True)

DRILL_POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: break-glass-drill
  description: The policy the break-glass drill runs under.
engine:
  cancel_all_on_kill: true
  on_drawdown: HALTED
  resume_requires_two_operators: true
defaults:
  max_market_data_age: 1h
  max_order_qty: 1000
  rate_strategy: {max: 10, window: 1s}
  max_drawdown_pct: 2
  drawdown_kill: true
"""

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
ACCOUNT = "DRILL-1"
SYMBOL = "AAPL"
FLOOD = 50
RATE_CAP = 10
OPERATOR_A = "ops-alice"
OPERATOR_B = "ops-bob"


class DrillStep(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    name: str
    expected: str
    observed: str
    passed: bool


class DrillEvidence(msgspec.Struct, frozen=True, kw_only=True):
    drill: str
    started_at: datetime
    finished_at: datetime
    passed: bool
    run_id: str
    policy_name: str
    policy_hash: str
    journal: str
    steps: list[DrillStep]


@dataclass
class _Recorder:
    steps: list[DrillStep] = field(default_factory=list)

    def check(self, name: str, expected: str, observed: str, passed: bool) -> bool:
        self.steps.append(DrillStep(number=len(self.steps) + 1, name=name, expected=expected,
                                    observed=observed, passed=passed))
        return passed


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _intent(intent_id: str, side: str, qty: int, seconds: float,
            strategy: str = "runaway") -> dict[str, object]:
    return {"intent_id": intent_id, "ts": _at(seconds), "account": ACCOUNT,
            "strategy": strategy, "symbol": SYMBOL, "side": side, "qty": str(qty)}


def _quote(price: str, seconds: float) -> dict[str, object]:
    mid = Decimal(price)
    return {"symbol": SYMBOL, "ts": _at(seconds), "bid": str(mid - Decimal("0.01")),
            "ask": str(mid + Decimal("0.01")), "last": price}


def run_break_glass(journal_path: Path, started_at: datetime,
                    clock: Callable[[], datetime]) -> DrillEvidence:
    """Run the drill on a fresh journal at `journal_path`; return its evidence."""
    from ordergate.brokers.sim import SimBroker, SimConfig
    from ordergate.gateway import Gateway
    from ordergate.model.decision import DecisionKind
    from ordergate.model.events import Command, CommandAction
    from ordergate.model.modes import Mode

    broker = SimBroker(SimConfig())
    record = _Recorder()
    with Gateway.open(DRILL_POLICY, journal=journal_path, broker=broker, clock="event") as gw:
        gw.fund(ACCOUNT, "100000", ts=_at(0))
        gw.on_market(_quote("100", 0))

        # 1. The runaway strategy floods the gateway within one second.
        flood = gw.submit_many([_intent(f"flood-{n:03d}", "buy", 10, 1) for n in range(FLOOD)])
        allowed = [d for d in flood if d.decision is DecisionKind.ALLOW]
        throttled = [d for d in flood if d.blocking == "THR-003"]
        sent_after_flood = len(broker.submissions())
        record.check(
            "runaway strategy floods orders",
            f"the throttle lets {RATE_CAP} of {FLOOD} through; the rest are denied THR-003",
            f"{len(allowed)} allowed, {len(throttled)} denied THR-003, "
            f"{sent_after_flood} orders at the broker",
            len(allowed) == RATE_CAP and len(throttled) == FLOOD - RATE_CAP
            and sent_after_flood == RATE_CAP)

        # 2. Kill: the operator halts trading and cancels working orders.
        halted = gw.halt(OPERATOR_A, "break-glass drill: runaway strategy", cancel_all=True,
                         ts=_at(2))
        held = [(reason.code, reason.actor) for reason in gw.status().reasons]
        record.check("operator halts trading (kill)", "mode HALTED: MOD-001 set by ops-alice",
                     f"mode {halted.mode.value}, reasons "
                     f"{', '.join(f'{code} by {actor}' for code, actor in held)}",
                     halted.mode is Mode.HALTED and ("MOD-001", OPERATOR_A) in held)

        # 3. Nothing new reaches the broker while HALTED.
        more = gw.submit_many([_intent(f"after-kill-{n:03d}", "buy", 10, 3) for n in range(20)])
        blocked = [d for d in more if d.decision is DecisionKind.DENY and d.blocking == "MOD-001"]
        sent_after_kill = len(broker.submissions())
        record.check(
            "no further opening orders are dispatched",
            "20 new buy intents denied MOD-001; broker order count unchanged",
            f"{len(blocked)} of 20 denied MOD-001; broker orders {sent_after_flood} -> "
            f"{sent_after_kill}",
            len(blocked) == 20 and sent_after_kill == sent_after_flood)

        # 4. Step down to REDUCE_ONLY (one batch: the resume and the reduce-only command are
        # journaled together, no intent can slip in between) and reduce the position.
        gw.process([
            Command(ts=_at(4), action=CommandAction.RESUME, operator=OPERATOR_A,
                    reason="step down from HALTED to REDUCE_ONLY"),
            Command(ts=_at(4), action=CommandAction.REDUCE_ONLY, operator=OPERATOR_A,
                    reason="only risk-reducing orders until the strategy is fixed"),
        ])
        position = _position(gw)
        opening = gw.submit(_intent("reduce-only-open", "buy", 10, 5, strategy="desk"))
        closing = gw.submit(_intent("reduce-only-close", "sell", 50, 5, strategy="desk"))
        dispatched_close = len(broker.submissions()) == sent_after_kill + 1
        after = _position(gw)
        record.check(
            "reduce-only still lets a risk-reducing order through",
            "mode REDUCE_ONLY; a buy is denied MOD-002; a sell of 50 (of the long position) "
            "is allowed and filled",
            f"mode {gw.mode.value}; buy {opening.decision.value} {opening.blocking}; "
            f"sell {closing.decision.value} (risk_reducing={closing.risk_reducing}); "
            f"position {position} -> {after}",
            gw.mode is Mode.REDUCE_ONLY and opening.blocking == "MOD-002"
            and closing.decision is DecisionKind.ALLOW and dispatched_close
            and after == position - 50)

        # 5. The market falls; the drawdown limit halts trading by itself.
        gw.on_market(_quote("40", 7))
        reasons = [reason.code for reason in gw.status().reasons]
        record.check("a drawdown breach halts trading", "mode HALTED with LOS-003",
                     f"mode {gw.mode.value}, reasons {reasons}",
                     gw.mode is Mode.HALTED and "LOS-003" in reasons)

        # 6. Two different operators must resume.
        first = gw.resume(OPERATOR_A, "loss reviewed, approve resume", ts=_at(8))
        repeat = gw.resume(OPERATOR_A, "approve again", ts=_at(9))
        second = gw.resume(OPERATOR_B, "second approval: resume", ts=_at(10))
        record.check(
            "resume needs two different operators",
            "ops-alice alone leaves HALTED (twice); ops-bob's approval resumes to ACTIVE",
            f"after ops-alice {first.mode.value}, after ops-alice again {repeat.mode.value}, "
            f"after ops-bob {second.mode.value}",
            first.mode is Mode.HALTED and repeat.mode is Mode.HALTED
            and second.mode is Mode.ACTIVE)

        run_id = gw.run_id
        policy = gw.policy

    from ordergate.journal import open_journal

    # A reader: verification never takes the writer's lock nor writes to the journal.
    journal = open_journal(f"sqlite:///{journal_path.resolve()}", create=False, reader=True)
    try:
        report = journal.verify()
    finally:
        journal.close()
    record.check("the drill's journal verifies", "hash chain intact from record 1",
                 f"{report.records} records, {'chain OK' if report.ok else report.message}",
                 report.ok)

    return DrillEvidence(
        drill="break-glass", started_at=started_at, finished_at=clock(),
        passed=all(step.passed for step in record.steps), run_id=run_id,
        # none only if the drill's own policy were not in effect: every step then fails above
        policy_name="" if policy is None else policy.name,
        policy_hash="" if policy is None else policy.hash, journal=str(journal_path),
        steps=record.steps)


def _position(gateway: object) -> Decimal:
    from ordergate.gateway import Gateway

    assert isinstance(gateway, Gateway)
    for position in gateway.status().positions:
        if position.account == ACCOUNT and position.symbol == SYMBOL:
            return position.qty
    return Decimal(0)


def markdown(evidence: DrillEvidence) -> str:
    """The evidence record for people (and for the compliance binder)."""
    verdict = "PASSED" if evidence.passed else "FAILED"
    lines = [
        f"# Break-glass drill: {verdict}",
        "",
        f"- started: {evidence.started_at.isoformat()}",
        f"- finished: {evidence.finished_at.isoformat()}",
        f"- run id: `{evidence.run_id}`",
        f"- policy: {evidence.policy_name} `{evidence.policy_hash}`",
        f"- journal: `{evidence.journal}` (re-check with `ordergate journal verify --journal "
        f"{evidence.journal}`)",
        "",
        "| # | step | expected | observed | result |",
        "|---|---|---|---|---|",
    ]
    for step in evidence.steps:
        cells = [str(step.number), step.name, step.expected, step.observed,
                 "pass" if step.passed else "**FAIL**"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def wall_clock() -> datetime:
    return datetime.now(UTC)


def write_evidence(out_dir: Path, clock: Callable[[], datetime] = wall_clock
                   ) -> tuple[DrillEvidence, Path, Path]:
    """Run the drill into `out_dir`; returns the evidence and the JSON and Markdown paths."""
    started = clock()
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the directory: {exc.strerror}") from None
    require_writable_dir(out_dir)
    base = out_dir / f"break-glass-{stamp}"
    journal_path = base.with_suffix(".db")
    if journal_path.exists():
        raise UserError(f"--out {out_dir}: {journal_path.name} already exists; "
                        "wait a second or choose another directory")
    evidence = run_break_glass(journal_path, started, clock)
    json_path = base.with_suffix(".json")
    md_path = base.with_suffix(".md")
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(evidence), indent=2) + b"\n")
    md_path.write_text(markdown(evidence), encoding="utf-8")
    return evidence, json_path, md_path


@drill_app.command("break-glass")
def break_glass(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the evidence record "
                                          "(JSON + Markdown) and the drill's journal.")]
    = Path("drills"),
) -> None:
    """Flood -> kill -> no new opens -> reduce-only -> two-operator resume, on a simulated
    broker; writes a dated evidence record. Exit 3 if any step failed.

    The drill runs under its own built-in policy (break-glass-drill), not yours: it proves
    this version's halt, throttle, reduce-only, drawdown halt and two-operator resume work when
    a policy asks for them, not that your policy asks for them."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    evidence, json_path, md_path = write_evidence(out_dir)
    for step in evidence.steps:
        mark = "[green]pass[/]" if step.passed else "[bold red]FAIL[/]"
        out.print(f"{mark}  {step.number}. {step.name}: {step.observed}", markup=True,
                  soft_wrap=True)
    out.print(f"evidence: {json_path}  {md_path}", markup=False, soft_wrap=True)
    if not evidence.passed:
        failed = ", ".join(str(step.number) for step in evidence.steps if not step.passed)
        raise SafetyStop(f"break-glass drill failed at step(s) {failed}; see {md_path}")


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
