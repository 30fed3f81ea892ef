"""The fault-injection scenarios. Each one plays a fault against the real runtime and records
its own checks; the runner adds the checks every scenario owes (mode within its deadline, no
order sent while unsafe, no exposure growth while unsafe, journal and replay verify).

A scenario is a function `(stage) -> Played`: it opens what it needs under
`stage.directory`, drives it, calls `stage.check(...)` for what is specific to it, and hands
back the journal to verify, the broker's submission log and its step records.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from ordergate.brokers.base import BrokerError
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig, SubmissionAttempt, SubmitFault
from ordergate.chaos.checks import JournalFacts
from ordergate.chaos.harness import (
    ACCOUNT,
    CHAOS_POLICY,
    PRICES,
    ChaosRun,
    StepRecord,
    at,
    chaos_policy,
    chaos_settings,
    intent,
    quote,
)
from ordergate.engine.ids import derive_client_order_id
from ordergate.journal import Durability, open_journal
from ordergate.model.events import AccountFunding, InputEvent
from ordergate.model.intent import Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.runtime import faults
from ordergate.runtime.health import EventClock, GuardedRuntime, StartRefused

SIGKILL_EXIT = -9


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: str
    observed: str
    passed: bool


@dataclass(slots=True)
class Played:
    journal: Path
    attempts: list[SubmissionAttempt]
    steps: list[StepRecord] = field(default_factory=list)
    fault_at: datetime | None = None


@dataclass(slots=True)
class Stage:
    directory: Path
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, expected: str, observed: str, passed: bool) -> bool:
        self.checks.append(Check(name=name, expected=expected, observed=observed,
                                 passed=bool(passed)))
        return bool(passed)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    expected_mode: Mode  # the mode the fault must bring (ACTIVE: the mode must not change)
    deadline_s: float  # event-time seconds from the fault to the expected mode
    play: Callable[[Stage], Played]


def _cid(intent_id: str) -> str:
    return derive_client_order_id(ACCOUNT, "chaos", intent_id)


def _decision(run: ChaosRun, intent_id: str) -> str:
    facts = JournalFacts.read(run.journal_path)
    decision = facts.decisions.get(intent_id)
    if decision is None:
        return "no decision"
    return decision.decision.value + (f" {decision.blocking}" if decision.blocking else "")


def _open_position(run: ChaosRun, stage: Stage, qty: int = 100) -> None:
    run.start()
    run.step([quote("AAPL", 1), intent("open", Side.BUY, qty, 1)])
    stage.check("a position is opened while healthy", f"AAPL position {qty}",
                f"AAPL position {run.position()}", run.position() == qty)


def _reduce_goes_through(run: ChaosRun, stage: Stage, seconds: float, qty: int = 10) -> None:
    before = run.position()
    sent = len(run.submissions())
    # A limit price of its own: a reducing order whose fill price depends on a suspect feed
    # is refused by the fail-closed gates (capital supremacy has that one exception).
    run.step([quote("AAPL", seconds), intent(f"reduce-{seconds:g}", Side.SELL, qty, seconds,
                                             limit_price=PRICES["AAPL"] - 1)])
    after = run.position()
    stage.check(
        "a risk-reducing order still goes through", f"sell {qty} ALLOW, sent, position "
        f"{before} -> {before - qty}",
        f"{_decision(run, f'reduce-{seconds:g}')}, broker orders {sent} -> "
        f"{len(run.submissions())}, position {before} -> {after}",
        after == before - qty and len(run.submissions()) == sent + 1)


def _opening_denied(run: ChaosRun, stage: Stage, seconds: float, code: str) -> None:
    intent_id = f"open-again-{seconds:g}"
    sent = len(run.submissions())
    run.step([quote("AAPL", seconds), intent(intent_id, Side.BUY, 10, seconds)])
    observed = _decision(run, intent_id)
    stage.check("a new opening order is refused and not sent", f"DENY {code}, nothing sent",
                f"{observed}, broker orders {sent} -> {len(run.submissions())}",
                observed == f"DENY {code}" and len(run.submissions()) == sent)


def _played(run: ChaosRun) -> Played:
    fault_at = run.faults_at[0][1] if run.faults_at else None
    return Played(journal=run.journal_path, attempts=run.broker.submission_log(),
                  steps=list(run.steps), fault_at=fault_at)


def _circuit_opened(run: ChaosRun, stage: Stage, dependency: str) -> None:
    facts = JournalFacts.read(run.journal_path)
    details = [event.detail for event in facts.unhealthy("SYS-007")]
    wanted = f"CIRCUIT_OPEN_{dependency}"
    stage.check(f"the {dependency} circuit opens and is journaled",
                f"DependencyStatus SYS-007 {wanted}", ", ".join(details) or "none",
                wanted in details)


# ---------------------------------------------------------------------------- scenarios


def broker_downtime(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("broker_submit times out (3 calls)", 10)
        run.broker.faults.fail_next_submits = 3
        run.step([quote("AAPL", 10), intent("during", Side.BUY, 10, 10)])
        _circuit_opened(run, stage, "broker_submit")
        sent = len(run.submissions())
        run.step([quote("AAPL", 11), intent("reduce-while-open", Side.SELL, 10, 11)])
        stage.check("nothing is sent while the circuit is open",
                    "no broker call; the order is rejected 'circuit_open'",
                    f"broker calls {sent} -> {len(run.submissions())}",
                    len(run.submissions()) == sent)
        _opening_denied(run, stage, 12, "MOD-002")
        for seconds in range(20, 80, 10):
            run.quotes(seconds)
        states = {snap.name: snap.state.value for snap in run.guard.breakers()}
        stage.check("a reconnect probe closes the circuit after its open period",
                    "broker_submit CLOSED", f"broker_submit {states['broker_submit']}",
                    states["broker_submit"] == "CLOSED")
        _reduce_goes_through(run, stage, 81)
        stage.check("the outage never escalates to HALTED", "mode REDUCE_ONLY",
                    run.mode().value, run.mode() is Mode.REDUCE_ONLY)
        return _played(run)


def disconnect_storm(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("broker unreachable: submits and reads fail", 10)
        run.broker.faults.fail_next_submits = 1_000
        run.broker.faults.fail_next_reads = 1_000
        run.step([quote("AAPL", 10), intent("during", Side.BUY, 10, 10)])
        for seconds in range(15, 45, 5):
            run.quotes(seconds)
        facts = JournalFacts.read(run.journal_path)
        halts = [change for _, _, change in facts.modes if change is Mode.HALTED]
        status = run.runtime.engine.status()
        held = [reason.detail for reason in status.reasons if reason.code == "MOD-001"]
        stage.check("the storm halts trading with its reason", "MOD-001 'disconnect storm'",
                    "; ".join(held) or "no MOD-001",
                    bool(halts) and any("disconnect storm" in text for text in held))
        _opening_denied(run, stage, 46, "MOD-001")
        return _played(run)


def rate_limit_storm(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("HTTP 429 on three submits", 10)
        run.broker.faults.submit_fault = SubmitFault.RATE_LIMITED
        run.broker.faults.retry_after_s = 1.0
        run.broker.faults.fail_next_submits = 3
        # three orders decided in one batch, before the first 429 is seen: each is refused
        run.step([quote("AAPL", 10), *(intent(f"during-{n}", Side.BUY, 10, 10)
                                       for n in range(3))])
        _circuit_opened(run, stage, "broker_submit")
        facts = JournalFacts.read(run.journal_path)
        limited = [e for e in facts.unhealthy("SYS-011") if "RATE_LIMIT" in e.detail]
        stage.check("the 429 is classified as a rate limit", "SYS-011 RATE_LIMIT",
                    limited[0].detail if limited else "none", bool(limited))
        refused = [reject.reason for reject in facts.rejects
                   if reject.reason.startswith("not placed")]
        stage.check("each order refused with a 429 is rejected as not placed, not resent",
                    "3 rejects 'not placed'", f"{len(refused)}", len(refused) == 3)
        _opening_denied(run, stage, 11, "MOD-002")
        for seconds in range(20, 80, 10):
            run.quotes(seconds)
        _reduce_goes_through(run, stage, 81)
        stage.check("rate limits never halt", "mode REDUCE_ONLY", run.mode().value,
                    run.mode() is Mode.REDUCE_ONLY)
        return _played(run)


def stale_market_data(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("the feed goes silent after t=1", 2)
        for seconds in range(2, 11):
            run.tick(seconds)
        stage.check("staleness is the reason", "SYS-002 among the mode reasons",
                    ", ".join(run.reason_codes()), "SYS-002" in run.reason_codes())
        _opening_denied(run, stage, 12, "MOD-002")
        _reduce_goes_through(run, stage, 13)
        return _played(run)


def bad_price_burst(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("NaN, negative and zero prices", 10)
        bad = [
            MarketSnapshot(symbol="AAPL", ts=at(10), bid=Decimal("NaN"), ask=Decimal(191),
                           last=Decimal(190)),
            MarketSnapshot(symbol="AAPL", ts=at(10.1), bid=Decimal(-1), ask=Decimal(-1),
                           last=Decimal(-1)),
            MarketSnapshot(symbol="AAPL", ts=at(10.2), bid=Decimal(0), ask=Decimal(0),
                           last=Decimal(0)),
        ]
        run.step(bad)
        stage.check("invalid data is the reason", "SYS-003 among the mode reasons",
                    ", ".join(run.reason_codes()), "SYS-003" in run.reason_codes())
        _circuit_opened(run, stage, "feed:market")
        _opening_denied(run, stage, 11, "MOD-002")
        _reduce_goes_through(run, stage, 12)
        return _played(run)


def partial_group(stage: Stage) -> Played:
    sim = SimConfig(fill_model=FillModel.NEXT_MARKET, max_participation_pct=Decimal(10),
                    reject_symbols=frozenset({"MSFT"}))
    with ChaosRun.open(stage.directory, sim=sim) as run:
        run.start()
        run.fault("a two-leg group: one leg fills partly, the other is rejected", 1)
        run.step([
            intent("leg-aapl", Side.BUY, 100, 1, limit_price=Decimal(191)),
            intent("leg-msft", Side.SELL, 50, 1, symbol="MSFT", limit_price=Decimal(409)),
        ])
        run.step([quote("AAPL", 2, volume=Decimal(500)), quote("MSFT", 2)])
        stage.check("the first leg fills partly", "AAPL position 50 of 100",
                    f"AAPL position {run.position()}", run.position() == 50)
        stage.check("the rejected leg leaves no position and no working order",
                    "MSFT position 0; no MSFT order working",
                    f"MSFT position {run.position('MSFT')}; working "
                    f"{[o.symbol for o in run.runtime.engine.status().open_orders]}",
                    run.position("MSFT") == 0 and all(
                        o.symbol != "MSFT" for o in run.runtime.engine.status().open_orders))
        run.request_cancel(_cid("leg-aapl"), 3)
        working = run.runtime.engine.status().open_orders
        broker_qty = {p.symbol: p.qty for p in run.broker.positions()}
        stage.check("the group's remainder is canceled and both sides agree",
                    "no working order; gateway and broker AAPL positions 50",
                    f"working {len(working)}; gateway {run.position()}, broker "
                    f"{broker_qty.get('AAPL', 0)}",
                    not working and run.position() == 50 == broker_qty.get("AAPL"))
        return _played(run)


def late_fills_after_cancel(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory, sim=SimConfig(fill_model=FillModel.NEXT_MARKET)) as run:
        run.start()
        run.step([intent("resting", Side.BUY, 100, 1, limit_price=Decimal(185))])
        run.quotes(2)
        run.broker.faults.late_fill_next_cancels = 1
        run.fault("the broker fills the remainder after confirming the cancel", 3)
        run.request_cancel(_cid("resting"), 3)
        broker_qty = {p.symbol: p.qty for p in run.broker.positions()}
        stage.check("the late fill is booked, not lost", "gateway AAPL position = broker's",
                    f"gateway {run.position()}, broker {broker_qty.get('AAPL', 0)}",
                    run.position() == broker_qty.get("AAPL", 0) == 100)
        facts = JournalFacts.read(run.journal_path)
        flagged = [a.message for a in facts.alerts if a.code == "SYS-009"]
        stage.check("the fill after the cancel is flagged", "Alert SYS-009 'after it was'",
                    "; ".join(flagged) or "none",
                    any("after it was" in text for text in flagged))
        _opening_denied(run, stage, 4, "MOD-001")
        before = len(run.submissions())
        run.flatten(5)
        run.quotes(6)
        stage.check("HALTED still allows the operator's flatten", "position 100 -> 0",
                    f"position {run.position()}, broker orders {before} -> "
                    f"{len(run.submissions())}",
                    run.position() == 0 and len(run.submissions()) == before + 1)
        return _played(run)


def clock_drift(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        run.start()
        for seconds in range(1, 5):
            run.quotes(seconds)
        run.fault("the broker's clock is 3 s ahead", 5)
        run.broker.clock_offset = timedelta(seconds=3)
        run.quotes(5)
        run.quotes(6)
        stage.check("drift is the reason", "CLK-002 among the mode reasons",
                    ", ".join(run.reason_codes()), "CLK-002" in run.reason_codes())
        run.broker.faults.fail_next_reads = 1_000
        run.quotes(8)
        run.quotes(9)
        both = run.reason_codes()
        stage.check("an unreachable reference clock adds its own reason",
                    "CLK-002 and CLK-003", ", ".join(both),
                    "CLK-002" in both and "CLK-003" in both)
        run.broker.faults.fail_next_reads = 0
        run.quotes(11)
        run.quotes(12)
        after_source = run.reason_codes()
        stage.check("the reference coming back clears only CLK-003", "CLK-002 stays",
                    ", ".join(after_source),
                    "CLK-002" in after_source and "CLK-003" not in after_source)
        run.broker.clock_offset = timedelta(0)
        run.quotes(14)
        run.quotes(15)
        codes = run.reason_codes()
        stage.check("drift back within tolerance clears CLK-002; the mode stays",
                    "no CLK reason; REDUCE_ONLY until an operator resumes",
                    f"{', '.join(codes) or 'no reasons'}; {run.mode().value}",
                    not any(code.startswith("CLK") for code in codes)
                    and run.mode() is Mode.REDUCE_ONLY)
        run.resume(16)
        sent = len(run.submissions())
        run.step([quote("AAPL", 17), intent("after-resume", Side.BUY, 10, 17)])
        stage.check("after the operator resumes, trading is ACTIVE again",
                    "ACTIVE; the buy is sent", f"{run.mode().value}; broker orders {sent} -> "
                    f"{len(run.submissions())}",
                    run.mode() is Mode.ACTIVE and len(run.submissions()) == sent + 1)
        return _played(run)


def exchange_maintenance(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        run.start()
        run.fault("AAPL's market halted for maintenance", 10)
        run.broker.faults.halted_symbols = {"AAPL"}
        run.quotes(10)
        run.step([intent("aapl-halted", Side.BUY, 10, 10.5),
                  intent("msft-open", Side.BUY, 10, 10.5, symbol="MSFT")])
        stage.check("the halted symbol's order is rejected, the other trades",
                    "AAPL 0, MSFT 10", f"AAPL {run.position()}, MSFT {run.position('MSFT')}",
                    run.position() == 0 and run.position("MSFT") == 10)
        facts = JournalFacts.read(run.journal_path)
        stage.check("no circuit opens for a market halt", "no SYS-007",
                    f"{len(facts.unhealthy('SYS-007'))} SYS-007 events",
                    not facts.unhealthy("SYS-007"))
        run.broker.faults.halted_symbols = set()
        run.step([quote("AAPL", 20), intent("aapl-reopened", Side.BUY, 10, 20)])
        stage.check("after maintenance the symbol trades again", "AAPL 10",
                    f"AAPL {run.position()}", run.position() == 10)
        return _played(run)


def auth_failure(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("HTTP 401 on submit", 10)
        run.broker.faults.submit_fault = SubmitFault.AUTH
        run.broker.faults.fail_next_submits = 1
        run.step([quote("AAPL", 10), intent("during", Side.BUY, 10, 10)])
        attempts = [a for a in run.broker.submission_log() if a.client_order_id == _cid("during")]
        stage.check("the order refused with 401 is not sent again", "one attempt (the 401)",
                    f"{len(attempts)} attempt(s)", len(attempts) == 1)
        status = run.runtime.engine.status()
        held = [f"{r.code} by {r.actor}: {r.detail}" for r in status.reasons]
        stage.check("authentication failure halts, naming the cause", "MOD-001 by ordergate: AUTH",
                    "; ".join(held), any(r.startswith("MOD-001 by ordergate: AUTH")
                                         for r in held))
        return _played(run)


def reconciliation_mismatch(stage: Stage) -> Played:
    with ChaosRun.open(stage.directory) as run:
        _open_position(run, stage)
        run.fault("the position changes outside ordergate (100 -> 40)", 10)
        run.broker.set_position(ACCOUNT, "AAPL", Decimal(40), PRICES["AAPL"])
        run.quotes(10)
        facts = JournalFacts.read(run.journal_path)
        found = [e.detail for e in facts.unhealthy("SYS-009")]
        alerts = [a.message for a in facts.alerts if a.code == "SYS-009"]
        stage.check("the mismatch is journaled with both sides", "SYS-009 'gateway 100, "
                    "broker 40' and an Alert", "; ".join(found) or "none",
                    any("gateway 100, broker 40" in text for text in found) and bool(alerts))
        _opening_denied(run, stage, 11, "MOD-001")
        return _played(run)


# ---------------------------------------------------------------------------- processes


def _write_events(path: Path, events: list[InputEvent]) -> None:
    encode = msgspec.json.Encoder(order="deterministic").encode
    path.write_bytes(b"".join(encode(event) + b"\n" for event in events))


def _crash_events() -> list[InputEvent]:
    events: list[InputEvent] = [AccountFunding(ts=at(0), account=ACCOUNT,
                                               cash=Decimal(1_000_000))]
    for second in range(1, 13):
        events.append(quote("AAPL", second))
        side = Side.BUY if second % 3 else Side.SELL
        events.append(intent(f"c-{second:02d}", side, 10, second + 0.5))
    return events


def _ordergate(args: list[str], kill_at: str | None) -> int:
    env = {key: value for key, value in os.environ.items() if key != faults.ENV_VAR}
    if kill_at:
        env[faults.ENV_VAR] = kill_at
    done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args], env=env,
                          capture_output=True, check=False, timeout=120)
    return done.returncode


def crash_restart(stage: Stage) -> Played:
    directory = stage.directory
    directory.mkdir(parents=True, exist_ok=True)
    events, policy = directory / "events.jsonl", directory / "policy.yaml"
    journal, broker_state = directory / "journal.db", directory / "broker.db"
    _write_events(events, _crash_events())
    policy.write_text(CHAOS_POLICY, encoding="utf-8")
    args = ["run", "--quiet", "--policy", str(policy), "--journal", str(journal),
            "--broker-state", str(broker_state), "--batch-size", "4", str(events)]
    codes = [_ordergate(args, "after_submit:3"), _ordergate(args, "before_submit:2"),
             _ordergate(args, None)]
    stage.check("the process is really killed twice, then finishes",
                f"exit codes {SIGKILL_EXIT}, {SIGKILL_EXIT}, 0",
                ", ".join(str(code) for code in codes),
                codes == [SIGKILL_EXIT, SIGKILL_EXIT, 0])
    broker = SimBroker(SimConfig(state_path=str(broker_state)))
    try:
        attempts = broker.submission_log()
    finally:
        broker.close()
    sent = [attempt.client_order_id for attempt in attempts]
    facts = JournalFacts.read(journal)
    stage.check("no order reached the broker twice", "every client order id once",
                f"{len(sent)} submissions, {len(set(sent))} distinct",
                len(sent) == len(set(sent)))
    stage.check("every journaled dispatch reached the broker exactly once",
                "dispatches == submissions",
                f"{len(facts.dispatches)} dispatches, {len(set(sent))} submitted",
                set(facts.dispatches) == set(sent) and len(facts.dispatches) > 3)
    return Played(journal=journal, attempts=attempts, fault_at=None)


def corrupted_state(stage: Stage) -> Played:
    directory = stage.directory
    with ChaosRun.open(directory / "gateway") as run:
        _open_position(run, stage)
        run.quotes(2)
        played = _played(run)
    pristine = directory / "pristine.db"
    shutil.copyfile(played.journal, pristine)
    played.journal = pristine
    with sqlite3.connect(run.journal_path) as db:
        seq, payload = db.execute(
            "SELECT seq, payload FROM journal_records ORDER BY seq DESC LIMIT 1").fetchone()
        tampered = bytes(payload).replace(b"190", b"191", 1)
        tampered = tampered if tampered != bytes(payload) else bytes(payload) + b" "
        db.execute("UPDATE journal_records SET payload = ? WHERE seq = ?", (tampered, seq))
    broker = SimBroker(SimConfig())
    refused = ""
    try:
        GuardedRuntime.open(f"sqlite:///{run.journal_path}", chaos_policy(), broker,
                            EventClock(), chaos_settings()).close()
    except StartRefused as exc:
        refused = str(exc)
    stage.check("a corrupted journal tail stops start-up with a clear reason",
                f"refused, naming seq {seq}", refused or "it started",
                bool(refused) and f"seq {seq}" in refused)
    stage.check("nothing was sent by the refused start", "0 broker calls",
                f"{len(broker.submissions())} broker calls", not broker.submissions())

    state = directory / "broker.db"
    SimBroker(SimConfig(state_path=str(state))).close()
    with sqlite3.connect(state) as db:
        db.execute("UPDATE sim_meta SET body = ? WHERE id = 1", (b"{not json",))
    unreadable = ""
    try:
        SimBroker(SimConfig(state_path=str(state))).close()
    except BrokerError as exc:
        unreadable = str(exc)
    stage.check("a corrupted broker state file is refused, naming the file",
                f"refused naming {state.name}", unreadable or "it opened",
                state.name in unreadable)
    # A reader: inspection never takes the writer's lock nor writes (a writer's open would).
    journal = open_journal(f"sqlite:///{run.journal_path}", durability=Durability.NONE,
                           create=False, reader=True)
    try:
        detected = not journal.verify().ok
    finally:
        journal.close()
    stage.check("journal verification reports the tampering", "verify() not ok",
                "not ok" if detected else "ok", detected)
    return played


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="broker_downtime", title="Broker downtime (submit timeouts)",
             expected_mode=Mode.REDUCE_ONLY, deadline_s=1, play=broker_downtime),
    Scenario(name="disconnect_storm", title="Disconnect storm (>= 5 failed reconnects)",
             expected_mode=Mode.HALTED, deadline_s=30, play=disconnect_storm),
    Scenario(name="rate_limit_storm", title="Rate-limit storm (HTTP 429)",
             expected_mode=Mode.REDUCE_ONLY, deadline_s=1, play=rate_limit_storm),
    Scenario(name="stale_market_data", title="Stale market data",
             expected_mode=Mode.REDUCE_ONLY, deadline_s=6, play=stale_market_data),
    Scenario(name="bad_price_burst", title="NaN / negative / zero price burst",
             expected_mode=Mode.REDUCE_ONLY, deadline_s=1, play=bad_price_burst),
    Scenario(name="partial_group", title="Partial fill on a group, other leg rejected",
             expected_mode=Mode.ACTIVE, deadline_s=0, play=partial_group),
    Scenario(name="late_fills_after_cancel", title="Late fills after a cancel",
             expected_mode=Mode.HALTED, deadline_s=1, play=late_fills_after_cancel),
    Scenario(name="clock_drift", title="Clock drift beyond tolerance and back",
             expected_mode=Mode.REDUCE_ONLY, deadline_s=2, play=clock_drift),
    Scenario(name="crash_restart", title="Process crash mid-intent and restart (SIGKILL)",
             expected_mode=Mode.ACTIVE, deadline_s=0, play=crash_restart),
    Scenario(name="corrupted_state", title="Corrupted journal tail / broker state file",
             expected_mode=Mode.ACTIVE, deadline_s=0, play=corrupted_state),
    Scenario(name="reconciliation_mismatch", title="Position changed outside ordergate",
             expected_mode=Mode.HALTED, deadline_s=1, play=reconciliation_mismatch),
    Scenario(name="exchange_maintenance", title="Exchange maintenance / trading halted",
             expected_mode=Mode.ACTIVE, deadline_s=0, play=exchange_maintenance),
    Scenario(name="auth_failure", title="Authentication failure (HTTP 401)",
             expected_mode=Mode.HALTED, deadline_s=1, play=auth_failure),
)

BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}
