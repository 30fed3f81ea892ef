"""`ordergate serve`: the gateway's HTTP control plane; `ordergate token`: make API tokens.

    ordergate serve --policy policy.yaml --journal sqlite:///og.db --tokens tokens.yaml \\
        [--host 127.0.0.1 --port 8080 --broker sim|broker.yaml --webhook URL --feed events.jsonl]
        [--replace-policy --operator NAME --reason TEXT]

    ordergate token new --name desk-a --role trader --accounts ACC-1,ACC-2   # token + YAML entry
    ordergate token hash < token.txt                                      # hash an existing one

The webhook URL can come from $ORDERGATE_WEBHOOK_URL instead of --webhook (out of `ps`); it
is checked before anything starts. Alerts the --feed raises are sent like every later one.

--feed seeds a NEW journal (one that holds no events yet). A restart with the same command,
on a journal that holds events, skips it and says so on stderr: applying it again would set
each account's cash back to the feed's figure (as if the difference had been deposited or
withdrawn) and rewind market data to the feed's timestamps. --reapply-feed applies it anyway,
for deliberate funding. A first start stopped partway through its feed
(killed, under --durability always) leaves the journal holding only the feed's first lines:
the restart applies the rest, and says so.

On a journal that enforces a policy already (one activated with POST /v1/policy, say), a
restart keeps enforcing it; the --policy file replaces it only with --replace-policy, whose
activation is journaled at start-up, before serving.

On a PostgreSQL journal the stream has one owner, like a shard of `ordergate gateway`: serve
takes the stream's lease first (a second serve on the same stream waits as standby until the
owner goes), keeps it heartbeated, and writes with the lease's epoch, so an owner that lost
the lease can never write again. Losing the lease stops serving (exit 3).

SIGTERM or Ctrl-C stops serving gracefully: requests in flight are answered, then the journal
is flushed and closed and pending alerts are delivered (exit 0 on SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from ordergate.cli.broker_spec import broker_from_spec
from ordergate.cli.console import err, out
from ordergate.cli.errors import SafetyStop, UserError, journal_problem
from ordergate.cli.logs import stderr_logger_factory
from ordergate.cli.policy_flags import (
    PolicyOperator,
    PolicyReason,
    ReplacePolicy,
    announce_policy_choice,
    policy_replacement,
    warn_if_years_ended,
)

if TYPE_CHECKING:
    from ordergate.journal import Journal
    from ordergate.model.events import InputEvent, OutputEvent
    from ordergate.runtime.loop import Runtime
    from ordergate.runtime.shard import LeaseKeeper
    from ordergate.service.alerts import AlertRouter

MIN_TICK_INTERVAL_S = 0.1
"""The engine thread looks for idle work this often (`EngineBridge`'s idle poll): a shorter
interval cannot be kept, and would only journal a clock tick at every poll."""
MAX_TICK_INTERVAL_S = 3600.0
"""An hour: timers, market data staleness and broker polling advance only with event time."""
MAX_PORT = 65_535

token_app = typer.Typer(help="Make and hash API tokens for `ordergate serve`.",
                        no_args_is_help=True)


def serve(
    policy: Annotated[Path, typer.Option("--policy", help="Policy YAML file.")],
    journal: Annotated[str, typer.Option("--journal", help="Journal URL: sqlite:///path.db, "
                                         "path.db or postgresql://...")],
    tokens: Annotated[str | None, typer.Option(
        "--tokens", help="Tokens YAML file (default: $ORDERGATE_TOKENS_FILE, else the "
                         "tokens document in $ORDERGATE_TOKENS).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        "--port", help="TCP port, 0 to 65535 (0: any free port, said at start).")] = 8080,
    broker: Annotated[str, typer.Option(
        "--broker", help="'sim' (the paper simulator) or a broker config YAML file.")] = "sim",
    webhook: Annotated[str | None, typer.Option(
        "--webhook", help="POST alerts (mode changes, breakers, reconciliation, repeated "
                          "rejects) as JSON to this http(s) URL (default: "
                          "$ORDERGATE_WEBHOOK_URL; the variable keeps a secret in the URL "
                          "out of `ps`).")] = None,
    feed: Annotated[Path | None, typer.Option(
        "--feed", help="JSON Lines of input events (market snapshots, account funding) to "
                       "process before serving when the journal is new (holds no events "
                       "yet). On a journal that holds events (a restart) it is skipped, "
                       "with a note on stderr.")] = None,
    reapply_feed: Annotated[bool, typer.Option(
        "--reapply-feed", help="Apply --feed even on a journal that holds events. Each "
                               "account line then sets that account's cash to its figure, "
                               "moving day-start equity and drawdown high-water mark by the "
                               "same change (money moved is no profit or loss: the day's loss "
                               "and drawdown are kept) unless the line gives them; market "
                               "lines apply with their own timestamps. For deliberate funding "
                               "only; send new market data to POST /v1/market.")]
    = False,
    durability: Annotated[str, typer.Option(
        "--durability", help="Journal durability: batch (group commit) or always.")] = "batch",
    tick_interval: Annotated[float, typer.Option(
        "--tick-interval", help="Seconds without traffic before event time is advanced to "
                                "the wall clock (timers, staleness, broker polling): 0.1 "
                                "to 3600.")] = 1.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    replace_policy: ReplacePolicy = False,
    operator: PolicyOperator = "",
    reason: PolicyReason = "",
) -> None:
    """Serve the HTTP API and the status dashboard (GET /) for one gateway shard."""
    from ordergate.journal import Durability, JournalError, open_journal, redact_url
    from ordergate.journal.chain import JournalDamaged
    from ordergate.policy.errors import PolicyError
    from ordergate.policy.loader import load_policy
    from ordergate.resilience.clock import SystemClock
    from ordergate.runtime.health import (
        GuardedRuntime,
        StartRefused,
        open_proven,
        settings_for,
    )
    from ordergate.runtime.loop import ResumeMismatch, Runtime, RuntimeStopped
    from ordergate.runtime.policy_choice import PolicyNotInEffect
    from ordergate.runtime.sources import BadLine, read_lines
    from ordergate.service.alerts import (
        WEBHOOK_URL_ENV,
        WebhookURLError,
        alert_router,
        check_webhook_url,
    )
    from ordergate.service.auth import (
        TOKENS_ENV,
        TOKENS_FILE_ENV,
        TokenFileError,
        configured_tokens,
    )
    from ordergate.service.bridge import utc_now
    from ordergate.service.server import Gateway, GatewayServer, GuardedBatches, bind_socket

    _check_port(port)
    _check_tick_interval(tick_interval)
    _configure_logging(log_level)
    if durability not in ("batch", "always"):
        raise UserError(f"--durability: expected 'batch' or 'always', got '{durability}'")
    replacement = policy_replacement(replace_policy, operator, reason)
    webhook_source = "--webhook" if webhook is not None else WEBHOOK_URL_ENV
    webhook_url = webhook if webhook is not None else os.environ.get(WEBHOOK_URL_ENV) or None
    if webhook_url is not None:
        try:
            check_webhook_url(webhook_url)
        except WebhookURLError as exc:  # the message shows the URL redacted
            raise UserError(f"{webhook_source}: {exc}") from None
    try:
        store = configured_tokens(tokens)
        if store is None:
            raise UserError(f"--tokens: required (or set {TOKENS_FILE_ENV}, or {TOKENS_ENV} to "
                            "the tokens document); the API never runs without authentication")
        loaded = load_policy(policy)
    except (TokenFileError, PolicyError) as exc:
        raise UserError(str(exc)) from None
    warn_if_years_ended(loaded, policy)
    adapter = broker_from_spec(broker, loaded)
    if reapply_feed and feed is None:
        raise UserError("--reapply-feed: needs --feed (the file to apply again)")
    feed_events = []
    if feed is not None:
        if not feed.is_file():
            raise UserError(f"--feed {feed}: no such file")
        for _, item in read_lines(feed):
            if isinstance(item, BadLine):
                raise UserError(str(item))
            if item is not None:
                feed_events.append(item)
    servers: list[uvicorn.Server] = []  # the one to stop should the stream's lease be lost
    lease_alarm = _LeaseAlarm(redact_url(journal))

    def stop_serving(reason: str) -> None:
        lease_alarm.lost(reason)
        for running in servers:
            running.should_exit = True

    with contextlib.ExitStack() as ownership:
        try:
            epoch, keeper = _own_stream(journal, ownership, stop_serving)
            # Like `ordergate run`: never serve from a journal whose chain cannot be proven.
            handle = open_journal(journal, durability=Durability(durability), epoch=epoch)
            # Requests are stamped near the wall clock: a policy not in effect now would be
            # refused by the engine at the first event.
            runtime = open_proven(handle, journal, lambda on_replayed: Runtime.open_on(
                handle, loaded, adapter, replace_policy=replacement, on_replayed=on_replayed,
                start_time=SystemClock().now()))
        except JournalDamaged as exc:  # a journal SQLite cannot read: as `journal verify` says
            raise SafetyStop(f"{journal_problem(journal, exc)}; the gateway will not start on a "
                             "journal it cannot prove (restore it from a replica or start a "
                             "new one)") from None
        except JournalError as exc:
            raise UserError(f"--journal {journal_problem(journal, exc)}") from None
        except PolicyNotInEffect as exc:
            raise UserError(f"--replace-policy: {exc}") from None
        except (ResumeMismatch, StartRefused, RuntimeStopped) as exc:
            raise SafetyStop(str(exc)) from None
        announce_policy_choice(runtime.policy_choice)
        if feed is not None and feed_events and not reapply_feed:
            try:
                held = _journaled_feed(runtime.journal)
            except JournalError as exc:
                runtime.close()
                raise UserError(f"--journal {journal_problem(journal, exc)}") from None
            except BaseException:
                runtime.close()
                raise
            if held is not None:
                rest = held.rest_of(feed_events)
                if rest:
                    err.print(_feed_finished(feed, held, len(feed_events)), markup=False,
                              soft_wrap=True)
                else:
                    err.print(_feed_skipped(feed, same=held.is_whole(feed_events)),
                              markup=False, soft_wrap=True)
                feed_events = rest
        # With no feed to apply, a tick at the journal's time journals a replacement policy
        # before serving (`_replacement_tick`).
        first_events = feed_events or _replacement_tick(runtime)
        # Alerts are routed before the feed runs, so the feed's (a crossed quote moving the
        # mode to REDUCE_ONLY, a breaker opening) reach the webhook like every later one, and
        # so do a journal failing in it and a lease lost since the start.
        alerts = alert_router(run_id=runtime.journal.run_id, webhook_url=webhook_url)

        def journal_failed(why: str, outputs: list[OutputEvent]) -> None:
            alerts.journal_failed(why, outputs, ts=utc_now(),
                                  mode=runtime.engine.state.mode.value)

        runtime.on_stopped = journal_failed  # the Gateway's own takes over once it is built
        lease_alarm.attach(alerts)
        try:
            # The feed is the gateway's first batch: it goes through the guard the Gateway
            # then takes over, like every later batch (start-up checks first; then the feed's
            # breaker, the session close after a day roll, housekeeping).
            guard = GuardedRuntime(runtime, SystemClock(), settings_for(runtime.broker))
            if first_events:
                report = GuardedBatches(guard).process(first_events)
                alerts.observe(report.emitted, _accounts_of(first_events), first_events[-1].ts)
            gateway = Gateway(guard, store, journal_url=journal, alerts=alerts,
                              tick_interval_s=tick_interval)
        except RuntimeStopped as exc:
            # what the feed made durable before the journal failed (the policy's activation)
            alerts.observe(exc.journaled, _accounts_of(first_events),
                           first_events[-1].ts if first_events else utc_now())
            alerts.close()
            runtime.close()
            raise SafetyStop(str(exc)) from None
        except BaseException:
            alerts.close()
            runtime.close()
            raise
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            gateway.close()
            raise UserError(f"--host {host} --port {port}: cannot listen: {exc.strerror}") \
                from None
        enforced = runtime.deciding_policy
        policy_text = (f"policy {enforced.name} {enforced.hash}" if enforced is not None
                       else f"{runtime.policy_not_in_effect}: every intent is denied (SYS-005)")
        err.print(f"ordergate serving on http://{host}:{sock.getsockname()[1]}  "
                  f"(journal {redact_url(journal)}, {policy_text}, "
                  f"run {runtime.journal.run_id})", markup=False, soft_wrap=True)
        gateway.start()
        server = GatewayServer(gateway, log_level=log_level)  # ends event streams on stop
        servers.append(server)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; with the
        # default action that would end the process before the gateway closes (the journal's
        # last flush, pending alerts, the writer's lock), so it raises `_Terminated` instead.
        signal.signal(signal.SIGTERM, _terminated)
        try:
            if keeper is None or not keeper.lost:
                server.run(sockets=[sock])
        except _Terminated:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
            gateway.close()
            with contextlib.suppress(OSError):
                sock.close()
        if keeper is not None and keeper.lost:
            raise SafetyStop(f"{redact_url(keeper.lost)}: stopped serving (another process "
                             "may own the stream now)")


def _check_port(port: int) -> None:
    """A TCP port the socket can bind (0: the system picks a free one). Else a usage error,
    before anything is opened."""
    if not 0 <= port <= MAX_PORT:
        raise typer.BadParameter(f"{port}: expected a TCP port from 0 to {MAX_PORT} (0 "
                                 "listens on any free port)", param_hint="'--port'")


def _check_tick_interval(seconds: float) -> None:
    """A finite idle interval the engine thread can keep (see `MIN_TICK_INTERVAL_S`). Else a
    usage error, before anything is opened."""
    if not (math.isfinite(seconds) and MIN_TICK_INTERVAL_S <= seconds <= MAX_TICK_INTERVAL_S):
        raise typer.BadParameter(
            f"{seconds:g}: expected seconds from {MIN_TICK_INTERVAL_S:g} (how often the engine "
            f"looks for idle work) to {MAX_TICK_INTERVAL_S:g} (an hour), the time without "
            "traffic before event time is advanced to the wall clock",
            param_hint="'--tick-interval'")


@dataclass(frozen=True, slots=True)
class _JournaledFeed:
    """The events of the journal's first source batch (a start-up --feed, a request, the
    first lines of `ordergate run`'s file) and, when that batch was cut short (the process
    stopped in it), of the source batches that followed while each was cut short too, up to
    the first whole one: a restart applying the rest of a feed adds such a batch."""

    events: list[InputEvent]
    planned: int
    """How many events the first batch was to hold (its mark says)."""
    whole: bool
    """The last of those batches holds all its events (False: the journal ends in it)."""

    def is_whole(self, feed: list[InputEvent]) -> bool:
        """Does the journal hold all of `feed`, its first batch (finished by restarts)?"""
        return self.whole and self.events == feed

    def rest_of(self, feed: list[InputEvent]) -> list[InputEvent]:
        """The events of `feed` still to apply when a start was stopped partway through it,
        the journal holding its first lines and nothing later; [] otherwise (applied, or not
        this feed: it changed, or the journal was started without it)."""
        held = len(self.events)
        if (self.whole or self.planned != len(feed) or held >= len(feed)
                or feed[:held] != self.events):
            return []
        return feed[held:]


def _journaled_feed(journal: Journal) -> _JournaledFeed | None:
    """What the journal holds of a start-up feed (`_JournaledFeed`), or None while it holds
    no batch of events yet: a new journal, or one whose first start stopped before its feed
    (what a start journals on its own, a manifest or the start-up reconciliation with the
    broker, is no batch). Reads no further than the first whole source batch. Both
    backends."""
    from ordergate.evidence.replay import journaled_input
    from ordergate.journal import RecordKind
    from ordergate.runtime.sources import FeedbackMark, SourceMark, decode_note

    planned: int | None = None
    events: list[InputEvent] = []
    count = seen = 0
    in_batch = False
    for record in journal.read():
        if record.kind is RecordKind.META:
            note = decode_note(record.payload)
            if isinstance(note, SourceMark):
                if planned is None:
                    planned = note.count
                count, seen, in_batch = note.count, 0, note.count > 0
                if not in_batch:
                    break
            elif isinstance(note, FeedbackMark):
                in_batch = False  # the batch in progress was cut short (if one was)
        elif record.kind is RecordKind.INPUT and in_batch:
            events.append(journaled_input(record.seq, record.payload))
            seen += 1
            if seen == count:
                break
    if planned is None:
        return None
    return _JournaledFeed(events=events, planned=planned, whole=seen == count)


def _replacement_tick(runtime: Runtime) -> list[InputEvent]:
    """A clock tick to journal a replacement policy (`--replace-policy`) with before serving,
    as the runtime activates it with the first event: without one the activation would wait
    for the first request or idle tick, and until then /v1/status would show the journal's
    old policy while stderr says the gateway serves the replacement. At the journal's last
    event time, so the engine's clock does not move (a start-up record, like an engine
    upgrade), unless the replacement takes effect only after it: then at the start-up time
    it was judged in effect at. [] when no replacement waits for its activation."""
    from ordergate.model.events import ClockTick
    from ordergate.runtime.policy_choice import PolicyOutcome, not_in_effect

    choice, engine = runtime.policy_choice, runtime.engine
    if (choice is None or choice.outcome is not PolicyOutcome.REPLACED
            or not engine.state.started or runtime.deciding_policy is engine.active):
        return []
    at = engine.state.now
    if not_in_effect(runtime.policy, at) and runtime.start_time is not None:
        at = max(at, runtime.start_time)
    return [ClockTick(ts=at)]


def _feed_finished(feed: Path, held: _JournaledFeed, planned: int) -> str:
    """What a restart applies of a feed its first start was stopped in."""
    rest = planned - len(held.events)
    return (f"--feed {feed}: the journal holds only the first {len(held.events)} of its "
            f"{planned} events (the gateway stopped while applying it when the journal was "
            f"started): applying the other {rest} now")


def _feed_skipped(feed: Path, *, same: bool) -> str:
    """Why a restart does not apply --feed, and how to apply new data on purpose."""
    how = ("new market data goes to POST /v1/market; to fund accounts anew on purpose, "
           "restart with --reapply-feed (each account's cash is then set to the feed's figure, "
           "as a deposit or withdrawal of the difference: the day's loss and drawdown are "
           "kept)")
    if same:
        return (f"--feed {feed}: skipped: the journal already holds events, and this feed was "
                "applied when the journal was started (applying it again would set the "
                "accounts' cash back to its figures and rewind market data to the feed's "
                "timestamps); " + how)
    return (f"--feed {feed}: skipped, NOT applied: the journal already holds events, and this "
            "feed is not the first batch the journal holds (it changed, or the journal was "
            "started without it), so its account funding and market data are not applied; "
            + how)


def _accounts_of(events: Sequence[InputEvent]) -> dict[str, str]:
    """intent_id -> account, for the repeated-rejects alert."""
    from ordergate.model.intent import OrderIntent

    return {event.intent_id: event.account for event in events
            if isinstance(event, OrderIntent)}


class _LeaseAlarm:
    """The `lease_lost` alert of a serve whose stream's lease is lost (on the lease keeper's
    thread): raised through the gateway's alerts at once, or, when the lease is lost during
    start-up before they exist, as soon as they do. Once."""

    def __init__(self, stream: str) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._alerts: AlertRouter | None = None
        self._why = ""
        self._raised = False

    def lost(self, why: str) -> None:
        with self._lock:
            self._why = why
            self._raise()

    def attach(self, alerts: AlertRouter) -> None:
        with self._lock:
            self._alerts = alerts
            self._raise()

    def _raise(self) -> None:
        if self._alerts is None or not self._why or self._raised:
            return
        self._raised = True
        self._alerts.lease_lost(self._stream, self._why, ts=datetime.now(UTC))


class _Terminated(Exception):
    """SIGTERM arrived: stop serving and close the gateway (exit 0)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _own_stream(journal: str, ownership: contextlib.ExitStack,
                on_lost: Callable[[str], None]) -> tuple[int | None, LeaseKeeper | None]:
    """On a PostgreSQL journal, the stream's lease, as `ordergate gateway` takes a shard's:
    its epoch (waiting as standby while another process owns the stream) and the keeper that
    heartbeats it; both are let go when `ownership` closes, after the journal's last flush.
    (None, None) on SQLite, whose single writer is held by a lock of its own."""
    from ordergate.journal.lease import ShardLease
    from ordergate.journal.urls import Backend, parse_journal_url
    from ordergate.runtime.shard import DEFAULT_LEASE_TTL_S, LeaseKeeper, wait_for_lease

    location = parse_journal_url(journal)
    if location.backend is not Backend.POSTGRES:
        return None, None
    lease = ShardLease(journal, ttl_s=DEFAULT_LEASE_TTL_S)
    ownership.callback(lease.release)

    def standby() -> None:
        err.print(f"stream '{lease.stream}' of {location.redacted} is owned by another "
                  "process: waiting for its lease (standby)", markup=False, soft_wrap=True)

    epoch = wait_for_lease(lease, on_standby=standby)
    assert epoch is not None  # no timeout and no stop: the wait ends only with the lease
    keeper = LeaseKeeper(lease, DEFAULT_LEASE_TTL_S / 3, on_lost=on_lost)
    keeper.start()
    ownership.callback(keeper.stop)
    return epoch, keeper


def _configure_logging(level_name: str) -> None:
    """Structured JSON log lines on stderr at the chosen level (debug lines cost time on the
    hot path, so they are filtered before they are built)."""
    import structlog

    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise UserError(f"--log-level: expected debug, info, warning or error, got "
                        f"'{level_name}'")
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=stderr_logger_factory,
        cache_logger_on_first_use=True,
    )


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Option("--name", help="Who holds it; journaled as the actor.")],
    role: Annotated[str, typer.Option(
        "--role", help="trader (submits intents for its accounts), operator (changes modes and "
                       "policies, reads), viewer (reads) or feeder (posts market data only).")],
    accounts: Annotated[str, typer.Option(
        "--accounts", help="Comma-separated accounts (trader tokens only).")] = "",
    scheme: Annotated[str, typer.Option("--scheme", help="sha256 or scrypt.")] = "sha256",
) -> None:
    """Make a new random token: prints the token (give it to its holder, once) on stderr and
    the tokens-file entry (hash only) on stdout."""
    from ordergate.service.auth import Role, hash_token, new_token

    if role not in {r.value for r in Role}:
        raise UserError(f"--role: expected trader, operator, viewer or feeder, got '{role}'")
    account_list = [a.strip() for a in accounts.split(",") if a.strip()]
    if role == "trader" and not account_list:
        raise UserError("--accounts: a trader token must list its accounts")
    if role != "trader" and account_list:
        raise UserError("--accounts: only trader tokens have accounts")
    if scheme not in ("sha256", "scrypt"):
        raise UserError(f"--scheme: expected sha256 or scrypt, got '{scheme}'")
    token = new_token()
    err.print(f"token for {name} (shown once, store it safely): {token}", markup=False,
              soft_wrap=True)
    lines = [f"  - name: {name}", f"    role: {role}"]
    if account_list:
        lines.append(f"    accounts: [{', '.join(account_list)}]")
    lines.append(f'    hash: "{hash_token(token, scheme)}"')
    out.print("\n".join(lines), markup=False)


@token_app.command("hash")
def token_hash(
    scheme: Annotated[str, typer.Option("--scheme", help="sha256 or scrypt.")] = "sha256",
) -> None:
    """Hash a token read from standard input (so it stays out of shell history)."""
    from ordergate.service.auth import hash_token

    if scheme not in ("sha256", "scrypt"):
        raise UserError(f"--scheme: expected sha256 or scrypt, got '{scheme}'")
    line = sys.stdin.buffer.readline()
    try:
        token = line.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UserError(f"stdin: the token is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
                        f"column {exc.start + 1}); a token from `ordergate token new` is "
                        "plain ASCII") from None
    if not token:
        raise UserError("stdin: expected the token on the first line")
    out.print(hash_token(token, scheme), markup=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(token_app, name="token")
