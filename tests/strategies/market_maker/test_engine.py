"""Tests for the per-symbol quote engine: warmup, gating, inventory limits, wire validity."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.book import Book
from mm.model import Fill, Instrument, Level, Side, Trade
from mm.settings import structure_section
from mm.strategies.market_maker import quota
from mm.strategies.market_maker.engine import QuotePlan, StrategyConfig, SymbolQuoter
from mm.strategies.market_maker.gate import NoQuoteReason, QuoteMode
from mm.strategies.market_maker.glft import GlftParams
from mm.strategies.market_maker.quota import QuotaDecision
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of
from mm.venues.hyperliquid.wire import format_px, format_sz
from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine
from mm.venues.sim.events import Trade as SimTrade
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket
from mm.venues.sim.universe import UNIVERSE, specs_for
from tests.ids import hl_oid, hl_tid
from tests.strategies.market_maker.quote_reference import reference_quote

BTC_SZ_DECIMALS = 5


def perp(coin: str, sz_decimals: int) -> Instrument:
    """A Hyperliquid perpetual's instrument, as its provider builds it from the metadata."""
    return instrument_of(AssetMeta(0, coin, sz_decimals, 50))


BTC = perp("BTC", BTC_SZ_DECIMALS)


def _book(mid: float, now: float, coin: str = "BTC", half_spread_bps: float = 2.0) -> Book:
    half = mid * half_spread_bps / 1e4
    bids = tuple(Level(round(mid - half - i, 0), 0.5) for i in range(5))
    asks = tuple(Level(round(mid + half + i, 0), 0.5) for i in range(5))
    return Book(coin, int(now * 1000), bids, asks)


def _trade(px: float, now: float, side: Side = Side.BUY, coin: str = "BTC") -> Trade:
    return Trade(coin, side, px, 0.01, int(now * 1000), hl_tid(1))


def _warm(quoter: SymbolQuoter, seconds: int = 25, mid: float = 95_000.0) -> float:
    """Books every 0.5 s with a wandering mid and trades at exponentially spread depths."""
    rng = random.Random(3)
    now = 0.0
    for step in range(seconds * 2):
        now = step * 0.5
        mid *= math.exp(rng.gauss(0.0, 1e-4))
        quoter.on_book(_book(mid, now), now)
        for _ in range(2):
            depth_bps = rng.expovariate(0.3)
            side = rng.choice((Side.BUY, Side.SELL))
            sign = 1.0 if side is Side.BUY else -1.0
            quoter.on_trade(_trade(mid * (1 + sign * depth_bps / 1e4), now, side), now)
    return now


def _wire_valid(plan: QuotePlan, sz_decimals: int) -> None:
    for order in plan.orders:
        assert numbers.is_valid_px(repr(order.px), sz_decimals)
        assert float(format_px(order.px, sz_decimals, order.side)) == order.px
        assert float(format_sz(order.sz, sz_decimals)) == order.sz
        assert order.px * order.sz >= 10.0


def _not_crossing(plan: QuotePlan, book: Book) -> None:
    assert book.best_bid is not None
    assert book.best_ask is not None
    for order in plan.orders:
        if order.side is Side.BUY:
            assert order.px < book.best_ask
        else:
            assert order.px > book.best_bid


def _fill(side: Side, px: float, sz: float) -> Fill:
    return Fill(
        "BTC",
        side,
        px,
        sz,
        0,
        hl_oid(1),
        hl_tid(1),
        None,
        0.0,
        "USDC",
        False,
        0.0,
        "Open Long",
        0.0,
        "0x0",
    )


def test_config_defaults_and_structure() -> None:
    config = StrategyConfig()
    assert config.symbols == ("BTC", "ETH")
    assert config.kind == "market_maker"
    assert config.model == "glft"
    parsed = structure_section(
        {"gamma": 0.1, "symbols": ["ETH"], "ladder": {"levels": 2}}, StrategyConfig, "strategy"
    )
    assert parsed.gamma == 0.1
    assert parsed.symbols == ("ETH",)
    assert parsed.ladder.levels == 2
    assert parsed.ladder.spacing == config.ladder.spacing


def test_fresh_quoter_is_in_warmup() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    quoter.on_book(_book(95_000.0, 0.0), 0.0)
    assert quoter.due(0.0)
    plan = quoter.quote(0.0)
    assert plan.orders == []
    assert plan.gate.mode is QuoteMode.NONE
    assert plan.gate.reason is NoQuoteReason.WARMUP
    assert plan.reason == "warmup"


def test_quotes_both_sides_once_warm() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    book = quoter.book
    assert book is not None
    assert book.mid is not None
    plan = quoter.quote(now)
    assert plan.gate.mode is QuoteMode.BOTH
    bids = [o for o in plan.orders if o.side is Side.BUY]
    asks = [o for o in plan.orders if o.side is Side.SELL]
    assert len(bids) == len(asks) == 3
    assert max(o.px for o in bids) < book.mid < min(o.px for o in asks)
    _not_crossing(plan, book)
    _wire_valid(plan, BTC_SZ_DECIMALS)
    assert plan.glft is not None
    assert plan.spread is not None
    assert plan.glft.a > 0
    assert plan.glft.k > 0
    assert plan.glft.half_spread > 0
    assert plan.spread.half_spread_bps >= plan.glft.half_spread_bps
    assert all(math.isfinite(value) for value in plan.status().values())
    # the order size is order_size_usd at the mid
    assert bids[0].sz == pytest.approx(50.0 / book.mid, abs=1e-5)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_inventory_at_max_quotes_only_the_reducing_side(sign: float) -> None:
    config = StrategyConfig()
    quoter = SymbolQuoter(BTC, config)
    now = _warm(quoter)
    mid = quoter.book.mid if quoter.book else None
    assert mid is not None
    quoter.set_position(sign * config.max_position_usd / mid * 1.01)
    plan = quoter.quote(now)
    assert plan.reduce_only
    reducing = Side.SELL if sign > 0 else Side.BUY
    assert plan.orders
    assert {o.side for o in plan.orders} == {reducing}
    _wire_valid(plan, BTC_SZ_DECIMALS)


def test_inventory_skews_reservation() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    flat = quoter.quote(now).glft
    quoter.on_fill(_fill(Side.BUY, 1.0, 0.002), now)
    assert quoter.inventory == pytest.approx(0.002)
    long = quoter.quote(now).glft
    assert flat is not None
    assert long is not None
    assert long.q > 0
    assert long.reservation < flat.reservation


def test_stale_book_is_data_gate() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    plan = quoter.quote(now + 10.0)
    assert plan.orders == []
    assert plan.gate.reason is NoQuoteReason.DATA_GATE


def test_crossed_book_is_data_gate() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter) + 0.5
    crossed = Book("BTC", 0, (Level(95_010.0, 1.0),), (Level(94_990.0, 1.0),))
    quoter.on_book(crossed, now)
    plan = quoter.quote(now)
    assert plan.orders == []
    assert plan.gate.reason is NoQuoteReason.DATA_GATE


def test_low_headroom_thins_and_one_sides() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    full = quoter.quote(now)
    quoter.set_headroom(0.05)
    thin = quoter.quote(now)
    assert 0 < len(thin.orders) < len(full.orders)
    assert full.spread is not None
    assert thin.spread is not None
    assert thin.spread.half_spread_bps > full.spread.half_spread_bps
    quoter.set_position(0.001)
    forced = quoter.quote(now)
    assert {o.side for o in forced.orders} == {Side.SELL}
    quoter.set_headroom(0.001)
    vetoed = quoter.quote(now)
    assert vetoed.orders == []
    assert vetoed.gate.reason is NoQuoteReason.QUOTA_EXHAUSTED


def test_adverse_fill_widens() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    book = quoter.book
    assert book is not None
    assert book.mid is not None
    before = quoter.quote(now).spread
    quoter.on_fill(_fill(Side.BUY, book.mid, 0.001), now)
    quoter.on_book(_book(book.mid * 0.999, now + 0.1), now + 0.1)
    assert quoter.adverse_fills == 1
    after = quoter.quote(now + 0.1).spread
    assert before is not None
    assert after is not None
    assert after.multiplier > before.multiplier


def test_accumulator_due_rules() -> None:
    quoter = SymbolQuoter(BTC, StrategyConfig())
    now = _warm(quoter)
    quoter.quote(now)
    assert not quoter.due(now)
    quoter.on_trade(_trade(95_000.0, now), now)
    assert quoter.due(now + 1.0)


def _sim_book(engine: Engine, asset: int, coin: str, now_ms: int) -> Book:
    spec = engine.specs[asset]
    book = engine.books[asset]
    bids = tuple(
        Level(spec.px_float(px), spec.sz_float(sz), n) for px, sz, n in book.levels(True, 20)
    )
    asks = tuple(
        Level(spec.px_float(px), spec.sz_float(sz), n) for px, sz, n in book.levels(False, 20)
    )
    return Book(coin, now_ms, bids, asks)


@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_stream_starts_quoting(seed: int) -> None:
    coins = ["BTC", "ETH"]
    engine = Engine(specs_for(coins), system_users=(LIQUIDITY_USER, FLOW_USER))
    market_config = MarketConfig()
    start = {index: UNIVERSE[coin].start_px for index, coin in enumerate(coins)}
    market = SyntheticMarket(engine, market_config, start, random.Random(seed))
    market.seed_liquidity(0)
    config = StrategyConfig()
    quoters = [SymbolQuoter(perp(coin, UNIVERSE[coin].sz_decimals), config) for coin in coins]
    first_quote: dict[str, float] = {}
    step_ms = market_config.step_ms
    for step in range(1, 60_000 // step_ms + 1):
        now_ms = step * step_ms
        now = now_ms / 1000
        engine.events.clear()
        market.step(now_ms, step_ms / 1000)
        for event in engine.events:
            if isinstance(event, SimTrade):
                quoter = quoters[event.asset]
                spec = engine.specs[event.asset]
                side = Side.BUY if event.taker_is_buy else Side.SELL
                trade = Trade(
                    spec.name,
                    side,
                    spec.px_float(event.px),
                    spec.sz_float(event.sz),
                    now_ms,
                    hl_tid(1),
                )
                quoter.on_trade(trade, now)
        for asset, quoter in enumerate(quoters):
            book = _sim_book(engine, asset, quoter.coin, now_ms)
            quoter.on_book(book, now)
            if not quoter.due(now):
                continue
            plan = quoter.quote(now)
            if plan.orders:
                first_quote.setdefault(quoter.coin, now)
                _not_crossing(plan, book)
                _wire_valid(plan, UNIVERSE[quoter.coin].sz_decimals)
                assert {o.side for o in plan.orders} == {Side.BUY, Side.SELL}
            else:
                assert plan.reason == "warmup"
    assert set(first_quote) == set(coins)
    assert all(t <= 30.0 for t in first_quote.values()), first_quote


class _UncachedQuoter(SymbolQuoter):
    """A quoter that works out at every quote what SymbolQuoter remembers (the quota tier, the
    GLFT parameters): the reference the remembering one is held to."""

    def _tier(self, headroom: float, inventory: float) -> QuotaDecision:
        config = self.config
        self._glft_params = GlftParams(
            gamma=config.gamma,
            xi=config.xi or None,
            order_size=1.0,
            max_position=config.max_position_usd / config.order_size_usd,
        )
        return quota.decide(headroom, inventory, config.quota)


HEADROOMS = (1.0, 0.5, 0.3, 0.12, 0.05, 0.01, 0.0, -0.0, math.nan)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["book", "trade", "fill", "position"]),
            st.floats(min_value=-1.0, max_value=1.0),
            st.sampled_from(HEADROOMS),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([0.0, 0.03]),
)
def test_the_quoter_remembers_nothing_that_changes_a_quote(
    steps: list[tuple[str, float, float]], xi: float
) -> None:
    """Through the same books, trades, fills, headroom and positions, the quoter that
    remembers the tier and the GLFT parameters quotes what one that works them out at every
    quote quotes (the whole plan, its tier's headroom's sign included)."""
    config = StrategyConfig(symbols=("BTC",), xi=xi)
    quoters = [SymbolQuoter(BTC, config), _UncachedQuoter(BTC, config)]
    now = 0.0
    for quoter in quoters:
        now = _warm(quoter)
    mid = 95_000.0
    for kind, x, headroom in steps:
        now += 0.25
        mid *= 1 + x * 1e-3
        for quoter in quoters:
            if kind == "book":
                quoter.on_book(_book(mid, now), now)
            elif kind == "trade":
                side = Side.BUY if x > 0 else Side.SELL
                quoter.on_trade(_trade(mid * (1 + x * 1e-3), now, side), now)
            elif kind == "fill":
                side = Side.BUY if x > 0 else Side.SELL
                quoter.on_fill(_fill(side, mid, 0.002), now)
            else:
                quoter.set_position(round(x * 0.01, 5))
            quoter.set_headroom(headroom)
        plans = [quoter.quote(now) for quoter in quoters]
        # repr: every float exactly, a zero's sign and NaN (equal to nothing) included
        assert repr(plans[0]) == repr(plans[1])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.05, max_value=3.0),  # seconds to the next book
            st.floats(min_value=-20.0, max_value=20.0),  # the mid's move, bps
            st.sampled_from([0.0, 1e-4, -3e-4, 2e-3, -6e-3, 0.02]),  # inventory, coin units
            st.sampled_from([1.0, 0.6, 0.3, 0.15, 0.07, 0.02, 0.005, 0.0, math.nan]),
            st.sampled_from([1.0, 1.5, 4.0]),  # the board's widen factor
            st.integers(min_value=0, max_value=4),  # trades before the book
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=0, max_value=5),  # the instrument's szDecimals
)
def test_the_quote_is_the_reference_implementations(
    steps: list[tuple[float, float, float, float, float, int]], sz_decimals: int
) -> None:
    """The lean quote gives the plan of the quote before it (quote_reference: the gate on its
    inputs object, the tier and the GLFT coefficients afresh, the reference ladder): orders,
    gate, tier, GLFT values, spread chain and top prices alike, step after step, over books,
    trades, inventories, headrooms and widen factors that open and close the gate."""
    quoter = SymbolQuoter(perp("BTC", sz_decimals), StrategyConfig(symbols=("BTC",)))
    now = _warm(quoter)
    mid = 95_000.0
    for dt, move_bps, inventory, headroom, widen, trades in steps:
        now += dt
        mid *= 1 + move_bps / 1e4
        for i in range(trades):
            side = Side.BUY if i % 2 else Side.SELL
            quoter.on_trade(_trade(mid * (1 + side.sign * (i + 1) * 1e-4), now, side), now)
        quoter.on_book(_book(mid, now), now)
        quoter.set_position(inventory)
        quoter.set_headroom(headroom)
        quoter.set_risk_factor(widen)
        expected = reference_quote(quoter, now)
        assert quoter.quote(now) == expected
