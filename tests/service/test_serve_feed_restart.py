"""A restart of `ordergate serve` with the same command is harmless: its --feed seeded the
journal when it was new, and on a journal that holds events it is skipped (said on stderr), so
the restart neither funds the accounts anew (which reset cash, day-start equity and the
high-water mark, forgetting the day's loss) nor rewinds market data to the feed's timestamps.
--reapply-feed applies it on purpose. A feed the first start was stopped in the middle of is
finished by the restart, and a policy replacement is journaled before serving.

Each serve runs the real command in this process on a port that is already taken, so it stops
(exit 1) right after its start-up batch, before serving; the trading between the starts goes
through a Runtime on the same journal, as the served requests would."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.evidence.support import invoke

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.engine.records import AccountRecord
from ordergate.evidence.replay import journaled_input
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.journal.lease import ShardLease
from ordergate.model.decision import Decision
from ordergate.model.events import AccountFunding, Command, CommandAction, InputEvent
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import load_policy
from ordergate.runtime import faults
from ordergate.runtime.demo_data import write_events
from ordergate.runtime.loop import Runtime
from ordergate.service.auth import hash_token

POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata: {name: feed-restart}
defaults:
  max_market_data_age: 1h
  max_order_qty: 500
  max_daily_loss: 5000
"""
SMALLER_ORDERS = POLICY.replace("feed-restart", "feed-restart-small").replace(
    "max_order_qty: 500", "max_order_qty: 5")
ACCOUNT = "ACC-1"
SKIPPED = "skipped: the journal already holds events"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _quote(ts: datetime, last: str) -> MarketSnapshot:
    price = Decimal(last)
    return MarketSnapshot(symbol="AAPL", ts=ts, bid=price - Decimal("0.01"),
                          ask=price + Decimal("0.01"), last=price)


def _buy(intent_id: str, ts: datetime, qty: int) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=ts, account=ACCOUNT, strategy="s",
                       symbol="AAPL", side=Side.BUY, qty=Decimal(qty))


class Desk:
    """The files of one `ordergate serve` command line, and the journal it serves."""

    def __init__(self, tmp_path: Path, journal: str, port: int) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.feed = tmp_path / "feed.jsonl"
        write_events(self.feed, [AccountFunding(ts=self.now, account=ACCOUNT,
                                                cash=Decimal(100_000)),
                                 _quote(self.now, "190.00")])
        self.policy = tmp_path / "policy.yaml"
        self.policy.write_text(POLICY)
        self.tokens = tmp_path / "tokens.yaml"
        self.tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                               f"    hash: {hash_token('viewer-secret')}\n")
        self.journal = journal
        self.port = port

    def serve(self, *extra: str) -> str:
        """The serve command (always the same line, plus `extra`); its output."""
        served = invoke("serve", "--policy", str(self.policy), "--journal", self.journal,
                        "--tokens", str(self.tokens), "--port", str(self.port),
                        "--feed", str(self.feed), *extra)
        assert served.code == 1 and "cannot listen" in served.output, served.output
        return " ".join(served.output.split())

    def inputs(self) -> list[InputEvent]:
        """The inputs the journal holds, in order."""
        handle = open_journal(self.journal, durability=Durability.NONE, create=False)
        try:
            return [journaled_input(record.seq, record.payload) for record in handle.read()
                    if record.kind is RecordKind.INPUT]
        finally:
            handle.close()

    def trade(self, events: list[InputEvent]) -> tuple[list[Decision], AccountRecord,
                                                       MarketSnapshot | None]:
        """`events` decided on the journal as the served gateway would: the decisions, then
        the account and the AAPL quote the engine holds afterwards."""
        with contextlib.ExitStack() as owned:
            return self._trade(events, owned)

    def _trade(self, events: list[InputEvent], owned: contextlib.ExitStack) -> tuple[
            list[Decision], AccountRecord, MarketSnapshot | None]:
        epoch = None
        if self.journal.startswith("postgresql"):  # a served stream is written under its lease
            lease = ShardLease(self.journal, ttl_s=30.0)
            owned.callback(lease.release)
            epoch = lease.acquire(timeout_s=10.0)
            assert epoch is not None
        handle = open_journal(self.journal, durability=Durability.NONE, epoch=epoch)
        runtime = Runtime.open_on(handle, load_policy(self.policy), SimBroker(SimConfig()))
        try:
            report = runtime.process(events)
            state = runtime.engine.state
            account = state.accounts[ACCOUNT]
            held = AccountRecord(account=ACCOUNT, cash=account.cash,
                                 market_value=account.market_value,
                                 day_start_equity=account.day_start_equity,
                                 high_water_mark=account.high_water_mark)
            return ([item for item in report.emitted if isinstance(item, Decision)], held,
                    state.markets.get("AAPL"))
        finally:
            runtime.close()

    def lose_on_a_position(self) -> AccountRecord:
        """Buy 300 AAPL at 190, then the price falls to 150: a loss of 12,000, over the
        5,000 daily limit, so a further buy is denied (LOS-001)."""
        self.trade([_buy("buy-1", self.now + timedelta(seconds=1), 300)])
        decided, account, _ = self.trade([_quote(self.now + timedelta(seconds=2), "150.00"),
                                          _buy("buy-2", self.now + timedelta(seconds=3), 10)])
        assert [(d.decision.value, d.blocking) for d in decided] == [("DENY", "LOS-001")]
        return account


def _same_figures(before: AccountRecord, after: AccountRecord) -> None:
    assert (after.cash, after.equity, after.day_start_equity, after.high_water_mark) == (
        before.cash, before.equity, before.day_start_equity, before.high_water_mark)


def test_restart_with_the_same_feed_keeps_the_days_loss_and_the_deny(
        tmp_path: Path, taken_port: int) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    first = desk.serve()
    assert SKIPPED not in first  # a new journal: the feed seeds it
    before = desk.lose_on_a_position()
    assert before.equity < before.day_start_equity - 5000

    restarted = desk.serve()

    decided, after, quote = desk.trade([_buy("buy-3", desk.now + timedelta(seconds=4), 10)])
    assert [(d.decision.value, d.blocking) for d in decided] == [("DENY", "LOS-001")]
    _same_figures(before, after)
    assert quote is not None and quote.last == Decimal("150.00")  # not rewound to the feed's 190
    assert SKIPPED in restarted and "this feed was applied when the journal was started" \
        in restarted and "--reapply-feed" in restarted, restarted


def test_restart_with_a_changed_feed_says_it_is_not_applied(
        tmp_path: Path, taken_port: int) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    desk.serve()
    before = desk.lose_on_a_position()
    write_events(desk.feed, [AccountFunding(ts=desk.now, account=ACCOUNT,
                                            cash=Decimal(500_000))])

    restarted = desk.serve()

    _, after, _ = desk.trade([])
    _same_figures(before, after)
    assert "skipped, NOT applied" in restarted and "is not the first batch" in restarted, \
        restarted


def test_reapply_feed_funds_the_account_anew_when_asked(
        tmp_path: Path, taken_port: int) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    desk.serve()
    desk.lose_on_a_position()
    _, before, _ = desk.trade([])
    write_events(desk.feed, [AccountFunding(ts=desk.now + timedelta(seconds=5),
                                            account=ACCOUNT, cash=Decimal(500_000))])

    restarted = desk.serve("--reapply-feed")

    assert SKIPPED not in restarted and "NOT applied" not in restarted, restarted
    _, after, _ = desk.trade([])
    assert after.cash == Decimal(500_000)
    # money moved in is no profit: the day's loss and the drawdown stay what they were
    moved = after.equity - before.equity
    assert moved > 0
    assert after.day_start_equity == before.day_start_equity + moved
    assert after.high_water_mark == before.high_water_mark + moved


def test_reapply_feed_needs_a_feed(tmp_path: Path, taken_port: int) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    refused = invoke("serve", "--policy", str(desk.policy), "--journal", desk.journal,
                     "--tokens", str(desk.tokens), "--port", str(taken_port),
                     "--reapply-feed")
    assert refused.code == 1 and "--reapply-feed: needs --feed" in refused.output, \
        refused.output


def test_restart_on_a_postgres_journal_skips_the_feed_too(
        tmp_path: Path, taken_port: int, postgres_url: str) -> None:
    desk = Desk(tmp_path, f"{postgres_url}&stream=feed-restart", taken_port)
    assert SKIPPED not in desk.serve()
    before = desk.lose_on_a_position()

    restarted = desk.serve()

    decided, after, _ = desk.trade([_buy("buy-3", desk.now + timedelta(seconds=4), 10)])
    assert [(d.decision.value, d.blocking) for d in decided] == [("DENY", "LOS-001")]
    _same_figures(before, after)
    assert SKIPPED in restarted, restarted


class _Killed(BaseException):
    """Stands in for the SIGKILL of `ORDERGATE_FAULT_KILL_AT`: nothing the process had not
    made durable is written after it (under `always` durability every record is committed as
    it is appended)."""


def test_a_feed_cut_short_on_the_first_start_is_finished_by_the_restart(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    always = ("--durability", "always")

    def killed_halfway(point: str) -> None:  # as ORDERGATE_FAULT_KILL_AT=mid_batch:1
        if point == "mid_batch":
            raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(faults, "crossing", killed_halfway)
        with pytest.raises(_Killed):
            desk.serve(*always)
    assert [type(event) for event in desk.inputs()][-1] is AccountFunding  # not the quote

    restarted = desk.serve(*always)

    assert "holds only the first 1 of its 2 events" in restarted, restarted
    assert "applying the other 1 now" in restarted and SKIPPED not in restarted, restarted
    _, account, quote = desk.trade([])
    assert quote is not None and quote.last == Decimal("190.00")
    assert account.cash == Decimal(100_000)
    decided, _, _ = desk.trade([_buy("buy-1", desk.now + timedelta(seconds=1), 10)])
    assert [d.decision.value for d in decided] == ["ALLOW"]
    # the feed is whole now: a further restart with the same command skips it as applied
    again = desk.serve(*always)
    assert SKIPPED in again and "this feed was applied" in again, again
    assert sum(isinstance(event, MarketSnapshot) for event in desk.inputs()) == 1


def test_a_feed_changed_after_a_cut_short_first_start_is_not_applied(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)

    def killed_halfway(point: str) -> None:
        if point == "mid_batch":
            raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(faults, "crossing", killed_halfway)
        with pytest.raises(_Killed):
            desk.serve("--durability", "always")
    write_events(desk.feed, [AccountFunding(ts=desk.now, account=ACCOUNT,
                                            cash=Decimal(500_000)),
                             _quote(desk.now, "190.00")])

    restarted = desk.serve("--durability", "always")

    assert "skipped, NOT applied" in restarted, restarted
    _, account, quote = desk.trade([])
    assert quote is None and account.cash == Decimal(100_000)


def test_a_restart_replacing_the_policy_journals_the_replacement_before_serving(
        tmp_path: Path, taken_port: int) -> None:
    """The replacement is the enforced policy from the start (/v1/status shows it), not from
    the first request: its activation is journaled at start-up, at the journal's last event
    time (the engine's clock does not move), even though the feed is skipped."""
    desk = Desk(tmp_path, str(tmp_path / "journal.db"), taken_port)
    desk.serve()
    desk.trade([_buy("buy-1", desk.now + timedelta(seconds=1), 10)])
    desk.policy.write_text(SMALLER_ORDERS)

    restarted = desk.serve("--replace-policy", "--operator", "ops-carol", "--reason",
                           "smaller orders")

    assert SKIPPED in restarted, restarted
    replacement = load_policy(desk.policy)
    activations = [event for event in desk.inputs() if isinstance(event, Command)
                   and event.action is CommandAction.ACTIVATE_POLICY]
    assert [(a.policy_hash, a.operator, a.ts) for a in activations[1:]] == [
        (replacement.hash, "ops-carol", desk.now + timedelta(seconds=1))]
    decided, _, _ = desk.trade([_buy("buy-2", desk.now + timedelta(seconds=2), 10)])
    assert [(d.decision.value, d.blocking) for d in decided] == [("DENY", "ORD-006")]
