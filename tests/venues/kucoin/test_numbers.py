"""KuCoin's numbers: every price, size and funds put on the wire is a whole multiple of the
symbol's increment, printed as the venue prints it; the venue's strings are read exactly."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.kucoin.numbers import _divided, is_on_grid, on_grid, parse, quotient, wire
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
BTC_USDT: dict[str, Any] = MESSAGES["rest_symbol_BTC-USDT"]
INCREMENTS = ("priceIncrement", "baseIncrement", "quoteIncrement")


def test_a_float_off_the_grid_is_put_on_it_as_its_shortest_form_reads() -> None:
    """The venue refused ``0.6930000000000001`` ("Order size increment invalid")."""
    size = 0.231 * 3  # 0.6930000000000001: the sum of three fills of 0.231
    assert repr(size) == "0.6930000000000001"
    assert not is_on_grid(repr(size), "0.0001")
    placed = wire(on_grid(size, "0.0001", "down"))
    assert placed == "0.693"
    assert is_on_grid(placed, "0.0001")
    assert wire(on_grid(0.07, "0.01", "down")) == "0.07"  # not 0.06 from the binary 0.0699...


def test_the_recorded_symbols_numbers_are_on_their_own_grid() -> None:
    """The numbers of the recorded /api/v2/symbols entry and of the recorded orders."""
    for name in INCREMENTS:
        increment = BTC_USDT[name]
        assert is_on_grid(increment, increment)
        assert wire(parse(increment)) == increment
    assert is_on_grid(BTC_USDT["baseMinSize"], BTC_USDT["baseIncrement"])
    order = MESSAGES["rest_add_order_request"]
    assert is_on_grid(order["price"], BTC_USDT["priceIncrement"])
    assert is_on_grid(order["size"], BTC_USDT["baseIncrement"])
    assert wire(on_grid(50_000.04, BTC_USDT["priceIncrement"], "down")) == "50000"
    assert wire(on_grid(50_000.04, BTC_USDT["priceIncrement"], "up")) == "50000.1"


@given(
    value=st.floats(allow_nan=False, allow_infinity=False),
    exponent=st.integers(-40, 40),
    zeros=st.integers(0, 3),
    direction=st.sampled_from(["down", "up"]),
)
def test_a_power_of_ten_grid_places_as_the_division_does(
    value: float, exponent: int, zeros: int, direction: str
) -> None:
    """The quantize a power-of-ten increment takes is the division's number, printed the same,
    however the increment is written ("0.01", "0.010", "1E+1")."""
    increment = Decimal(10**zeros).scaleb(exponent - zeros)  # 10**exponent, zeros written
    rounding = ROUND_FLOOR if direction == "down" else ROUND_CEILING
    divided = _divided(Decimal(repr(value)), increment, rounding)
    placed = on_grid(value, increment, direction)  # type: ignore[arg-type]
    assert placed == divided
    assert wire(placed) == wire(divided)


@given(
    value=st.just(0.0) | st.floats(min_value=1e-12, max_value=1e9),  # prices, sizes, funds
    exponent=st.integers(-10, 2),
    mantissa=st.sampled_from([1, 5]),
    direction=st.sampled_from(["down", "up"]),
)
def test_on_grid_is_a_multiple_within_one_step_in_the_direction_asked(
    value: float, exponent: int, mantissa: int, direction: str
) -> None:
    increment = Decimal(mantissa).scaleb(exponent)
    placed = on_grid(value, increment, direction)  # type: ignore[arg-type]
    exact = Decimal(repr(value))
    assert placed % increment == 0
    with localcontext(prec=200):  # (the differences exactly, however small the value)
        assert abs(placed - exact) < increment
    assert (placed <= exact) if direction == "down" else (placed >= exact)
    text = wire(placed)
    assert "e" not in text.lower()
    assert not text.endswith(".")
    assert "." not in text or not text.endswith("0")
    assert parse(text) == placed
    assert is_on_grid(text, increment)


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=8, min_value=-(10**9), max_value=10**9
    )
)
def test_wire_and_parse_round_trip(value: Decimal) -> None:
    text = wire(value)
    assert parse(text, signed=True) == value


@pytest.mark.parametrize(
    "text",
    ["1e5", "+1", " 1", "1 ", "1_000", "NaN", "Infinity", ".5", "5.", "١٢", "", "0x10", "-1"],
)
def test_parse_refuses_what_the_venue_never_sends(text: str) -> None:
    with pytest.raises(ValueError, match="decimal string"):
        parse(text)
    assert not is_on_grid(text, "0.1")


def test_bad_arguments_fail_clearly() -> None:
    assert parse("-1.5", signed=True) == Decimal("-1.5")
    with pytest.raises(TypeError):
        parse(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="increment must be positive"):
        on_grid(1.0, "0", "down")
    with pytest.raises(ValueError, match="finite"):
        on_grid(float("nan"), "0.1", "down")
    with pytest.raises(ValueError, match="finite"):
        wire(Decimal("Infinity"))
    assert wire(Decimal("-0.000")) == "0"
    assert wire(Decimal("1E+3")) == "1000"


@given(
    ticks=st.integers(1, 10**9),
    price_exponent=st.integers(-8, 1),
    lots=st.integers(1, 10**9),
    size_exponent=st.integers(-8, 0),
)
def test_the_average_of_fills_at_one_price_is_that_price(
    ticks: int, price_exponent: int, lots: int, size_exponent: int
) -> None:
    """Funds over size, both as the venue prints them, is the price as it prints it."""
    price, size = Decimal(ticks).scaleb(price_exponent), Decimal(lots).scaleb(size_exponent)
    with localcontext(prec=200):
        funds = price * size
    assert quotient(parse(wire(funds)), parse(wire(size))) == float(price)


def test_a_quotient_by_zero_fails() -> None:
    assert quotient(Decimal(1), Decimal(3)) == 1 / 3
    with pytest.raises(ZeroDivisionError):
        quotient(Decimal(1), Decimal(0))
