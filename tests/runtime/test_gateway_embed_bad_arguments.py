"""A wrong argument to `Gateway.open` is refused naming the argument, not with a raw
TypeError, ValueError or AttributeError from deep inside (and nothing is written). Wrong
arguments to the gateway's methods are in test_gateway_input_checks.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ordergate import Gateway, InvalidInput, PolicyError

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: bad-arguments
defaults:
  max_market_data_age: 1m
"""


@pytest.fixture()
def gateway(tmp_path: Path) -> Gateway:
    opened = Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event")
    opened.fund("ACC-1", "100000", ts=T0)
    return opened


OPEN_BAD: list[tuple[str, dict[str, Any], str]] = [
    ("durability", {"durability": "sometimes"},
     r"^durability: expected one of 'always', 'batch', 'none', got 'sometimes'"),
    ("broker a string", {"broker": "sim"}, r"^broker: expected a BrokerAdapter"),
    ("policy None", {"policy": None}, r"^policy: expected a policy file path, YAML text"),
]


@pytest.mark.parametrize(("case", "arguments", "message"), OPEN_BAD,
                         ids=[case for case, _, _ in OPEN_BAD])
def test_open_refuses_a_bad_argument_naming_it(tmp_path: Path, case: str,
                                               arguments: dict[str, Any], message: str) -> None:
    given = {"policy": POLICY, "journal": tmp_path / "o.db", **arguments}
    with pytest.raises(InvalidInput, match=message):
        Gateway.open(**given)
    assert not (tmp_path / "o.db").exists(), case


def test_one_line_yaml_policy_says_a_string_is_read_as_a_path(tmp_path: Path) -> None:
    one_line = "{apiVersion: ordergate/v1, kind: Policy, metadata: {name: x}}"
    with pytest.raises(PolicyError, match=r"read as a file path; pass the YAML document"):
        Gateway.open(one_line, journal=tmp_path / "o.db")
