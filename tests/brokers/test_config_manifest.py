"""The run manifest says which broker a run talked to: the venue and its endpoint read from
the adapter the broker config built, paper or live when the adapter says, and never a
credential."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.runtime.scenario import demo_policy_path

from ordergate.brokers.config import BrokerConfig, BrokerKind, ExecutionMode, make_adapter
from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.evidence.manifest import RunManifest, build_manifest, encode_manifest
from ordergate.journal import Durability, open_journal
from ordergate.model.intent import TimeInForce
from ordergate.policy.loader import load_policy

KEY = "PKMANIFESTKEY0001"
SECRET = "manifest-secret-value-9"
ENV = {"OG_KEY": KEY, "OG_SECRET": SECRET}


def _manifest(tmp_path: Path, broker: object) -> RunManifest:
    journal = open_journal(f"sqlite:///{tmp_path / 'm.db'}", durability=Durability.NONE)
    try:
        return build_manifest(journal, load_policy(demo_policy_path()), broker, argv=["og"])
    finally:
        journal.close()


def _adapter(kind: BrokerKind, mode: ExecutionMode, base_url: str | None = None) -> object:
    config = BrokerConfig(broker=kind, execution_mode=mode, account="acct-1",
                          live_confirmed=mode is ExecutionMode.LIVE, api_key_env="OG_KEY",
                          api_secret_env="OG_SECRET", broker_account="VA000001",
                          base_url=base_url)
    return make_adapter(config, environ=ENV, allowed_tifs=[TimeInForce.DAY])


@pytest.mark.parametrize("kind,mode,url", [
    (BrokerKind.ALPACA, ExecutionMode.PAPER, "https://paper-api.alpaca.markets"),
    (BrokerKind.ALPACA, ExecutionMode.LIVE, "https://api.alpaca.markets"),
    (BrokerKind.DERIBIT, ExecutionMode.PAPER, "https://test.deribit.com"),
    (BrokerKind.DERIBIT, ExecutionMode.LIVE, "https://www.deribit.com"),
    (BrokerKind.TRADIER, ExecutionMode.PAPER, "https://sandbox.tradier.com"),
    (BrokerKind.TRADIER, ExecutionMode.LIVE, "https://api.tradier.com"),
])
def test_the_manifest_records_the_venue_and_its_endpoint_never_credentials(
        tmp_path: Path, kind: BrokerKind, mode: ExecutionMode, url: str) -> None:
    manifest = _manifest(tmp_path, _adapter(kind, mode))
    assert manifest.broker["kind"] == str(kind)
    assert manifest.broker["base_url"] == url
    assert manifest.execution_mode == str(mode)  # each real adapter says paper or live
    encoded = encode_manifest(manifest)
    assert KEY.encode() not in encoded and SECRET.encode() not in encoded


def test_an_overridden_endpoint_is_recorded(tmp_path: Path) -> None:
    adapter = _adapter(BrokerKind.TRADIER, ExecutionMode.PAPER, "http://127.0.0.1:8080/")
    assert _manifest(tmp_path, adapter).broker["base_url"] == "http://127.0.0.1:8080"


@pytest.mark.parametrize("paper,mode", [(True, "paper"), (False, "live")])
def test_an_adapter_that_says_paper_or_live_is_recorded_in_that_mode(
        tmp_path: Path, paper: bool, mode: str) -> None:
    """The contract the manifest reads: a public boolean `paper` on the adapter."""

    class SaysItsMode:
        name = "alpaca"
        base_url = "https://api.alpaca.markets"

        def __init__(self) -> None:
            self.paper = paper

    manifest = _manifest(tmp_path, SaysItsMode())
    assert manifest.execution_mode == mode and manifest.broker["kind"] == "alpaca"


def test_the_simulator_is_recorded_as_a_paper_simulator(tmp_path: Path) -> None:
    broker = SimBroker(SimConfig())
    try:
        manifest = _manifest(tmp_path, broker)
    finally:
        broker.close()
    assert manifest.execution_mode == "paper (simulated broker)"
    assert manifest.broker["config"]["fill_model"] == "immediate"
