"""Triangles found among instruments, and evaluated on books as execution will."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.book import Book
from mm.model import Instrument, PriceLevel, Side
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.triangles import (
    BOUND_MARGIN_BPS,
    BookView,
    Evaluation,
    Reason,
    Refusal,
    Terms,
    achievable_volume,
    affected,
    discover,
    evaluate,
    index,
    upper_bound_bps,
    walk,
)
from tests.strategies.triarb.spot import instrument

# --- discovery -----------------------------------------------------------------------------------

GRAPH = [
    instrument("XRP-USDT"),  # USDT's, in no cycle: XRP trades nowhere else
    instrument("ETH-USDT"),
    instrument("DOGE-EUR"),  # apart from everything
    instrument("USDC-USDT"),
    instrument("BTC-USDT"),
    instrument("ETH-BTC"),
    instrument("BTC-USDC"),
]


def test_discovery_finds_each_cycle_through_a_primary_in_both_directions() -> None:
    triangles = discover(GRAPH, ["USDT", "USDC"])
    assert [t.name for t in triangles] == [
        "USDT>BTC>USDC>USDT",
        "USDT>BTC>ETH>USDT",
        "USDT>ETH>BTC>USDT",
        "USDT>USDC>BTC>USDT",
        "USDC>BTC>USDT>USDC",  # USDC's cycle is USDT's first one: USDC as primary
        "USDC>USDT>BTC>USDC",
    ]
    by_name = {t.name: t for t in triangles}
    assert by_name["USDT>BTC>ETH>USDT"].legs == (
        Leg("BTC-USDT", Side.BUY, "USDT", "BTC"),
        Leg("ETH-BTC", Side.BUY, "BTC", "ETH"),
        Leg("ETH-USDT", Side.SELL, "ETH", "USDT"),
    )
    assert by_name["USDT>ETH>BTC>USDT"].legs == (
        Leg("ETH-USDT", Side.BUY, "USDT", "ETH"),
        Leg("ETH-BTC", Side.SELL, "ETH", "BTC"),
        Leg("BTC-USDT", Side.SELL, "BTC", "USDT"),
    )
    assert discover(list(reversed(GRAPH)), ["USDT", "USDC"]) == triangles  # any input order
    assert discover(GRAPH, ["EUR", "XRP"]) == ()


def test_the_index_gives_a_changed_pair_its_triangles_only() -> None:
    triangles = discover(GRAPH, ["USDT", "USDC"])
    by_symbol = index(triangles)
    assert [t.name for t in affected("ETH-BTC", by_symbol)] == [
        "USDT>BTC>ETH>USDT",
        "USDT>ETH>BTC>USDT",
    ]
    assert len(affected("BTC-USDT", by_symbol)) == 6
    assert len(affected("BTC-USDC", by_symbol)) == 4
    assert affected("XRP-USDT", by_symbol) == ()
    assert affected("DOGE-EUR", by_symbol) == ()
    assert set(by_symbol) == {"BTC-USDT", "ETH-BTC", "ETH-USDT", "BTC-USDC", "USDC-USDT"}


def reverse(triangle: Triangle) -> Triangle:
    """The same cycle the other way round."""
    legs = [Leg(leg.symbol, leg.side.opposite, leg.target, leg.source) for leg in triangle.legs]
    first, second, third = reversed(legs)
    return Triangle(triangle.primary, (first, second, third))


CURRENCIES = ["USDT", "USDC", "BTC", "ETH", "SOL", "XRP"]
PAIRS = st.lists(
    st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES)).filter(
        lambda pair: pair[0] != pair[1]
    ),
    max_size=15,
)


@given(PAIRS, st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3))
def test_each_triangle_found_is_found_the_other_way_round_and_indexed(
    pairs: list[tuple[str, str]], primaries: list[str]
) -> None:
    instruments = [instrument(f"{base}-{quote}") for base, quote in pairs]
    triangles = discover(instruments, primaries)
    assert len(set(triangles)) == len(triangles)
    assert {reverse(t) for t in triangles} == set(triangles)
    by_symbol = index(triangles)
    for triangle in triangles:
        assert triangle.primary in primaries
        for symbol in triangle.symbols:
            assert triangle in affected(symbol, by_symbol)
    assert sum(map(len, by_symbol.values())) == 3 * len(triangles)


def test_terms_refuse_what_no_market_means() -> None:
    with pytest.raises(ValueError, match="start volume"):
        Terms(Decimal(0), 250)
    with pytest.raises(ValueError, match="fee rate"):
        Terms(Decimal(1), 250, {"BTC-USDT": Decimal(1)})
    with pytest.raises(ValueError, match="funds increment"):
        Terms(Decimal(1), 250, {}, {"BTC-USDT": Decimal(0)})


def test_a_second_instrument_on_a_pair_counts_once() -> None:
    twin = Instrument(
        "kucoin", "BTC-USDT2", "BTC", "USDT", Decimal("0.1"), Decimal(1), Decimal(0), 0
    )
    triangles = discover([*GRAPH, twin], ["USDT"])
    assert all("BTC-USDT2" not in t.symbols for t in triangles)


# --- evaluation ----------------------------------------------------------------------------------

BTC_USDT = instrument("BTC-USDT", "0.1", "0.00001", "0.00001", 0.1)
ETH_BTC = instrument("ETH-BTC", "0.00001", "0.0001", "0.0001", 0.00001)
ETH_USDT = instrument("ETH-USDT", "0.01", "0.0001", "0.0001", 0.1)
INSTRUMENTS = {i.symbol: i for i in (BTC_USDT, ETH_BTC, ETH_USDT)}
TRIANGLE = Triangle(
    "USDT",
    (
        Leg("BTC-USDT", Side.BUY, "USDT", "BTC"),
        Leg("ETH-BTC", Side.BUY, "BTC", "ETH"),
        Leg("ETH-USDT", Side.SELL, "ETH", "USDT"),
    ),
)
FEE = Decimal("0.001")
TERMS = Terms(
    start_volume=Decimal(1000),
    max_book_age_ms=250,
    fees=dict.fromkeys(INSTRUMENTS, FEE),
    funds_increments={"BTC-USDT": Decimal("0.000001"), "ETH-BTC": Decimal("0.00000001")},
)


def view(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]], time_ms: int = 1_000
) -> BookView:
    return BookView(
        tuple((px, sz, 1) for px, sz in bids), tuple((px, sz, 1) for px, sz in asks), time_ms
    )


def books(eth_usdt_bids: list[tuple[float, float]] | None = None) -> dict[str, BookView]:
    return {
        "BTC-USDT": view([(49_990.0, 1.0)], [(50_000.0, 0.01), (50_010.0, 1.0)]),
        "ETH-BTC": view([(0.04999, 50.0)], [(0.05, 10.0)]),
        "ETH-USDT": view(eth_usdt_bids or [(2_510.0, 10.0)], [(2_511.0, 10.0)]),
    }


def evaluated(
    at: dict[str, BookView], terms: Terms = TERMS, instruments: dict[str, Instrument] = INSTRUMENTS
) -> Evaluation:
    result = evaluate(TRIANGLE, at, instruments, terms, now_ms=1_100)
    assert isinstance(result, Evaluation), result
    return result


def test_evaluation_walks_the_depth_with_fees_and_increments() -> None:
    result = evaluated(books())
    first, second, third = result.legs
    # Leg 1, buy BTC-USDT with 1000 USDT (on the 0.000001 funds grid): the fee is held on top,
    # 1000 / 1.001 = 999.000999000999... buys 0.01 BTC at 50000 (500 USDT), then
    # 499.000999... / 50010 = 0.0099780... at 50010: 0.0199780... BTC, floored to the 0.00001
    # lot: 0.01997 BTC, costing 500 + 0.00997 * 50010 = 998.5997, fee 0.9985997.
    assert first.size == first.received == Decimal("0.01997")
    assert first.notional == Decimal("998.5997")
    assert first.fee == Decimal("0.9985997")
    assert first.spent == Decimal("999.5982997")
    assert first.worst_px == Decimal("50010")
    # Leg 2, buy ETH-BTC with 0.01997 BTC: 0.01997 / 1.001 / 0.05 = 0.39900099... ETH, floored
    # to 0.3990 ETH, costing 0.01995 BTC, fee 0.00001995.
    assert second.size == second.received == Decimal("0.3990")
    assert second.notional == Decimal("0.01995")
    assert second.fee == Decimal("0.00001995")
    assert second.worst_px == Decimal("0.05")
    # Leg 3, sell 0.3990 ETH at 2510: 1001.49 USDT, fee 1.00149, 1000.48851 USDT received.
    assert third.size == third.spent == Decimal("0.3990")
    assert third.notional == Decimal("1001.49")
    assert third.fee == Decimal("1.00149")
    assert result.final == third.received == Decimal("1000.48851")
    assert result.volume == Decimal(1000)
    assert not result.depth_limited
    assert math.isclose(result.profit_bps, 4.8851)  # 0.48851 / 1000 * 10000
    assert result.oldest_ms == 1_000


def test_a_sell_walks_down_the_bids_to_its_worst_price() -> None:
    # 0.3990 ETH: 0.1 at 2510, 0.2 at 2509, 0.099 at 2500 = 251 + 501.8 + 247.5 = 1000.3 USDT,
    # less 1.0003 fee: 999.2997.
    result = evaluated(books([(2_510.0, 0.1), (2_509.0, 0.2), (2_500.0, 5.0)]))
    third = result.legs[2]
    assert third.notional == Decimal("1000.3")
    assert third.worst_px == Decimal("2500")
    assert result.final == Decimal("999.2997")
    assert math.isclose(result.profit_bps, -7.003)


def test_thin_depth_evaluates_the_volume_it_carries() -> None:
    # The last leg's bids take 0.2 ETH; on ETH-BTC that costs 0.2 * 0.05 * 1.001 = 0.01001 BTC;
    # on BTC-USDT, 0.01 BTC at 50000 and 0.00001 at 50010, 500.5001 USDT, times 1.001:
    # 501.0006001 USDT, floored to the funds grid (just under it, to fit): 501.000600.
    thin = books([(2_510.0, 0.2)])
    assert achievable_volume(
        TRIANGLE, [thin[s] for s in TRIANGLE.symbols], INSTRUMENTS, TERMS
    ) < Decimal("501.0006001")
    result = evaluated(thin)
    assert result.volume == Decimal("501.000600")
    assert result.depth_limited
    assert result.legs[2].size <= Decimal("0.2")


def test_an_empty_book_leaves_no_volume() -> None:
    at = books()
    at["ETH-BTC"] = view([(0.04999, 50.0)], [])
    result = evaluate(TRIANGLE, at, INSTRUMENTS, TERMS, now_ms=1_100)
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol) == (Reason.DEPTH, "BTC-USDT")


def test_a_leg_below_a_minimum_refuses_the_triangle() -> None:
    # 5 USDT: 0.00009 BTC, then 0.0017 ETH; sold at 2510 that is 4.267 USDT, under 10.
    small = Terms(Decimal(5), 250, TERMS.fees, TERMS.funds_increments)
    strict = {**INSTRUMENTS, "ETH-USDT": instrument("ETH-USDT", "0.01", "0.0001", "0.0001", 10.0)}
    result = evaluate(TRIANGLE, books(), strict, small, now_ms=1_100)
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol) == (Reason.MIN_NOTIONAL, "ETH-USDT")
    assert result.detail == "4.26700 < 10.0"
    lots = {**INSTRUMENTS, "ETH-BTC": instrument("ETH-BTC", "0.00001", "0.0001", "0.01", 0)}
    result = evaluate(TRIANGLE, books(), lots, small, now_ms=1_100)
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol) == (Reason.MIN_SIZE, "ETH-BTC")
    tiny = Terms(Decimal("0.4"), 250, TERMS.fees, TERMS.funds_increments)
    result = evaluate(TRIANGLE, books(), INSTRUMENTS, tiny, now_ms=1_100)
    assert isinstance(result, Refusal)  # 0.4 USDT buys no whole lot of BTC
    assert (result.reason, result.symbol) == (Reason.DUST, "BTC-USDT")


# --- gates ---------------------------------------------------------------------------------------


def test_the_oldest_book_gates_the_triangle() -> None:
    at = books()
    at["ETH-BTC"] = BookView(at["ETH-BTC"].bids, at["ETH-BTC"].asks, time_ms=900)
    assert isinstance(evaluate(TRIANGLE, at, INSTRUMENTS, TERMS, now_ms=1_150), Evaluation)
    result = evaluate(TRIANGLE, at, INSTRUMENTS, TERMS, now_ms=1_151)  # 251 ms old
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol, result.detail) == (
        Reason.STALE,
        "ETH-BTC",
        "251 ms > 250 ms",
    )


def test_a_book_not_continuous_or_missing_refuses_the_triangle() -> None:
    at = books()
    at["ETH-USDT"] = BookView(at["ETH-USDT"].bids, at["ETH-USDT"].asks, 1_000, continuous=False)
    result = evaluate(TRIANGLE, at, INSTRUMENTS, TERMS, now_ms=1_000)
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol) == (Reason.NOT_CONTINUOUS, "ETH-USDT")
    del at["ETH-BTC"]
    result = evaluate(TRIANGLE, at, INSTRUMENTS, TERMS, now_ms=1_000)
    assert isinstance(result, Refusal)
    assert (result.reason, result.symbol) == (Reason.NO_BOOK, "ETH-BTC")


def test_a_book_view_reads_a_book() -> None:
    book = Book("ETH-BTC", 1_234, ((0.04999, 2.0, 3),), ((0.05, 1.0, 1),))
    assert BookView.of(book) == BookView(book.bids, book.asks, 1_234, True)
    assert not BookView.of(book, continuous=False).continuous


def test_a_view_reads_its_levels_once_exactly_and_stays_equal_to_one_not_read() -> None:
    bids = ((0.1 + 0.2, 3.0, 1), (0.25, 0.0, 1), (0.2, 1e-8, 2))
    asks = ((0.35, 7.5, 1),)
    read, unread = BookView(bids, asks, 1_234), BookView(bids, asks, 1_234)
    assert read.decimal_bids == ((Decimal("0.30000000000000004"), Decimal(3)),
                                 (Decimal("0.2"), Decimal("1E-8")))  # fmt: skip
    assert read.decimal_bids is read.decimal_bids  # kept, not read again
    assert read.decimal_asks == ((Decimal("0.35"), Decimal("7.5")),)
    assert read == unread
    assert hash(read) == hash(unread)
    assert repr(read) == repr(unread)


# --- properties ----------------------------------------------------------------------------------


def side(
    fair: Decimal, step: Decimal, sizes: list[int], lot: Decimal, *, up: bool
) -> tuple[PriceLevel, ...]:
    """Levels from ``fair`` outwards by ``step`` (up: asks), of ``sizes`` lots each."""
    sign = 1 if up else -1
    levels = []
    for i, lots in enumerate(sizes):
        px = fair + sign * i * step
        if px > 0:
            levels.append((float(px), float(lots * lot), 1))
    return tuple(levels)


SIZES = st.lists(st.integers(1, 5_000), min_size=1, max_size=4)


@st.composite
def markets(draw: st.DrawFn, *, dislocated: bool = True) -> dict[str, BookView]:
    """Books on the three pairs around fair prices; ETH-USDT's off the cross rate unless not
    ``dislocated``; the spread of each from 0 up."""
    btc = Decimal(draw(st.integers(100_000, 1_000_000))) / 10  # 10000.0 .. 100000.0
    eth_btc = Decimal(draw(st.integers(1_000, 9_000))) / 100_000  # 0.01 .. 0.09
    eth = btc * eth_btc
    if dislocated:
        eth = eth * Decimal(draw(st.integers(9_900, 10_100))) / 10_000
    fairs = {"BTC-USDT": btc, "ETH-BTC": eth_btc, "ETH-USDT": eth}
    at = {}
    for symbol, fair in fairs.items():
        lot = INSTRUMENTS[symbol].size_increment
        step = fair / 1_000
        spread = fair * draw(st.integers(0, 20)) / 10_000
        bids = side(fair - spread, step, draw(SIZES), lot, up=False)
        asks = side(fair + spread, step, draw(SIZES), lot, up=True)
        at[symbol] = BookView(bids, asks, 1_000)
    return at


VOLUMES = st.integers(1, 1_000_000).map(lambda n: Decimal(n) / 100)
FEES = st.sampled_from([Decimal(0), Decimal("0.0005"), Decimal("0.001")])


def terms(volume: Decimal, fee: Decimal) -> Terms:
    return Terms(volume, 250, dict.fromkeys(INSTRUMENTS, fee), TERMS.funds_increments)


@given(markets(), VOLUMES, FEES)
def test_every_amount_is_on_its_increment_and_never_more_than_held(
    at: dict[str, BookView], volume: Decimal, fee: Decimal
) -> None:
    result = evaluate(TRIANGLE, at, INSTRUMENTS, terms(volume, fee), now_ms=1_000)
    if isinstance(result, Refusal):
        return
    assert result.volume <= volume
    assert result.volume % TERMS.funds_increments["BTC-USDT"] == 0
    held = result.volume
    for leg in result.legs:
        assert leg.size % INSTRUMENTS[leg.leg.symbol].size_increment == 0
        assert 0 < leg.spent <= held
        held = leg.received
    assert result.final == held
    # The profit in bps is the final amount's: volume * (1 + bps / 10000) is it again.
    again = float(result.volume) * (1 + result.profit_bps / 10_000)
    assert math.isclose(again, float(result.final), rel_tol=1e-12)


@given(markets(dislocated=False), VOLUMES)
def test_books_without_a_dislocation_yield_no_profit_without_fees(
    at: dict[str, BookView], volume: Decimal
) -> None:
    result = evaluate(TRIANGLE, at, INSTRUMENTS, terms(volume, Decimal(0)), now_ms=1_000)
    if isinstance(result, Evaluation):
        assert result.profit_bps <= 0
        assert result.final <= result.volume


@given(markets(), VOLUMES, FEES, st.integers(1, 5_000))
def test_more_depth_never_lowers_the_achievable_volume(
    at: dict[str, BookView], volume: Decimal, fee: Decimal, lots: int
) -> None:
    views = [at[symbol] for symbol in TRIANGLE.symbols]
    before = achievable_volume(TRIANGLE, views, INSTRUMENTS, terms(volume, fee))
    deeper = []
    for symbol, book in zip(TRIANGLE.symbols, views, strict=True):
        size = float(lots * INSTRUMENTS[symbol].size_increment)
        bids = (*book.bids, (book.bids[-1][0] * 0.9, size, 1))
        asks = (*book.asks, (book.asks[-1][0] * 1.1, size, 1))
        deeper.append(BookView(bids, asks, book.time_ms))
    after = achievable_volume(TRIANGLE, deeper, INSTRUMENTS, terms(volume, fee))
    assert after >= before
    assert after <= volume


def test_a_start_volume_off_the_funds_grid_is_floored_not_depth_limited() -> None:
    off_grid = Terms(Decimal("1000.0000009"), 250, TERMS.fees, TERMS.funds_increments)
    result = evaluated(books(), off_grid)
    assert result.volume == Decimal(1000)  # on the 0.000001 grid
    assert not result.depth_limited
    assert result.final == Decimal("1000.48851")  # as from 1000 exactly


# --- the bound -----------------------------------------------------------------------------------


def test_the_bound_is_the_top_rates_product_with_the_fee_held_on_a_buy() -> None:
    at = books()
    views = [at[symbol] for symbol in TRIANGLE.symbols]
    bound = upper_bound_bps(TRIANGLE, views, TERMS)
    # Buy BTC at 50000 and ETH at 0.05, the fee held on top; sell ETH at 2510, the fee taken.
    rate = 1 / (1.001 * 50_000) / (1.001 * 0.05) * 2_510 * 0.999
    assert math.isclose(bound, (rate - 1) * 10_000, abs_tol=1e-4)  # 9.9 bps: the margin is less
    assert bound >= evaluated(at).profit_bps  # 4.8851: the depth, the lots
    # Deeper levels, better or worse, are not the top: only the best price counts.
    deeper = {**at, "ETH-USDT": view([(2_400.0, 1.0), (2_510.0, 10.0)], [(2_511.0, 10.0)])}
    again = upper_bound_bps(TRIANGLE, [deeper[s] for s in TRIANGLE.symbols], TERMS)
    assert again == bound


def test_without_fees_or_losses_to_the_lots_the_bound_is_the_profit() -> None:
    at = {
        "BTC-USDT": view([(49_990.0, 1.0)], [(50_000.0, 1.0)]),
        "ETH-BTC": view([(0.04999, 100.0)], [(0.05, 100.0)]),
        "ETH-USDT": view([(2_510.0, 100.0)], [(2_511.0, 100.0)]),
    }
    free = Terms(Decimal(1000), 250)
    result = evaluated(at, free)
    assert result.final == Decimal(1004)  # 0.02 BTC, 0.4 ETH, 1004 USDT
    bound = upper_bound_bps(TRIANGLE, [at[s] for s in TRIANGLE.symbols], free)
    assert result.profit_bps <= bound <= result.profit_bps + 1e-4
    assert bound >= 40.0 + BOUND_MARGIN_BPS


def test_the_bound_takes_the_best_level_wherever_it_stands() -> None:
    # Levels out of order: a thin worse bid first, then the best and deep one, which the walk
    # reaches: the bound is from the best bid, not the first.
    at = books(eth_usdt_bids=[(2_400.0, 0.0001), (2_600.0, 10.0)])
    result = evaluated(at)
    bound = upper_bound_bps(TRIANGLE, [at[s] for s in TRIANGLE.symbols], TERMS)
    assert 300 < result.profit_bps <= bound  # 2600 for all but 0.0001 ETH
    rate = 1 / (1.001 * 50_000) / (1.001 * 0.05) * 2_600 * 0.999
    assert math.isclose(bound, (rate - 1) * 10_000, abs_tol=1e-4)


def test_an_empty_side_has_no_bound() -> None:
    at = books()
    at["ETH-BTC"] = view([(0.04999, 50.0)], [(0.05, 0.0)])  # the only ask is empty
    assert upper_bound_bps(TRIANGLE, [at[s] for s in TRIANGLE.symbols], TERMS) == math.inf
    at = books(eth_usdt_bids=[(0.0, 5.0)])  # no bid with a price
    assert upper_bound_bps(TRIANGLE, [at[s] for s in TRIANGLE.symbols], TERMS) == math.inf


@st.composite
def scattered(draw: st.DrawFn) -> dict[str, BookView]:
    """Books on the three pairs with levels in any order (not always best first), some thin or
    empty and others deep enough to carry any volume, each price within 1 % of a fair price
    that may itself be off the cross rate by 1 %: walks that end near the top rates (where a
    wrong bound shows) and walks that reach better prices past a worse first level."""
    at = {}
    for symbol, fair in (("BTC-USDT", 50_000.0), ("ETH-BTC", 0.05), ("ETH-USDT", 2_500.0)):
        fair *= draw(st.floats(0.99, 1.01))
        lot = float(INSTRUMENTS[symbol].size_increment)
        sides = []
        for _ in range(2):
            levels = draw(
                st.lists(
                    st.tuples(st.floats(0.99, 1.01), st.sampled_from([10**9, 300, 1, 0])),
                    min_size=1,
                    max_size=4,
                )
            )
            sides.append(tuple((fair * move, lots * lot, 1) for move, lots in levels))
        at[symbol] = BookView(sides[0], sides[1], 1_000)
    return at


def every_fee(fees: list[Decimal]) -> Terms:
    return Terms(
        Decimal(1000), 250, dict(zip(TRIANGLE.symbols, fees, strict=True)), TERMS.funds_increments
    )


# High fees first: a bound that took a buy's fee as 1 - fee is off by fee squared, 9 bps at 3 %.
FEE_RATES = st.one_of(
    st.sampled_from([Decimal("0.03"), Decimal("0.001")]),
    st.integers(0, 300).map(lambda n: Decimal(n) / 10_000),
)


@settings(max_examples=300)
@given(
    st.one_of(scattered(), markets()),
    st.one_of(VOLUMES, st.integers(10**5, 10**7).map(Decimal)),
    st.lists(FEE_RATES, min_size=3, max_size=3),
    st.sampled_from([TRIANGLE, reverse(TRIANGLE)]),
)
def test_the_bound_is_never_below_what_the_exact_evaluation_yields(
    at: dict[str, BookView], volume: Decimal, fees: list[Decimal], triangle: Triangle
) -> None:
    base = every_fee(fees)
    terms = Terms(volume, 250, base.fees, base.funds_increments)
    result = evaluate(triangle, at, INSTRUMENTS, terms, now_ms=1_000)
    bound = upper_bound_bps(triangle, [at[s] for s in triangle.symbols], terms)
    if isinstance(result, Evaluation):
        assert result.profit_bps <= bound


def top_as_it_was(view: BookView) -> tuple[float, float]:
    """``BookView.top`` as it was written before its one loop a side: the oracle."""
    bid = max([px for px, sz, _ in view.bids if sz > 0 and px > 0], default=0.0)
    ask = min([px for px, sz, _ in view.asks if sz > 0 and px > 0], default=math.inf)
    return bid, ask


# Any price or size a level may carry, the odd ones included: zero, negative, infinite, NaN,
# and ints beside the floats they equal.
ODD_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, math.inf, -math.inf, math.nan]),
    st.integers(-3, 3),
)
ODD_LEVELS = st.lists(st.tuples(ODD_NUMBERS, ODD_NUMBERS, st.integers(0, 3)), max_size=6)


@settings(max_examples=500)
@given(ODD_LEVELS, ODD_LEVELS)
def test_the_top_is_the_oracles_on_any_levels_unsorted_or_odd(
    bids: list[PriceLevel], asks: list[PriceLevel]
) -> None:
    view = BookView(tuple(bids), tuple(asks), 1_000)
    got, expected = view.top, top_as_it_was(view)
    assert [repr(x) for x in got] == [repr(x) for x in expected]
    assert [type(x) for x in got] == [type(x) for x in expected]


def test_a_walk_leaves_the_callers_decimal_context_as_it_found_it() -> None:
    with decimal.localcontext(decimal.Context(prec=7, rounding=decimal.ROUND_UP)) as mine:
        result = evaluated(books())
        assert isinstance(result, Evaluation)
        assert decimal.getcontext() is mine
        with pytest.raises(ValueError, match="three books"):
            walk(TRIANGLE, [books()["BTC-USDT"]], INSTRUMENTS, TERMS)
        assert decimal.getcontext() is mine
        assert Decimal(1) / Decimal(3) == Decimal("0.3333334")  # its precision and rounding
