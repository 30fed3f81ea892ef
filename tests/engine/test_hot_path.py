"""What the engine's hot path keeps equal to the gate's definitions when it inlines them."""

from __future__ import annotations

from datetime import timedelta

from engine.harness import Harness
from ordergate.gate import fingerprint, rate_key
from ordergate.gate.view import RateScope
from ordergate.model.intent import OrderIntent, Side

MINUTE = timedelta(minutes=1)
THROTTLE = {"max": 100, "window": "1m"}


def test_an_accepted_intent_is_counted_under_the_gates_rate_keys_and_fingerprint() -> None:
    harness = Harness(defaults={
        "rate_global": THROTTLE, "rate_account": THROTTLE, "rate_strategy": THROTTLE,
        "rate_symbol": THROTTLE, "duplicate_window": "1m",
    })
    harness.accepted(Side.BUY, "10", limit_price="100")
    intent = harness.log[-1]
    assert isinstance(intent, OrderIntent)
    state = harness.state
    for scope in RateScope:
        assert state.order_count(scope, rate_key(scope, intent), MINUTE) == 1, scope
    assert state.fingerprint_seen(fingerprint(intent), MINUTE)
