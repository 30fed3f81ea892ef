"""Paper mode needs no live confirmation, so a paper config must not reach a venue's
real-money API through `base_url`: that takes execution_mode: live and live_confirmed."""

from __future__ import annotations

import pytest

from ordergate.brokers.config import BrokerConfigError, ExecutionMode, parse_broker_config

_BASE = {"execution_mode": "paper", "account": "A", "api_key_env": "OG_KEY",
         "api_secret_env": "OG_SECRET"}


@pytest.mark.parametrize(("broker", "url"), [
    ("alpaca", "https://api.alpaca.markets"),
    ("alpaca", "https://API.alpaca.markets./v2 "),
    ("deribit", "https://www.deribit.com"),
    ("deribit", "https://deribit.com/api/v2"),
    ("tradier", "https://api.tradier.com/v1"),
])
def test_paper_mode_with_the_live_endpoint_is_refused(broker: str, url: str) -> None:
    with pytest.raises(BrokerConfigError, match=r"^broker\.base_url: .*LIVE endpoint"):
        parse_broker_config({**_BASE, "broker": broker, "base_url": url})


@pytest.mark.parametrize(("broker", "url"), [
    ("alpaca", "https://paper-api.alpaca.markets"),
    ("deribit", "https://test.deribit.com"),
    ("tradier", "https://sandbox.tradier.com"),
    ("alpaca", "http://127.0.0.1:8999"),
])
def test_paper_mode_with_a_paper_or_local_endpoint_is_kept(broker: str, url: str) -> None:
    config = parse_broker_config({**_BASE, "broker": broker, "base_url": url})
    assert config.execution_mode is ExecutionMode.PAPER


def test_live_mode_may_name_the_live_endpoint() -> None:
    config = parse_broker_config({**_BASE, "broker": "alpaca", "execution_mode": "live",
                                  "live_confirmed": True,
                                  "base_url": "https://api.alpaca.markets"})
    assert config.resolved_base_url == "https://api.alpaca.markets"
