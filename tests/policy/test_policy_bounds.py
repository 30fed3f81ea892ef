"""A policy's quantities, prices and cash amounts have the bound every input decimal has:
below 10**15. Beyond it the policy is refused with its file, line, column and field; tiny
steps (a lot size of 1E-20) are allowed: the engine refuses what it cannot compute with them."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from ordergate.engine.core import Engine
from ordergate.model.events import Alert, PolicyDocument
from ordergate.model.values import utc
from ordergate.policy import PolicyError, parse_policy

HEADER = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: bounds
"""


def _policy(body: str) -> str:
    return HEADER + textwrap.dedent(body)


@pytest.mark.parametrize(("field", "text", "shown"), [
    ("max_order_qty", "1e400", "1e400"),
    ("max_order_qty", "99999999999999999999999999999999999",
     "99999999999999999999999999999999999"),
    ("max_gross_exposure", "1000000000000000", "1000000000000000"),
    ("max_daily_loss", '"1E+15"', "1E+15"),
])
def test_a_limit_beyond_the_bound_names_file_line_and_field(
        field: str, text: str, shown: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_policy(f"""\
            defaults:
              max_market_data_age: 2s
              {field}: {text}
            """), "policy.yaml")
    error = caught.value
    assert (error.line, error.path) == (7, ("defaults", field))
    assert str(error) == (f"policy.yaml:7:{len(field) + 5}: defaults.{field}: "
                          f"expected a decimal below 1E+15, got '{shown}'")


def test_instrument_steps_and_per_symbol_limits_are_bounded_too() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_policy("""\
            instruments:
              X: {tick_size: 0.01, lot_size: 1e16}
            defaults:
              max_market_data_age: 2s
            """), "policy.yaml")
    assert caught.value.path == ("instruments", "X", "lot_size")
    with pytest.raises(PolicyError) as caught:
        parse_policy(_policy("""\
            defaults:
              max_market_data_age: 2s
            symbols:
              X: {max_position_value: 5e20}
            """), "policy.yaml")
    assert caught.value.path == ("symbols", "X", "max_position_value")


def test_values_just_below_the_bound_and_tiny_steps_load() -> None:
    policy = parse_policy(_policy("""\
        instruments:
          X: {tick_size: 1E-20, lot_size: 0.00000000000000000001}
        defaults:
          max_market_data_age: 2s
          max_order_qty: 999999999999999.99
          max_gross_exposure: "999999999999999"
        """), "policy.yaml")
    limits = policy.limits_for("A", "s", "X")
    assert limits.max_order_qty == Decimal("999999999999999.99")
    assert limits.instrument is not None
    assert limits.instrument.lot_size == Decimal("1E-20")


def test_a_journaled_policy_document_beyond_the_bound_is_refused_by_the_engine() -> None:
    """The same check holds for a policy that reaches the engine as a document (HTTP, a
    journal): refused with an alert, never stored."""
    engine = Engine()
    document = {"apiVersion": "ordergate/v1", "kind": "Policy", "metadata": {"name": "x"},
                "defaults": {"max_market_data_age": "2s", "max_order_qty": "1E+400"}}
    outputs = engine.handle(PolicyDocument(ts=utc(2026, 1, 5), policy_hash="sha256:x",
                                           document=document))
    (alert,) = [output for output in outputs if isinstance(output, Alert)]
    assert alert.code == "POLICY_REJECTED"
    assert "defaults.max_order_qty: expected a decimal below 1E+15" in alert.message
    assert engine.policies == {}
