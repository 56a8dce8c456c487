"""Tests of mm.venues.hyperliquid.numbers: the venue's price and size rules and number styles.

The rules (perpetuals, szDecimals d): a price is positive, has at most ``6 - d`` decimals and at
most 5 significant figures unless it is an integer; a size is rounded to d decimals. The wire
style is the SDK's ``float_to_wire`` ("30135", "0.001"); the display style is the venue's
responses ("30135.0"). The simulator's AssetSpec delegates to these functions, so both sides
are checked to agree.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hyperliquid.utils.signing import float_to_wire
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.hyperliquid import numbers
from mm.venues.sim.assets import AssetSpec

WIRE_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")
DISPLAY_NUMBER = re.compile(r"^-?(0|[1-9]\d*)\.(0|\d*[1-9])$")


def independent_is_valid(text: str, sz_decimals: int) -> bool:
    """The price rule restated on the decimal string itself."""
    value = Decimal(text)
    if value <= 0:
        return False
    if value == value.to_integral_value():
        return True
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent <= 6 - sz_decimals and len(normalized.as_tuple().digits) <= 5


# --- px_decimals ---------------------------------------------------------------------------------


def test_px_decimals() -> None:
    assert numbers.px_decimals(5) == 1
    assert numbers.px_decimals(0) == 6
    assert numbers.px_decimals(6) == 0
    assert numbers.px_decimals(2, spot=True) == 6
    with pytest.raises(ValueError, match="szDecimals"):
        numbers.px_decimals(7)
    with pytest.raises(ValueError, match="szDecimals"):
        numbers.px_decimals(-1)


# --- prices --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sz_decimals", "ticks"),
    [
        ("30135", 5, 301350),
        ("30135.0", 5, 301350),
        ("123456", 5, 1234560),  # integers are valid whatever their figures
        ("3120.5", 4, 312050),
        ("0.012345", 0, 12345),
        ("2.1105", 1, 211050),
        ("1", 6, 1),  # szDecimals 6: integers only
    ],
)
def test_px_ticks_accepts(text: str, sz_decimals: int, ticks: int) -> None:
    assert numbers.px_ticks(text, numbers.px_decimals(sz_decimals)) == ticks
    assert numbers.is_valid_px(text, sz_decimals)


@pytest.mark.parametrize(
    ("text", "sz_decimals"),
    [
        ("30135.5", 5),  # 6 significant figures
        ("3013.55", 5),  # 2 decimals where 1 is allowed
        ("0.001", 4),
        ("1.5", 6),
        ("0", 2),
        ("0.0", 2),
        ("-1", 2),
        ("1e3", 2),
        (" 1", 2),
        ("1.", 2),
        (".5", 2),
        ("nan", 2),
        ("", 2),
    ],
)
def test_px_ticks_rejects(text: str, sz_decimals: int) -> None:
    assert numbers.px_ticks(text, numbers.px_decimals(sz_decimals)) is None
    assert not numbers.is_valid_px(text, sz_decimals)


@given(
    st.integers(min_value=0, max_value=6),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**9), places=7),
)
def test_is_valid_px_agrees_with_the_rule(sz_decimals: int, value: Decimal) -> None:
    text = f"{value:f}"
    assert numbers.is_valid_px(text, sz_decimals) == independent_is_valid(text, sz_decimals)


@given(st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=10**13))
def test_is_valid_ticks_agrees_with_px_ticks(sz_decimals: int, ticks: int) -> None:
    decimals = numbers.px_decimals(sz_decimals)
    for text in (numbers.wire_str(ticks, decimals), numbers.display_str(ticks, decimals)):
        parsed = numbers.px_ticks(text, decimals)
        assert (parsed == ticks) == numbers.is_valid_ticks(ticks, decimals)
        assert parsed in (None, ticks)


def test_is_valid_ticks_rejects_non_positive() -> None:
    assert not numbers.is_valid_ticks(0, 2)
    assert not numbers.is_valid_ticks(-100, 2)


@pytest.mark.parametrize(
    ("price", "sz_decimals", "up", "text"),
    [
        (79146.04, 5, True, "79147"),
        (79146.04, 5, False, "79146"),
        (7914.66, 5, True, "7914.7"),
        (7914.66, 5, False, "7914.6"),
        (99999.95, 5, True, "100000"),
        (0.07, 4, True, "0.07"),  # 0.07 * 100 is 7.000000000000001 in floats
        (4.35, 4, False, "4.35"),  # 4.35 * 100 is 434.99999999999994 in floats
        (0.0123456, 0, False, "0.012345"),
        (0.0123456, 0, True, "0.012346"),
        (1234567.8, 2, False, "1234567"),
        (1234567.8, 2, True, "1234568"),
    ],
)
def test_round_ticks_examples(price: float, sz_decimals: int, up: bool, text: str) -> None:
    decimals = numbers.px_decimals(sz_decimals)
    ticks = numbers.round_ticks(numbers.exact_units(price, decimals), decimals, up=up)
    assert numbers.wire_str(ticks, decimals) == text


def test_round_ticks_below_one_tick() -> None:
    assert numbers.round_ticks(Decimal("0.4"), 2, up=False) == 0
    assert numbers.round_ticks(Decimal("0.4"), 2, up=True) == 1
    assert numbers.round_ticks(Decimal(0), 2, up=True) == 1


@given(
    st.integers(min_value=0, max_value=6),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**8), places=3),
    st.booleans(),
)
def test_round_ticks_is_the_nearest_valid_price_on_its_side(
    sz_decimals: int, exact: Decimal, up: bool
) -> None:
    decimals = numbers.px_decimals(sz_decimals)
    ticks = numbers.round_ticks(exact, decimals, up=up)
    if ticks == 0:
        assert not up
        assert exact < 1
        return
    assert numbers.is_valid_ticks(ticks, decimals)
    if up:
        assert ticks >= exact
        between = range(int(exact.to_integral_value(rounding="ROUND_CEILING")), ticks)
    else:
        assert ticks <= exact
        between = range(ticks + 1, int(exact.to_integral_value(rounding="ROUND_FLOOR")) + 1)
    assert not any(numbers.is_valid_ticks(t, decimals) for t in between)


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sz_decimals", "lots"),
    [
        ("0.00022", 5, 22),
        ("0.000225", 5, 22),  # ties to even
        ("0.000235", 5, 24),
        ("208.7", 1, 2087),
        ("2.6", 0, 3),
        ("0", 3, 0),
    ],
)
def test_sz_lots(text: str, sz_decimals: int, lots: int) -> None:
    assert numbers.sz_lots(text, sz_decimals) == lots


@pytest.mark.parametrize("text", ["-1", "abc", "", "1e2", "inf"])
def test_sz_lots_rejects(text: str) -> None:
    assert numbers.sz_lots(text, 2) is None


# --- styles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "wire", "display"),
    [
        (301350, 1, "30135", "30135.0"),
        (1, 3, "0.001", "0.001"),
        (15, 1, "1.5", "1.5"),
        (0, 4, "0", "0.0"),
        (0, 0, "0", "0.0"),
        (7, 0, "7", "7.0"),
        (1200, 2, "12", "12.0"),
        (-5, 1, "-0.5", "-0.5"),
        (-791460, 1, "-79146", "-79146.0"),
        (12345, 6, "0.012345", "0.012345"),
    ],
)
def test_wire_and_display_styles(value: int, decimals: int, wire: str, display: str) -> None:
    assert numbers.wire_str(value, decimals) == wire
    assert numbers.display_str(value, decimals) == display
    assert numbers.format_fixed(value, decimals) == display
    assert numbers.to_wire(display) == wire
    assert numbers.to_display(wire) == display


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=8))
def test_styles_are_exact(value: int, decimals: int) -> None:
    wire = numbers.wire_str(value, decimals)
    display = numbers.display_str(value, decimals)
    assert WIRE_NUMBER.match(wire), wire
    assert DISPLAY_NUMBER.match(display), display
    assert Decimal(wire) == Decimal(display) == Decimal(value).scaleb(-decimals)
    assert numbers.to_wire(display) == wire
    assert numbers.to_display(wire) == display


@given(st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=10**12))
def test_wire_style_is_the_sdks(sz_decimals: int, ticks: int) -> None:
    """For every valid price, the wire string is what the SDK's float_to_wire sends."""
    decimals = numbers.px_decimals(sz_decimals)
    if not numbers.is_valid_ticks(ticks, decimals):
        return
    price = ticks / 10**decimals
    assert numbers.wire_str(ticks, decimals) == float_to_wire(price)


def test_to_wire_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="plain decimal"):
        numbers.to_wire("1e5")


# --- the simulator's AssetSpec delegates ---------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=6),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**8), places=7),
)
def test_asset_spec_agrees(sz_decimals: int, value: Decimal) -> None:
    spec = AssetSpec(0, "X", sz_decimals)
    text = f"{value:f}"
    assert spec.parse_px(text) == numbers.px_ticks(text, numbers.px_decimals(sz_decimals))
    assert spec.parse_sz(text) == numbers.sz_lots(text, sz_decimals)
    assert spec.px_decimals == numbers.px_decimals(sz_decimals)
