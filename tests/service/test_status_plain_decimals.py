"""Decimals shown to people in GET /v1/status and `ordergate status --url` are in plain
notation: a position of 10 at an average price of 190 reads "10" and "190", never "1E+1" and
"1.9E+2" (exact decimal arithmetic keeps exponents; the journal keeps the exact values)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ordergate.brokers.sim import SimBroker, SimConfig
from ordergate.model.events import PositionSeed
from ordergate.policy.loader import parse_policy
from ordergate.runtime.loop import Runtime
from service.support import (
    POLICY,
    T0,
    feed,
    start,
    status_cli_words,
    status_of,
)


def test_average_price_and_quantities_are_shown_in_plain_notation(tmp_path: Path) -> None:
    # A position whose decimals carry an exponent (a broker's own book, or exact arithmetic:
    # 10 x 1.9E+2 / 10 stays 1.9E+2) is shown as people write it.
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'journal.db'}", parse_policy(POLICY),
                           SimBroker(SimConfig()))
    runtime.process([*feed(), PositionSeed(ts=T0, account="ACC-1", symbol="AAPL",
                                           qty=Decimal("1E+1"), avg_price=Decimal("1.9E+2"))])
    runtime.close()
    served = start(tmp_path)  # the same journal: the position is replayed as it was
    try:
        status = status_of(served)
        assert status["positions"] == [
            {"account": "ACC-1", "symbol": "AAPL", "qty": "10", "avg_price": "190"}]
        for exposure in status["exposure"]:
            for shown in (exposure["gross"], exposure["net"]):
                assert "E" not in shown.upper(), status
        words = status_cli_words(served)
        assert "ACC-1 AAPL 10 190" in words and "E+" not in words
    finally:
        served.stop()
