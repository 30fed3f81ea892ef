"""A broker config that cannot work is refused at start-up with a message naming the file and
the field, never a stack trace: timeouts, currencies, environment variable names, the file's
shape, and settings an adapter itself refuses."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.runtime.scenario import demo_policy_path, write_scenario

from ordergate.brokers.config import BrokerConfigError, parse_broker_config
from ordergate.cli.broker_spec import broker_from_spec
from ordergate.cli.errors import UserError
from ordergate.policy.loader import load_policy

DERIBIT = {"broker": "deribit", "execution_mode": "paper", "account": "A",
           "api_key_env": "OG_KEY", "api_secret_env": "OG_SECRET"}
PASTED_KEY = "PKA1B2C3D4E5F6G7H8I9"  # an Alpaca key id where the variable's name belongs


@pytest.mark.parametrize("timeout_s", [math.inf, -math.inf, math.nan, 0, -1, 300.5, 1e9,
                                       0.0004, 0.00099])
def test_a_timeout_that_is_not_a_sensible_number_of_seconds_is_refused(
        timeout_s: float) -> None:
    with pytest.raises(BrokerConfigError, match=r"^broker\.timeout_s: "):
        parse_broker_config({**DERIBIT, "timeout_s": timeout_s})


@pytest.mark.parametrize("timeout_s", [0.001, 0.5, 10, 300])
def test_a_sensible_timeout_is_kept(timeout_s: float) -> None:
    assert parse_broker_config({**DERIBIT, "timeout_s": timeout_s}).timeout_s == timeout_s


@pytest.mark.parametrize("currencies", [[], [""], ["BTC", "  "]])
def test_currencies_must_name_at_least_one_currency(currencies: list[str]) -> None:
    with pytest.raises(BrokerConfigError, match=r"^broker\.currencies"):
        parse_broker_config({**DERIBIT, "currencies": currencies})


@pytest.mark.parametrize("value", [
    PASTED_KEY,
    "aB3dEf9Hk2LmNp4QrSt6UvWx8Yz0",  # a mixed-case token
    "9SECRET",
    "x" * 65,
    "sk-live-abc/123",
])
@pytest.mark.parametrize("field", ["api_key_env", "api_secret_env"])
def test_a_credential_in_place_of_a_variable_name_is_refused_without_echoing_it(
        field: str, value: str) -> None:
    with pytest.raises(BrokerConfigError) as caught:
        parse_broker_config({**DERIBIT, field: value})
    assert str(caught.value).startswith(f"broker.{field}: expected the NAME")
    assert value not in str(caught.value)


@pytest.mark.parametrize("name", ["ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "TR_TOKEN",
                                  "DERIBIT_CLIENT_SECRET2", "og_key2", "_K"])
def test_ordinary_variable_names_are_accepted(name: str) -> None:
    assert parse_broker_config({**DERIBIT, "api_key_env": name}).api_key_env == name


def test_an_unknown_key_is_named_with_its_path() -> None:
    with pytest.raises(BrokerConfigError, match=r"^broker\.api_key: unknown key"):
        parse_broker_config({**DERIBIT, "api_key": "not-shown"})


def _broker_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "broker.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _from_file(spec: str) -> str:
    with pytest.raises(UserError) as caught:
        broker_from_spec(spec, load_policy(demo_policy_path()))
    return str(caught.value)


@pytest.mark.parametrize("setting,field", [
    ("timeout_s: .inf", "broker.timeout_s"),
    ("timeout_s: .nan", "broker.timeout_s"),
    ("currencies: []", "broker.currencies"),
])
def test_a_bad_setting_in_the_file_is_a_user_error_naming_file_and_field(
        tmp_path: Path, setting: str, field: str) -> None:
    spec = _broker_file(tmp_path, "broker: {broker: deribit, execution_mode: paper, account: A,"
                                  f" api_key_env: OG_KEY, api_secret_env: OG_SECRET, {setting}}}\n")
    message = _from_file(spec)
    assert message.startswith(f"--broker {spec}: {field}: "), message


def test_a_pasted_key_in_the_file_is_not_repeated(tmp_path: Path) -> None:
    spec = _broker_file(tmp_path, "broker: {broker: alpaca, execution_mode: paper, account: A,"
                                  f" api_key_env: {PASTED_KEY}, api_secret_env: OG_SECRET}}\n")
    message = _from_file(spec)
    assert "broker.api_key_env: expected the NAME" in message and PASTED_KEY not in message


@pytest.mark.parametrize(("line", "where"), [
    ("  api_secret_env: @SECRLEAKALPSEC8m2W\n", "line 3, column 19"),  # '@' starts no value
    ("  api_secret_env: [SECRLEAKALPSEC8m2W\n", "line 4, column 10"),  # an unclosed [
    ("  api_secret_env: \"SECRLEAKALPSEC8m2W\n", "line 5, column 1"),  # an unclosed quote
])
def test_a_yaml_error_says_where_without_quoting_the_line(
        tmp_path: Path, line: str, where: str) -> None:
    spec = _broker_file(tmp_path, "broker:\n  broker: alpaca\n" + line + "  account: A\n")
    message = _from_file(spec)
    assert "SECRLEAK" not in message and "ALPSEC" not in message
    assert message.startswith(f"--broker {spec}: not valid YAML at {where} "), message
    assert "needs quotes" in message  # what each of these needs


@pytest.mark.parametrize("text", [
    "broker: alpaca\nexecution_mode: paper\naccount: A\napi_key_env: OG_KEY\n",  # flat
    "- broker: alpaca\n",
    "broker:\n",
])
def test_a_file_without_a_broker_section_says_it_needs_one(tmp_path: Path, text: str) -> None:
    spec = _broker_file(tmp_path, text)
    message = _from_file(spec)
    assert message.startswith(f"--broker {spec}: expected a top-level 'broker:' section")
    assert "    broker:\n      broker: alpaca" in message  # with an example
    assert "Expected `object`" not in message


def test_a_setting_an_adapter_refuses_is_a_user_error_naming_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class RefusingTradier:
        def __init__(self, **settings: object) -> None:
            raise ValueError("base_url: not a URL this adapter can use")

    monkeypatch.setattr("ordergate.brokers.tradier.TradierAdapter", RefusingTradier)
    monkeypatch.setenv("OG_KEY", "tradier-token-value")
    spec = _broker_file(tmp_path, "broker: {broker: tradier, execution_mode: paper, account: A,"
                                  " api_key_env: OG_KEY, broker_account: VA1}\n")
    message = _from_file(spec)
    assert message == (f"--broker {spec}: the tradier adapter refused this configuration:"
                       " base_url: not a URL this adapter can use")


def test_run_with_an_infinite_timeout_exits_1_without_a_stack_trace(tmp_path: Path) -> None:
    events = write_scenario(tmp_path / "events.jsonl", seconds=2)
    spec = _broker_file(tmp_path, "broker: {broker: deribit, execution_mode: paper, account: A,"
                                  " api_key_env: OG_KEY, api_secret_env: OG_SECRET,"
                                  " timeout_s: .inf}\n")
    done = subprocess.run(
        [sys.executable, "-m", "ordergate.cli.main", "run", "--policy", str(demo_policy_path()),
         "--journal", str(tmp_path / "journal.db"), "--broker", spec, str(events)],
        capture_output=True, check=False, timeout=120,
        env={**os.environ, "OG_KEY": "k", "OG_SECRET": "s"})
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "broker.timeout_s" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "journal.db").exists()


def test_a_timeout_below_one_millisecond_says_the_least_allowed() -> None:
    with pytest.raises(BrokerConfigError, match=r"^broker\.timeout_s: .*0\.001") as caught:
        parse_broker_config({**DERIBIT, "timeout_s": 0.0004})
    assert "0.0004" in str(caught.value)


def test_a_duplicated_key_is_named_with_its_lines_and_no_quoting_hint(tmp_path: Path) -> None:
    spec = _broker_file(tmp_path, "broker:\n  broker: deribit\n  execution_mode: paper\n"
                                  "  account: A\n  api_key_env: OG_KEY\n"
                                  "  api_secret_env: SECRLEAKALPSEC8m2W\n"
                                  "  api_secret_env: SECRLEAKOTHER9\n")
    message = _from_file(spec)
    assert message == (f"--broker {spec}: duplicate key 'api_secret_env' at line 7 (first"
                       " defined on line 6); keep only one")
    assert "SECRLEAK" not in message and "quotes" not in message


def test_a_control_character_is_named_without_the_quoting_hint(tmp_path: Path) -> None:
    spec = _broker_file(tmp_path, "broker:\n  broker: alpaca\n  account: A\x01\n")
    message = _from_file(spec)
    assert message.startswith(f"--broker {spec}: not valid YAML at line 3: "), message
    assert "quotes" not in message
