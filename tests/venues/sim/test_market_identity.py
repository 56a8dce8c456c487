"""The market's step is the step it was before it was made cheaper, operation for operation.

``ReferenceMarket`` re-quotes as the market did before its fast paths: it cancels the ladder one
order at a time through ``Engine.cancel`` and places each level through ``Engine.place_ticks``
(the general path, through matching), rounding with ``AssetSpec.round_px``. Two engines, one
driven by each market from the same seed, must then hold the same books (the same orders with
the same oids, prices, sizes and queue positions), say the same events, give the same ids and
leave their random sources in the same state after every step. A trading user quotes around the
mid between steps, the same orders on both, so that the ladder crosses and trades her quotes and
shares price levels with them; cascades reshape the ladder's sizes.
"""

from __future__ import annotations

import random

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine, Resting
from mm.venues.sim.events import Trade
from mm.venues.sim.market import (
    BPS,
    FLOW_USER,
    LIQUIDITY_USER,
    Flow,
    SyntheticMarket,
)
from mm.venues.sim.universe import UNIVERSE, specs_for

EPOCH_MS = 1_800_000_000_000
COINS = ("BTC", "ETH", "DOGE")
TRADER = "0x" + "ab" * 20


class ReferenceMarket(SyntheticMarket):
    """The re-quote as it was: cancel and place one order at a time through the general paths."""

    def _requote(self, asset: int, now_ms: int, flow: Flow | None = None) -> None:
        engine = self.engine
        for oid in self._ladder[asset]:
            engine.cancel(LIQUIDITY_USER, asset, oid, now_ms)
        spec = engine.specs[asset]
        config = self.config
        mid = self.mid[asset]
        flow = flow or Flow()
        lots_per_unit = 10**spec.sz_decimals
        usd = {True: config.liquidity_size_usd * flow.bid_size}
        usd[False] = config.liquidity_size_usd * flow.ask_size
        placed: list[int] = []
        for level in range(config.liquidity_levels):
            offset = (config.liquidity_spread_bps / 2 + level * config.liquidity_step_bps) * BPS
            for is_buy in (True, False):
                price = mid * (1 - offset) if is_buy else mid * (1 + offset)
                ticks = spec.round_px(price, up=not is_buy)
                lots = max(1, round(usd[is_buy] / price * lots_per_unit))
                result = engine.place_ticks(LIQUIDITY_USER, asset, is_buy, ticks, lots, now_ms)
                if isinstance(result, Resting):
                    placed.append(result.oid)
        self._ladder[asset] = placed


def build(
    kind: type[SyntheticMarket], seed: int, config: MarketConfig
) -> tuple[Engine, SyntheticMarket]:
    engine = Engine(specs_for(COINS), system_users=(LIQUIDITY_USER, FLOW_USER))
    engine.fund(TRADER, 10_000_000.0)
    start = {spec.index: UNIVERSE[spec.name].start_px for spec in engine.specs}
    market = kind(engine, config, start, random.Random(seed))
    market.seed_liquidity(EPOCH_MS)
    return engine, market


def book_state(engine: Engine) -> list[object]:
    """Every book's orders by side and price, in queue order, with all their fields."""
    state: list[object] = []
    for book in engine.books:
        for side in (0, 1):
            prices = book._prices[side]
            queues = book._queues[side]
            assert sorted(queues) == prices
            state.append([(px, [attrs.astuple(order) for order in queues[px]]) for px in prices])
        state.append(sorted(book.orders))
    return state


def trader_moves(engine: Engine, market: SyntheticMarket, rng: random.Random, now: int) -> None:
    """The trader cancels some of her orders and quotes a few near the mid, some inside the
    ladder's spread and some on its levels (so they share queues with the ladder)."""
    for order in engine.open_orders(TRADER):
        if rng.random() < 0.3:
            assert engine.cancel(TRADER, order.asset, order.oid, now) is None
    for _ in range(rng.randrange(4)):
        asset = rng.randrange(len(engine.specs))
        spec = engine.specs[asset]
        is_buy = rng.random() < 0.5
        depth = rng.choice([0.5, 1.0, 2.0, 3.5, 5.0, 8.0]) * BPS
        price = market.mid[asset] * (1 - depth if is_buy else 1 + depth)
        ticks = spec.round_px(price, up=not is_buy)
        lots = max(1, round(rng.uniform(15.0, 3_000.0) / price * 10**spec.sz_decimals))
        tif = rng.choice(["Gtc", "Gtc", "Alo"])
        engine.place_ticks(TRADER, asset, is_buy, ticks, lots, now, tif=tif)


def compare(seed: int, config: MarketConfig, steps: int, cascade: float) -> list[Trade]:
    """Run both markets side by side and assert they agree after every step; the trades."""
    engines_markets = [build(kind, seed, config) for kind in (ReferenceMarket, SyntheticMarket)]
    moves = [random.Random(seed + 1), random.Random(seed + 1)]
    trades: list[Trade] = []
    for engine, _ in engines_markets:
        engine.events.clear()
    for index in range(1, steps + 1):
        now = EPOCH_MS + index * config.step_ms
        if index == steps // 3 and cascade:
            for _, market in engines_markets:
                market.start_cascade(1, cascade, 2.0, now, intensity=3.0, thinning=0.5)
        seen = []
        for (engine, market), rng in zip(engines_markets, moves, strict=True):
            trader_moves(engine, market, rng, now)
            market.step(now, config.step_ms / 1000)
            seen.append(
                (
                    repr(engine.events),
                    book_state(engine),
                    market.mid,
                    market._ladder,
                    market.rng.getstate(),
                    rng.getstate(),
                    engine._next_oid,
                    engine._next_tid,
                )
            )
            if engine is engines_markets[1][0]:
                trades.extend(event for event in engine.events if isinstance(event, Trade))
            engine.events.clear()
        assert seen[0] == seen[1], index
    return trades


def test_the_step_matches_the_reference_on_the_shipped_config() -> None:
    trades = compare(7, MarketConfig(), steps=200, cascade=-0.02)
    # The comparison saw what it is for: the ladder trading the trader's quotes (she is the
    # maker of a liquidity user's buy or sell), and takers trading the ladder.
    liquidity = {(t.buyer, t.seller) for t in trades}
    assert (LIQUIDITY_USER, TRADER) in liquidity or (TRADER, LIQUIDITY_USER) in liquidity
    assert (FLOW_USER, LIQUIDITY_USER) in liquidity
    assert (LIQUIDITY_USER, FLOW_USER) in liquidity


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    levels=st.integers(1, 12),
    spread_bps=st.sampled_from([0.5, 2.0, 4.0, 9.0]),
    step_bps=st.sampled_from([0.3, 1.5, 4.0]),
    size_usd=st.sampled_from([5.0, 3_000.0, 50_000.0]),
    volatility_bps=st.sampled_from([0.0, 1.0, 8.0]),
    taker_a=st.sampled_from([0.0, 1.5, 10.0]),
    step_ms=st.sampled_from([100, 1_000]),
    cascade=st.sampled_from([0.0, -0.03, 0.02]),
)
def test_the_step_matches_the_reference(
    seed: int,
    levels: int,
    spread_bps: float,
    step_bps: float,
    size_usd: float,
    volatility_bps: float,
    taker_a: float,
    step_ms: int,
    cascade: float,
) -> None:
    config = MarketConfig(
        step_ms=step_ms,
        volatility_bps=volatility_bps,
        jump_rate_per_hour=360.0,
        taker_a=taker_a,
        liquidity_levels=levels,
        liquidity_spread_bps=spread_bps,
        liquidity_step_bps=step_bps,
        liquidity_size_usd=size_usd,
    )
    compare(seed, config, steps=30, cascade=cascade)
