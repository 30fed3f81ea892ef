"""`ordergate gateway`: serve one shard (a PostgreSQL journal stream) as its single owner,
with a standby simply started the same way; and `ordergate firm`: the firm-wide kill switch
and counters in Redis.

Start the same command on two hosts: one takes the shard's lease and serves, the other waits.
Kill the owner (even with SIGKILL): the standby takes the lease, replays the shard's journal
and continues the events source after the last line journaled. Decisions, orders, fills and
mode changes go to stdout as JSON Lines, as with `ordergate run`.
"""

from __future__ import annotations

import math
import re
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from msgspec import UNSET

from ordergate.brokers.base import BrokerAdapter
from ordergate.brokers.config import BrokerConfigError
from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.cli.broker_spec import broker_from_spec
from ordergate.cli.console import err, out, plain
from ordergate.cli.errors import SafetyStop, UserError, journal_problem
from ordergate.cli.policy_flags import (
    PolicyOperator,
    PolicyReason,
    ReplacePolicy,
    policy_replacement,
)
from ordergate.cli.run_cmd import (
    OperatorNotes,
    configure_logging,
    load_policy_or_fail,
    render_summary,
    require_events_file,
    writer,
)
from ordergate.journal import Durability, JournalError
from ordergate.journal.chain import JournalDamaged
from ordergate.journal.lease import MAX_LEASE_TTL_S, MIN_LEASE_TTL_S
from ordergate.policy.loader import Policy
from ordergate.policy.spec import parse_duration
from ordergate.runtime.firm import (
    DEFAULT_PREFIX,
    FirmRate,
    FirmStore,
    FirmUnavailable,
    FirmUrlError,
    check_redis_url,
)
from ordergate.runtime.health import StartRefused
from ordergate.runtime.loop import ResumeMismatch, RuntimeStopped
from ordergate.runtime.runfile import DEFAULT_BATCH_SIZE, Tally
from ordergate.runtime.shard import (
    DEFAULT_LEASE_TTL_S,
    EVENT_CLOCK,
    LOSS_EMPTIED,
    LOSS_WENT_BACK,
    FirmSettings,
    LeaseLost,
    LossNote,
    ShardConfig,
    ShardError,
    ShardGateway,
    read_loss_note,
)

RedisUrl = Annotated[str, typer.Option("--redis", envvar="ORDERGATE_REDIS_URL",
                                       help="Redis URL of the firm-wide store.")]
RedisPrefix = Annotated[str, typer.Option("--redis-prefix", envvar="ORDERGATE_REDIS_PREFIX",
                                          help="Key prefix: one firm per prefix.")]


def _uses_firm_gross(policy: Policy) -> bool:
    spec = policy.spec
    sections = [spec.defaults, *spec.accounts.values(), *spec.strategies.values(),
                *spec.symbols.values()]
    return any(section.max_firm_gross_exposure is not UNSET for section in sections)


def _firm_rate(max_orders: int | None, window: str) -> FirmRate | None:
    if max_orders is None:
        return None
    try:
        return FirmRate(max_orders=max_orders, window=parse_duration(window))
    except ValueError as exc:
        raise UserError(f"--firm-rate-window: {exc} (expected e.g. 500ms, 1s, 1m)") from None


def _check_lease_ttl(seconds: float) -> None:
    """A lease TTL PostgreSQL can hold as its idle session timeout, and that a heartbeat every
    third of it keeps: a finite number of seconds from 1 to a day. Else a usage error."""
    if not (math.isfinite(seconds) and MIN_LEASE_TTL_S <= seconds <= MAX_LEASE_TTL_S):
        raise typer.BadParameter(
            f"{seconds:g}: expected seconds from {MIN_LEASE_TTL_S:g} to {MAX_LEASE_TTL_S:.0f} "
            "(one day), the time without a heartbeat after which the database ends the "
            "owner's session and a standby takes over", param_hint="'--lease-ttl'")


def gateway(
    events: Annotated[Path, typer.Argument(help="JSON Lines events file for this shard.")],
    policy: Annotated[Path, typer.Option("--policy", help="Policy YAML file.")],
    journal: Annotated[str, typer.Option("--journal", help="PostgreSQL journal URL "
                                                           "(postgresql://...).")],
    shard: Annotated[str, typer.Option("--shard", help="Shard name: the journal stream this "
                                                       "process owns.")],
    durability: Annotated[Durability, typer.Option(help="always: every record durable on its "
                                                        "own; batch: one commit per batch.")]
    = Durability.BATCH,
    broker: Annotated[str, typer.Option(
        "--broker", help="'sim', or a broker config YAML (paper/live) for a real venue.")]
    = "sim",
    broker_state: Annotated[Path | None, typer.Option(
        "--broker-state", help="Persist the simulated broker here, so a standby talks to the "
                               "same broker.")] = None,
    fill_model: Annotated[FillModel, typer.Option("--fill-model")] = FillModel.IMMEDIATE,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per journal commit.")]
    = DEFAULT_BATCH_SIZE,
    lease_ttl: Annotated[float, typer.Option(
        "--lease-ttl", help="Seconds without a heartbeat after which the database ends the "
                            f"owner's session (1 to {MAX_LEASE_TTL_S:.0f}, one day); "
                            "heartbeats every third.")]
    = DEFAULT_LEASE_TTL_S,
    wait: Annotated[float | None, typer.Option(
        "--wait", min=0.0, help="Give up after this many seconds as standby (default: wait "
                                "until the owner goes).")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep reading lines appended to the events file until SIGTERM.")]
    = False,
    redis_url: RedisUrl = "",
    redis_prefix: RedisPrefix = DEFAULT_PREFIX,
    firm_max_orders: Annotated[int | None, typer.Option(
        "--firm-max-orders", min=1, help="Firm-wide order rate (THR-007): at most this many "
                                         "intents per window across all gateways.")] = None,
    firm_rate_window: Annotated[str, typer.Option("--firm-rate-window")] = "1s",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name this process in the "
                                                                "journal.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No JSON Lines on stdout.")]
    = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs.")]
    = False,
    replace_policy: ReplacePolicy = False,
    operator: PolicyOperator = "",
    reason: PolicyReason = "",
) -> None:
    """Own one shard: take its lease (or wait as standby), replay its journal, serve."""
    _check_lease_ttl(lease_ttl)
    configure_logging(verbose)
    require_events_file(events)
    loaded = load_policy_or_fail(policy)
    replacement = policy_replacement(replace_policy, operator, reason)
    rate = _firm_rate(firm_max_orders, firm_rate_window)
    if not redis_url and (rate is not None or _uses_firm_gross(loaded)):
        what = "--firm-max-orders" if rate is not None else \
            f"{policy}: max_firm_gross_exposure"
        raise UserError(f"{what} needs the firm-wide store: pass --redis URL "
                        "(or set ORDERGATE_REDIS_URL)")
    if redis_url:
        _check_redis(redis_url)  # before any lease is taken or journal record written
    firm = FirmSettings(redis_url=redis_url, prefix=redis_prefix, rate=rate) \
        if redis_url else None
    config = ShardConfig(journal_url=journal, shard=shard, events=events,
                         durability=durability, batch_size=batch_size, lease_ttl_s=lease_ttl,
                         acquire_timeout_s=wait, follow=follow, firm=firm, run_id=run_id,
                         replace_policy=replacement)
    if broker != "sim" and (broker_state is not None or fill_model is not FillModel.IMMEDIATE):
        raise UserError(f"--broker {broker}: --broker-state and --fill-model apply to the "
                        "simulator only (--broker sim)")
    if broker != "sim":
        # refuse a bad config, or live without its confirmation, before taking any lease
        checked = broker_from_spec(broker, loaded)
        close = getattr(checked, "close", None)
        if callable(close):
            close()

    def make_broker() -> BrokerAdapter:
        if broker != "sim":
            return broker_from_spec(broker, loaded)
        try:
            return SimBroker(SimConfig(fill_model=fill_model,
                                       state_path=str(broker_state) if broker_state else None))
        except BrokerConfigError as exc:  # the state file (SimStateError), named in `exc`
            raise UserError(f"--broker-state: {exc}") from None

    tally = Tally()
    notes = OperatorNotes()  # why operators resumed, and the commands the engine refused
    try:
        gate = ShardGateway(config, loaded, make_broker,
                            on_batch=writer(sys.stdout.buffer, quiet, tally, notes))
    except ShardError as exc:
        raise UserError(str(exc)) from None

    def _stop(signum: int, frame: FrameType | None) -> None:
        gate.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stats = gate.run()
    except ShardError as exc:
        raise UserError(str(exc)) from None
    except StartRefused as exc:  # a journal it cannot prove: as `serve` and `run` say it
        raise SafetyStop(str(exc)) from None
    except JournalDamaged as exc:  # storage that cannot be read back, as `serve` says it
        raise SafetyStop(f"{journal_problem(journal, exc)}; the gateway will not start on a "
                         "journal it cannot prove (restore it from a replica or start a new "
                         "one)") from None
    except (JournalError, ResumeMismatch) as exc:
        raise UserError(journal_problem(journal, exc)) from None
    except (LeaseLost, RuntimeStopped) as exc:
        raise SafetyStop(str(exc)) from None
    if gate.runtime is not None:
        render_summary(err, tally, gate.runtime.engine.status(),
                       title=f"shard {plain(shard)} (epoch {stats.epoch})", notes=notes)
    if stats.bad_line is not None:
        raise UserError(f"{stats.bad_line} (every line before it was journaled; fix the line "
                        "and start the gateway again to continue)")


firm_app = typer.Typer(help="The firm-wide store shared by every gateway (Redis).",
                       no_args_is_help=True)


def _redis_problem(url: str) -> str:
    """What is wrong with `url` as --redis, or '' if it is a Redis URL. Never quotes it."""
    if not url:
        return ("--redis: the firm-wide store's URL is required "
                "(or set ORDERGATE_REDIS_URL)")
    try:
        check_redis_url(url)
    except FirmUrlError as exc:
        return f"--redis: {exc}"
    return ""


def _check_redis(url: str) -> None:
    problem = _redis_problem(url)
    if problem:
        raise UserError(problem)


def _store(url: str, prefix: str) -> FirmStore:
    _check_redis(url)
    return FirmStore(url, shard="", prefix=prefix)


@firm_app.command("kill")
def firm_kill(
    operator: Annotated[str, typer.Option("--operator", help="Who engages it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    redis_url: RedisUrl = "",
    redis_prefix: RedisPrefix = DEFAULT_PREFIX,
) -> None:
    """Engage the firm kill switch: every gateway stops every intent at its next heartbeat."""
    problem = _redis_problem(redis_url)
    if problem:
        # as loud as an unreachable store: the operator must know nothing was stopped
        raise SafetyStop(f"the firm kill switch was NOT engaged: {problem}")
    store = _store(redis_url, redis_prefix)
    try:
        store.set_kill(True, f"{operator}: {reason}")
    except FirmUnavailable as exc:
        raise SafetyStop(f"the firm kill switch was NOT engaged: {exc}") from None
    finally:
        store.close()
    out.print(f"firm kill switch engaged by {operator}: {reason}", markup=False,
              highlight=False)


@firm_app.command("unkill")
def firm_unkill(
    operator: Annotated[str, typer.Option("--operator", help="Who releases it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    redis_url: RedisUrl = "",
    redis_prefix: RedisPrefix = DEFAULT_PREFIX,
) -> None:
    """Release the firm kill switch (gateways journal the change at their next heartbeat)."""
    store = _store(redis_url, redis_prefix)
    try:
        store.set_kill(False, f"{operator}: {reason}")
    except FirmUnavailable as exc:
        raise UserError(f"the firm kill switch could not be released: {exc}") from None
    finally:
        store.close()
    out.print(f"firm kill switch released by {operator}: {reason}", markup=False,
              highlight=False)


@firm_app.command("status")
def firm_status(
    redis_url: RedisUrl = "",
    redis_prefix: RedisPrefix = DEFAULT_PREFIX,
) -> None:
    """The firm kill switch, every shard's published gross exposure, and whether the store
    lost its data (then the shards known before that have not reported since)."""
    store = _store(redis_url, redis_prefix)
    try:
        reading = store.kill_switch()
        released = "" if reading else store.kill_released()
        gross = store.published()
        info, unreported = store.store_info()
    except FirmUnavailable as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()
    # the operator's and the reason's text are theirs: never read as rich markup
    if reading:
        state = f"ENGAGED ({reading})"
    else:
        state = f"off (last released by {released})" if released else "off"
    out.print(f"firm kill switch: {state}", markup=False, highlight=False)
    for line in _store_lines(info, unreported):
        out.print(line, markup=False, highlight=False)
    for name, value in gross.items():
        out.print(f"shard {name}: gross exposure {value}", markup=False, highlight=False)
    out.print(f"firm gross exposure: {sum(gross.values())}", markup=False, highlight=False)


_SINCE_CLOCK = "UTC, by the wall clock of the gateway that set it up"
"""The clock of the store's `since`: the gateway whose exchange found no identity stamps it
with its host's wall clock (`FirmStore.exchange`)."""

_FOUND = re.compile(r"found by shard (?P<shard>.+) at (?P<at>\S+)")
"""The `lost` note an earlier version left when it found the loss (this one writes a
`LossNote`): its time is that shard's event time, the time its journal gives the finding."""

_LOSS_WORDS = {
    LOSS_EMPTIED: " (restarted empty or flushed)",
    LOSS_WENT_BACK: " (it came back holding older data: restored from an older snapshot, or a "
                    "replica that lagged behind)",
}
"""What a `LossNote.loss` says of the store; an earlier version's note does not say which kind
of loss it found, and then neither does `firm status`."""


def _event_time_words(shard: str, at: str) -> str:
    return (f"found by shard {shard}, whose journal records the finding at event time {at} "
            "(the time of that shard's events, not a wall clock)")


def _found_words(note: LossNote) -> str:
    """Who found the loss, with its time said on its own clock: a shard's event time follows
    its events (a file of last week's quotes, or a quiet stream's last event), so set beside
    the wall-clock `since` unnamed it read as found long before (or after) the store was set up
    again."""
    at = note.at.isoformat().replace("+00:00", "Z")
    if note.clock == EVENT_CLOCK:
        return _event_time_words(note.found_by, at)
    return f"found by shard {note.found_by} at {at} (on the clock '{note.clock}')"


def _loss_words(lost: str) -> tuple[str, str]:
    """The store's `lost` note as (what kind of loss, in words to follow 'LOST ITS DATA', or ''
    when the note does not say; who found it and when). A note of an earlier version's form
    is read as it wrote it; a note of another form is shown as written."""
    note = read_loss_note(lost)
    if note is not None:
        kind = _LOSS_WORDS.get(note.loss, f" ({note.loss})")
        return kind, _found_words(note)
    found = _FOUND.fullmatch(lost)
    if found is None:
        return "", lost
    return "", _event_time_words(found["shard"], found["at"])


def _store_lines(info: dict[str, str], unreported: list[str]) -> list[str]:
    """What `firm status` says of the store itself: when it was set up, and whether it lost
    its data (restarted empty or flushed, or came back holding older data, as the gateway that
    found it says), with the shards known before that have not reported since (their exposure
    is missing from the total)."""
    if not info.get("id"):
        return ["firm store: empty: no gateway has reported to it since it was set up or "
                "since it lost its data (a running gateway says so at its next heartbeat)"]
    lost = info.get("lost", "")
    since = f"{info.get('since', '?')} ({_SINCE_CLOCK})"
    if not lost:
        return [f"firm store: set up at {since}"]
    kind, found = _loss_words(lost)
    lines = [f"firm store: LOST ITS DATA{kind} and was set up again at {since}; {found}; the "
             "gateways hold new risk until an operator resumes each"]
    lines += [f"shard {name}: has not reported since the store lost its data: its exposure "
              "is unknown and missing from the firm total" for name in unreported]
    if not unreported:
        lines.append("every shard known before the loss has reported again")
    return lines


def register(app: typer.Typer) -> None:
    app.command("gateway")(gateway)
    app.add_typer(firm_app, name="firm")
