"""The run manifest: journaled and written at start-up, never carrying a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.evidence.support import invoke, read

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.evidence.manifest import (
    build_manifest,
    decode_manifest,
    read_manifests,
    record_manifest,
    redact,
    redact_argv,
)
from ordergate.journal import Durability, RecordKind, open_journal
from ordergate.policy.loader import load_policy

SECRETS = ("tok-51d9e", "AKIAQX7SECRET", "hunter2pw", "pg-pass-77", "bearer-xyz-9",
           "url-pass-31")


def test_manifest_file_and_record_never_contain_tokens_keys_or_passwords(
        tmp_path: Path, demo_day: Path) -> None:
    journal = open_journal(f"sqlite:///{tmp_path / 'm.db'}", durability=Durability.NONE)
    broker = SimBroker(SimConfig())
    argv = ["ordergate", "serve", "--token", SECRETS[0], "--api-key=" + SECRETS[1],
            "--journal", f"postgresql://og:{SECRETS[3]}@db.internal/og?password={SECRETS[3]}"]
    config = {"api_key": SECRETS[1], "nested": {"db_password": SECRETS[2],
                                                "Authorization": f"Bearer {SECRETS[4]}"},
              "feeds": [{"url": f"https://feed:{SECRETS[5]}@quotes.example/v1"}],
              "secret_key_env": "VENUE_SECRET"}
    try:
        manifest = build_manifest(journal, load_policy(demo_day / "policy.yaml"), broker,
                                  argv=argv, config=config)
        written = record_manifest(journal, manifest)
        payloads = [record.payload for record in journal.read()
                    if record.kind is RecordKind.META]
    finally:
        journal.close()
        broker.close()
    assert written is not None and written.name == "m.db.manifest.json"
    text = written.read_text()
    assert len(payloads) == 1 and decode_manifest(payloads[0]) == manifest
    for secret in SECRETS:
        assert secret not in text
        assert secret.encode() not in payloads[0]
    assert manifest.policy_hash in text
    assert "db.internal" in " ".join(manifest.command)  # the host survives, the password not


def test_every_run_journals_a_manifest_and_writes_it_next_to_the_journal(
        tmp_path: Path, demo_day: Path) -> None:
    journal_path = tmp_path / "r.db"
    for _ in range(2):
        ran = invoke("run", "--quiet", "--policy", str(demo_day / "policy.yaml"), "--journal",
                     str(journal_path), str(demo_day / "events.jsonl"))
        assert ran.code == 0, ran.output
    journal = read(journal_path)
    try:
        manifests = read_manifests(journal)
    finally:
        journal.close()
    assert len(manifests) == 2
    assert manifests[0].run_id != manifests[1].run_id
    latest = manifests[-1]
    assert latest.execution_mode == "paper (simulated broker)"
    assert latest.broker["config"]["fill_model"] == "immediate"
    assert latest.durability == "batch"
    assert latest.python and latest.dependencies.get("msgspec")
    assert latest.run_id in (tmp_path / "r.db.manifest.json").read_text()


@pytest.mark.parametrize("given", [Path, os.fsencode], ids=["path", "bytes"])
def test_a_simulator_state_path_given_as_a_path_or_bytes_is_recorded_as_its_text(
        given: Callable[[Path], object], tmp_path: Path, demo_day: Path) -> None:
    state = tmp_path / "book.db"
    journal = open_journal(f"sqlite:///{tmp_path / 'p.db'}", durability=Durability.NONE)
    broker = SimBroker(SimConfig(state_path=given(state)))  # type: ignore[arg-type]
    try:
        manifest = build_manifest(journal, load_policy(demo_day / "policy.yaml"), broker,
                                  argv=["ordergate", "run"])
    finally:
        journal.close()
        broker.close()
    assert manifest.broker["config"]["state_path"] == str(state)


def test_a_url_password_holding_a_space_never_reaches_the_manifest() -> None:
    argv = redact_argv(["ordergate", "run", "--journal", "postgresql://og:pg pass77@db/og",
                        "--journal=postgresql://og@db/og?password=pg pass77&stream=a"])
    config = redact({"feeds": ["https://feed:pg pass77@quotes.example/v1"]})
    recorded = repr((argv, config))
    assert "pass77" not in recorded and "pg pass" not in recorded
    assert argv[3] == "postgresql://og:***@db/og"
    assert argv[4] == "--journal=postgresql://og@db/og?password=***&stream=a"


def test_a_webhook_url_reaches_the_manifest_as_scheme_host_and_port_only(
        tmp_path: Path, demo_day: Path) -> None:
    journal_path = tmp_path / "wh.db"
    journal = open_journal(f"sqlite:///{journal_path}", durability=Durability.NONE)
    broker = SimBroker(SimConfig())
    argv = ["ordergate", "serve", "--journal", str(journal_path),
            "--webhook", "https://127.0.0.1:9/services/T000/B000/WHSLACKLEAK9Zq1",
            "--webhook=http://whuser:whpass@hooks.example/hook?token=WHQUERYLEAK4",
            "ORDERGATE_WEBHOOK_URL=https://hooks.example/WHENVLEAK5"]
    config = {"webhook_url": "https://hooks.example/services/WHCONFLEAK6"}
    try:
        manifest = build_manifest(journal, load_policy(demo_day / "policy.yaml"), broker,
                                  argv=argv, config=config)
        written = record_manifest(journal, manifest)
    finally:
        journal.close()
        broker.close()
    assert written is not None
    stored = written.read_bytes() + b"".join(
        path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith("wh.db"))
    for secret in ("WHSLACKLEAK9Zq1", "services", "whuser", "whpass", "WHQUERYLEAK4",
                   "WHENVLEAK5", "WHCONFLEAK6"):
        assert secret.encode() not in stored
    assert manifest.command[4:] == ["--webhook", "https://127.0.0.1:9/***",
                                    "--webhook=http://***@hooks.example/***",
                                    "ORDERGATE_WEBHOOK_URL=https://hooks.example/***"]
    assert manifest.config == {"webhook_url": "https://hooks.example/***"}


BUILD_MANIFEST = """\
import sys
from datetime import UTC, datetime
import msgspec
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.evidence.manifest import build_manifest, encode_manifest
from ordergate.journal import Durability, open_journal
from ordergate.policy.loader import load_policy
journal = open_journal("sqlite:///" + sys.argv[1], durability=Durability.NONE)
broker = SimBroker(SimConfig())
manifest = build_manifest(journal, load_policy(sys.argv[2]), broker, argv=["ordergate", "run"],
                          started_at=datetime(2026, 3, 2, tzinfo=UTC))
journal.close()
broker.close()
sys.stdout.buffer.write(encode_manifest(msgspec.structs.replace(manifest, run_id="run")))
"""


def test_the_manifest_is_the_same_bytes_whatever_the_hash_seed(
        tmp_path: Path, demo_day: Path) -> None:
    """The simulator's order types and times in force are sets: journaled in the order a
    process happened to hash them, the same run wrote a different manifest record."""
    built = [subprocess.run([sys.executable, "-c", BUILD_MANIFEST, str(tmp_path / "s.db"),
                             str(demo_day / "policy.yaml")],
                            env={**os.environ, "PYTHONHASHSEED": seed},
                            capture_output=True, check=True, timeout=60).stdout
             for seed in ("0", "1")]
    assert built[0] == built[1]
    config = decode_manifest(built[0]).broker["config"]  # type: ignore[union-attr]
    assert config["order_types"] == ["limit", "market", "stop", "stop_limit"]
    assert config["time_in_force"] == sorted(config["time_in_force"])
