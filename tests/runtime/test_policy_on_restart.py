"""A restart never changes the enforced policy quietly. After replaying its journal the
gateway keeps enforcing the policy the journal enforced (activated at start-up, through POST
/v1/policy, or by a journaled activation command): the same `--policy` file changes nothing;
a different one is not applied and a warning says so; `--replace-policy --operator NAME
--reason TEXT` applies it, journaled as that operator's activation. A replay does not log
the journal's past mode changes again as if they were happening now."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest
from tests.evidence.support import invoke, read, tighter_policy
from tests.runtime.scenario import ACCOUNT, START, demo_policy_path
from tests.service.support import (
    OPERATOR,
    OTHER_POLICY,
    POLICY,
    T0,
    TRADER,
    VIEWER,
    auth,
    intent,
    start,
)

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.gateway import Gateway
from ordergate.journal import RecordKind
from ordergate.model.events import (
    AccountFunding,
    Command,
    CommandAction,
    InputEvent,
    PolicyDocument,
)
from ordergate.model.intent import OrderIntent, Side
from ordergate.model.market import MarketSnapshot
from ordergate.policy.loader import load_policy, parse_policy
from ordergate.runtime.demo_data import write_events
from ordergate.runtime.loop import rebuild
from ordergate.runtime.policy_choice import PolicyOutcome, PolicyReplacement
from ordergate.service.auth import hash_token

FILE_HASH = parse_policy(POLICY).hash
API_HASH = parse_policy(OTHER_POLICY).hash


# ---------------------------------------------------------------- helpers


def _activations(journal: Path) -> list[dict[str, str]]:
    """Every policy activation command in the journal, in order."""
    handle = read(journal)
    try:
        commands = [msgspec.json.decode(record.payload) for record in handle.read()
                    if record.kind is RecordKind.INPUT
                    and record.payload.startswith(b'{"type":"command"')]
    finally:
        handle.close()
    return [command for command in commands if command["action"] == "activate_policy"]


def _enforced(journal: Path) -> str:
    """The hash of the policy a fresh engine rebuilt from the journal enforces."""
    active = rebuild(f"sqlite:///{journal}").active
    assert active is not None
    return active.hash


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port already listened on: `serve` then stops (exit 1) right after its start-up and
    its feed, with everything it decided journaled."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def api_activated(tmp_path: Path) -> Path:
    """A served gateway started with POLICY whose operator activated OTHER_POLICY through
    POST /v1/policy, then stopped. Returns the journal's path."""
    served = start(tmp_path)
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            answer = client.post("/v1/policy",
                                 json={"document": OTHER_POLICY, "reason": "limits changed"},
                                 headers=auth(OPERATOR))
            assert answer.status_code == 200, answer.text
            assert answer.json()["activated"] is True
    finally:
        served.stop()
    journal = tmp_path / "journal.db"
    assert _enforced(journal) == API_HASH
    return journal


def _serve(tmp_path: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """The real `ordergate serve` command (in its own process) with POLICY as --policy, on the
    fixture's journal, fed one market snapshot (the first event after the restart: on a
    journal that holds events a --feed applies only with --reapply-feed)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                      f"    hash: {hash_token('viewer-secret')}\n")
    feed = tmp_path / "feed.jsonl"
    write_events(feed, [MarketSnapshot(symbol="AAPL", ts=T0 + timedelta(seconds=5),
                                       bid=Decimal("99.99"), ask=Decimal("100.01"),
                                       last=Decimal("100.00"))])
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("ORDERGATE_TOKENS")}
    return subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "serve", "--policy", str(policy),
         "--journal", str(tmp_path / "journal.db"), "--tokens", str(tokens),
         "--port", str(port), "--feed", str(feed), "--reapply-feed", "--log-level",
         "warning", *extra],
        capture_output=True, text=True, timeout=120, env=env, check=False)


# ---------------------------------------------------------------- serve (the audit's case)


def test_a_policy_activated_over_http_is_still_enforced_after_a_restart(
        api_activated: Path) -> None:
    """The runbook's case: limits changed with POST /v1/policy, then the gateway restarted
    with its unchanged command line (--policy still the old file)."""
    tmp_path = api_activated.parent
    before = _activations(api_activated)
    served = start(tmp_path, policy=parse_policy(POLICY))
    try:
        with httpx.Client(base_url=served.url, timeout=10.0) as client:
            status = client.get("/v1/status", headers=auth(VIEWER)).json()
            assert status["policy_hash"] == API_HASH
            assert status["policy_name"] == "service-test-2"
            # max_order_qty is 50 in the API's policy, 1000 in the file's
            answer = client.post("/v1/intents", json=intent("after-restart", qty="60",
                                                            seconds=3),
                                 headers=auth(TRADER)).json()["decision"]
            assert answer["decision"] == "DENY" and answer["blocking"] == "ORD-006"
            assert answer["policy_hash"] == API_HASH
    finally:
        served.stop()
    assert _activations(api_activated) == before  # nothing re-activated the file's policy


def test_serve_with_a_different_policy_file_keeps_the_journals_policy_and_warns(
        api_activated: Path, taken_port: int) -> None:
    tmp_path = api_activated.parent
    before = _activations(api_activated)
    served = _serve(tmp_path, taken_port)
    assert served.returncode == 1 and "cannot listen" in served.stderr, served.stderr
    assert "WARNING" in served.stderr and "NOT applied" in served.stderr
    assert API_HASH in served.stderr and FILE_HASH in served.stderr
    assert "policy_file_not_applied" in served.stderr  # the log line alerting can match
    assert "--replace-policy" in served.stderr  # and how to apply the file's policy
    assert _activations(api_activated) == before
    assert _enforced(api_activated) == API_HASH


def test_serve_with_the_same_policy_file_changes_nothing(
        tmp_path: Path, taken_port: int) -> None:
    served = start(tmp_path)  # POLICY activated at start-up, as `--policy` would
    served.stop()
    journal = tmp_path / "journal.db"
    before = _activations(journal)
    assert [a["policy_hash"] for a in before] == [FILE_HASH]
    restarted = _serve(tmp_path, taken_port)
    assert restarted.returncode == 1 and "cannot listen" in restarted.stderr
    assert "WARNING" not in restarted.stderr and "policy_file_not_applied" not in \
        restarted.stderr
    assert _activations(journal) == before
    assert _enforced(journal) == FILE_HASH


def test_serve_replace_policy_enforces_the_file_journaled_with_the_operator(
        api_activated: Path, taken_port: int) -> None:
    tmp_path = api_activated.parent
    before = _activations(api_activated)
    served = _serve(tmp_path, taken_port, "--replace-policy", "--operator", "ops-carol",
                    "--reason", "back to the reviewed file")
    assert served.returncode == 1 and "cannot listen" in served.stderr, served.stderr
    assert "replaced by" in served.stderr and "ops-carol" in served.stderr
    after = _activations(api_activated)
    assert after[:len(before)] == before
    [replacement] = after[len(before):]
    assert replacement["policy_hash"] == FILE_HASH
    assert replacement["operator"] == "ops-carol"
    assert replacement["reason"] == "back to the reviewed file"
    assert _enforced(api_activated) == FILE_HASH


@pytest.mark.parametrize(("flags", "named"), [
    (["--replace-policy"], "--operator and --reason"),
    (["--replace-policy", "--operator", "ops-carol"], "--reason"),
    (["--replace-policy", "--operator", " ", "--reason", "why"], "--operator"),
    (["--operator", "ops-carol"], "--operator: only with --replace-policy"),
])
def test_replace_policy_needs_an_operator_and_a_reason(
        tmp_path: Path, flags: list[str], named: str) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, [AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1000))])
    ran = invoke("run", "--quiet", "--policy", str(demo_policy_path()), "--journal",
                 str(tmp_path / "journal.db"), *flags, str(events))
    assert ran.code == 1 and named in ran.output, ran.output
    assert "Traceback" not in ran.output
    assert not (tmp_path / "journal.db").exists()  # refused before anything was opened


# ---------------------------------------------------------------- run (resume)


def _quote(second: int) -> MarketSnapshot:
    return MarketSnapshot(symbol="AAPL", ts=START + timedelta(seconds=second),
                          bid=Decimal("189.95"), ask=Decimal("190.05"), last=Decimal("190.00"),
                          volume=Decimal(1000))


def _order(intent_id: str, second: int, qty: int) -> OrderIntent:
    return OrderIntent(intent_id=intent_id, ts=START + timedelta(seconds=second),
                       account=ACCOUNT, strategy="trend", symbol="AAPL", side=Side.BUY,
                       qty=Decimal(qty))


@pytest.fixture
def tight_by_command(tmp_path: Path) -> tuple[Path, Path, list[InputEvent]]:
    """`ordergate run` with the demo policy on an events file that activates a tighter policy
    by a journaled command; returns (events file, journal, events)."""
    tight = load_policy(tighter_policy(demo_policy_path(), tmp_path / "tight.yaml"))
    events: list[InputEvent] = [
        AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
        _quote(1),
        PolicyDocument(ts=START + timedelta(seconds=2), policy_hash=tight.hash,
                       document=tight.document),
        Command(ts=START + timedelta(seconds=2), action=CommandAction.ACTIVATE_POLICY,
                policy_hash=tight.hash, operator="ops-alice", reason="tighter for the open"),
    ]
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    journal = tmp_path / "journal.db"
    ran = invoke("run", "--quiet", "--policy", str(demo_policy_path()), "--journal",
                 str(journal), str(path))
    assert ran.code == 0, ran.output
    assert _enforced(journal) == tight.hash
    return path, journal, events


def _resume(path: Path, journal: Path, events: list[InputEvent], *flags: str) -> str:
    """Append an order of 300 (the demo policy allows 500, the tighter one 200) and run the
    same command again: it resumes after the journaled lines."""
    write_events(path, [*events, _quote(3), _order("big", 4, 300)])
    ran = invoke("run", "--policy", str(demo_policy_path()), "--journal", str(journal),
                 *flags, str(path))
    assert ran.code == 0, ran.output
    return ran.output


def _decision(output: str, intent_id: str) -> dict[str, object]:
    for line in output.splitlines():
        if line.startswith('{"type":"decision"') and f'"intent_id":"{intent_id}"' in line:
            decision: dict[str, object] = msgspec.json.decode(line)
            return decision
    raise AssertionError(f"no decision for {intent_id} in:\n{output}")


def test_run_resumed_keeps_the_policy_a_journaled_command_activated(
        tight_by_command: tuple[Path, Path, list[InputEvent]]) -> None:
    path, journal, events = tight_by_command
    tight_hash = _enforced(journal)
    before = _activations(journal)
    output = _resume(path, journal, events)
    assert "NOT applied" in output and tight_hash in output
    decision = _decision(output, "big")
    assert decision["decision"] == "DENY" and decision["policy_hash"] == tight_hash
    assert _activations(journal) == before


def test_run_resumed_with_replace_policy_enforces_the_file(
        tight_by_command: tuple[Path, Path, list[InputEvent]]) -> None:
    path, journal, events = tight_by_command
    demo_hash = load_policy(demo_policy_path()).hash
    before = _activations(journal)
    output = _resume(path, journal, events, "--replace-policy", "--operator", "ops-bob",
                     "--reason", "the open is over")
    assert "NOT applied" not in output
    decision = _decision(output, "big")
    assert decision["decision"] == "ALLOW" and decision["policy_hash"] == demo_hash
    [replacement] = _activations(journal)[len(before):]
    assert (replacement["operator"], replacement["reason"], replacement["policy_hash"]) == (
        "ops-bob", "the open is over", demo_hash)


# ---------------------------------------------------------------- the Python API


def test_gateway_open_keeps_the_journals_policy_unless_told_to_replace_it(
        tmp_path: Path) -> None:
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    with Gateway.open(POLICY, journal, SimBroker(SimConfig()), clock="event") as gateway:
        gateway.fund("ACC-1", "1000", ts=T0 + timedelta(seconds=0))
        choice = gateway.policy_choice
        assert choice is not None and choice.outcome is PolicyOutcome.NEW
    with Gateway.open(POLICY, journal, SimBroker(SimConfig()), clock="event") as gateway:
        choice = gateway.policy_choice
        assert choice is not None and choice.outcome is PolicyOutcome.SAME
    with Gateway.open(OTHER_POLICY, journal, SimBroker(SimConfig()), clock="event") as gateway:
        choice = gateway.policy_choice
        assert choice is not None and choice.outcome is PolicyOutcome.KEPT
        assert gateway.policy.hash == FILE_HASH and choice.file.hash == API_HASH
        gateway.fund("ACC-2", "1000", ts=T0 + timedelta(seconds=1))
    assert _enforced(tmp_path / "journal.db") == FILE_HASH
    replacement = PolicyReplacement(operator="ops-dan", reason="new limits")
    with Gateway.open(OTHER_POLICY, journal, SimBroker(SimConfig()), clock="event",
                      replace_policy=replacement) as gateway:
        choice = gateway.policy_choice
        assert choice is not None and choice.outcome is PolicyOutcome.REPLACED
        gateway.fund("ACC-3", "1000", ts=T0 + timedelta(seconds=2))
    assert _enforced(tmp_path / "journal.db") == API_HASH
    last = _activations(tmp_path / "journal.db")[-1]
    assert (last["operator"], last["reason"]) == ("ops-dan", "new limits")


# ---------------------------------------------------------------- replayed mode changes


def test_a_replay_does_not_log_past_mode_changes_as_new(tmp_path: Path) -> None:
    events: list[InputEvent] = [
        AccountFunding(ts=START, account=ACCOUNT, cash=Decimal(1_000_000)),
        _quote(1),
        Command(ts=START + timedelta(seconds=2), action=CommandAction.HALT,
                operator="ops-alice", reason="drill"),
    ]
    path = tmp_path / "events.jsonl"
    write_events(path, events)
    journal = tmp_path / "journal.db"
    args = ["run", "--quiet", "--policy", str(demo_policy_path()), "--journal", str(journal)]
    first = invoke(*args, str(path))
    assert first.code == 0, first.output
    assert first.output.count("mode_changed") == 1  # live: logged when it happens

    write_events(path, [*events, _quote(3)])
    resumed = invoke(*args, str(path))
    assert resumed.code == 0, resumed.output
    assert "mode_changed" not in resumed.output  # replayed: the halt is old news
    assert "HALTED" in resumed.output  # (the mode itself is still what it was)
