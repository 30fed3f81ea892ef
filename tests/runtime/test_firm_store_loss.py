"""A firm store (Redis) that comes back empty, flushed or restarted without persistence, is
never read as "no kill switch, no other exposure": the gateway journals that the store lost
its data (SYS-007, in words, with an Alert), holds new risk until an operator resumes, keeps a
kill switch it knew engaged (only `firm unkill` releases it), and puts its own exposure back;
`firm status` names the shards that have not reported since.

A store that comes back holding OLDER data (restarted from an older snapshot, an AOF that lost
its last second, a lagging replica promoted) is a loss of data too: a release note of an
earlier kill never releases a later one, and other shards' older exposure is not taken for
current. `firm status` stops saying the store lost its data once every shard known before has
reported again and been resumed.

The Redis here is a private `redis-server` (started per test on a free port, without
automatic saves) so it can be flushed, snapshotted (SAVE) and killed without touching anyone
else's keys: killed, it comes back empty, or from its last SAVE."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import redis
from tests.conftest import services_required
from tests.scale.support import (
    append_lines,
    closed_port,
    demo_policy_path,
    event_lines,
    events_of,
    gateway_args,
    rows,
    start,
    stop,
    wait_for,
)

from ordergate.brokers.sim import SimBroker
from ordergate.evidence.replay import verify_journal
from ordergate.journal import RecordKind, open_journal
from ordergate.journal.lease import ShardLease
from ordergate.model.decision import Decision, DecisionKind
from ordergate.model.events import (
    AccountFunding,
    Alert,
    Command,
    CommandAction,
    DependencyStatus,
    FirmState,
    InputEvent,
    ModeChanged,
)
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.model.modes import Mode
from ordergate.model.values import utc
from ordergate.policy.loader import load_policy
from ordergate.runtime.firm import FirmStore
from ordergate.runtime.shard import FirmSettings, ShardConfig, ShardGateway, shard_url

pytestmark = pytest.mark.postgres

START = utc(2026, 3, 2, 15, 0)
AT = START + timedelta(milliseconds=100)
PREFIX = "og:"
HEARTBEAT_TTL = "1.5"  # heartbeats (and firm exchanges) every 0.5 s
LOST = "lost its data (restarted empty or flushed)"
WENT_BACK = "lost its data (it came back holding older data"


class PrivateRedis:
    """A `redis-server` of this test's own, without automatic saves: a restart comes back empty,
    or holding what the last `save()` wrote (its dump.rdb)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self._binary = binary
        self._directory = directory
        self.port = closed_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 20, f"redis-server on port {self.port} answering")

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=0.5,
                                      socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def flushall(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def save(self) -> None:
        """A snapshot (dump.rdb) that the next start loads: what a restore would bring back."""
        client = redis.Redis.from_url(self.url)
        try:
            assert client.save()
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crashed server: nothing is saved."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=20)
        self._process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (a Redis that restarts empty needs one)"
        if services_required():
            pytest.fail(f"{message} and ORDERGATE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(f"{message}; install it or set ORDERGATE_REQUIRE_SERVICES=1 to make this "
                    "a failure")
    server = PrivateRedis(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _quote(ts: datetime) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=Decimal("189.95"), ask=Decimal("190.05"),
                          last=Decimal("190.00"), volume=Decimal(1000))


def _buy(intent_id: str, account: str, ts: datetime, qty: int) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account=account, strategy="trend",
                       symbol="AAPL", side=Side.BUY, qty=Decimal(qty))


def _opening(account: str) -> list[InputEvent]:
    return [AccountFunding(ts=START, account=account, cash=Decimal(1_000_000)),
            _quote(START + timedelta(milliseconds=10))]


def _resume(ts: datetime) -> Command:
    return Command(ts=ts, action=CommandAction.RESUME, operator="alice",
                   reason="checked every desk's exposure")


def _firm_policy(tmp_path: Path) -> Path:
    """The demo policy with a firm gross cap of 100,000 that denies (no shrinking)."""
    text = demo_policy_path().read_text()
    text = text.replace("  max_gross_exposure: 3000000",
                        "  max_gross_exposure: 3000000\n  max_firm_gross_exposure: 100000", 1)
    text = text.replace("  exposure_modify: true", "  exposure_modify: false", 1)
    assert "max_firm_gross_exposure: 100000" in text and "exposure_modify: false" in text
    path = tmp_path / "firm_policy.yaml"
    path.write_text(text)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                          capture_output=True, text=True, timeout=60)


def _decision(postgres_url: str, shard: str, intent_id: str) -> Decision | None:
    for decision in events_of(rows(postgres_url, shard), Decision):
        if decision.intent_id == intent_id:
            return decision  # type: ignore[no-any-return]
    return None


def _lost(postgres_url: str, shard: str, words: str = LOST) -> DependencyStatus | None:
    for status in events_of(rows(postgres_url, shard), DependencyStatus):
        if not status.healthy and words in status.detail:
            return status  # type: ignore[no-any-return]
    return None


def _kill_states(postgres_url: str, shard: str) -> list[tuple[bool, str]]:
    return [(state.kill, state.detail) for state in events_of(rows(postgres_url, shard),
                                                                FirmState)]


def _follow(source: Path, postgres_url: str, shard: str, redis_url: str, log: Path, *,
            policy: Path | None = None) -> subprocess.Popen[bytes]:
    return start(gateway_args(source, postgres_url, shard, "--follow", "--lease-ttl",
                              HEARTBEAT_TTL, "--redis", redis_url, "--redis-prefix", PREFIX,
                              policy=policy), log)


def _replays_clean(postgres_url: str, shard: str) -> None:
    url = shard_url(postgres_url, shard)
    lease = ShardLease(url, shard)
    epoch = lease.acquire(timeout_s=5)
    journal = open_journal(url, epoch=epoch, create=False)
    try:
        report = verify_journal(journal)
    finally:
        journal.close()
        lease.release()
    assert report.ok, report.message
    assert report.decisions == report.decisions_reproduced


def test_a_flushed_store_never_releases_the_firm_kill_switch_only_an_operator_does(
        postgres_url: str, private_redis: PrivateRedis, tmp_path: Path) -> None:
    store = ("--redis", private_redis.url, "--redis-prefix", PREFIX)
    engaged = _cli("firm", "kill", "--operator", "risk", "--reason", "drill", *store)
    assert engaged.returncode == 0, engaged.stderr
    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines([*_opening("ACC-E"), _buy("e-1", "ACC-E", AT, 10)]))
    gateway = _follow(source, postgres_url, "east", private_redis.url, tmp_path / "east.log")
    try:
        first = wait_for(partial(_decision, postgres_url, "east", "e-1"), 30, "e-1 decided")
        assert (first.decision, first.blocking) == (DecisionKind.DENY, "KIL-003")

        private_redis.flushall()
        lost = wait_for(partial(_lost, postgres_url, "east"), 30,
                        "east journaling that the firm store lost its data")
        assert lost.code == "SYS-007"
        assert lost.detail.startswith(
            f"the firm limits store at {private_redis.url} {LOST}; other gateways' exposure "
            "is unknown until they report again"), lost.detail
        assert "the firm kill switch stays engaged (risk: drill (firm kill #1))" in lost.detail

        later = START + timedelta(seconds=2)
        append_lines(source, event_lines([_quote(later),
                                          _buy("e-2", "ACC-E", later + timedelta(seconds=1),
                                               11)]))
        second = wait_for(partial(_decision, postgres_url, "east", "e-2"), 30, "e-2 decided")
        assert (second.decision, second.blocking) == (DecisionKind.DENY, "KIL-003")
        # the gateway that knew the switch engaged put it back in the store, for every gateway
        status = _cli("firm", "status", *store)
        assert status.returncode == 0, status.stderr
        assert "firm kill switch: ENGAGED (risk: drill (firm kill #1))" in status.stdout, \
            status.stdout
        assert "firm store: LOST ITS DATA" in status.stdout, status.stdout

        # An operator releases the switch: journaled with who and why; the hold stays until
        # an operator resumes, and then new risk passes.
        released = _cli("firm", "unkill", "--operator", "bob", "--reason", "all clear", *store)
        assert released.returncode == 0, released.stderr
        wait_for(lambda: any(not state.kill
                             for state in events_of(rows(postgres_url, "east"), FirmState)),
                 30, "east journaling the release")
        after = START + timedelta(seconds=4)
        append_lines(source, event_lines([_quote(after),
                                          _buy("e-3", "ACC-E", after + timedelta(seconds=1),
                                               12)]))
        third = wait_for(partial(_decision, postgres_url, "east", "e-3"), 30, "e-3 decided")
        assert third.decision is DecisionKind.DENY and third.mode is Mode.REDUCE_ONLY
        resumed = START + timedelta(seconds=6)
        append_lines(source, event_lines([_resume(resumed), _quote(resumed),
                                          _buy("e-4", "ACC-E", resumed + timedelta(seconds=1),
                                               13)]))
        fourth = wait_for(partial(_decision, postgres_url, "east", "e-4"), 30, "e-4 decided")
        assert fourth.decision is DecisionKind.ALLOW, fourth
    finally:
        code = stop(gateway)
    assert code == 0, (tmp_path / "east.log").read_text()

    records = rows(postgres_url, "east")
    states = [(state.kill, state.detail) for state in events_of(records, FirmState)]
    # never a release without an operator: the only one is bob's
    assert [state for state in states if not state[0]] == [(False, "bob: all clear")], states
    alerts = [alert.message for alert in events_of(records, Alert) if alert.code == "SYS-007"]
    assert any(LOST in message for message in alerts), alerts
    # the store's clearances say once that it answers again
    said = [alert.message for alert in events_of(records, Alert)
            if alert.message.startswith("redis answers again")]
    assert said and all(message.count("answers again") == 1 for message in said), said
    modes = [(change.mode, change.actor) for change in events_of(records, ModeChanged)]
    assert modes == [(Mode.REDUCE_ONLY, "system"), (Mode.ACTIVE, "alice")], modes
    _replays_clean(postgres_url, "east")


def test_a_store_restarted_empty_holds_the_firm_cap_until_an_operator_resumes(
        postgres_url: str, private_redis: PrivateRedis, tmp_path: Path) -> None:
    policy = _firm_policy(tmp_path)
    store = ("--redis", private_redis.url, "--redis-prefix", PREFIX)
    # west buys 400 AAPL (76,000 at the 190.00 mid) and stops: its gross stays in the store
    west_source = tmp_path / "west.jsonl"
    append_lines(west_source, event_lines([*_opening("ACC-W"), _buy("w-1", "ACC-W", AT, 400)]))
    west = ShardGateway(
        ShardConfig(journal_url=postgres_url, shard="west", events=west_source,
                    firm=FirmSettings(redis_url=private_redis.url, prefix=PREFIX)),
        load_policy(policy), SimBroker)
    assert west.run().stopped_by == "end_of_source"

    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines([*_opening("ACC-E"), _buy("e-1", "ACC-E", AT, 100),
                                      _buy("e-2", "ACC-E", AT + timedelta(seconds=1), 120)]))
    gateway = _follow(source, postgres_url, "east", private_redis.url, tmp_path / "east.log",
                      policy=policy)
    try:
        second = wait_for(partial(_decision, postgres_url, "east", "e-2"), 30, "e-2 decided")
        assert (second.decision, second.blocking) == (DecisionKind.DENY, "EXP-005")

        private_redis.kill()
        private_redis.start()  # empty: west's 76,000 is gone from the store
        lost = wait_for(partial(_lost, postgres_url, "east"), 30,
                        "east journaling that the firm store lost its data")
        assert "(not reported since: west)" in lost.detail, lost.detail

        later = START + timedelta(seconds=5)
        append_lines(source, event_lines([_quote(later),
                                          _buy("e-3", "ACC-E", later + timedelta(seconds=1),
                                               50)]))
        third = wait_for(partial(_decision, postgres_url, "east", "e-3"), 30, "e-3 decided")
        assert third.decision is DecisionKind.DENY and third.mode is Mode.REDUCE_ONLY

        status = _cli("firm", "status", *store)
        assert status.returncode == 0, status.stderr
        assert "firm store: LOST ITS DATA" in status.stdout, status.stdout
        assert "shard west: has not reported since the store lost its data" in status.stdout
        assert "shard east: gross exposure 19000" in status.stdout, status.stdout  # put back

        # west comes back: it finds the loss too, and its exposure is in the store again
        west_more = START + timedelta(seconds=7)
        append_lines(west_source, event_lines([_quote(west_more)]))
        west = ShardGateway(
            ShardConfig(journal_url=postgres_url, shard="west", events=west_source,
                        firm=FirmSettings(redis_url=private_redis.url, prefix=PREFIX)),
            load_policy(policy), SimBroker)
        assert west.run().stopped_by == "end_of_source"
        assert _lost(postgres_url, "west") is not None
        status = _cli("firm", "status", *store)
        assert "every shard known before the loss has reported again" in status.stdout, \
            status.stdout
        assert "shard west: gross exposure 76000" in status.stdout, status.stdout

        # the operator resumes east; the firm cap counts west again
        wait_for(lambda: any(state.gross_exposure == Decimal(76_000) for state in events_of(
            rows(postgres_url, "east"), FirmState)[-1:]), 30, "east journaling west's gross")
        resumed = START + timedelta(seconds=9)
        append_lines(source, event_lines([_resume(resumed), _quote(resumed),
                                          _buy("e-4", "ACC-E", resumed + timedelta(seconds=1),
                                               60)]))
        fourth = wait_for(partial(_decision, postgres_url, "east", "e-4"), 30, "e-4 decided")
        assert (fourth.decision, fourth.blocking) == (DecisionKind.DENY, "EXP-005"), fourth
        assert fourth.mode is Mode.ACTIVE
    finally:
        code = stop(gateway)
    assert code == 0, (tmp_path / "east.log").read_text()
    _replays_clean(postgres_url, "east")
    _replays_clean(postgres_url, "west")


def test_a_published_gross_never_goes_into_a_store_that_lost_its_data(
        private_redis: PrivateRedis) -> None:
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    west = FirmStore(private_redis.url, "west", prefix=PREFIX)
    try:
        assert not east.exchange(Decimal(100)).lost  # a new firm: the store is set up
        assert not west.exchange(Decimal(50)).lost
        assert east.publish(Decimal(120))
        private_redis.flushall()
        assert not east.publish(Decimal(130))  # nothing written into the emptied store
        assert east.published() == {}
        reading = east.exchange(Decimal(130))
        assert reading.lost and reading.others_gross == 0
        assert east.published() == {"east": Decimal(130)}
        assert west.exchange(Decimal(50)).lost  # each gateway finds it for itself
        assert not east.exchange(Decimal(130)).lost  # the new store, whole
        # a new process of a shard that has talked to a store before (its journal says so)
        # finds a store without its own gross lost, even with another shard's identity in it
        private_redis.flushall()
        assert not FirmStore(private_redis.url, "north", prefix=PREFIX).exchange(
            Decimal(1)).lost  # a new shard: nothing to miss
        again = FirmStore(private_redis.url, "east", prefix=PREFIX)
        try:
            assert again.exchange(Decimal(130), seen_before=True).lost
        finally:
            again.close()
    finally:
        east.close()
        west.close()


def test_the_kill_switch_a_gateway_knew_is_engaged_again_in_an_emptied_store(
        private_redis: PrivateRedis) -> None:
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    try:
        east.set_kill(True, "risk: drill")
        reading = east.exchange(Decimal(0), keep_kill="risk: drill")
        assert reading.kill and not reading.kill_kept
        private_redis.flushall()
        reading = east.exchange(Decimal(0), seen_before=True, keep_kill="risk: drill")
        assert reading.kill and reading.kill_kept and reading.lost
        assert east.kill_switch() == "risk: drill"
        # a release note is an operator's release: then the switch is not engaged again
        east.set_kill(False, "bob: all clear")
        reading = east.exchange(Decimal(0), seen_before=True, keep_kill="risk: drill")
        assert not reading.kill and reading.release_detail == "bob: all clear"
        assert not reading.lost
    finally:
        east.close()


def test_a_gateway_started_after_the_store_was_flushed_finds_the_loss_before_deciding(
        postgres_url: str, private_redis: PrivateRedis, tmp_path: Path) -> None:
    """Its journal holds a FirmState, so a store without its own gross lost its data: said at
    its first exchange, before the next intent is decided."""
    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines([*_opening("ACC-E"), _buy("e-1", "ACC-E", AT, 10)]))
    config = ShardConfig(journal_url=postgres_url, shard="east", events=source,
                         firm=FirmSettings(redis_url=private_redis.url, prefix=PREFIX))
    assert ShardGateway(config, load_policy(demo_policy_path()),
                        SimBroker).run().stopped_by == "end_of_source"
    assert _lost(postgres_url, "east") is None
    private_redis.flushall()
    later = START + timedelta(seconds=2)
    append_lines(source, event_lines([_quote(later),
                                      _buy("e-2", "ACC-E", later + timedelta(seconds=1), 10)]))
    assert ShardGateway(config, load_policy(demo_policy_path()),
                        SimBroker).run().stopped_by == "end_of_source"
    lost = _lost(postgres_url, "east")
    assert lost is not None
    decision = _decision(postgres_url, "east", "e-2")
    assert decision is not None and decision.decision is DecisionKind.DENY
    assert decision.mode is Mode.REDUCE_ONLY
    records = [row for row in rows(postgres_url, "east") if row.kind is not RecordKind.META]
    lost_at = next(row.seq for row in records if isinstance(row.event, DependencyStatus)
                   and not row.event.healthy)
    decided_at = next(row.seq for row in records if isinstance(row.event, Decision)
                      and row.event.intent_id == "e-2")
    assert lost_at < decided_at

    # A new process finds the store whole and clears the reason it replayed (its breaker
    # starts closed), so the operator's resume loosens the mode.
    resumed = START + timedelta(seconds=4)
    append_lines(source, event_lines([_resume(resumed), _quote(resumed),
                                      _buy("e-3", "ACC-E", resumed + timedelta(seconds=1), 12)]))
    assert ShardGateway(config, load_policy(demo_policy_path()),
                        SimBroker).run().stopped_by == "end_of_source"
    decision = _decision(postgres_url, "east", "e-3")
    assert decision is not None and decision.decision is DecisionKind.ALLOW, decision
    _replays_clean(postgres_url, "east")



# ---------------------------------------------------------------- a store that went back in time


def test_a_store_restored_from_an_older_snapshot_never_releases_a_later_kill(
        postgres_url: str, private_redis: PrivateRedis, tmp_path: Path) -> None:
    """The review's steps: kill, release, SAVE, kill again, then Redis restarted from that
    snapshot holds no kill key and the first release note. The gateway keeps the second kill,
    writes it back, and holds new risk as for a wiped store; the lost note goes once it is
    resumed."""
    store = ("--redis", private_redis.url, "--redis-prefix", PREFIX)
    source = tmp_path / "east.jsonl"
    append_lines(source, event_lines([*_opening("ACC-E"), _buy("e-1", "ACC-E", AT, 10)]))
    gateway = _follow(source, postgres_url, "east", private_redis.url, tmp_path / "east.log")
    try:
        first = wait_for(partial(_decision, postgres_url, "east", "e-1"), 30, "e-1 decided")
        assert first.decision is DecisionKind.ALLOW

        assert _cli("firm", "kill", "--operator", "risk", "--reason", "drill-1",
                    *store).returncode == 0
        wait_for(lambda: (True, "risk: drill-1 (firm kill #1)") in _kill_states(
            postgres_url, "east"), 30, "east journaling drill-1")
        assert _cli("firm", "unkill", "--operator", "bob", "--reason", "clear-1",
                    *store).returncode == 0
        wait_for(lambda: (False, "bob: clear-1") in _kill_states(postgres_url, "east"), 30,
                 "east journaling bob's release")
        private_redis.save()
        assert _cli("firm", "kill", "--operator", "risk", "--reason", "drill-2",
                    *store).returncode == 0
        wait_for(lambda: (True, "risk: drill-2 (firm kill #2)") in _kill_states(
            postgres_url, "east"), 30, "east journaling drill-2")
        later = START + timedelta(seconds=2)
        append_lines(source, event_lines([_quote(later),
                                          _buy("e-2", "ACC-E", later + timedelta(seconds=1),
                                               11)]))
        second = wait_for(partial(_decision, postgres_url, "east", "e-2"), 30, "e-2 decided")
        assert (second.decision, second.blocking) == (DecisionKind.DENY, "KIL-003")

        private_redis.kill()
        private_redis.start()  # from dump.rdb: no kill key, bob's release note of kill #1
        lost = wait_for(partial(_lost, postgres_url, "east", WENT_BACK), 30,
                        "east journaling that the firm store went back in time")
        assert lost.code == "SYS-007"
        assert "the firm kill switch stays engaged (risk: drill-2 (firm kill #2))" in \
            lost.detail, lost.detail

        after = START + timedelta(seconds=4)
        append_lines(source, event_lines([_quote(after),
                                          _buy("e-3", "ACC-E", after + timedelta(seconds=1),
                                               12)]))
        third = wait_for(partial(_decision, postgres_url, "east", "e-3"), 30, "e-3 decided")
        assert (third.decision, third.blocking) == (DecisionKind.DENY, "KIL-003")
        assert third.mode is Mode.REDUCE_ONLY
        status = _cli("firm", "status", *store)
        assert "firm kill switch: ENGAGED (risk: drill-2 (firm kill #2))" in status.stdout, \
            status.stdout  # written back for every gateway
        assert "firm store: LOST ITS DATA" in status.stdout, status.stdout

        # Only an operator's release of it releases it; then an operator resumes, and the
        # store's lost note goes: every shard it knew has reported and been resumed.
        assert _cli("firm", "unkill", "--operator", "bob", "--reason", "clear-2",
                    *store).returncode == 0
        wait_for(lambda: (False, "bob: clear-2") in _kill_states(postgres_url, "east"), 30,
                 "east journaling the release of kill #2")
        resumed = START + timedelta(seconds=6)
        append_lines(source, event_lines([_resume(resumed), _quote(resumed),
                                          _buy("e-4", "ACC-E", resumed + timedelta(seconds=1),
                                               13)]))
        fourth = wait_for(partial(_decision, postgres_url, "east", "e-4"), 30, "e-4 decided")
        assert fourth.decision is DecisionKind.ALLOW, fourth
        wait_for(lambda: "firm store: set up at" in _cli("firm", "status", *store).stdout, 30,
                 "firm status no longer saying the store lost its data")
    finally:
        code = stop(gateway)
    assert code == 0, (tmp_path / "east.log").read_text()

    # kill #2 was never released by the restored store: only by bob's release of it
    assert _kill_states(postgres_url, "east") == [
        (False, ""), (True, "risk: drill-1 (firm kill #1)"), (False, "bob: clear-1"),
        (True, "risk: drill-2 (firm kill #2)"), (False, "bob: clear-2")]
    modes = [(change.mode, change.actor)
             for change in events_of(rows(postgres_url, "east"), ModeChanged)]
    assert modes == [(Mode.REDUCE_ONLY, "system"), (Mode.ACTIVE, "alice")], modes
    _replays_clean(postgres_url, "east")


@pytest.mark.parametrize("remembers", [True, False], ids=["running", "restarted"])
def test_a_release_note_of_an_earlier_kill_does_not_release_the_kill_a_gateway_knows(
        private_redis: PrivateRedis, remembers: bool) -> None:
    """Whether the gateway ran through the restore (it remembers the store) or started after
    it (it knows only the kill its journal holds, with its number)."""
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    try:
        assert east.set_kill(True, "risk: drill-1") == 1
        assert east.exchange(Decimal(5)).kill_detail == "risk: drill-1 (firm kill #1)"
        east.set_kill(False, "bob: clear-1")
        assert not east.exchange(Decimal(5), keep_kill="risk: drill-1 (firm kill #1)").kill
        private_redis.save()
        assert east.set_kill(True, "risk: drill-2") == 2
        known = east.exchange(Decimal(5), seen_before=True).kill_detail
        assert known == "risk: drill-2 (firm kill #2)"
        private_redis.kill()
        private_redis.start()
        assert east.kill_switch() == ""  # what the restored store holds: no kill, ...
        assert east.kill_released() == "bob: clear-1"  # ... and the release of kill #1
        if not remembers:
            east.close()
            east = FirmStore(private_redis.url, "east", prefix=PREFIX)
        reading = east.exchange(Decimal(5), seen_before=True, keep_kill=known)
        assert reading.kill and reading.kill_detail == known
        assert reading.kill_kept and reading.went_back and reading.lost
        assert east.kill_switch() == known and east.kill_released() == ""
        # the store is whole again: the next exchange finds nothing lost
        assert not east.exchange(Decimal(5), seen_before=True, keep_kill=known).lost
        # a release of kill #2 (or of any later one) releases it; the next kill is #3
        east.set_kill(False, "bob: clear-2")
        reading = east.exchange(Decimal(5), seen_before=True, keep_kill=known)
        assert not reading.kill and reading.release_detail == "bob: clear-2"
        assert not reading.lost
        assert east.set_kill(True, "risk: drill-3") == 3
    finally:
        east.close()


def test_other_shards_older_exposure_from_a_restored_snapshot_is_a_loss(
        private_redis: PrivateRedis) -> None:
    """A store that lost writes made since its snapshot shows older, smaller figures under
    the same identity: the write count, lower than a gateway saw, says so. The store gets a new
    identity and loses the older figures, so every other gateway finds the loss too."""
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    west = FirmStore(private_redis.url, "west", prefix=PREFIX)
    try:
        assert not east.exchange(Decimal(100)).lost
        assert not west.exchange(Decimal(50)).lost
        private_redis.save()  # west at 50
        assert west.publish(Decimal(90_000))
        assert east.exchange(Decimal(100)).others_gross == Decimal(90_000)
        private_redis.kill()
        private_redis.start()  # west at 50 again, same identity
        reading = east.exchange(Decimal(100), seen_before=True)
        assert reading.lost and reading.went_back and not reading.kill_kept
        assert reading.others_gross == 0 and reading.names == ("east",)  # 50 is not taken
        east.record_loss("found by shard east", ["east", "west"])
        info, unreported = east.store_info()
        assert info["lost"] == "found by shard east" and unreported == ["west"]
        assert not west.publish(Decimal(90_000))  # not into a store it does not know
        again = west.exchange(Decimal(90_000), seen_before=True)
        assert again.lost and again.others_gross == Decimal(100)
        assert east.exchange(Decimal(100)).others_gross == Decimal(90_000)
    finally:
        east.close()
        west.close()


def test_a_store_restored_while_no_gateway_remembered_it_is_found_by_the_first_that_does(
        private_redis: PrivateRedis) -> None:
    """A gateway restarted after the restore (no memory of the store) and holding no kill
    cannot tell older figures from current ones; one that ran through it makes the store look
    lost to all: the restarted one finds its own gross gone."""
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    west = FirmStore(private_redis.url, "west", prefix=PREFIX)
    try:
        east.exchange(Decimal(100))
        west.exchange(Decimal(50))
        private_redis.save()
        west.exchange(Decimal(60))
        east.exchange(Decimal(100))
        private_redis.kill()
        private_redis.start()
        assert east.exchange(Decimal(100), seen_before=True).went_back
        west.close()
        west = FirmStore(private_redis.url, "west", prefix=PREFIX)  # a new process
        assert west.exchange(Decimal(60), seen_before=True).lost
    finally:
        east.close()
        west.close()


# ---------------------------------------------------------------- the lost note goes


def test_the_lost_note_goes_once_every_shard_known_before_reported_and_was_resumed(
        private_redis: PrivateRedis) -> None:
    east = FirmStore(private_redis.url, "east", prefix=PREFIX)
    west = FirmStore(private_redis.url, "west", prefix=PREFIX)
    try:
        east.exchange(Decimal(100), resumed=True)
        west.exchange(Decimal(50), resumed=True)
        private_redis.flushall()
        assert east.exchange(Decimal(100), seen_before=True, resumed=True).lost
        east.record_loss("found by shard east", ["east", "west"])
        info, unreported = east.store_info()
        assert info["lost"] == "found by shard east" and unreported == ["west"]
        assert set(info) == {"id", "since", "lost"}  # the scripts' counters are not shown

        def lost_note() -> str:
            return east.store_info()[0].get("lost", "")

        # east resumed, west not heard from: the note stays
        assert not east.exchange(Decimal(100), seen_before=True, resumed=True).lost
        assert lost_note() == "found by shard east"
        # west reports (and finds the loss): it holds new risk until resumed
        assert west.exchange(Decimal(50), seen_before=True).lost
        west.record_loss("found by shard west", ["east", "west"])
        assert east.store_info()[1] == []
        assert not west.exchange(Decimal(50), seen_before=True, resumed=False).lost
        assert not east.exchange(Decimal(100), seen_before=True, resumed=True).lost
        assert lost_note() == "found by shard east"
        # west resumed: every shard known before has reported and been resumed
        assert not west.exchange(Decimal(50), seen_before=True, resumed=True).lost
        assert lost_note() == ""
        status = _cli("firm", "status", "--redis", private_redis.url, "--redis-prefix", PREFIX)
        assert status.returncode == 0, status.stderr
        assert "firm store: set up at" in status.stdout, status.stdout
        assert "LOST ITS DATA" not in status.stdout, status.stdout
    finally:
        east.close()
        west.close()
