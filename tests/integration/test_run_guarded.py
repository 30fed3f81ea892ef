"""`ordergate run` runs through the guard on event time: when the simulated broker answers
HTTP 429 to a submit, the order is rejected as not placed, the mode reaches REDUCE_ONLY and
the summary says why, also once the broker answers again; the same file gives the same
output bytes twice. `--broker` config files go through `make_adapter`: live without
confirmation refuses to start (exit 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.chaos.checks import JournalFacts
from ordergate.model.modes import Mode
from ordergate.service.auth import hash_token


def _run(events: Path, journal: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "run", "--policy",
         str(demo_policy_path()), "--journal", str(journal), "--batch-size", "8", *extra,
         str(events)],
        capture_output=True, check=False, timeout=120)


def test_a_rate_limited_simulator_moves_run_to_reduce_only_and_the_summary_says_why(
        tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=20)
    first = _run(events, tmp_path / "one.db", "--sim-fault", "rate_limited:6")
    second = _run(events, tmp_path / "two.db", "--sim-fault", "rate_limited:6")
    assert first.returncode == 0, first.stderr.decode()
    summary = first.stderr.decode()
    assert "final mode: REDUCE_ONLY" in summary
    assert "mode ACTIVE -> REDUCE_ONLY" in summary and "RATE_LIMIT" in summary
    # The broker answers a probe again, so the reason clears; the mode stays, and says why.
    assert ("REDUCE_ONLY since SYS-011: A dependency the gate needs (e.g. the shared limit "
            "store) is unavailable (broker_submit: RATE_LIMIT") in summary
    assert "stays REDUCE_ONLY until an operator resumes" in summary
    # Deterministic on event time: the guard's decisions repeat byte for byte.
    assert first.stdout == second.stdout and b'"mode":"REDUCE_ONLY"' in first.stdout
    facts = JournalFacts.read(tmp_path / "one.db")
    assert facts.final_mode() is Mode.REDUCE_ONLY
    # The order refused with a 429 is rejected "not placed" (nothing reached the book), sent
    # once; the mode then denies new risk, so the circuit never had to open.
    assert [reject.reason.split(":")[0] for reject in facts.rejects] == ["not placed"]
    assert len(facts.dispatches) == 1
    assert not facts.unhealthy("SYS-007")
    assert not facts.circuit_refused


def test_a_clean_run_is_unchanged_by_the_guard(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=20)
    done = _run(events, tmp_path / "journal.db")
    assert done.returncode == 0, done.stderr.decode()
    assert "final mode: ACTIVE" in done.stderr.decode()
    assert "circuit " not in done.stderr.decode()


def test_a_bad_sim_fault_names_the_flag(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=2)
    done = _run(events, tmp_path / "journal.db", "--sim-fault", "meteor:3")
    assert done.returncode == 1
    assert "--sim-fault meteor:3" in done.stderr.decode()


def test_live_broker_config_without_confirmation_refuses_to_start(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=2)
    config = tmp_path / "broker.yaml"
    config.write_text("broker:\n  broker: alpaca\n  execution_mode: live\n  account: DEMO-1\n"
                      "  api_key_env: OG_TEST_KEY\n  api_secret_env: OG_TEST_SECRET\n",
                      encoding="utf-8")
    done = _run(events, tmp_path / "journal.db", "--broker", str(config))
    assert done.returncode == 1
    assert "live_confirmed" in done.stderr.decode()
    assert not (tmp_path / "journal.db").exists()  # refused before anything was opened


def test_a_paper_sim_broker_config_runs_and_keeps_its_book(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=10)
    config = tmp_path / "broker.yaml"
    book = tmp_path / "sim.db"
    config.write_text(f"broker:\n  broker: sim\n  execution_mode: paper\n  account: DEMO-1\n"
                      f"  sim_state_path: {book}\n", encoding="utf-8")
    done = _run(events, tmp_path / "journal.db", "--broker", str(config))
    assert done.returncode == 0, done.stderr.decode()
    assert book.exists() and b'"type":"dispatch"' in done.stdout
    conflicting = _run(events, tmp_path / "other.db", "--broker", str(config),
                       "--sim-fault", "rate_limited:1")
    assert conflicting.returncode == 1 and "--broker sim" in conflicting.stderr.decode()


def test_every_broker_command_refuses_a_live_config_without_confirmation(
        tmp_path: Path) -> None:
    """`serve` and `gateway` build their broker from the same config as `run`, so an
    unconfirmed live config stops each of them before a journal or lease is touched."""
    events = write_scenario(tmp_path / "events.jsonl", seconds=2)
    config = tmp_path / "broker.yaml"
    config.write_text("broker:\n  broker: alpaca\n  execution_mode: live\n  account: DEMO-1\n"
                      "  api_key_env: OG_TEST_KEY\n  api_secret_env: OG_TEST_SECRET\n",
                      encoding="utf-8")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - name: screen\n    role: viewer\n"
                      f"    hash: {hash_token('viewer-secret')}\n", encoding="utf-8")
    policy = str(demo_policy_path())
    commands = {
        "serve": ["serve", "--policy", policy, "--journal", str(tmp_path / "serve.db"),
                  "--tokens", str(tokens), "--broker", str(config), "--port", "0"],
        "gateway": ["gateway", str(events), "--policy", policy, "--journal",
                    "postgresql://127.0.0.1:1/unused", "--shard", "s1", "--broker", str(config)],
    }
    for name, args in commands.items():
        done = subprocess.run([sys.executable, "-m", "ordergate.cli.main", *args],
                              capture_output=True, check=False, timeout=60)
        assert done.returncode == 1, (name, done.stderr.decode())
        assert "live_confirmed" in done.stderr.decode(), name
    assert not (tmp_path / "serve.db").exists()
