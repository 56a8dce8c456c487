"""A cascade reshapes the flow, not only the mid: takers, one-sidedness, thin liquidity.

The market is stepped by hand (pure core); the control endpoint and the ``[sim]`` config are
checked on a running venue and through the config loader.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import trio

from mm.settings import ConfigError, structure_section
from mm.venues.sim.config import CascadeConfig, MarketConfig, SimConfig
from mm.venues.sim.engine import Engine, PlaceResult
from mm.venues.sim.events import Trade
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, Cascade, Flow, SyntheticMarket
from mm.venues.sim.universe import UNIVERSE, specs_for
from tests.venues.sim.test_server import TIMEOUT, http, running, sim_config

EPOCH_MS = 1_800_000_000_000
STILL = MarketConfig(volatility_bps=0.0, jump_rate_per_hour=0.0)


class TakerCounter(Engine):
    """An engine that counts the synthetic takers' orders by side."""

    def __init__(self, coins: Sequence[str]) -> None:
        super().__init__(specs_for(coins), system_users=(LIQUIDITY_USER, FLOW_USER))
        self.buys = 0
        self.sells = 0

    def place_ticks(
        self, user: str, asset: int, is_buy: bool, px: int, lots: int, now: int, **kw: Any
    ) -> PlaceResult:
        if user == FLOW_USER:
            if is_buy:
                self.buys += 1
            else:
                self.sells += 1
        return super().place_ticks(user, asset, is_buy, px, lots, now, **kw)


def build(
    seed: int = 3, config: MarketConfig = STILL, coins: Sequence[str] = ("BTC",)
) -> tuple[TakerCounter, SyntheticMarket]:
    engine = TakerCounter(coins)
    start = {spec.index: UNIVERSE[spec.name].start_px for spec in engine.specs}
    market = SyntheticMarket(engine, config, start, random.Random(seed))
    market.seed_liquidity(EPOCH_MS)
    return engine, market


def run(market: SyntheticMarket, start_ms: int, seconds: float, step_ms: int = 100) -> int:
    steps = round(seconds * 1000 / step_ms)
    for index in range(1, steps + 1):
        market.step(start_ms + index * step_ms, step_ms / 1000)
    return start_ms + steps * step_ms


def side_notional(engine: Engine, is_buy: bool, asset: int = 0) -> float:
    """Resting notional (USDC) of one side of the book."""
    spec = engine.specs[asset]
    levels = engine.books[asset].levels(is_buy, 100)
    return sum(spec.notional(px, sz) for px, sz, _ in levels)


# --- takers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("move", [-0.05, 0.05])
def test_the_moving_side_takers_arrive_faster_and_the_other_side_stays_away(move: float) -> None:
    engine, market = build()
    seconds = 120.0
    taker_a = STILL.taker_a
    market.start_cascade(0, move, seconds, EPOCH_MS, intensity=8.0, one_sided=0.5)
    run(market, EPOCH_MS, seconds)
    moving, other = (engine.sells, engine.buys) if move < 0 else (engine.buys, engine.sells)
    assert moving == pytest.approx(8.0 * taker_a * seconds, rel=0.1)
    assert other == pytest.approx(0.5 * taker_a * seconds, rel=0.25)


def test_a_fully_one_sided_trend_has_no_takers_on_the_other_side() -> None:
    engine, market = build()
    market.start_cascade(0, -0.01, 60.0, EPOCH_MS, intensity=2.0, one_sided=1.0)
    run(market, EPOCH_MS, 60.0)
    assert engine.buys == 0
    assert engine.sells == pytest.approx(2.0 * STILL.taker_a * 60.0, rel=0.15)


def test_the_flow_returns_to_normal_after_the_cascade() -> None:
    engine, market = build()
    market.start_cascade(0, -0.05, 10.0, EPOCH_MS, intensity=8.0, one_sided=1.0, thinning=0.6)
    end = run(market, EPOCH_MS, 10.0)
    assert market.cascades == []
    engine.buys = engine.sells = 0
    run(market, end, 200.0)
    expected = STILL.taker_a * 200.0
    assert engine.buys == pytest.approx(expected, rel=0.15)
    assert engine.sells == pytest.approx(expected, rel=0.15)
    quiet = side_notional(engine, True), side_notional(engine, False)
    assert quiet[0] == pytest.approx(quiet[1], rel=0.05)  # both sides full again


def test_a_plain_drift_leaves_the_flow_alone() -> None:
    engine, market = build()
    market.start_cascade(0, -0.05, 120.0, EPOCH_MS)  # neutral flow parameters
    run(market, EPOCH_MS, 120.0)
    expected = STILL.taker_a * 120.0
    assert engine.buys == pytest.approx(expected, rel=0.15)
    assert engine.sells == pytest.approx(expected, rel=0.15)


# --- liquidity -------------------------------------------------------------------------------


@pytest.mark.parametrize(("move", "hit_bids"), [(-0.05, True), (0.05, False)])
def test_the_side_being_hit_thins(move: float, hit_bids: bool) -> None:
    config = attrs.evolve(STILL, taker_a=0.0)  # no takers: what rests is what was quoted
    engine, market = build(config=config)
    before = side_notional(engine, True), side_notional(engine, False)
    market.start_cascade(0, move, 10.0, EPOCH_MS, thinning=0.6)
    run(market, EPOCH_MS, 1.0)
    during = side_notional(engine, True), side_notional(engine, False)
    hit, kept = (0, 1) if hit_bids else (1, 0)
    assert during[hit] == pytest.approx(0.4 * before[hit], rel=0.02)
    assert during[kept] == pytest.approx(before[kept], rel=0.02)


def test_a_cascade_is_reproducible_from_its_seed() -> None:
    def tape(seed: int) -> list[Trade]:
        engine, market = build(seed, MarketConfig(), coins=("BTC", "ETH"))
        market.start_cascade(0, -0.05, 10.0, EPOCH_MS, intensity=8.0, one_sided=0.5, thinning=0.6)
        trades: list[Trade] = []
        for index in range(1, 151):
            market.step(EPOCH_MS + index * 100, 0.1)
            trades.extend(event for event in engine.events if isinstance(event, Trade))
            engine.events.clear()
        return trades

    first = tape(21)
    assert len(first) > 100
    assert first == tape(21)
    assert first != tape(22)


# --- weights ---------------------------------------------------------------------------------


def test_flow_is_weighted_by_the_overlap_and_cascades_multiply() -> None:
    falling = Cascade(0, 0, 10_000, -0.01, intensity=8.0, one_sided=0.5, thinning=0.6)
    flow = Flow()
    flow.add(falling, 0.5)  # half the step
    assert flow.sell_rate == pytest.approx(4.5)
    assert flow.buy_rate == pytest.approx(0.75)
    assert flow.bid_size == pytest.approx(0.7)
    assert (flow.ask_size, flow.buy_rate > 0) == (1.0, True)
    flow.add(falling, 1.0)
    assert flow.sell_rate == pytest.approx(4.5 * 8.0)
    assert flow.bid_size == pytest.approx(0.7 * 0.4)
    rising = Cascade(0, 0, 10_000, 0.01, intensity=3.0, one_sided=1.0, thinning=0.5)
    flow = Flow()
    flow.add(rising, 1.0)
    assert (flow.buy_rate, flow.sell_rate, flow.ask_size, flow.bid_size) == (3.0, 0.0, 0.5, 1.0)
    still = Cascade(0, 0, 10_000, 0.0, intensity=9.0, one_sided=1.0, thinning=0.9)
    flow = Flow()
    flow.add(still, 1.0)  # no move: no side to reshape
    assert flow == Flow()


def test_a_cascade_starting_mid_step_counts_for_its_overlap() -> None:
    cascade = Cascade(0, 1_050, 2_000, -0.01)
    assert cascade.overlap_ms(1_000, 1_100) == 50
    assert cascade.overlap_ms(2_000, 2_100) == 0
    assert cascade.overlap_ms(0, 5_000) == 950


# --- config and the control endpoint ---------------------------------------------------------


def test_cascade_config_defaults_are_a_liquidation_cascade() -> None:
    cascade = CascadeConfig()
    assert cascade.intensity > 1
    assert 0 < cascade.one_sided < 1
    assert 0 < cascade.thinning < 1


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"thinning": 1.0}, "sim.cascades: [0].thinning: must be >= 0 and < 1"),
        ({"one_sided": 1.5}, "sim.cascades: [0].one_sided: must be between 0 and 1"),
        ({"intensity": -1.0}, "sim.cascades: [0].intensity: must be >= 0"),
        ({"move": -1.0}, "sim.cascades: [0].move: must be > -1"),
        ({"duration_s": 0.0}, "sim.cascades: [0].duration_s: must be > 0"),
    ],
)
def test_scheduled_cascades_are_checked_entry_by_entry(
    entry: dict[str, float], problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        structure_section({"cascades": [{"coin": "BTC", **entry}]}, SimConfig, "sim")
    assert any(line.startswith(problem) for line in raised.value.errors), raised.value.errors


def test_scheduled_cascade_keys_are_read() -> None:
    entry = {"coin": "ETH", "start_s": 5.0, "move": -0.01, "duration_s": 120.0}
    flow = {"intensity": 2.0, "one_sided": 1.0, "thinning": 0.0}
    sim = structure_section({"cascades": [{**entry, **flow}]}, SimConfig, "sim")
    assert sim.cascades == (CascadeConfig(**entry, **flow),)  # type: ignore[arg-type]


async def test_the_endpoint_takes_the_flow_parameters() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            body = {"coin": "ETH", "move": -0.01, "duration_s": 120.0, "intensity": 2.0}
            response = await client.post("/sim/cascade", json={**body, "one_sided": 1.0})
            assert response.status_code == 200, response.text
            (cascade,) = venue.market.cascades
            assert cascade.asset == venue.engine.by_name["ETH"].index
            assert (cascade.intensity, cascade.one_sided) == (2.0, 1.0)
            assert cascade.thinning == CascadeConfig().thinning  # the default
            assert cascade.end_ms - cascade.start_ms == 120_000


async def test_the_endpoint_defaults_to_a_liquidation_cascade() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            body = {"coin": "BTC", "move": -0.05, "duration_s": 10.0}
            assert (await client.post("/sim/cascade", json=body)).status_code == 200
            (cascade,) = venue.market.cascades
            default = CascadeConfig()
            assert (cascade.intensity, cascade.one_sided, cascade.thinning) == (
                default.intensity,
                default.one_sided,
                default.thinning,
            )


@pytest.mark.parametrize(
    ("extra", "word"),
    [
        ({"thinning": 1.0}, "thinning"),
        ({"one_sided": -0.1}, "one_sided"),
        ({"intensity": "lots"}, "intensity"),
        ({"start_s": 5.0}, "start_s"),
        ({"sideways": 1}, "sideways"),
        ({"move": -1.5}, "move"),
    ],
)
async def test_the_endpoint_refuses_bad_flow_parameters(
    extra: dict[str, object], word: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with running(sim_config()) as venue, http(venue) as client:
            body = {"coin": "BTC", "move": -0.05, "duration_s": 10.0, **extra}
            response = await client.post("/sim/cascade", json=body)
            assert response.status_code == 400
            error = response.json()["error"]
            assert error.startswith("bad request"), error
            assert word in error, error
            assert venue.market.cascades == []
