"""The embedding API checks a Python-built event as the journal's decoder would.

A struct built in Python skips msgspec's field constraints (only decoding checks them), and a
lone surrogate cannot be written as UTF-8: either used to reach the journal (an invalid
identifier journaled as it was) or fail its write with a UnicodeEncodeError. Each is now an
`InvalidInput` naming the field, with nothing journaled and trading unaffected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate import Gateway, InvalidInput, KillScope, Mode, OrderIntent, Side
from ordergate.model.events import CancelRequest

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
POLICY = """\
apiVersion: ordergate/v1
kind: Policy
metadata:
  name: input-checks
defaults:
  max_market_data_age: 1m
  max_order_qty: 100
"""


def fields(intent_id: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "intent_id": intent_id, "ts": T0 + timedelta(seconds=2), "account": "ACC-1",
        "strategy": "demo", "symbol": "AAPL", "side": Side.BUY, "qty": Decimal(1)}
    return {**base, **changes}


@pytest.fixture()
def gateway(tmp_path: Path) -> Gateway:
    opened = Gateway.open(POLICY, journal=tmp_path / "j.db", clock="event")
    opened.fund("ACC-1", "100000", ts=T0)
    opened.on_market({"symbol": "AAPL", "ts": T0 + timedelta(seconds=1), "bid": "99.99",
                      "ask": "100.01", "last": "100"})
    return opened


BAD: list[tuple[str, Callable[[Gateway], object], str]] = [
    ("typed intent, identifier with a space",
     lambda g: g.submit(OrderIntent(**fields("has space"))), r"intent_id.*printable ASCII"),
    ("typed intent, lone surrogate in a tag",
     lambda g: g.submit(OrderIntent(**fields("t1", tags={"note": "\ud800"}))),
     r"intent\.tags\.note: .*lone surrogate"),
    ("dict intent, lone surrogate in a tag",
     lambda g: g.submit({**fields("t2", tags={"note": "x\udfff"}), "side": "buy"}),
     r"intent\.tags\.note: .*lone surrogate"),
    ("typed intent, lone surrogate in the symbol",
     lambda g: g.submit(OrderIntent(**fields("t3", symbol="\ud83d"))),
     r"intent\.symbol: .*lone surrogate"),
    ("typed intent, too many tags",
     lambda g: g.submit(OrderIntent(**fields("t4", tags={f"k{n}": "v" for n in range(40)}))),
     r"^intent\.tags: "),
    ("process(), a typed intent with a tag key too long",
     lambda g: g.process([OrderIntent(**fields("t5", tags={"k" * 100: "v"}))]),
     r"^events\[0\]\.tags \(a key\): "),
    ("cancel, lone surrogate in the order id",
     lambda g: g.cancel("c\ud800", "ACC-1"), r"cancel\.client_order_id: .*lone surrogate"),
    ("cancel, raw event with a bad account",
     lambda g: g.process([CancelRequest(ts=T0 + timedelta(seconds=2), client_order_id="c1",
                                        account="bad account")]), r"^events\[0\]\.account: "),
    ("funding, account with a space", lambda g: g.fund("AC C", "5"), r"^funding\.account: "),
    ("halt, lone surrogate in the operator",
     lambda g: g.halt("ops\ud800", "risk"), r"command\.operator: .*lone surrogate"),
    ("halt, NUL in the reason", lambda g: g.halt("ops", "risk\x00"),
     r"reason: character 4 is the control character U\+0000"),
    ("halt, only zero-width characters as reason", lambda g: g.halt("ops", "\u200b"),
     r"reason: required"),
    ("kill, escape sequence in the key",
     lambda g: g.kill("ops", "risk", scope=KillScope.SYMBOL, key="AAPL\x1b[2J"),
     r"key: character 4 is the control character U\+001B"),
    # wrong Python types: refused naming the argument, not a raw TypeError or AttributeError
    ("cash None", lambda g: g.fund("ACC-1", None), r"^cash: .*NoneType"),  # type: ignore[arg-type]
    ("cash a list", lambda g: g.fund("ACC-1", [1]), r"^cash: .*list"),  # type: ignore[arg-type]
    ("cash a bool", lambda g: g.fund("ACC-1", True), r"^cash: .*bool"),
    ("cash too large", lambda g: g.fund("ACC-1", "1e30"), r"^funding\.cash: .*below"),
    ("operator None", lambda g: g.halt(None, "x"), r"^operator: expected text"),  # type: ignore[arg-type]
    ("reason a number", lambda g: g.halt("ops", 5), r"^reason: expected text"),  # type: ignore[arg-type]
    ("kill key None", lambda g: g.kill("ops", "x", key=None), r"^key: expected text"),  # type: ignore[arg-type]
    # one form for every field: `intent.qty: <problem>`, whichever check refuses it
    ("dict intent, negative qty", lambda g: g.submit({**fields("q1"), "qty": "-5"}),
     r"^intent\.qty: expected a positive decimal, got '-5'$"),
    ("dict intent, float qty", lambda g: g.submit({**fields("q2"), "qty": 1.5}),
     r"^intent\.qty: expected a decimal string .* got the float 1\.5"),
    ("dict intent, qty not a number", lambda g: g.submit({**fields("q3"), "qty": "abc"}),
     r"^intent\.qty: "),
    ("dict intent, unknown side", lambda g: g.submit({**fields("q4"), "side": "up"}),
     r"^intent\.side: "),
    ("dict intent, unknown field", lambda g: g.submit({**fields("q5"), "bogus": "1"}),
     r"^intent: .*unknown field `bogus`"),
    ("dict intent, qty missing",
     lambda g: g.submit({key: value for key, value in fields("q6").items() if key != "qty"}),
     r"^intent\.qty: required field missing$"),
    ("submit_many, the second intent without a side",
     lambda g: g.submit_many([fields("q7"), {key: value for key, value in fields("q8").items()
                                             if key != "side"}]),
     r"^intents\[1\]\.side: required field missing$"),
    ("dict snapshot, symbol missing",
     lambda g: g.on_market({"ts": T0 + timedelta(seconds=1), "bid": "99.99", "ask": "100.01",
                            "last": "100"}),
     r"^market\.symbol: required field missing$"),
    ("a dict given to process()", lambda g: g.process([{"type": "clock", "ts": T0}]),  # type: ignore[list-item]
     r"^events\[0\]: expected an input event .* got dict; .*submit\(\) or on_market\(\)"),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_python_input_is_refused_naming_the_field_and_journals_nothing(
        gateway: Gateway, case: str, call: Callable[[Gateway], object], message: str) -> None:
    journal = gateway._runtime.journal
    before = journal.last_seq()
    with pytest.raises(InvalidInput, match=message):
        call(gateway)
    assert journal.last_seq() == before, case
    assert gateway.mode is Mode.ACTIVE
    decision = gateway.submit(OrderIntent(**fields("good-after")))
    assert decision.decision.value == "ALLOW"
    gateway.close()


def test_a_typed_intent_that_is_valid_is_decided_unchanged(gateway: Gateway) -> None:
    typed = OrderIntent(**fields("typed", tags={"model": "v2", "score": "0.7"},
                                 qty=Decimal("2.50")))
    decision = gateway.submit(typed)
    assert decision.decision.value == "ALLOW"
    assert decision.intent_id == "typed"
    gateway.close()
