"""The cascade's arithmetic: each leg's order from what the previous one yielded, what a leg
yielded from its fills, and paper fills walking the book as evaluated."""

from __future__ import annotations

from decimal import Decimal, localcontext

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Fill, Instrument, OrderId, PriceLevel, Side, TradeId
from mm.strategies.triarb.cascade import (
    LegOrder,
    Refusal,
    Shortfall,
    leg_output,
    leg_spent,
    next_leg,
    paper_fills,
)
from mm.strategies.triarb.legs import Leg

FLUX_USDT = Instrument(
    "kucoin", "FLUX-USDT", "FLUX", "USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.1"), 0.1
)
FLUX_USDC = Instrument(
    "kucoin", "FLUX-USDC", "FLUX", "USDC", Decimal("0.00001"), Decimal("0.01"), Decimal("0.1"), 0.1
)
BTC_USDT = Instrument(
    "kucoin", "BTC-USDT", "BTC", "USDT", Decimal("0.1"), Decimal("0.00001"), Decimal("0.00001"), 0.1
)
BUY_FLUX = Leg("FLUX-USDT", Side.BUY, "USDT", "FLUX")
SELL_FLUX = Leg("FLUX-USDC", Side.SELL, "FLUX", "USDC")
BUY_BTC = Leg("BTC-USDT", Side.BUY, "USDT", "BTC")
OID = OrderId("paper:1")


def order(result: LegOrder | Refusal) -> LegOrder:
    assert isinstance(result, LegOrder), result
    return result


def fill(leg: Leg, px: float, sz: float, fee: float, fee_token: str, n: int = 0) -> Fill:
    """A fill as a venue's adapter reports it."""
    return Fill(
        coin=leg.symbol,
        side=leg.side,
        px=px,
        sz=sz,
        time_ms=1_748_282_153_719 + n,
        oid=OrderId("kucoin:6834a5d9e4b0c1a2b3c4d5e6"),
        tid=TradeId(f"kucoin:{n}"),
        cloid="c",
        fee=fee,
        fee_token=fee_token,
        crossed=True,
        start_position=0.0,
        direction="Buy" if leg.side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )


# --- the reference's FLUX-USDT leg -----------------------------------------------------------
# Its log line: "L0:buy FLUX-USDT USDT->FLUX 64.53@0.0774(fee=0 USDT ...)", in the format
# "size at price": 64.53 FLUX bought at 0.0774 USDT, 4.994622 USDT, no fee. The same line's
# profit -0.0749 at effective -149.94 bps says the triangle started from 4.994622 USDT (a start
# of 5 USDT at -149.94 bps would print -0.0750).


def test_the_references_flux_leg_yields_its_size_for_its_cost() -> None:
    logged = [fill(BUY_FLUX, 0.0774, 64.53, 0.0, "USDT")]
    assert leg_output(BUY_FLUX, logged) == Decimal("64.53")
    assert leg_spent(BUY_FLUX, logged) == Decimal("4.994622")
    assert round(Decimal("4.994622") * Decimal("-0.014994"), 4) == Decimal(
        "-0.0749"
    )  # the line's own figures
    assert round(Decimal("5") * Decimal("-0.014994"), 4) == Decimal("-0.0750")


def test_the_references_flux_order_from_what_it_spent_at_fee_zero() -> None:
    sent = order(next_leg(BUY_FLUX, FLUX_USDT, Decimal("4.994622"), Decimal(0), 0.0774, 0))
    assert (sent.px, sent.size, sent.cost) == (
        Decimal("0.0774"),
        Decimal("64.53"),
        Decimal("4.994622"),
    )


def test_five_usdt_at_kucoins_taker_fee_is_the_same_order_only_with_the_fee_hold() -> None:
    # 5 / 0.0774 = 64.599 FLUX; held back for a 0.1% fee, 5 / (0.0774 * 1.001) = 64.5349.
    sent = order(next_leg(BUY_FLUX, FLUX_USDT, Decimal("5"), Decimal("0.001"), 0.0774, 0))
    assert (sent.size, sent.cost) == (Decimal("64.53"), Decimal("4.999616622"))
    assert order(
        next_leg(BUY_FLUX, FLUX_USDT, Decimal("5"), Decimal(0), 0.0774, 0)
    ).size == Decimal("64.59")


def test_64_53_usdt_at_0_0774_would_buy_833_72_flux() -> None:
    # The other reading of "64.53@0.0774" (64.53 USDT spent): 833.7209... floored to 0.01.
    sent = order(next_leg(BUY_FLUX, FLUX_USDT, Decimal("64.53"), Decimal(0), 0.0774, 0))
    assert (sent.size, sent.cost) == (Decimal("833.72"), Decimal("64.529928"))


# --- hand-computed legs with fees --------------------------------------------------------------


def test_a_buy_floors_below_what_a_rounded_quotient_would_give() -> None:
    # 1000 / (50000.1 * 1.001) = 0.0199799...: 0.01998 BTC would cost 1000.000999998 USDT.
    sent = order(next_leg(BUY_BTC, BTC_USDT, Decimal("1000"), Decimal("0.001"), 50000.1, 0))
    assert (sent.px, sent.size, sent.cost) == (
        Decimal("50000.1"),
        Decimal("0.01997"),
        Decimal("999.500498997"),
    )


def test_a_market_buy_sends_funds_held_back_for_the_fee_on_the_funds_increment() -> None:
    sent = order(
        next_leg(
            BUY_BTC,
            BTC_USDT,
            Decimal("1000"),
            Decimal("0.001"),
            50000.1,
            0,
            market=True,
            market_funds_increment=Decimal("0.000001"),
        )
    )
    assert (sent.size, sent.funds, sent.cost) == (
        None,
        Decimal("999.000999"),
        Decimal("999.999999999"),
    )


def test_a_market_buy_walks_the_asks_until_its_funds_buy_less_than_a_lot() -> None:
    sent = order(
        next_leg(
            BUY_BTC,
            BTC_USDT,
            Decimal("1000"),
            Decimal("0.001"),
            50000.1,
            0,
            market=True,
            market_funds_increment=Decimal("0.000001"),
        )
    )
    asks: list[PriceLevel] = [(50000.1, 0.01, 1), (50000.2, 0.5, 1), (50000.3, 1.0, 1)]
    paper = paper_fills(sent, BTC_USDT, asks, Decimal("0.001"), oid=OID, cloid="c", time_ms=0)
    # 0.01 at 50000.1 = 500.001; 498.999999 left buys 0.00997 at 50000.2 = 498.501994.
    assert [(f.px, f.sz, f.fee) for f in paper] == [
        (50000.1, 0.01, 0.500001),
        (50000.2, 0.00997, 0.498501994),
    ]
    assert leg_output(BUY_BTC, paper) == Decimal("0.01997")
    assert leg_spent(BUY_BTC, paper) == Decimal("999.501496994")


def test_the_limit_gives_away_at_most_the_slippage_rounded_towards_the_book() -> None:
    # 50000.1 * 1.0005 = 50025.10005 -> 50025.1; 0.07783 * 0.999 = 0.07775217 -> 0.07776.
    assert order(
        next_leg(BUY_BTC, BTC_USDT, Decimal("1000"), Decimal(0), 50000.1, 5)
    ).px == Decimal("50025.1")
    assert order(
        next_leg(SELL_FLUX, FLUX_USDC, Decimal("64.53"), Decimal(0), 0.07783, 10)
    ).px == Decimal("0.07776")


def test_a_sell_walks_the_bids_and_yields_the_quote_less_the_fee() -> None:
    sent = order(next_leg(SELL_FLUX, FLUX_USDC, Decimal("64.537"), Decimal("0.001"), 0.0778, 10))
    assert (sent.px, sent.size, sent.cost) == (
        Decimal("0.07773"),
        Decimal("64.53"),
        Decimal("64.53"),
    )
    bids: list[PriceLevel] = [(0.07783, 50.0, 3), (0.0778, 100.0, 1), (0.0777, 100.0, 1)]
    paper = paper_fills(sent, FLUX_USDC, bids, Decimal("0.001"), oid=OID, cloid="c", time_ms=7)
    # By hand: 50 at 0.07783 = 3.8915, fee 0.0038915; 14.53 at 0.0778 = 1.130434, fee
    # 0.001130434; the venue reports them so.
    live = [
        fill(SELL_FLUX, 0.07783, 50.0, 0.0038915, "USDC", 0),
        fill(SELL_FLUX, 0.0778, 14.53, 0.001130434, "USDC", 1),
    ]
    assert [(f.px, f.sz, f.fee, f.fee_token) for f in paper] == [
        (f.px, f.sz, f.fee, f.fee_token) for f in live
    ]
    assert leg_output(SELL_FLUX, paper) == leg_output(SELL_FLUX, live) == Decimal("5.016912066")
    assert leg_spent(SELL_FLUX, paper) == leg_spent(SELL_FLUX, live) == Decimal("64.53")
    assert [f.tid for f in paper] == ["paper:1/0", "paper:1/1"]


def test_a_buy_stops_at_its_limit_and_a_fee_in_base_comes_out_of_its_yield() -> None:
    sent = order(next_leg(BUY_FLUX, FLUX_USDT, Decimal("10"), Decimal("0.001"), 0.0775, 0))
    asks: list[PriceLevel] = [(0.0774, 30.0, 1), (0.0775, 40.0, 1), (0.0776, 1000.0, 1)]
    paper = paper_fills(
        sent, FLUX_USDT, asks, Decimal("0.001"), oid=OID, cloid="c", time_ms=0, fee_token="FLUX"
    )
    # 10 / (0.0775 * 1.001) = 128.9 FLUX ordered; 70 of them within the limit.
    assert sent.size == Decimal("128.9")
    assert [(f.px, f.sz, f.fee) for f in paper] == [(0.0774, 30.0, 0.03), (0.0775, 40.0, 0.04)]
    assert leg_output(BUY_FLUX, paper) == Decimal("69.93")
    assert leg_spent(BUY_FLUX, paper) == Decimal("5.422")


def test_what_a_leg_yields_is_exact_past_decimals_default_precision() -> None:
    px, sz = 0.1234567890123456, 98765.43210987654  # a product of 32 significant digits
    fills = [fill(SELL_FLUX, px, sz, 0.0, "USDC", n) for n in range(2)]
    with localcontext(prec=100):
        exact = 2 * Decimal(repr(px)) * Decimal(repr(sz))
    assert len(exact.as_tuple().digits) > 28
    assert leg_output(SELL_FLUX, fills) == exact


def test_fills_of_another_leg_are_refused() -> None:
    with pytest.raises(ValueError, match="another leg"):
        leg_output(BUY_FLUX, [fill(SELL_FLUX, 0.0778, 1.0, 0.0, "USDC")])


# --- refusals ----------------------------------------------------------------------------------


def test_a_refusal_says_which_minimum_it_misses() -> None:
    tiny = next_leg(BUY_BTC, BTC_USDT, Decimal("0.0001"), Decimal(0), 50000.1, 0)
    assert isinstance(tiny, Refusal)
    assert tiny.shortfall is Shortfall.NOTHING
    strict = attrs.evolve(BTC_USDT, min_size=Decimal("0.001"), min_notional=100.0)
    small = next_leg(BUY_BTC, strict, Decimal("40"), Decimal(0), 50000.1, 0)  # 0.0008 BTC
    assert isinstance(small, Refusal)
    assert small.shortfall is Shortfall.MIN_SIZE
    cheap = next_leg(
        BUY_BTC, strict, Decimal("60"), Decimal(0), 50000.1, 0
    )  # 0.00119 BTC, 59.5 USDT
    assert isinstance(cheap, Refusal)
    assert cheap.shortfall is Shortfall.MIN_NOTIONAL
    assert "59.500119" in cheap.detail


# --- properties --------------------------------------------------------------------------------

INCREMENTS = st.sampled_from(
    [
        Decimal("1"),
        Decimal("0.1"),
        Decimal("0.01"),
        Decimal("0.0001"),
        Decimal("0.00001"),
        Decimal("0.5"),
    ]
)


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    return Instrument(
        "kucoin",
        "A-B",
        "A",
        "B",
        draw(INCREMENTS),
        draw(INCREMENTS),
        draw(st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("1")])),
        draw(st.sampled_from([0.0, 0.1, 10.0])),
    )


AMOUNTS = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=6)
FEES = st.sampled_from([Decimal(0), Decimal("0.0008"), Decimal("0.001"), Decimal("0.002")])
SLIPPAGE = st.sampled_from([Decimal(0), Decimal(3), Decimal("10"), Decimal("12.5")])


@st.composite
def prices(draw: st.DrawFn, instrument: Instrument) -> Decimal:
    return instrument.price_increment * draw(st.integers(1, 1_000_000))


@st.composite
def cases(draw: st.DrawFn) -> tuple[Leg, Instrument, Decimal, Decimal, Decimal, Decimal]:
    instrument = draw(instruments())
    side = draw(st.sampled_from(Side))
    leg = Leg("A-B", side, "B", "A") if side is Side.BUY else Leg("A-B", side, "A", "B")
    return leg, instrument, draw(AMOUNTS), draw(FEES), draw(prices(instrument)), draw(SLIPPAGE)


@given(cases(), st.booleans())
def test_an_order_never_spends_more_than_was_held_and_lies_on_its_grids(
    case: tuple[Leg, Instrument, Decimal, Decimal, Decimal, Decimal], market: bool
) -> None:
    leg, instrument, held, fee, worst, slippage = case
    result = next_leg(
        leg,
        instrument,
        held,
        fee,
        worst,
        slippage,
        market=market,
        market_funds_increment=Decimal("0.01"),
    )
    if isinstance(result, Refusal):
        return
    assert result.cost <= held
    assert result.px % instrument.price_increment == 0
    allowance = worst * slippage / 10_000
    if leg.side is Side.BUY:
        assert worst <= result.px <= worst + allowance
    else:
        assert worst - allowance <= result.px <= worst
    if result.funds is not None:
        assert result.funds % Decimal("0.01") == 0
        assert result.funds >= Decimal(repr(instrument.min_notional))
    else:
        assert result.size is not None
        assert result.size % instrument.size_increment == 0
        assert result.size >= instrument.min_size
        assert result.px * result.size >= Decimal(repr(instrument.min_notional))


@given(cases())
def test_a_refusal_names_a_minimum_the_order_would_miss(
    case: tuple[Leg, Instrument, Decimal, Decimal, Decimal, Decimal],
) -> None:
    leg, instrument, held, fee, worst, slippage = case
    result = next_leg(leg, instrument, held, fee, worst, slippage)
    if not isinstance(result, Refusal):
        return
    free = attrs.evolve(instrument, min_size=Decimal(0), min_notional=0.0)
    unchecked = next_leg(leg, free, held, fee, worst, slippage)
    if result.shortfall is Shortfall.NOTHING:
        assert isinstance(unchecked, Refusal)
        assert unchecked.shortfall is Shortfall.NOTHING
        return
    assert isinstance(unchecked, LegOrder)
    assert unchecked.size is not None
    if result.shortfall is Shortfall.MIN_SIZE:
        assert unchecked.size < instrument.min_size
    else:
        assert unchecked.size >= instrument.min_size
        assert unchecked.px * unchecked.size < Decimal(repr(instrument.min_notional))


@st.composite
def books(draw: st.DrawFn, instrument: Instrument, side: Side) -> list[PriceLevel]:
    """Levels on the grids, best first (asks ascending for a buy, bids descending)."""
    ticks = sorted(draw(st.sets(st.integers(1, 2_000_000), min_size=1, max_size=6)))
    if side is Side.SELL:
        ticks.reverse()
    lots = draw(st.lists(st.integers(1, 10_000), min_size=len(ticks), max_size=len(ticks)))
    return [
        (float(t * instrument.price_increment), float(n * instrument.size_increment), 1)
        for t, n in zip(ticks, lots, strict=True)
    ]


@given(cases(), st.booleans(), st.data())
def test_paper_fills_spend_at_most_what_was_held_on_the_grid(
    case: tuple[Leg, Instrument, Decimal, Decimal, Decimal, Decimal],
    market: bool,
    data: st.DataObject,
) -> None:
    leg, instrument, held, fee, worst, slippage = case
    free = attrs.evolve(instrument, min_size=Decimal(0), min_notional=0.0)
    funds_increment = Decimal("0.01")
    result = next_leg(
        leg, free, held, fee, worst, slippage, market=market, market_funds_increment=funds_increment
    )
    if isinstance(result, Refusal):
        return
    levels = data.draw(books(instrument, leg.side))
    paper = paper_fills(result, instrument, levels, fee, oid=OID, cloid="c", time_ms=0)
    sizes = [Decimal(repr(f.sz)) for f in paper]
    assert all(size > 0 and size % instrument.size_increment == 0 for size in sizes)
    exact_fees = [Decimal(repr(f.px)) * Decimal(repr(f.sz)) * fee for f in paper]
    assert [f.fee for f in paper] == [float(x) for x in exact_fees]
    assert (
        leg_spent(leg, paper) - sum(Decimal(repr(f.fee)) for f in paper) + sum(exact_fees) <= held
    )
    # Live: the venue reports the same trades under its own ids, in any order.
    live = [
        attrs.evolve(f, oid=OrderId("kucoin:x"), tid=TradeId(f"kucoin:{n}"), time_ms=n)
        for n, f in enumerate(data.draw(st.permutations(paper)))
    ]
    assert leg_output(leg, live) == leg_output(leg, paper)
    assert leg_spent(leg, live) == leg_spent(leg, paper)


@given(cases(), st.data())
def test_a_limit_leg_fills_what_the_book_holds_within_its_limit(
    case: tuple[Leg, Instrument, Decimal, Decimal, Decimal, Decimal], data: st.DataObject
) -> None:
    leg, instrument, held, fee, worst, slippage = case
    result = next_leg(
        leg, attrs.evolve(instrument, min_size=Decimal(0)), held, fee, worst, slippage
    )
    if isinstance(result, Refusal):
        return
    assert result.size is not None
    levels = data.draw(books(instrument, leg.side))
    paper = paper_fills(result, instrument, levels, fee, oid=OID, cloid="c", time_ms=0)
    sign = leg.side.sign
    within = sum(
        Decimal(repr(sz)) for px, sz, _ in levels if sign * Decimal(repr(px)) <= sign * result.px
    )
    filled = sum((Decimal(repr(f.sz)) for f in paper), Decimal(0))
    assert filled == min(result.size, within)
    if leg.side is Side.BUY:  # fees in the quote: the base bought arrives whole
        assert leg_output(leg, paper) == filled
