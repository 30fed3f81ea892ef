"""Every decimal of every input event is a finite decimal below 10**15 in magnitude: a value
beyond it is refused at the edge, naming its field, before it can be journaled (a journaled
input the engine cannot handle would stop every restart)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from ordergate.model.events import FirmState, InputEvent
from ordergate.model.portfolio import AccountState, PortfolioState
from ordergate.model.values import (
    MAGNITUDE_LIMIT,
    InvalidValue,
    describe_error,
    require_finite,
    require_non_negative,
    require_positive,
)

TS = "2026-03-02T14:30:00Z"
_decode = msgspec.json.Decoder(InputEvent).decode

# a valid event of each input type with decimals, and those decimals' names
VALID: dict[str, dict[str, Any]] = {
    "intent": {"type": "intent", "intent_id": "i", "ts": TS, "account": "A", "strategy": "s",
               "symbol": "X", "side": "buy", "qty": "1", "order_type": "stop_limit",
               "limit_price": "10", "stop_price": "9"},
    "market": {"type": "market", "symbol": "X", "ts": TS, "bid": "1", "ask": "2", "last": "1",
               "volume": "5"},
    "fill": {"type": "fill", "ts": TS, "client_order_id": "c", "fill_id": "f", "qty": "1",
             "price": "1", "fee": "0"},
    "account": {"type": "account", "ts": TS, "account": "A", "cash": "100"},
    "position": {"type": "position", "ts": TS, "account": "A", "symbol": "X", "qty": "-3",
                 "avg_price": "5"},
}
FIELDS = [
    (kind, name)
    for kind, fields in VALID.items()
    for name in fields
    if name in {"qty", "limit_price", "stop_price", "bid", "ask", "last", "volume", "price",
                "fee", "cash", "avg_price"}
]
TOO_LARGE = ["1e400", "99999999999999999999999999999999999", "1E+15", "1000000000000000.0"]


def test_the_limit_is_ten_to_the_fifteenth() -> None:
    assert Decimal(10) ** 15 == MAGNITUDE_LIMIT


@pytest.mark.parametrize(("kind", "name"), FIELDS)
@pytest.mark.parametrize("text", TOO_LARGE)
def test_every_input_decimal_beyond_the_limit_is_refused_naming_its_field(
        kind: str, name: str, text: str) -> None:
    assert msgspec.json.decode(msgspec.json.encode(VALID[kind]), type=InputEvent)
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**VALID[kind], name: text}))
    message = describe_error(refused.value)
    assert message.startswith(f"{name}: expected a decimal below 1E+15 in magnitude, got '")
    assert f"got '{Decimal(text)}'" in message


@pytest.mark.parametrize(("kind", "name"), FIELDS)
def test_values_just_inside_the_limit_are_accepted(kind: str, name: str) -> None:
    value = "-999999999999999.999999" if (kind, name) in {
        ("position", "qty"), ("account", "cash")} else "999999999999999.999999"
    event = _decode(msgspec.json.encode({**VALID[kind], name: value}))
    assert getattr(event, name) == Decimal(value)


def test_a_negative_figure_beyond_the_limit_is_refused_too() -> None:
    with pytest.raises(InvalidValue, match=r"cash: expected a decimal below 1E\+15 in "
                                           r"magnitude, got '-1E\+16'"):
        require_finite("cash", Decimal("-1e16"))
    with pytest.raises(InvalidValue, match="qty: expected a decimal below"):
        require_positive("qty", Decimal("1e15"))
    with pytest.raises(InvalidValue, match="fee: expected a decimal below"):
        require_non_negative("fee", Decimal("1e20"))


def test_zero_written_with_a_large_exponent_is_zero() -> None:
    assert require_finite("qty", Decimal("0E+20")) == 0


def test_market_data_keeps_bad_values_for_the_gate_but_not_impossible_magnitudes() -> None:
    """NaN, infinite, zero and negative prices reach the gate, which fails closed (SYS-003);
    a magnitude no price has is refused like every input decimal."""
    for text in ("NaN", "Infinity", "-Infinity", "0", "-5"):
        snapshot = _decode(msgspec.json.encode({**VALID["market"], "bid": text}))
        assert str(snapshot.bid) == str(Decimal(text))
    with pytest.raises(msgspec.ValidationError, match="volume: expected a decimal below"):
        _decode(msgspec.json.encode({**VALID["market"], "volume": "-1e20"}))


def test_a_state_file_is_bounded_but_the_engine_s_own_marks_are_not() -> None:
    """`eval --state` reads a PortfolioState: its figures are input. An AccountState the
    engine builds from its own sums (and decision records carry) is only finite."""
    decode = msgspec.json.Decoder(PortfolioState).decode
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(b'{"accounts": [{"account": "A", "cash": "1"}, '
               b'{"account": "B", "high_water_mark": "1e400"}]}')
    assert describe_error(refused.value).startswith(
        "accounts[1].high_water_mark: expected a decimal below 1E+15")
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(b'{"positions": [{"account": "A", "symbol": "X", "qty": "1e20"}]}')
    assert "qty: expected a decimal below 1E+15" in describe_error(refused.value)
    assert AccountState(account="A", cash=Decimal("-1E+30")).cash == Decimal("-1E+30")


def test_the_firm_store_s_sum_of_other_shards_is_not_bounded() -> None:
    """Another shard's gross exposure is a sum of figures, only added and compared."""
    event = FirmState(ts=_decode(msgspec.json.encode(VALID["account"])).ts, kill=False,
                      gross_exposure=Decimal("1E+20"))
    assert event.gross_exposure == Decimal("1E+20")
    with pytest.raises(InvalidValue, match="gross_exposure: expected a non-negative"):
        FirmState(ts=event.ts, kill=False, gross_exposure=Decimal(-1))


@pytest.mark.parametrize(("kind", "name"), FIELDS)
@pytest.mark.parametrize("text", ["1E-1000030", "1E-19", "-0.0000000000000000009"])
def test_a_non_zero_figure_below_the_smallest_is_refused_naming_its_field(
        kind: str, name: str, text: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**VALID[kind], name: text}))
    assert describe_error(refused.value) == (
        f"{name}: expected 0 or a decimal of at least 1E-18 in magnitude, got '{Decimal(text)}'")


@pytest.mark.parametrize("text", ["1E-18", "0.000000000000000001", "123.000000000000000001"])
def test_the_finest_unit_of_any_asset_is_accepted(text: str) -> None:
    assert require_positive("qty", Decimal(text)) == Decimal(text)


def test_zero_with_any_exponent_is_zero() -> None:
    assert require_non_negative("fee", Decimal("0E-30")) == 0


BOOKED = [(kind, name) for kind, name in FIELDS if kind != "market"]


@pytest.mark.parametrize(("kind", "name"), BOOKED)
def test_a_figure_with_more_digits_than_the_engine_keeps_is_refused_naming_its_field(
        kind: str, name: str) -> None:
    """Sums keep 28 significant digits: a fill of 10.00000000000000000000000000001 would be
    booked as 10 and leave 1E-29 of its order working for ever."""
    text = "10.00000000000000000000000000001"
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**VALID[kind], name: text}))
    assert describe_error(refused.value) == (
        f"{name}: expected at most 28 significant digits, got '{text}' (31 digits)")
    exact = "123456789012345.6789012345678"  # 28 digits: kept
    assert getattr(_decode(msgspec.json.encode({**VALID[kind], name: exact})), name) == \
        Decimal(exact)
    padded = "10.000000000000000000000000000000"  # zeros past the 28th digit change nothing
    assert getattr(_decode(msgspec.json.encode({**VALID[kind], name: padded})), name) == 10
