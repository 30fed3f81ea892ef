from datetime import timedelta

from gate.build import NOW, D, decide, intent, limits, view
from ordergate.gate import fingerprint
from ordergate.model.decision import DecisionKind
from ordergate.model.intent import Side

WINDOW = limits(duplicate_window=timedelta(seconds=10))
LONG = {("A1", "XYZ"): D("100")}


def test_seen_client_order_id_is_denied_even_when_reducing() -> None:
    decision = decide(intent(side=Side.SELL, client_order_id="c-1"),
                      view(positions=LONG, client_order_ids={"c-1"}))
    assert decision.risk_reducing
    assert decision.blocking == "DUP-001"
    assert decide(intent(client_order_id="c-2"), view(client_order_ids={"c-1"})).decision \
        is DecisionKind.ALLOW


def test_fingerprint_normalizes_quantity_and_price() -> None:
    assert fingerprint(intent(qty=D("10"), limit_price=D("100"))) == fingerprint(
        intent(qty=D("10.000"), limit_price=D("100.00"), intent_id="other"))
    assert fingerprint(intent(qty=D("1E+2"))) == fingerprint(intent(qty=D("100")))
    assert fingerprint(intent()) != fingerprint(intent(side=Side.SELL))
    assert fingerprint(intent()) != fingerprint(intent(limit_price=D("100.01")))


def test_fingerprint_fields_cannot_run_into_each_other() -> None:
    assert fingerprint(intent(account="A|B", strategy="C")) != fingerprint(
        intent(account="A", strategy="B|C"))


def test_same_order_inside_the_window_is_denied_and_outside_allowed() -> None:
    key = fingerprint(intent())
    inside = view(fingerprints={key: [NOW - timedelta(seconds=9, microseconds=999999)]})
    assert decide(intent(qty=D("10.0")), inside, WINDOW).blocking == "DUP-002"
    at_edge = view(fingerprints={key: [NOW - timedelta(seconds=10)]})
    assert decide(world=at_edge, policy=WINDOW).decision is DecisionKind.ALLOW


def test_duplicate_window_unset_skips_the_fingerprint_check() -> None:
    key = fingerprint(intent())
    assert decide(world=view(fingerprints={key: [NOW]})).decision is DecisionKind.ALLOW
