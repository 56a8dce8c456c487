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

A cascade (:class:`Cascade`) drifts the mid and reshapes the flow while it runs: the takers on
the moving side (sellers in a fall) arrive at ``intensity`` times their rate, ``one_sided`` of
the other side's takers stay away, and ``thinning`` of the liquidity on the side being hit (bids
in a fall) is withdrawn. Its effects are weighted by the part of each step it overlaps, and
overlapping cascades multiply. Outside cascades the market draws exactly the random numbers it
always did, so a seed's calm tape does not depend on this.
"""

from __future__ import annotations

import math
import random

import attrs

from mm.venues.sim.assets import round_pxs
from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine

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
    """A running cascade on one asset; see the module docstring for the flow parameters."""

    asset: int
    start_ms: int
    end_ms: int
    log_drift_per_s: float
    intensity: float = 1.0  # the moving side's taker rate multiplier
    one_sided: float = 0.0  # the share of the other side's takers that stay away
    thinning: float = 0.0  # the share of the hit side's resting liquidity withdrawn

    def overlap_ms(self, step_start_ms: float, step_end_ms: float) -> float:
        return max(min(step_end_ms, self.end_ms) - max(step_start_ms, self.start_ms), 0.0)

    def drift(self, step_start_ms: float, step_end_ms: float) -> float:
        """Log move over the part of a step that overlaps the cascade."""
        return self.log_drift_per_s * self.overlap_ms(step_start_ms, step_end_ms) / 1000

    @property
    def falling(self) -> bool | None:
        """True for a fall, False for a rise, None for no move (no side to reshape)."""
        if self.log_drift_per_s == 0:
            return None
        return self.log_drift_per_s < 0


@attrs.define
class Flow:
    """Multipliers for one asset's step: taker rates per side and liquidity size per side."""

    buy_rate: float = 1.0
    sell_rate: float = 1.0
    bid_size: float = 1.0
    ask_size: float = 1.0

    def add(self, cascade: Cascade, weight: float) -> None:
        """Apply ``cascade`` over the fraction ``weight`` of the step."""
        falling = cascade.falling
        if falling is None or weight <= 0:
            return
        moving = 1.0 + (cascade.intensity - 1.0) * weight
        other = 1.0 - cascade.one_sided * weight
        hit = 1.0 - cascade.thinning * weight
        if falling:
            self.sell_rate *= moving
            self.buy_rate *= other
            self.bid_size *= hit
        else:
            self.buy_rate *= moving
            self.sell_rate *= other
            self.ask_size *= hit


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
        # Each ladder level's price as a multiple of the mid, (bid, ask): the same floats the
        # offsets give (``1 - offset`` is computed before it multiplies the mid either way).
        self._factors: list[tuple[float, float]] = []
        for level in range(config.liquidity_levels):
            offset = (config.liquidity_spread_bps / 2 + level * config.liquidity_step_bps) * BPS
            self._factors.append((1 - offset, 1 + offset))

    def start_cascade(
        self,
        asset: int,
        move: float,
        duration_s: float,
        now_ms: int,
        *,
        intensity: float = 1.0,
        one_sided: float = 0.0,
        thinning: float = 0.0,
    ) -> None:
        """Move the mid by the fraction ``move`` (e.g. -0.05) over ``duration_s``.

        ``intensity``, ``one_sided`` and ``thinning`` reshape the flow while it runs (the
        module docstring); their defaults leave the flow as it is.
        """
        drift = math.log1p(move) / duration_s
        end_ms = now_ms + int(duration_s * 1000)
        cascade = Cascade(asset, now_ms, end_ms, drift, intensity, one_sided, thinning)
        self.cascades.append(cascade)

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
            flow = Flow()
            for cascade in self.cascades:
                if cascade.asset == asset:
                    log_move += cascade.drift(step_start_ms, now_ms)
                    overlap = cascade.overlap_ms(step_start_ms, now_ms)
                    flow.add(cascade, overlap / (dt_s * 1000) if dt_s > 0 else 0.0)
            self.mid[asset] *= math.exp(log_move)
            self._requote(asset, now_ms, flow)
            self._takers(asset, now_ms, dt_s, flow)
        self.cascades = [c for c in self.cascades if c.end_ms > now_ms]

    def _requote(self, asset: int, now_ms: int, flow: Flow | None = None) -> None:
        """Cancel the asset's ladder and place a new one around the mid, best level first and
        bid before ask, each order a new oid at the back of its price's queue."""
        engine = self.engine
        engine.cancel_system(LIQUIDITY_USER, asset, self._ladder[asset], now_ms)
        spec = engine.specs[asset]
        px_decimals = spec.px_decimals
        mid = self.mid[asset]
        size_usd = self.config.liquidity_size_usd
        if flow is None:
            bid_usd = ask_usd = size_usd * 1.0  # what a neutral Flow gives, bit for bit
        else:
            bid_usd, ask_usd = size_usd * flow.bid_size, size_usd * flow.ask_size
        lots_per_unit = 10**spec.sz_decimals
        bid_prices = [mid * below for below, _ in self._factors]
        ask_prices = [mid * above for _, above in self._factors]
        bid_ticks = round_pxs(bid_prices, px_decimals, up=False)
        ask_ticks = round_pxs(ask_prices, px_decimals, up=True)
        quotes: list[tuple[bool, int, int]] = []
        for bid, bid_px, ask, ask_px in zip(
            bid_prices, bid_ticks, ask_prices, ask_ticks, strict=True
        ):
            quotes.append((True, bid_px, max(1, round(bid_usd / bid * lots_per_unit))))
            quotes.append((False, ask_px, max(1, round(ask_usd / ask * lots_per_unit))))
        self._ladder[asset] = engine.rest_system(LIQUIDITY_USER, asset, quotes, now_ms)

    def _takers(self, asset: int, now_ms: int, dt_s: float, flow: Flow | None = None) -> None:
        config = self.config
        spec = self.engine.specs[asset]
        mid = self.mid[asset]
        flow = flow or Flow()
        for is_buy in (True, False):
            rate = config.taker_a * (flow.buy_rate if is_buy else flow.sell_rate)
            for _ in range(poisson(self.rng, rate * dt_s)):
                reach = self.rng.expovariate(config.taker_k) * BPS
                price = mid * (1 + reach) if is_buy else mid * (1 - reach)
                ticks = spec.round_px(price, up=not is_buy)
                lots = max(1, round(config.taker_size_usd / price * 10**spec.sz_decimals))
                self.engine.place_ticks(FLOW_USER, asset, is_buy, ticks, lots, now_ms, tif="Ioc")
