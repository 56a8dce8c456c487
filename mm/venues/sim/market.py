"""The synthetic market: a mid-price process, replenishing liquidity and Poisson taker flow.

Pure given its random source and the times it is stepped at. Each step:

- the mid moves as a diffusion (``volatility_bps`` per square root of a second) plus Poisson
  jumps, plus the drift of any running cascade;
- the liquidity provider re-quotes a ladder around the new mid (``liquidity_levels`` a side,
  the first ``liquidity_spread_bps / 2`` from the mid, then every ``liquidity_step_bps``);
  quotes of other users that the new ladder crosses are traded, as on a real venue;
- takers arrive on each side at rate ``taker_a`` per second, each reaching a depth D drawn
  from an exponential law with rate ``taker_k`` per bp, so a price at depth d is reached at
  rate ``A * exp(-k * d)``; a taker sends an IOC limit at ``mid ± D`` for ``taker_size_usd``.
"""

from __future__ import annotations

import math
import random

import attrs

from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine, OrderRequest

LIQUIDITY_USER = "0x000000000000000000000000000000000000a11c"
FLOW_USER = "0x0000000000000000000000000000000000000f10"
BPS = 1e-4


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    if mean <= 0:
        return 0
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@attrs.define
class Cascade:
    asset: int
    start_ms: int
    end_ms: int
    log_drift_per_s: float

    def drift(self, step_start_ms: float, step_end_ms: float) -> float:
        """Log move over the part of a step that overlaps the cascade."""
        overlap = min(step_end_ms, self.end_ms) - max(step_start_ms, self.start_ms)
        return self.log_drift_per_s * overlap / 1000 if overlap > 0 else 0.0


class SyntheticMarket:
    def __init__(
        self,
        engine: Engine,
        config: MarketConfig,
        start_px: dict[int, float],
        rng: random.Random,
    ) -> None:
        self.engine = engine
        self.config = config
        self.mid = dict(start_px)
        self.rng = rng
        self.cascades: list[Cascade] = []
        self._ladder: dict[int, list[int]] = {asset: [] for asset in start_px}

    def start_cascade(self, asset: int, move: float, duration_s: float, now_ms: int) -> None:
        """Move the mid by the fraction ``move`` (e.g. -0.05) over ``duration_s``."""
        drift = math.log1p(move) / duration_s
        self.cascades.append(Cascade(asset, now_ms, now_ms + int(duration_s * 1000), drift))

    def seed_liquidity(self, now_ms: int) -> None:
        for asset in self.mid:
            self._requote(asset, now_ms)

    def step(self, now_ms: int, dt_s: float) -> None:
        config = self.config
        rng = self.rng
        step_start_ms = now_ms - dt_s * 1000
        for asset in self.mid:
            log_move = config.volatility_bps * BPS * math.sqrt(dt_s) * rng.gauss(0.0, 1.0)
            for _ in range(poisson(rng, config.jump_rate_per_hour / 3600 * dt_s)):
                log_move += config.jump_size_bps * BPS * rng.gauss(0.0, 1.0)
            for cascade in self.cascades:
                if cascade.asset == asset:
                    log_move += cascade.drift(step_start_ms, now_ms)
            self.mid[asset] *= math.exp(log_move)
            self._requote(asset, now_ms)
            self._takers(asset, now_ms, dt_s)
        self.cascades = [c for c in self.cascades if c.end_ms > now_ms]

    def _requote(self, asset: int, now_ms: int) -> None:
        engine = self.engine
        for oid in self._ladder[asset]:
            engine.cancel(LIQUIDITY_USER, asset, oid, now_ms)
        spec = engine.specs[asset]
        config = self.config
        mid = self.mid[asset]
        placed: list[int] = []
        for level in range(config.liquidity_levels):
            offset = (config.liquidity_spread_bps / 2 + level * config.liquidity_step_bps) * BPS
            for is_buy in (True, False):
                price = mid * (1 - offset) if is_buy else mid * (1 + offset)
                ticks = spec.round_px(price, up=not is_buy)
                lots = max(1, round(config.liquidity_size_usd / price * 10**spec.sz_decimals))
                request = OrderRequest(asset, is_buy, spec.px_str(ticks), spec.sz_str(lots))
                result = engine.place(LIQUIDITY_USER, request, now_ms)
                resting = getattr(result, "oid", None)
                if resting is not None and resting in engine.books[asset].orders:
                    placed.append(resting)
        self._ladder[asset] = placed

    def _takers(self, asset: int, now_ms: int, dt_s: float) -> None:
        config = self.config
        spec = self.engine.specs[asset]
        mid = self.mid[asset]
        for is_buy in (True, False):
            for _ in range(poisson(self.rng, config.taker_a * dt_s)):
                reach = self.rng.expovariate(config.taker_k) * BPS
                price = mid * (1 + reach) if is_buy else mid * (1 - reach)
                ticks = spec.round_px(price, up=not is_buy)
                lots = max(1, round(config.taker_size_usd / price * 10**spec.sz_decimals))
                request = OrderRequest(
                    asset, is_buy, spec.px_str(ticks), spec.sz_str(lots), tif="Ioc"
                )
                self.engine.place(FLOW_USER, request, now_ms)
