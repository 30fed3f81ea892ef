"""A wrong argument to `Gateway.open` is refused naming the argument, not with a raw
TypeError, ValueError or AttributeError from deep inside (and nothing is written). Wrong
arguments to the gateway's methods are in test_gateway_input_checks.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ordergate import (
    AsyncGateway,
    Gateway,
    InvalidInput,
    PolicyChoiceError,
    PolicyError,
    PolicyReplacement,
)

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
    ("replace_policy True", {"replace_policy": True},
     r"^replace_policy: expected an ordergate\.PolicyReplacement\(operator, reason\) or None, "
     r"got bool$"),
    ("replace_policy a dict", {"replace_policy": {"operator": "ops", "reason": "why"}},
     r"^replace_policy: expected an ordergate\.PolicyReplacement.* got dict$"),
    ("replace_policy a string", {"replace_policy": "ops"},
     r"^replace_policy: .* got str$"),
    ("replace_policy a tuple", {"replace_policy": ("ops", "why")},
     r"^replace_policy: .* got tuple$"),
    ("replace_policy, a line break in the reason",
     {"replace_policy": PolicyReplacement("ops", "new\nlimits")},
     r"^replace_policy\.reason: character 3 is the control character U\+000A"),
    ("replace_policy, a lone surrogate in the operator",
     {"replace_policy": PolicyReplacement("ops\ud800", "new limits")},
     r"^replace_policy\.operator: expected text that UTF-8 can encode"),
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


OTHER_POLICY = POLICY.replace("bad-arguments", "bad-arguments-2")


def test_a_wrong_replace_policy_on_a_journal_of_another_policy_is_refused_naming_it(
        tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    with Gateway.open(POLICY, journal=journal, clock="event") as first:
        first.fund("ACC-1", "100000", ts=T0)  # the journal now enforces POLICY
    with pytest.raises(InvalidInput, match=r"^replace_policy: .* got bool$"):
        Gateway.open(OTHER_POLICY, journal=journal, clock="event",
                     replace_policy=True)  # type: ignore[arg-type]

    async def open_async() -> None:
        await AsyncGateway.open(OTHER_POLICY, journal=journal, clock="event",
                                replace_policy=("ops", "why"))  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match=r"^replace_policy: .* got tuple$"):
        asyncio.run(open_async())
    # the journal's policy is still the one enforced, and a good replacement still works
    with Gateway.open(OTHER_POLICY, journal=journal, clock="event") as kept:
        assert kept.policy.name == "bad-arguments"
    replacement = PolicyReplacement(operator=" ops-alice ", reason="new limits")
    with Gateway.open(OTHER_POLICY, journal=journal, clock="event",
                      replace_policy=replacement) as replaced:
        assert replaced.policy.name == "bad-arguments-2"
        assert replaced.policy_choice is not None
        assert replaced.policy_choice.activation == ("ops-alice", "new limits")


@pytest.mark.parametrize(("operator", "reason", "message"), [
    ("", "", r"needs operator and reason"),
    ("ops", "  ", r"needs reason"),
    (None, "why", r"^operator: expected text, got NoneType$"),
    ("ops", 5, r"^reason: expected text, got int$"),
])
def test_a_policy_replacement_without_its_text_is_refused_with_an_exported_error(
        operator: object, reason: object, message: str) -> None:
    with pytest.raises(PolicyChoiceError, match=message):
        PolicyReplacement(operator, reason)  # type: ignore[arg-type]
