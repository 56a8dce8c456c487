"""The triangle walk against the walk it replaced (``walk_oracle``): the lazy level reader and
the forward check of the depth (``triangles._carries``) give the very same evaluations, every
amount to its last digit and exponent, and the very same refusals."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Context, Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mm.model import Instrument, PriceLevel
from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.triangles import BookView, Terms, achievable_volume, discover, walk
from tests.strategies.triarb.spot import instrument
from tests.strategies.triarb.test_triangles import (
    FEE_RATES,
    INSTRUMENTS,
    TERMS,
    TRIANGLE,
    VOLUMES,
    markets,
    reverse,
    scattered,
)
from tests.strategies.triarb.walk_oracle import oracle_capacity, oracle_walk


def fresh(views: list[BookView]) -> list[BookView]:
    """The same books as views never read."""
    return [BookView(v.bids, v.asks, v.time_ms, v.continuous) for v in views]


def same_walks(
    triangle: Triangle, views: list[BookView], instruments: dict[str, Instrument], terms: Terms
) -> None:
    """The walk on ``views`` (as they are: read or not) is the oracle's, to the digit."""
    expected = oracle_walk(triangle, fresh(views), instruments, terms)
    got = walk(triangle, views, instruments, terms)
    assert repr(got) == repr(expected)
    assert got == expected


def terms_of(volume: Decimal, fees: list[Decimal], triangle: Triangle = TRIANGLE) -> Terms:
    return Terms(
        volume, 250, dict(zip(triangle.symbols, fees, strict=True)), TERMS.funds_increments
    )


@settings(max_examples=500)
@given(
    st.one_of(scattered(), markets()),
    st.one_of(VOLUMES, st.integers(10**5, 10**7).map(Decimal)),
    st.lists(FEE_RATES, min_size=3, max_size=3),
)
def test_the_walk_is_the_oracles_both_ways_on_books_read_or_not(
    at: dict[str, BookView], volume: Decimal, fees: list[Decimal]
) -> None:
    terms = terms_of(volume, fees)
    for triangle in (TRIANGLE, reverse(TRIANGLE)):
        views = [at[symbol] for symbol in triangle.symbols]
        same_walks(triangle, views, INSTRUMENTS, terms)  # the second reads the first's levels


# Volumes at the depth's edge: the capacity itself, and just above and below it, where the
# forward check must not decide otherwise than the full walk of the depth.
EDGES = st.sampled_from(
    [Decimal(text) for text in ("0", "1e-45", "1e-26", "1e-25", "1e-24", "1e-9")]
    + [-Decimal(text) for text in ("1e-45", "1e-26", "1e-25", "1e-24", "1e-9")]
)


@settings(max_examples=400)
@given(
    st.one_of(scattered(), markets()),
    st.lists(FEE_RATES, min_size=3, max_size=3),
    st.sampled_from([TRIANGLE, reverse(TRIANGLE)]),
    EDGES,
    st.sampled_from([None, 8, 12, 20]),
)
def test_at_the_edge_of_the_depth_the_walk_is_the_oracles(
    at: dict[str, BookView],
    fees: list[Decimal],
    triangle: Triangle,
    edge: Decimal,
    places: int | None,
) -> None:
    views = [at[symbol] for symbol in triangle.symbols]
    unbounded = terms_of(Decimal(10) ** 30, fees, triangle)
    carried = oracle_capacity(triangle, fresh(views), unbounded)
    if carried <= 0:
        return
    wide = Context(prec=100)  # the edge kept: 28 digits would round it away
    volume = wide.multiply(carried, wide.add(1, edge))
    if places is not None:
        volume = volume.quantize(Decimal(1).scaleb(-places), context=wide)
    if volume <= 0:
        return
    terms = terms_of(volume, fees, triangle)
    same_walks(triangle, fresh(views), INSTRUMENTS, terms)
    assert achievable_volume(triangle, fresh(views), INSTRUMENTS, terms) == oracle_capacity(
        triangle, fresh(views), terms
    )


# --- KuCoin-shaped markets: any grid, any depth ------------------------------------------------


@st.composite
def grid_market(draw: st.DrawFn) -> tuple[dict[str, Instrument], dict[str, BookView]]:
    """BTC-USDT, ETH-BTC and ETH-USDT on grids drawn from KuCoin's (a power-of-ten tick and
    lot), books of one to six levels a side on them, thin or deep, some levels empty."""
    fairs = {"BTC-USDT": 50_000.0, "ETH-BTC": 0.05, "ETH-USDT": 2_500.0}
    instruments: dict[str, Instrument] = {}
    at: dict[str, BookView] = {}
    for symbol, fair in fairs.items():
        fair *= draw(st.floats(0.98, 1.02))
        tick = Decimal(1).scaleb(draw(st.integers(-9, 1)))
        lot = Decimal(1).scaleb(draw(st.integers(-8, 0)))
        instruments[symbol] = instrument(
            symbol, str(tick), str(lot), str(lot * draw(st.sampled_from([1, 10]))), 0.0
        )
        sides: list[tuple[PriceLevel, ...]] = []
        for sign in (-1, 1):
            at_ticks = int(Decimal(repr(fair)) / tick)
            levels = []
            for _ in range(draw(st.integers(1, 6))):
                at_ticks += sign * draw(st.integers(1, 50))
                lots = draw(st.sampled_from([0, 1, 7, 1_000, 10**6, 10**9]))
                px = float(at_ticks * tick)
                if px > 0:
                    levels.append((px, float(lots * lot), 1))
            sides.append(tuple(levels))
        at[symbol] = BookView(sides[0], sides[1], 1_000)
    return instruments, at


@settings(max_examples=500)
@given(
    grid_market(),
    st.one_of(VOLUMES, st.integers(1, 10**9).map(lambda n: Decimal(n).scaleb(-6))),
    st.lists(FEE_RATES, min_size=3, max_size=3),
)
def test_on_any_grid_and_depth_the_walk_is_the_oracles(
    market: tuple[dict[str, Instrument], dict[str, BookView]],
    volume: Decimal,
    fees: list[Decimal],
) -> None:
    instruments, at = market
    terms = terms_of(volume, fees)
    for triangle in (TRIANGLE, reverse(TRIANGLE)):
        views = [at[symbol] for symbol in triangle.symbols]
        same_walks(triangle, views, instruments, terms)


@example(Decimal("100"))
@given(VOLUMES)
def test_a_cycle_on_kucoins_grids_is_walked_as_the_oracle_walks_it(volume: Decimal) -> None:
    """FLUX, BTC and USDT on their KuCoin grids (a lot of 1e-8 BTC, a tick of 1e-8 BTC)."""
    flux_usdt = instrument("FLUX-USDT", "0.0001", "0.0001", "0.1", 0.1)
    flux_btc = instrument("FLUX-BTC", "0.00000001", "0.0001", "0.1", 0.000001)
    btc_usdt = instrument("BTC-USDT", "0.1", "0.00000001", "0.00001", 0.1)
    instruments = {i.symbol: i for i in (flux_usdt, flux_btc, btc_usdt)}
    books = {
        "FLUX-USDT": BookView(((0.7165, 5_000.0, 1),), ((0.7172, 3_000.0, 1),), 1_000),
        "FLUX-BTC": BookView(((0.00000762, 4_000.0, 1),), ((0.00000766, 4_000.0, 1),), 1_000),
        "BTC-USDT": BookView(((94_210.5, 2.0, 1),), ((94_210.6, 2.0, 1),), 1_000),
    }
    for triangle in discover(instruments.values(), ["USDT"]):
        terms = Terms(volume, 250, dict.fromkeys(instruments, Decimal("0.001")))
        same_walks(triangle, [books[s] for s in triangle.symbols], instruments, terms)


def outcome(
    walker: Callable[..., object], triangle: Triangle, views: list[BookView], terms: Terms
) -> str:
    """What ``walker`` gave, or the exception it raised, as text."""
    try:
        return repr(walker(triangle, fresh(views), INSTRUMENTS, terms))
    except Exception as error:  # the oracle's own failures are what must match
        return f"{type(error).__name__}: {error}"


INF = math.inf


@pytest.mark.parametrize(
    "levels",
    [
        {"BTC-USDT": (((49_990.0, 1.0, 1),), ((50_000.0, 0.001, 1), (INF, 1.0, 1)))},
        {"BTC-USDT": (((49_990.0, 0.001, 1), (INF, 1.0, 1)), ((50_000.0, 1.0, 1),))},
        {"ETH-USDT": (((2_510.0, 0.1, 1), (1.0, INF, 1)), ((2_511.0, 0.1, 1), (3e3, INF, 1)))},
        {"ETH-BTC": (((0.04999, 0.1, 1), (INF, INF, 1)), ((0.05, 0.1, 1), (INF, INF, 1)))},
        {"ETH-BTC": (((1e308, 1e308, 1),), ((5e-324, 1e308, 1),))},
    ],
)
def test_levels_out_of_any_venues_range_walk_as_the_oracle_walks_them(
    levels: dict[str, tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]],
) -> None:
    """An infinite or extreme level (no venue's codec lets one through) gives what the oracle
    gives, refusal, evaluation or error: the forward check never decides on one alone."""
    books = {
        "BTC-USDT": (((49_990.0, 1.0, 1),), ((50_000.0, 1.0, 1),)),
        "ETH-BTC": (((0.04999, 50.0, 1),), ((0.05, 50.0, 1),)),
        "ETH-USDT": (((2_510.0, 10.0, 1),), ((2_511.0, 10.0, 1),)),
    } | levels
    at = {symbol: BookView(bids, asks, 1_000) for symbol, (bids, asks) in books.items()}
    for triangle in (TRIANGLE, reverse(TRIANGLE)):
        views = [at[symbol] for symbol in triangle.symbols]
        assert outcome(walk, triangle, views, TERMS) == outcome(oracle_walk, triangle, views, TERMS)
