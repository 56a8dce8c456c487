"""Tests of the simulator's number rules: price ticks, size lots, and the venue's number style.

The venue's rules: a price has at most 5 significant figures unless it is an integer, and at
most ``6 - szDecimals`` decimals; a size is rounded to ``szDecimals``. Examples use BTC
(szDecimals 5), ETH (4) and a small coin with szDecimals 0.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.hyperliquid import numbers
from mm.venues.sim.assets import AssetSpec, format_fixed, round_pxs

BTC = AssetSpec(0, "BTC", 5)
ETH = AssetSpec(1, "ETH", 4)
SMOL = AssetSpec(2, "SMOL", 0)
SPECS = (BTC, ETH, SMOL)

# The venue's number style: digits, a point, and either "0" or a fraction without trailing zeros.
VENUE_NUMBER = re.compile(r"^-?(0|[1-9]\d*)\.(0|\d*[1-9])$")


def is_valid_ticks(spec: AssetSpec, ticks: int) -> bool:
    """An independent statement of the tick rule, on the integer tick count.

    The decimals limit holds by construction (ticks are ``10**-px_decimals``); the price is an
    integer when the ticks are a multiple of ``10**px_decimals``; otherwise the price's
    significant figures are those of the tick count without its trailing zeros.
    """
    if ticks <= 0:
        return False
    if ticks % 10**spec.px_decimals == 0:
        return True
    return len(str(ticks).rstrip("0")) <= 5


# --- parse_px ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "text", "ticks"),
    [
        (BTC, "79146", 791460),
        (BTC, "79146.0", 791460),
        (BTC, "7914.6", 79146),
        (BTC, "0.5", 5),
        (BTC, "123456", 1234560),  # integers are always allowed, whatever their figures
        (BTC, "123456.0", 1234560),
        (ETH, "3120.5", 312050),
        (ETH, "3120.50", 312050),  # trailing zeros are not significant
        (ETH, "312.55", 31255),
        (ETH, "0.01", 1),
        (ETH, "1234567", 123456700),
        (SMOL, "0.012345", 12345),  # 5 significant figures and 6 decimals
        (SMOL, "0.000001", 1),
        (SMOL, "1.2345", 1234500),
        (SMOL, "12345", 12345000000),
        (SMOL, "123456", 123456000000),
    ],
)
def test_parse_px_accepts_valid_prices(spec: AssetSpec, text: str, ticks: int) -> None:
    assert spec.parse_px(text) == ticks


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (BTC, "79146.5"),  # 6 significant figures
        (BTC, "7914.65"),  # 2 decimals where BTC allows 1
        (BTC, "0.05"),
        (ETH, "3120.55"),  # 6 significant figures
        (ETH, "0.001"),  # 3 decimals where ETH allows 2
        (ETH, "0.015"),
        (SMOL, "0.0123456"),  # 6 significant figures and 7 decimals
        (SMOL, "0.0000001"),  # 7 decimals
        (SMOL, "1.23456"),  # 6 significant figures
    ],
)
def test_parse_px_rejects_tick_violations(spec: AssetSpec, text: str) -> None:
    assert spec.parse_px(text) is None


GARBAGE = (
    *("", " ", "abc", "1.2.3", "1e", "$5", "nan", "NaN", "inf", "-inf", "Infinity", "0x10"),
    *("1e5", " 1 ", "1_000", "+1", ".5", "5."),  # only plain decimal strings are numbers
)
NON_POSITIVE = ("0", "0.0", "-0", "-1", "-79146.0")


@pytest.mark.parametrize("text", GARBAGE + NON_POSITIVE)
@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_parse_px_rejects_garbage_and_non_positive(spec: AssetSpec, text: str) -> None:
    assert spec.parse_px(text) is None


@given(st.sampled_from(SPECS), st.integers(min_value=1, max_value=10**13))
def test_parse_px_agrees_with_the_tick_rule(spec: AssetSpec, ticks: int) -> None:
    assert (spec.parse_px(spec.px_str(ticks)) == ticks) == is_valid_ticks(spec, ticks)
    if not is_valid_ticks(spec, ticks):
        assert spec.parse_px(spec.px_str(ticks)) is None


@given(
    st.sampled_from(SPECS),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**8), places=6),
)
def test_px_str_round_trips_every_accepted_price(spec: AssetSpec, value: Decimal) -> None:
    ticks = spec.parse_px(str(value))
    if ticks is None:
        return
    text = spec.px_str(ticks)
    assert VENUE_NUMBER.match(text), text
    assert spec.parse_px(text) == ticks
    assert Decimal(text) == value


# --- parse_sz ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "text", "lots"),
    [
        (BTC, "0.00022", 22),
        (BTC, "0.000220", 22),  # zeros past szDecimals are fine
        (BTC, "0.000224", None),  # finer than the lot: refused, never rounded
        (BTC, "0.000225", None),
        (BTC, "1", 100000),
        (BTC, "0.000004", None),
        (BTC, "0", 0),
        (ETH, "0.2507", 2507),
        (ETH, "1.00004", None),
        (SMOL, "2.4", None),
        (SMOL, "2.0", 2),
        (SMOL, "1000", 1000),
    ],
)
def test_parse_sz_takes_whole_lots_only(spec: AssetSpec, text: str, lots: int | None) -> None:
    assert spec.parse_sz(text) == lots


@pytest.mark.parametrize("text", ["", "abc", "-1", "-0.0001", "nan", "inf", "1.2.3"])
def test_parse_sz_rejects_garbage_and_negatives(text: str) -> None:
    assert BTC.parse_sz(text) is None


@given(st.sampled_from(SPECS), st.integers(min_value=0, max_value=10**12))
def test_sz_str_round_trips(spec: AssetSpec, lots: int) -> None:
    text = spec.sz_str(lots)
    assert VENUE_NUMBER.match(text), text
    assert spec.parse_sz(text) == lots


# --- format_fixed and the venue's style ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (791460, 1, "79146.0"),
        (22, 5, "0.00022"),
        (0, 5, "0.0"),
        (0, 0, "0.0"),
        (5, 0, "5.0"),
        (1200, 2, "12.0"),
        (1230, 3, "1.23"),
        (12345, 6, "0.012345"),
        (100000, 5, "1.0"),
        (-5, 1, "-0.5"),
        (-791460, 1, "-79146.0"),
        (10**20, 6, "100000000000000.0"),
    ],
)
def test_format_fixed_examples(value: int, decimals: int, text: str) -> None:
    assert format_fixed(value, decimals) == text


@given(st.integers(min_value=-(10**18), max_value=10**18), st.integers(min_value=0, max_value=8))
def test_format_fixed_is_exact_and_in_venue_style(value: int, decimals: int) -> None:
    text = format_fixed(value, decimals)
    assert VENUE_NUMBER.match(text), text
    assert "e" not in text.lower()
    assert Decimal(text) == Decimal(value).scaleb(-decimals)


def test_px_and_sz_strings_in_venue_style() -> None:
    assert BTC.px_str(791460) == "79146.0"
    assert BTC.sz_str(22) == "0.00022"
    assert BTC.sz_str(0) == "0.0"
    assert ETH.px_str(312050) == "3120.5"
    assert ETH.sz_str(2507) == "0.2507"
    assert SMOL.px_str(12345) == "0.012345"
    assert SMOL.sz_str(7) == "7.0"


def test_floats_and_notional() -> None:
    assert BTC.px_float(791460) == 79146.0
    assert BTC.sz_float(22) == pytest.approx(0.00022)
    assert BTC.notional(500000, 20) == pytest.approx(10.0)  # 50000 x 0.0002
    assert ETH.notional(312050, 2507) == pytest.approx(3120.5 * 0.2507)
    assert ETH.px_decimals == 2
    assert SMOL.px_decimals == 6


# --- round_px ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "price", "up", "text"),
    [
        (BTC, 79146.04, True, "79147.0"),  # 79146.1 has 6 figures: the next valid is an integer
        (BTC, 79146.04, False, "79146.0"),
        (BTC, 7914.66, True, "7914.7"),
        (BTC, 7914.66, False, "7914.6"),
        (BTC, 123456.7, True, "123457.0"),  # integers are valid beyond 5 figures
        (BTC, 123456.7, False, "123456.0"),
        (BTC, 99999.95, True, "100000.0"),
        (ETH, 3120.55, True, "3120.6"),
        (ETH, 3120.55, False, "3120.5"),
        (ETH, 0.07, True, "0.07"),  # 0.07 * 100 is 7.000000000000001 in floats
        (ETH, 4.35, False, "4.35"),  # 4.35 * 100 is 434.99999999999994 in floats
        (SMOL, 0.0123456, True, "0.012346"),
        (SMOL, 0.0123456, False, "0.012345"),
        (SMOL, 1.234567, True, "1.2346"),
    ],
)
def test_round_px_examples(spec: AssetSpec, price: float, up: bool, text: str) -> None:
    assert spec.px_str(spec.round_px(price, up=up)) == text


@given(st.sampled_from(SPECS), st.integers(min_value=1, max_value=10**12), st.booleans())
def test_round_px_keeps_valid_prices(spec: AssetSpec, ticks: int, up: bool) -> None:
    if not is_valid_ticks(spec, ticks):
        return
    assert spec.round_px(spec.px_float(ticks), up=up) == ticks


@given(st.sampled_from(SPECS), st.data(), st.booleans())
def test_round_px_is_the_nearest_valid_price_on_its_side(
    spec: AssetSpec, data: st.DataObject, up: bool
) -> None:
    # Prices below 10**8 ticks keep the gap between valid prices under 1,000 ticks.
    one_tick = 10.0**-spec.px_decimals
    price = data.draw(
        st.floats(min_value=one_tick, max_value=10.0 ** (8 - spec.px_decimals), allow_nan=False)
    )
    exact = Decimal(repr(price)).scaleb(spec.px_decimals)  # the price in ticks, exactly
    result = spec.round_px(price, up=up)
    assert spec.parse_px(spec.px_str(result)) == result
    assert is_valid_ticks(spec, result)
    if up:
        assert result >= exact
        between = range(int(exact.to_integral_value(rounding="ROUND_CEILING")), result)
    else:
        assert result <= exact
        between = range(result + 1, int(exact.to_integral_value(rounding="ROUND_FLOOR")) + 1)
    assert not any(is_valid_ticks(spec, ticks) for ticks in between)


def test_round_px_never_goes_below_one_tick() -> None:
    assert ETH.round_px(0.001, up=False) == 1
    assert ETH.round_px(0.001, up=True) == 1


@given(
    st.sampled_from(SPECS),
    st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9]),
    st.booleans(),
)
def test_round_px_agrees_with_the_exact_decimal_rounding(
    spec: AssetSpec, price: float, nudge: float, up: bool
) -> None:
    """round_px takes a float shortcut away from whole ticks: it must round as the exact
    decimal form does everywhere, near whole ticks (the nudges) included."""
    price *= 1 + nudge
    exact = numbers.exact_units(price, spec.px_decimals)
    assert spec.round_px(price, up=up) == max(
        numbers.round_ticks(exact, spec.px_decimals, up=up), 1
    )


@given(
    st.sampled_from(SPECS),
    st.lists(
        st.tuples(
            st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
            st.sampled_from([0.0, 1e-15, -1e-15, 1e-12, -1e-9]),
        ),
        max_size=30,
    ),
    st.sampled_from([None, 0.9999, 1.0001]),
    st.booleans(),
)
def test_round_pxs_is_round_px_of_each(
    spec: AssetSpec, drawn: list[tuple[float, float]], ladder: float | None, up: bool
) -> None:
    """round_pxs keeps each run of digits' tick step: it must give round_px's ticks for any
    prices, a ladder's (each a step from the last, crossing powers of ten now and then) and
    scattered ones, near whole ticks (the nudges) included."""
    prices = [price * (1 + nudge) for price, nudge in drawn]
    if ladder is not None and prices:
        prices = [prices[0] * ladder**level for level in range(len(prices))]
    assert round_pxs(prices, spec.px_decimals, up=up) == [
        spec.round_px(price, up=up) for price in prices
    ]


@pytest.mark.parametrize("up", [False, True])
def test_round_pxs_across_powers_of_ten(up: bool) -> None:
    # A ladder through 10**5 and 10**6 ticks of BTC (5 significant figures: the step grows).
    prices = [9_999.0 + 0.37 * level for level in range(8)] + [99_999.3, 100_000.7, 100_012.4]
    prices += [123_456.7, 99_998.1, 9_999.95, 0.05, 1e-9]
    assert round_pxs(prices, BTC.px_decimals, up=up) == [BTC.round_px(p, up=up) for p in prices]
