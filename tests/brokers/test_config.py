"""Broker configuration: paper vs live, the live confirmation, secrets, capability checks."""

from __future__ import annotations

import pytest
import structlog

from ordergate.brokers.alpaca import AlpacaAdapter
from ordergate.brokers.ccxt_venue import CcxtVenue
from ordergate.brokers.config import (
    BrokerConfig,
    BrokerConfigError,
    BrokerKind,
    ExecutionMode,
    LiveNotConfirmed,
    Secret,
    UnsupportedCapability,
    check_capabilities,
    make_adapter,
    parse_broker_config,
)
from ordergate.brokers.tradier import TradierAdapter
from ordergate.model.intent import OrderType, TimeInForce

KEY = "PK-key-value-123"
SECRET = "very-secret-value-456"
ENV = {"OG_KEY": KEY, "OG_SECRET": SECRET}
REAL = [BrokerKind.ALPACA, BrokerKind.DERIBIT, BrokerKind.TRADIER]


def config(broker: BrokerKind = BrokerKind.ALPACA, **changes: object) -> BrokerConfig:
    fields: dict[str, object] = dict(
        broker=broker, execution_mode=ExecutionMode.PAPER, account="acct-1",
        api_key_env="OG_KEY", api_secret_env="OG_SECRET", broker_account="VA000001")
    fields.update(changes)
    return BrokerConfig(**fields)  # type: ignore[arg-type]


def build(cfg: BrokerConfig, **kwargs: object) -> object:
    kwargs.setdefault("allowed_tifs", [TimeInForce.DAY])
    return make_adapter(cfg, environ=ENV, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("broker", REAL)
def test_live_without_confirmation_refuses_to_start(broker: BrokerKind) -> None:
    with pytest.raises(LiveNotConfirmed, match="live_confirmed"):
        build(config(broker, execution_mode=ExecutionMode.LIVE))


def test_sim_never_runs_live() -> None:
    with pytest.raises(BrokerConfigError, match="paper mode only"):
        build(config(BrokerKind.SIM, execution_mode=ExecutionMode.LIVE, live_confirmed=True))


@pytest.mark.parametrize("broker,paper_url,live_url", [
    (BrokerKind.ALPACA, "https://paper-api.alpaca.markets", "https://api.alpaca.markets"),
    (BrokerKind.DERIBIT, "https://test.deribit.com", "https://www.deribit.com"),
    (BrokerKind.TRADIER, "https://sandbox.tradier.com", "https://api.tradier.com"),
])
def test_paper_and_live_use_their_own_endpoints(broker: BrokerKind, paper_url: str,
                                                live_url: str) -> None:
    paper = build(config(broker))
    live = build(config(broker, execution_mode=ExecutionMode.LIVE, live_confirmed=True))
    assert paper.base_url == paper_url  # type: ignore[attr-defined]
    assert live.base_url == live_url  # type: ignore[attr-defined]


def test_base_url_override_wins() -> None:
    adapter = build(config(BrokerKind.DERIBIT, base_url="http://127.0.0.1:8080/"))
    assert isinstance(adapter, CcxtVenue)
    assert adapter.base_url == "http://127.0.0.1:8080"


def test_each_broker_builds_its_adapter() -> None:
    assert isinstance(build(config(BrokerKind.ALPACA)), AlpacaAdapter)
    assert isinstance(build(config(BrokerKind.DERIBIT)), CcxtVenue)
    assert isinstance(build(config(BrokerKind.TRADIER)), TradierAdapter)
    assert build(config(BrokerKind.SIM)).name  # type: ignore[attr-defined]


def test_missing_credential_names_the_variable_not_a_value() -> None:
    with pytest.raises(BrokerConfigError) as caught:
        make_adapter(config(), environ={"OG_KEY": KEY}, allowed_tifs=[TimeInForce.DAY])
    assert "OG_SECRET" in str(caught.value) and "api_secret_env" in str(caught.value)
    assert KEY not in str(caught.value)


def test_tradier_needs_its_account_number() -> None:
    with pytest.raises(BrokerConfigError, match="broker_account"):
        build(config(BrokerKind.TRADIER, broker_account=""))


def test_a_credential_pasted_into_the_config_is_refused_without_echoing_it() -> None:
    with pytest.raises(BrokerConfigError) as caught:
        config(api_key_env="sk-live-abc/123")
    assert "NAME of an environment variable" in str(caught.value)
    assert "sk-live-abc/123" not in str(caught.value)


def test_secret_never_prints() -> None:
    secret = Secret(SECRET)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{[secret]}"):
        assert SECRET not in text and "***" in text
    assert secret.reveal() == SECRET


@pytest.mark.parametrize("broker", REAL)
def test_secrets_absent_from_reprs_and_logs(broker: BrokerKind) -> None:
    cfg = config(broker)
    with structlog.testing.capture_logs() as logs:
        adapter = build(cfg)
    text = repr(cfg) + repr(adapter) + str(adapter) + repr(logs)
    assert KEY not in text and SECRET not in text
    assert any(entry["event"] == "broker_adapter_ready" for entry in logs)


def test_parse_names_the_field_in_errors() -> None:
    with pytest.raises(BrokerConfigError, match=r"broker\.execution_mode"):
        parse_broker_config({"broker": "alpaca", "execution_mode": "production",
                             "account": "a"})
    with pytest.raises(BrokerConfigError, match="api_token"):
        parse_broker_config({"broker": "alpaca", "execution_mode": "paper", "account": "a",
                             "api_token": "x"})
    parsed = parse_broker_config({"broker": "tradier", "execution_mode": "live",
                                  "account": "a", "live_confirmed": True})
    assert parsed.execution_mode is ExecutionMode.LIVE and parsed.live_confirmed


def test_execution_mode_is_required_not_defaulted() -> None:
    with pytest.raises(BrokerConfigError, match="execution_mode"):
        parse_broker_config({"broker": "alpaca", "account": "a"})


def test_unsupported_policy_types_are_refused_at_start_up() -> None:
    with pytest.raises(UnsupportedCapability) as caught:
        make_adapter(config(BrokerKind.TRADIER), environ=ENV,
                     allowed_tifs=[TimeInForce.DAY, TimeInForce.IOC])
    assert len(caught.value.problems) == 1 and "'ioc'" in caught.value.problems[0]
    adapter = make_adapter(config(BrokerKind.TRADIER), environ=ENV,
                           allowed_order_types=[OrderType.LIMIT],
                           allowed_tifs=[TimeInForce.DAY, TimeInForce.GTC])
    assert isinstance(adapter, TradierAdapter)


def test_check_capabilities_lists_every_problem() -> None:
    tradier = build(config(BrokerKind.TRADIER))
    alpaca = build(config(BrokerKind.ALPACA))
    problems = check_capabilities(list(OrderType), tradier,  # type: ignore[arg-type]
                                  list(TimeInForce), needs_reduce_only=True)
    assert len(problems) == 3
    assert sum("time in force" in p for p in problems) == 2
    assert any("reduce_only" in p for p in problems)
    assert check_capabilities(list(OrderType), alpaca,  # type: ignore[arg-type]
                              list(TimeInForce)) == []


def test_timeout_must_be_positive() -> None:
    with pytest.raises(BrokerConfigError, match="timeout_s"):
        config(timeout_s=0)
