"""Unit tests for the synthetic market: reproducible tapes, a sane book, flow and cascades.

The market is pure given its random source and the times it is stepped at, so these tests
build it as ``SimVenue`` does and step it by hand: no sockets, no clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine, OrderRequest, PlaceResult
from mm.venues.sim.events import Trade
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket, poisson
from mm.venues.sim.universe import UNIVERSE, specs_for

EPOCH_MS = 1_800_000_000_000
COINS = ("BTC", "ETH")


class CountingEngine(Engine):
    """An engine that counts the orders each user sends, by either way in."""

    def __init__(self, coins: Sequence[str]) -> None:
        super().__init__(specs_for(coins), system_users=(LIQUIDITY_USER, FLOW_USER))
        self.sent: dict[str, int] = {}

    def place_ticks(
        self, user: str, asset: int, is_buy: bool, px: int, lots: int, now: int, **kw: Any
    ) -> PlaceResult:
        self.sent[user] = self.sent.get(user, 0) + 1
        return super().place_ticks(user, asset, is_buy, px, lots, now, **kw)

    def rest_system(
        self, user: str, asset: int, quotes: Sequence[tuple[bool, int, int]], now: int
    ) -> list[int]:
        self.sent[user] = self.sent.get(user, 0) + len(quotes)
        return super().rest_system(user, asset, quotes, now)


def build(
    seed: int, config: MarketConfig | None = None, coins: Sequence[str] = COINS
) -> tuple[CountingEngine, SyntheticMarket]:
    engine = CountingEngine(coins)
    start = {spec.index: UNIVERSE[spec.name].start_px for spec in engine.specs}
    market = SyntheticMarket(engine, config or MarketConfig(), start, random.Random(seed))
    market.seed_liquidity(EPOCH_MS)
    return engine, market


def run_tape(
    seed: int, steps: int, config: MarketConfig | None = None, step_ms: int = 100
) -> list[Trade]:
    engine, market = build(seed, config)
    tape: list[Trade] = []
    for index in range(1, steps + 1):
        market.step(EPOCH_MS + index * step_ms, step_ms / 1000)
        tape.extend(event for event in engine.events if isinstance(event, Trade))
        engine.events.clear()
    return tape


def assert_not_crossed(engine: Engine, *, two_sided: bool = True) -> bool:
    """Every book's best bid is below its best ask; whether every book had both sides."""
    both = True
    for asset, book in enumerate(engine.books):
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            assert not two_sided, (asset, bid, ask)
            both = False
            continue
        assert bid < ask, (asset, bid, ask)
    return both


# --- reproducibility -------------------------------------------------------------------------


def test_same_seed_same_tape() -> None:
    first = run_tape(seed=7, steps=400)
    second = run_tape(seed=7, steps=400)
    assert len(first) > 50
    assert {trade.asset for trade in first} == {0, 1}
    assert first == second


def test_different_seed_different_tape() -> None:
    assert run_tape(seed=7, steps=200) != run_tape(seed=8, steps=200)


def test_same_seed_same_mids() -> None:
    _, first = build(3)
    _, second = build(3)
    for index in range(1, 200):
        first.step(EPOCH_MS + index * 100, 0.1)
        second.step(EPOCH_MS + index * 100, 0.1)
        assert first.mid == second.mid


# --- the book --------------------------------------------------------------------------------


def test_seeded_liquidity_is_a_ladder_around_the_start_price() -> None:
    config = MarketConfig()
    engine, _ = build(1, config)
    for spec, book in zip(engine.specs, engine.books, strict=True):
        bids, asks = book.levels(True, 100), book.levels(False, 100)
        assert len(bids) == len(asks) == config.liquidity_levels
        start = UNIVERSE[spec.name].start_px
        best_bid, best_ask = spec.px_float(bids[0][0]), spec.px_float(asks[0][0])
        half_spread = config.liquidity_spread_bps / 2 * 1e-4
        assert best_bid == pytest.approx(start * (1 - half_spread), rel=2e-5)
        assert best_ask == pytest.approx(start * (1 + half_spread), rel=2e-5)
        assert all(level[1] > 0 for level in bids + asks)


def test_the_book_is_never_crossed_after_a_step() -> None:
    # Heavy flow and a wild mid: takers may sweep a side empty, but never cross the book.
    config = MarketConfig(taker_a=20.0, volatility_bps=20.0, jump_rate_per_hour=3600.0)
    engine, market = build(11, config)
    two_sided = 0
    for index in range(1, 400):
        market.step(EPOCH_MS + index * 100, 0.1)
        two_sided += assert_not_crossed(engine, two_sided=False)
    assert two_sided > 300


def test_the_default_market_keeps_a_two_sided_book() -> None:
    engine, market = build(12)
    for index in range(1, 300):
        market.step(EPOCH_MS + index * 100, 0.1)
        assert_not_crossed(engine)


def test_a_user_quote_the_ladder_crosses_is_traded() -> None:
    engine, market = build(5, MarketConfig(taker_a=0.0, volatility_bps=0.0, jump_size_bps=0.0))
    user = "0x" + "12" * 20
    engine.fund(user, 100_000.0)
    spec = engine.specs[0]
    best_ask = engine.books[0].best_ask()
    assert best_ask is not None
    # The user joins the best ask; then the mid jumps up, and the new bid ladder crosses it.
    result = engine.place(user, OrderRequest(0, False, spec.px_str(best_ask), "0.01"), EPOCH_MS)
    assert getattr(result, "oid", None) is not None
    market.mid[0] *= 1.01
    engine.events.clear()
    market.step(EPOCH_MS + 100, 0.1)
    trades = [event for event in engine.events if isinstance(event, Trade)]
    assert trades
    assert trades[0].seller == user
    assert_not_crossed(engine)


def test_the_ladder_replenishes_after_a_sweep() -> None:
    config = MarketConfig(taker_a=0.0)
    engine, market = build(2, config)
    spec, book = engine.specs[0], engine.books[0]
    floor = spec.px_str(spec.round_px(market.mid[0] * 0.5, up=False))
    result = engine.place(FLOW_USER, OrderRequest(0, False, floor, "5.0", tif="Ioc"), EPOCH_MS)
    assert getattr(result, "total_sz", 0) > 0
    assert book.best_bid() is None  # every bid was taken
    assert len(book.levels(False, 100)) == config.liquidity_levels
    market.step(EPOCH_MS + 100, 0.1)
    assert len(book.levels(True, 100)) == config.liquidity_levels
    assert len(book.levels(False, 100)) == config.liquidity_levels
    assert_not_crossed(engine)


# --- flow ------------------------------------------------------------------------------------


def test_taker_arrivals_follow_the_rate() -> None:
    config = MarketConfig(taker_a=1.5, liquidity_levels=2)
    engine, market = build(9, config)
    liquidity_orders = engine.sent[LIQUIDITY_USER]
    seconds = 600
    for index in range(1, seconds + 1):
        market.step(EPOCH_MS + index * 1000, 1.0)
    expected = config.taker_a * 2 * seconds * len(COINS)  # two sides per coin
    assert engine.sent[FLOW_USER] == pytest.approx(expected, rel=0.08)
    assert engine.sent[LIQUIDITY_USER] - liquidity_orders == seconds * len(COINS) * 2 * 2


def test_no_takers_no_trades() -> None:
    assert run_tape(seed=4, steps=200, config=MarketConfig(taker_a=0.0)) == []


def test_deeper_takers_trade_more() -> None:
    shallow = run_tape(seed=4, steps=300, config=MarketConfig(taker_k=2.0))
    deep = run_tape(seed=4, steps=300, config=MarketConfig(taker_k=0.1))
    assert len(deep) > 2 * len(shallow)


# --- cascades --------------------------------------------------------------------------------


def test_a_cascade_moves_the_mid_by_its_size() -> None:
    engine, market = build(13)
    start_mid = market.mid[0]
    other_start = market.mid[1]
    market.start_cascade(0, -0.05, 10.0, EPOCH_MS)
    for index in range(1, 151):  # 15 s: the cascade and 5 s after it
        market.step(EPOCH_MS + index * 100, 0.1)
    assert market.cascades == []
    assert market.mid[0] / start_mid == pytest.approx(0.95, abs=0.006)
    assert market.mid[1] / other_start == pytest.approx(1.0, abs=0.006)  # other coins stay
    mark = engine.mark(0)
    assert mark is not None
    assert mark == pytest.approx(market.mid[0], rel=2e-4)  # the book follows the mid
    assert_not_crossed(engine)


def test_a_cascade_is_spread_over_its_duration() -> None:
    config = attrs.evolve(MarketConfig(), volatility_bps=0.0, jump_rate_per_hour=0.0)
    _, market = build(13, config)
    start_mid = market.mid[0]
    market.start_cascade(0, 0.10, 4.0, EPOCH_MS)
    for index in range(1, 21):  # half way
        market.step(EPOCH_MS + index * 100, 0.1)
    assert math.log(market.mid[0] / start_mid) == pytest.approx(math.log(1.10) / 2, rel=0.03)


def test_a_cascade_moves_the_mid_by_exactly_its_size_without_noise() -> None:
    config = attrs.evolve(MarketConfig(), volatility_bps=0.0, jump_rate_per_hour=0.0)
    _, market = build(13, config)
    start_mid = market.mid[0]
    market.start_cascade(0, -0.05, 10.0, EPOCH_MS)
    for index in range(1, 151):
        market.step(EPOCH_MS + index * 100, 0.1)
    assert market.mid[0] / start_mid == pytest.approx(0.95, rel=1e-6)


# --- poisson ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [0.05, 0.5, 1.5, 4.0])
def test_poisson_mean(mean: float) -> None:
    rng = random.Random(17)
    draws = [poisson(rng, mean) for _ in range(20_000)]
    average = sum(draws) / len(draws)
    variance = sum((draw - average) ** 2 for draw in draws) / len(draws)
    assert average == pytest.approx(mean, rel=0.05)
    assert variance == pytest.approx(mean, rel=0.08)
    assert min(draws) == 0


def test_poisson_of_nothing_is_zero() -> None:
    rng = random.Random(1)
    assert poisson(rng, 0.0) == 0
    assert poisson(rng, -1.0) == 0
