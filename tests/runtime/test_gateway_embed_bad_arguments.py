"""A wrong argument to the embedding API is refused naming the argument, not with a raw
TypeError, ValueError or AttributeError from deep inside (and nothing is journaled)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ordergate import Gateway, InvalidInput, Mode, PolicyError

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


BAD: list[tuple[str, Callable[[Gateway], object], str]] = [
    ("cash None", lambda g: g.fund("ACC-1", None), r"^cash: .*NoneType"),  # type: ignore[arg-type]
    ("cash a list", lambda g: g.fund("ACC-1", [1]), r"^cash: .*list"),  # type: ignore[arg-type]
    ("cash a bool", lambda g: g.fund("ACC-1", True), r"^cash: .*bool"),
    ("cash too large", lambda g: g.fund("ACC-1", "1e30"), r"^funding: cash: .*below"),
    ("operator None", lambda g: g.halt(None, "x"), r"^operator: expected text"),  # type: ignore[arg-type]
    ("reason a number", lambda g: g.halt("ops", 5), r"^reason: expected text"),  # type: ignore[arg-type]
    ("kill key None", lambda g: g.kill("ops", "x", key=None), r"^key: expected text"),  # type: ignore[arg-type]
    ("a dict given to process()", lambda g: g.process([{"type": "clock", "ts": T0}]),  # type: ignore[list-item]
     r"^events\[0\]: expected an input event .* got dict; .*submit\(\) or on_market\(\)"),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_argument_is_refused_naming_it_and_journals_nothing(
        gateway: Gateway, case: str, call: Callable[[Gateway], object], message: str) -> None:
    journal = gateway._runtime.journal
    before = journal.last_seq()
    with pytest.raises(InvalidInput, match=message):
        call(gateway)
    assert journal.last_seq() == before, case
    assert gateway.mode is Mode.ACTIVE
    gateway.close()


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
