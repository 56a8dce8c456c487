"""Volatility and intensity estimators: unit behaviour, and recovering the simulator's truth."""

from __future__ import annotations

import itertools
import math
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.strategies.market_maker.estimators import (
    IntensityConfig,
    IntensityEstimator,
    VolatilityConfig,
    VolatilityEstimator,
    fit_intensity,
)
from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine
from mm.venues.sim.events import Trade
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket
from mm.venues.sim.universe import UNIVERSE, specs_for


def test_volatility_warmup_and_value() -> None:
    estimator = VolatilityEstimator(
        VolatilityConfig(window_s=100.0, sample_interval_s=1.0, min_samples=4)
    )
    assert estimator.estimate() is None
    # Alternating +1 / -1 moves, updated every half second: samples at whole seconds.
    mids = [100.0, 101.0, 100.0, 101.0, 100.0]
    for second, mid in enumerate(mids):
        estimator.on_mid(second, mid)
        estimator.on_mid(second + 0.5, mid)
        if second < 4:
            assert estimator.estimate() is None
    diffs = [1.0, -1.0, 1.0, -1.0]
    expected = math.sqrt(sum(d * d for d in diffs) / 3)  # mean 0, ddof 1
    assert estimator.estimate() == pytest.approx(expected)
    assert estimator.estimates()["samples"] == 4.0
    assert math.isnan(VolatilityEstimator(VolatilityConfig()).estimates()["sigma"])


def test_volatility_samples_the_prevailing_mid_and_rolls() -> None:
    estimator = VolatilityEstimator(
        VolatilityConfig(window_s=10.0, sample_interval_s=2.0, min_samples=2)
    )
    estimator.on_mid(0.0, 10.0)
    estimator.on_mid(3.0, 12.0)  # the sample at t=2 is still 10
    estimator.on_mid(4.0, 14.0)  # the sample at t=4 is 14
    assert estimator.estimate() == pytest.approx(math.sqrt(((0 - 2) ** 2 + (4 - 2) ** 2) / 1 / 2))
    estimator.on_mid(100.0, 14.0)  # a long gap: old samples fall out of the window
    assert estimator.sample_count == 5
    assert estimator.estimate() == pytest.approx(0.0)


class _TwoPassVolatility:
    """The volatility estimator as it was before issue 16, O(window) per estimate: the oracle
    the incremental one must equal."""

    def __init__(self, config: VolatilityConfig) -> None:
        self.config = config
        self.samples: deque[tuple[float, float]] = deque()
        self.next_sample: float | None = None
        self.last_mid: float | None = None

    def on_mid(self, now: float, mid: float) -> None:
        interval = self.config.sample_interval_s
        if self.next_sample is None or self.last_mid is None:
            self.samples.append((now, mid))
            self.next_sample = now + interval
        else:
            while self.next_sample <= now:
                value = mid if self.next_sample == now else self.last_mid
                self.samples.append((self.next_sample, value))
                self.next_sample += interval
        self.last_mid = mid
        horizon = now - self.config.window_s
        while self.samples and self.samples[0][0] < horizon:
            self.samples.popleft()

    def confidence(self, now: float) -> float:
        horizon = now - self.config.window_s
        count = max(sum(1 for at, _ in self.samples if at >= horizon) - 1, 0)
        return min(count / max(int(self.config.window_s / self.config.sample_interval_s), 1), 1.0)

    def estimate(self) -> float | None:
        count = len(self.samples) - 1
        if count < self.config.min_samples:
            return None
        values = [mid for _, mid in self.samples]
        diffs = [b - a for a, b in itertools.pairwise(values)]
        mean = math.fsum(diffs) / count
        variance = math.fsum((d - mean) ** 2 for d in diffs) / (count - 1)
        return math.sqrt(variance / self.config.sample_interval_s)


_MIDS = st.one_of(
    st.floats(min_value=1e-4, max_value=1e6),  # prices
    st.floats(min_value=-1e5, max_value=1e5),  # 1e4 * log(mid): bps, either sign
    st.sampled_from([97_000.0, 97_000.5, 96_999.9, 0.07, 0.1, 1e-4]),  # repeats and ties
)


@settings(max_examples=300, deadline=None)
@given(
    window_s=st.sampled_from([3.0, 10.0, 30.0, 300.0]),
    interval_s=st.sampled_from([0.25, 1.0, 2.5]),
    steps=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from([0.1, 0.5, 1.0, 2.5]),
                st.floats(min_value=0.0, max_value=3.0),
                st.floats(0.0, 400.0),
            ),
            _MIDS,
        ),
        min_size=1,
        max_size=150,
    ),
)
def test_incremental_volatility_equals_the_two_pass_formula(
    window_s: float, interval_s: float, steps: list[tuple[float, float]]
) -> None:
    """After every update, with the window filling, rolling and emptying after long gaps: the
    same samples and, to float tolerance, the same sigma and confidence."""
    config = VolatilityConfig(window_s=window_s, sample_interval_s=interval_s, min_samples=2)
    estimator, oracle = VolatilityEstimator(config), _TwoPassVolatility(config)
    now = 0.0
    for dt, mid in steps:
        now += dt
        estimator.on_mid(now, mid)
        oracle.on_mid(now, mid)
        assert estimator.sample_count == max(len(oracle.samples) - 1, 0)
        assert estimator.confidence(now + dt) == oracle.confidence(now + dt)
        got, want = estimator.estimate(), oracle.estimate()
        if want is None:
            assert got is None
            continue
        assert got is not None
        values = [value for _, value in oracle.samples]
        largest = max(abs(b - a) for a, b in itertools.pairwise(values))
        tolerance = 1e-9 * largest / math.sqrt(interval_s)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=tolerance), (got, want)


def test_a_sample_leaving_between_samples_changes_the_estimate() -> None:
    """A mid exactly at a sampling time, then one between two: the oldest sample leaves the
    window with no new one coming, and the estimate (remembered between samples) follows."""
    config = VolatilityConfig(window_s=10.0, sample_interval_s=1.0, min_samples=2)
    estimator, oracle = VolatilityEstimator(config), _TwoPassVolatility(config)
    rnd = random.Random(7)
    for second in range(15):
        mid = 100.0 + rnd.random()
        estimator.on_mid(float(second), mid)
        oracle.on_mid(float(second), mid)
    before = estimator.estimate()
    estimator.on_mid(14.5, 100.0)
    oracle.on_mid(14.5, 100.0)
    assert estimator.sample_count == len(oracle.samples) - 1 == 9
    assert estimator.estimate() == pytest.approx(oracle.estimate(), rel=1e-12)
    assert estimator.estimate() != before


def test_volatility_ignores_a_non_finite_mid() -> None:
    estimator = VolatilityEstimator(
        VolatilityConfig(window_s=100.0, sample_interval_s=1.0, min_samples=2)
    )
    for second, mid in enumerate([100.0, 101.0, math.nan, 100.0, math.inf, 101.0]):
        estimator.on_mid(float(second), mid)
    # t=2 and t=4 keep the mid before them: samples 100, 101, 101, 100, 100, 101.
    diffs = [1.0, 0.0, -1.0, 0.0, 1.0]
    mean = sum(diffs) / 5
    expected = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 4)
    assert estimator.estimate() == pytest.approx(expected)


def test_fit_intensity_exact_on_exponential_counts() -> None:
    # 1000 * exp(-0.5 i) trades at depth >= i exactly (as counts, rounded) over 100 s.
    counts = [round(1000 * math.exp(-0.5 * i)) for i in range(8)] + [0]
    depths = [float(i) for i in range(8) for _ in range(counts[i] - counts[i + 1])]
    result = fit_intensity(depths, 100.0, 1.0, 8)
    assert result is not None
    a, k = result
    assert a == pytest.approx(10.0, rel=0.01)
    assert k == pytest.approx(0.5, rel=0.01)
    assert fit_intensity([], 100.0, 1.0, 8) is None
    assert fit_intensity([0.0, 0.0], 100.0, 1.0, 8) is None


def test_intensity_warmup_recalibration_and_last_good_fit() -> None:
    config = IntensityConfig(
        window_s=50.0, depth_step=1.0, depth_points=5, min_trades=10, recalibrate_s=10.0
    )
    estimator = IntensityEstimator(config)
    assert estimator.maybe_recalibrate(0.0) is None
    for i in range(20):
        estimator.on_trade(1.0 + i * 0.1, 100.0 + (i % 4), 100.0)
    assert estimator.maybe_recalibrate(5.0) is None  # not due yet
    fit = estimator.maybe_recalibrate(10.0)
    assert fit is not None
    assert fit.k > 0
    assert estimator.estimates()["fits"] == 1.0
    # Every trade ages out: the refit is impossible and the last good fit stays.
    assert estimator.maybe_recalibrate(100.0) is fit
    assert estimator.estimate() == (fit.a, fit.k)
    assert estimator.estimates()["trades"] == 0.0


def test_recovers_simulator_a_k_sigma() -> None:
    """The acceptance criterion: A (per side per s), k (per bp), sigma (bps/√s) within ±25%."""
    truth = MarketConfig(
        volatility_bps=1.0,
        jump_rate_per_hour=0.0,
        taker_a=1.5,
        taker_k=0.3,
        taker_size_usd=1_000_000.0,  # sweeps the ladder up to its limit
        liquidity_levels=20,
        liquidity_spread_bps=0.2,  # levels at 0.1, 0.6, 1.1, ... bps: just past the grid points
        liquidity_step_bps=0.5,
        liquidity_size_usd=50.0,
    )
    engine = Engine(specs_for(["BTC"]), system_users=(LIQUIDITY_USER, FLOW_USER))
    start_px = UNIVERSE["BTC"].start_px
    market = SyntheticMarket(engine, truth, {0: start_px}, random.Random(20240607))
    spec = engine.specs[0]
    bp = start_px * 1e-4  # price units per bp (the mid drifts by well under 1% in the run)
    duration_s, dt_s = 600.0, 0.1
    volatility = VolatilityEstimator(VolatilityConfig(window_s=duration_s, min_samples=100))
    intensity = IntensityEstimator(
        IntensityConfig(
            window_s=duration_s,
            depth_step=0.5 * bp,
            depth_points=16,
            min_trades=100,
            recalibrate_s=60.0,
        )
    )
    market.seed_liquidity(0)
    volatility.on_mid(0.0, market.mid[0])
    intensity.maybe_recalibrate(0.0)
    mids: list[float] = []
    for step in range(1, int(duration_s / dt_s) + 1):
        now_ms = round(step * dt_s * 1000)
        market.step(now_ms, dt_s)
        now, mid = now_ms / 1000, market.mid[0]
        mids.append(mid)
        volatility.on_mid(now, mid)
        # One taker = the trades of one time and side; its reach is its deepest fill.
        deepest: dict[tuple[int, bool], float] = {}
        for event in engine.events:
            if isinstance(event, Trade):
                px = spec.px_float(event.px)
                key = (event.time, event.taker_is_buy)
                depth = abs(px - mid)
                deepest[key] = max(deepest.get(key, 0.0), depth)
        engine.events.clear()
        for depth in deepest.values():
            intensity.on_trade(now, mid + depth, mid)
        intensity.maybe_recalibrate(now)
    fit = intensity.calibrate(duration_s)
    sigma = volatility.estimate()
    assert fit is not None
    assert sigma is not None
    a_per_side = fit.a / 2  # both sides were fed
    k_per_bp = fit.k * bp
    sigma_bps = sigma / (math.fsum(mids) / len(mids)) * 1e4
    print(
        f"A {a_per_side:.3f}/side/s vs {truth.taker_a}; k {k_per_bp:.3f}/bp vs "
        f"{truth.taker_k}; sigma {sigma_bps:.3f} bps/sqrt(s) vs {truth.volatility_bps}"
    )
    assert a_per_side == pytest.approx(truth.taker_a, rel=0.25)
    assert k_per_bp == pytest.approx(truth.taker_k, rel=0.25)
    assert sigma_bps == pytest.approx(truth.volatility_bps, rel=0.25)
