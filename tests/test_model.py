"""The instrument's grid: rounding both ways never crosses the price it came from, always lands
on the grid, and is the nearest valid price in its direction; sizes land on the lot grid.

Two kinds of grid: a fixed tick (any multiple of the increment, including increments that are
not powers of ten), and a tick coarsened by significant figures (Hyperliquid's rule, checked
against the venue's own rules in tests/venues/hyperliquid/test_instruments.py).
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Instrument, float_units

INCREMENTS = ["1", "0.5", "0.25", "0.1", "0.01", "0.005", "0.0001", "5", "10"]


def fixed(price_increment: str, size_increment: str = "0.001") -> Instrument:
    return Instrument(
        venue="test",
        symbol="X-USD",
        base="X",
        quote="USD",
        price_increment=Decimal(price_increment),
        size_increment=Decimal(size_increment),
        min_size=Decimal(size_increment),
        min_notional=1.0,
    )


def by_figures(decimals: int, figures: int = 5) -> Instrument:
    return Instrument(
        venue="test",
        symbol="Y",
        base="Y",
        quote="USD",
        price_increment=Decimal(1).scaleb(-decimals),
        size_increment=Decimal("0.01"),
        min_size=Decimal("0.01"),
        min_notional=10.0,
        price_sig_figs=figures,
    )


def exact_ticks(instrument: Instrument, px: float) -> Decimal:
    return Decimal(repr(px)) / instrument.price_increment


def on_grid(instrument: Instrument, px: float) -> bool:
    """The price, read back from its float, is a valid whole number of ticks."""
    ticks = exact_ticks(instrument, px)
    return ticks == ticks.to_integral_value() and instrument.is_valid_ticks(int(ticks))


prices = st.floats(min_value=1e-4, max_value=1e7, allow_nan=False, allow_infinity=False)


@given(increment=st.sampled_from(INCREMENTS), px=prices)
def test_a_fixed_tick_rounds_both_ways_to_the_nearest_tick(increment: str, px: float) -> None:
    instrument = fixed(increment)
    exact = exact_ticks(instrument, px)
    up, down = instrument.price_ticks(px, up=True), instrument.price_ticks(px, up=False)
    assert down <= exact <= up
    assert up - down == (0 if exact == exact.to_integral_value() else 1)
    assert instrument.round_price(px, up=True) >= px
    assert instrument.round_price(px, up=False) <= px
    assert on_grid(instrument, instrument.round_price(px, up=True))
    if down > 0:
        assert on_grid(instrument, instrument.round_price(px, up=False))
    assert instrument.tick_step(up) == 1


@given(decimals=st.integers(0, 8), figures=st.integers(1, 7), px=prices)
def test_significant_figures_round_both_ways_to_the_nearest_valid_price(
    decimals: int, figures: int, px: float
) -> None:
    instrument = by_figures(decimals, figures)
    exact = exact_ticks(instrument, px)
    up, down = instrument.price_ticks(px, up=True), instrument.price_ticks(px, up=False)
    assert down <= exact <= up  # never crosses
    assert instrument.is_valid_ticks(up)
    assert down == 0 or instrument.is_valid_ticks(down)
    # The nearest: the valid price before ``up`` is below the exact price, the one after
    # ``down`` above it (test_rounding_is_the_nearest_valid_tick checks that by enumeration).
    if up != exact:
        assert instrument.round_ticks(up - 1, up=False) < exact
    if down != exact:
        assert instrument.round_ticks(down + 1, up=True) > exact
    assert instrument.round_price(px, up=True) >= px
    assert instrument.round_price(px, up=False) <= px


@given(decimals=st.integers(0, 8), figures=st.integers(1, 7), ticks=st.integers(1, 10**12))
def test_a_valid_price_rounds_to_itself_both_ways(decimals: int, figures: int, ticks: int) -> None:
    instrument = by_figures(decimals, figures)
    up, down = instrument.round_ticks(ticks, up=True), instrument.round_ticks(ticks, up=False)
    assert down <= ticks <= up
    assert instrument.is_valid_ticks(up)
    if instrument.is_valid_ticks(ticks):
        assert up == down == ticks
    else:
        assert down < ticks < up
    # The next valid price past one is a step away: never a price between two valid ones.
    step = instrument.tick_step(up)
    assert instrument.round_ticks(up + 1, up=True) - up <= max(step, instrument.tick_step(up + 1))


@pytest.mark.parametrize("figures", [1, 2, 3])
@pytest.mark.parametrize("decimals", [0, 1, 2, 3])
def test_rounding_is_the_nearest_valid_tick(decimals: int, figures: int) -> None:
    instrument = by_figures(decimals, figures)
    top = 20_000
    valid = [t for t in range(1, top + 2) if instrument.is_valid_ticks(t)]
    # Valid by the rule's own words: whole units of quote, or at most ``figures`` figures.
    for t in range(1, top + 1):
        whole = t % 10**decimals == 0
        assert instrument.is_valid_ticks(t) == (whole or len(str(t).rstrip("0")) <= figures)
    above = iter(valid)
    below = 0
    nxt = next(above)
    for t in range(1, top + 1):
        while nxt < t:
            below, nxt = nxt, next(above)
        assert instrument.round_ticks(t, up=True) == nxt
        assert instrument.round_ticks(t, up=False) == (t if nxt == t else below)


@given(
    increment=st.sampled_from(["1", "0.1", "0.001", "0.00001", "0.5", "0.25", "100"]),
    sz=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
)
def test_sizes_round_onto_the_lot_grid(increment: str, sz: float) -> None:
    instrument = fixed("0.01", increment)
    lot = Decimal(increment)
    exact = Decimal(repr(sz)) / lot
    nearest = instrument.size_lots(sz)
    floor, ceiling = instrument.size_lots(sz, up=False), instrument.size_lots(sz, up=True)
    assert floor <= exact <= ceiling
    assert ceiling - floor <= 1
    assert abs(nearest - exact) <= Decimal("0.5")
    for lots in (nearest, floor, ceiling):
        back = Decimal(repr(instrument.lots_size(lots))) / lot
        assert back == lots  # the float a size is sent as is a whole number of lots
    assert instrument.round_size(sz, up=False) <= sz <= instrument.round_size(sz, up=True)


# --- the integer path against the Decimal arithmetic it replaces ---------------------------------

LOTS = [str(Decimal(1).scaleb(-decimals)) for decimals in range(9)]  # every szDecimals 0..8


def _nudged(value: float, steps: int) -> float:
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    return value


def _values(increment: Decimal) -> st.SearchStrategy[float]:
    """Any float in range, and floats on (half) the increment's grid and their neighbours: where
    the binary value and the shortest form fall on different sides of a whole tick."""
    counts = st.one_of(
        st.integers(min_value=0, max_value=10**4), st.integers(min_value=0, max_value=10**12)
    )
    nudges = st.sampled_from([-1, 1, 0, 2, -2])
    whole = st.builds(lambda count: float(increment * count), counts)
    half = st.builds(lambda count: float(increment * count + increment / 2), counts)
    return st.one_of(
        st.floats(min_value=0.0, max_value=1e16),
        st.builds(_nudged, whole, nudges),
        st.builds(_nudged, half, nudges),
    )


def _near_whole_ticks(increment: Decimal) -> st.SearchStrategy[float]:
    """Floats a small fraction of a tick off a whole tick, on both sides of the float path's
    gap (``price_ticks`` decides in floats farther than 1e-6 of a tick from a whole one)."""
    counts = st.integers(min_value=0, max_value=10**9)
    fractions = st.one_of(
        st.floats(min_value=1e-9, max_value=1e-4), st.floats(min_value=1 - 1e-4, max_value=1.0)
    )
    return st.builds(
        lambda count, fraction: float(increment * count) + float(increment) * fraction,
        counts,
        fractions,
    )


@given(
    st.data(),
    st.sampled_from(INCREMENTS),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=1, max_value=7),
)
def test_the_float_path_of_price_ticks_is_the_decimal_arithmetic(
    data: st.DataObject, increment: str, decimals: int, figures: int
) -> None:
    """Wherever ``price_ticks`` decides in floats (a fraction of a tick clear of a whole one,
    below 1e9 ticks), its ticks are the Decimal path's: fixed increments and significant
    figures, prices anywhere, near a whole tick and a ladder's bps steps off a price."""
    for instrument in (fixed(increment), by_figures(decimals, figures)):
        tick = instrument.price_increment
        px = data.draw(st.one_of(_values(tick), _near_whole_ticks(tick), prices))
        level = data.draw(st.sampled_from([0.0, 2.0, -2.0, 4.0, -4.0, 3.0, -5.0]))
        for value in (px, px * (1.0 + level / 10_000.0)):
            for up in (True, False):
                expected = instrument.round_ticks(Decimal(repr(value)) / tick, up=up)
                assert instrument.price_ticks(value, up=up) == expected


@pytest.mark.parametrize(
    ("increment", "count"), [("0.01", 7), ("0.001", 1001), ("0.0001", 3), ("0.000001", 123)]
)
def test_a_price_on_a_tick_whose_float_product_misses_it_is_that_tick(
    increment: str, count: int
) -> None:
    """``0.07 * 100`` is 7.000000000000001 in floats: the float path must leave such a price
    (on a whole tick, its product a hair off it) to the integer path, both ways."""
    instrument = fixed(increment)
    px = float(Decimal(increment) * count)
    assert px * 10 ** len(increment.split(".")[1]) != count  # the case: the product misses
    assert instrument.price_ticks(px, up=True) == count
    assert instrument.price_ticks(px, up=False) == count


@given(st.data(), st.sampled_from(INCREMENTS + LOTS), st.sampled_from(INCREMENTS + LOTS))
def test_rounding_is_the_decimal_arithmetic(
    data: st.DataObject, price_increment: str, size_increment: str
) -> None:
    """Prices both ways and sizes three ways, as ``Decimal(repr(x)) / increment`` rounds them,
    for every szDecimals' lot and increments that are not powers of ten; and back to floats as
    the Decimal product converts."""
    instrument = fixed(price_increment, size_increment)
    tick, lot = Decimal(price_increment), Decimal(size_increment)
    px = data.draw(_values(tick))
    for up in (True, False):
        expected = instrument.round_ticks(Decimal(repr(px)) / tick, up=up)  # the Decimal path
        assert instrument.price_ticks(px, up=up) == expected
        assert instrument.ticks_price(expected) == float(expected * tick)
    sz = data.draw(_values(lot))
    ways: list[tuple[bool | None, str]] = [
        (None, ROUND_HALF_EVEN),
        (True, ROUND_CEILING),
        (False, ROUND_FLOOR),
    ]
    for way, rounding in ways:
        lots = int((Decimal(repr(sz)) / lot).to_integral_value(rounding))
        assert instrument.size_lots(sz, up=way) == lots
        assert instrument.lots_size(lots) == float(lots * lot)
    assert instrument.size_below_minimum(sz) == (sz < instrument.min_size)
    at_minimum = float(instrument.min_size)
    for near in (_nudged(at_minimum, -1), at_minimum, _nudged(at_minimum, 1)):
        assert instrument.size_below_minimum(near) == (near < instrument.min_size)


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=14),
)
def test_float_units_reads_the_shortest_form(value: float, decimals: int) -> None:
    units = Decimal(repr(value)).scaleb(decimals)
    whole = int(units.to_integral_value(rounding=ROUND_FLOOR))
    assert float_units(value, decimals) == (whole, units == whole)


def test_float_units_refuses_what_is_not_a_number() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            float_units(bad, 2)
    with pytest.raises(ValueError, match="decimals"):
        float_units(1.0, -1)


def test_examples() -> None:
    btc = by_figures(1)  # a Hyperliquid perpetual with szDecimals 5
    assert btc.round_price(100_110.01, up=True) == 100_111.0  # 6 figures: whole dollars
    assert btc.round_price(100_110.01, up=False) == 100_110.0
    assert btc.round_price(12.34567, up=False) == 12.3  # one decimal at most
    assert btc.round_price(0.01, up=False) == 0.0  # nothing valid below
    assert btc.round_price(0.01, up=True) == 0.1
    half = fixed("0.5")
    assert (half.round_price(10.3, up=False), half.round_price(10.3, up=True)) == (10.0, 10.5)
    assert half.round_price(10.5, up=False) == half.round_price(10.5, up=True) == 10.5


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"price_increment": Decimal(0)}, "price_increment"),
        ({"size_increment": Decimal("-0.1")}, "size_increment"),
        ({"price_increment": Decimal("NaN")}, "price_increment"),
        ({"min_notional": -1.0}, "minimums"),
        ({"price_sig_figs": 0}, "price_sig_figs"),
        ({"price_increment": Decimal("0.5"), "price_sig_figs": 5}, "power of ten"),
    ],
)
def test_a_bad_instrument_is_refused_naming_what(change: dict[str, object], key: str) -> None:
    fields: dict[str, object] = {
        "venue": "test",
        "symbol": "X",
        "base": "X",
        "quote": "USD",
        "price_increment": Decimal("0.01"),
        "size_increment": Decimal("0.1"),
        "min_size": Decimal("0.1"),
        "min_notional": 1.0,
    }
    with pytest.raises(ValueError, match=key):
        Instrument(**(fields | change))  # type: ignore[arg-type]


@given(
    decimals=st.integers(min_value=0, max_value=8),
    figures=st.integers(min_value=1, max_value=7),
    ticks=st.one_of(
        st.integers(min_value=-5, max_value=10**16),
        st.integers(min_value=1, max_value=16).map(lambda n: 10**n),
        st.integers(min_value=1, max_value=16).map(lambda n: 10**n - 1),
    ),
)
def test_the_step_is_ten_to_the_figures_past_the_rule(
    decimals: int, figures: int, ticks: int
) -> None:
    """The grid's step around a tick count: the digits past ``price_sig_figs`` (by its decimal
    string), never coarser than a whole unit of quote; 1 without the rule."""
    digits = len(str(max(ticks, 1)))
    expected = 10 ** min(max(digits - figures, 0), decimals)
    assert by_figures(decimals, figures).tick_step(ticks) == expected
    assert fixed(str(Decimal(1).scaleb(-decimals))).tick_step(ticks) == 1
