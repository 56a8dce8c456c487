"""Model gating from the estimators' confidence, and the confidences themselves."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.strategies.market_maker.estimators import (
    IntensityConfig,
    IntensityEstimator,
    VolatilityConfig,
    VolatilityEstimator,
    fit_intensity,
    fit_intensity_r2,
)
from mm.strategies.market_maker.model_gating import ModelGatingConfig, model_gating_factor

GATING = ModelGatingConfig(confident_at=0.5, max_factor=1.5)

# --- the factor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidences", "factor"),
    [
        ({}, 1.0),
        ({"sigma": 1.0, "intensity": 0.9}, 1.0),
        ({"sigma": 0.5, "intensity": 1.0}, 1.0),
        ({"sigma": 0.25, "intensity": 1.0}, 1.25),
        ({"sigma": 1.0, "intensity": 0.0}, 1.5),
        ({"sigma": math.nan, "intensity": 1.0}, 1.5),  # broken: no confidence
        ({"sigma": 7.0, "intensity": -2.0}, 1.5),  # clipped to [0, 1]
    ],
)
def test_the_least_confident_estimator_decides(
    confidences: dict[str, float], factor: float
) -> None:
    assert model_gating_factor(confidences, GATING) == pytest.approx(factor)
    assert model_gating_factor(list(confidences.values()), GATING) == pytest.approx(factor)


@settings(max_examples=200)
@given(st.lists(st.floats(), max_size=5), st.floats(min_value=0, max_value=1), st.integers(0, 4))
def test_the_factor_is_bounded_and_never_rises_with_confidence(
    confidences: list[float], more: float, index: int
) -> None:
    value = model_gating_factor(confidences, GATING)
    assert 1.0 <= value <= GATING.max_factor
    if confidences:
        position = index % len(confidences)
        current = confidences[position]
        if math.isfinite(current):
            raised = list(confidences)
            raised[position] = current + more
            assert model_gating_factor(raised, GATING) <= value


# --- volatility confidence ------------------------------------------------------------------


def test_volatility_confidence_is_the_window_filled() -> None:
    estimator = VolatilityEstimator(
        VolatilityConfig(window_s=100.0, sample_interval_s=1.0, min_samples=10)
    )
    assert estimator.confidence() == 0.0
    for second in range(51):
        estimator.on_mid(float(second), 100.0 + (second % 3))
    assert estimator.capacity == 100
    assert estimator.confidence() == pytest.approx(0.5)
    assert estimator.confidence(50.0) == pytest.approx(0.5)
    for second in range(51, 300):
        estimator.on_mid(float(second), 100.0 + (second % 3))
    assert estimator.confidence() == 1.0
    assert estimator.confidence(299.0 + 60.0) == pytest.approx(0.4)  # the mid stopped coming
    assert estimator.confidence(10_000.0) == 0.0
    assert estimator.confidence(math.nan) == 0.0


# --- intensity confidence -------------------------------------------------------------------


def exponential_depths(rng: random.Random, count: int, k: float) -> list[float]:
    return [rng.expovariate(k) for _ in range(count)]


def test_fit_quality_is_the_r2_of_the_log_linear_fit() -> None:
    counts = [round(1000 * math.exp(-0.5 * i)) for i in range(8)] + [0]
    exact = [float(i) for i in range(8) for _ in range(counts[i] - counts[i + 1])]
    result = fit_intensity_r2(exact, 100.0, 1.0, 8)
    assert result is not None
    assert result[2] == pytest.approx(1.0, abs=1e-4)
    assert fit_intensity(exact, 100.0, 1.0, 8) == (result[0], result[1])
    # Counts flat over most of the grid, then a cliff: no exponential at all.
    cliff = [6.5] * 500 + [7.0] * 5
    poor = fit_intensity_r2(cliff, 100.0, 1.0, 8)
    assert poor is not None
    assert poor[2] == pytest.approx(1 / 3)


def test_intensity_confidence_counts_trades_quality_and_age() -> None:
    config = IntensityConfig(
        window_s=100.0, depth_step=1.0, depth_points=8, min_trades=10, confident_trades=100
    )
    estimator = IntensityEstimator(config)
    assert estimator.confidence(0.0) == 0.0  # no fit yet
    rng = random.Random(5)
    for index, depth in enumerate(exponential_depths(rng, 50, 0.5)):
        estimator.on_trade(index * 0.1, depth, 0.0)
    fit = estimator.calibrate(5.0)
    assert fit is not None
    assert fit.trades == 50
    assert 0.9 < fit.r2 <= 1.0
    assert estimator.confidence(5.0) == pytest.approx(0.5 * fit.r2)
    for index, depth in enumerate(exponential_depths(rng, 200, 0.5)):
        estimator.on_trade(5.0 + index * 0.1, depth, 0.0)
    fit = estimator.calibrate(30.0)
    assert fit is not None
    assert estimator.confidence(30.0) == pytest.approx(fit.r2)
    assert estimator.confidence(30.0 + 50.0) == pytest.approx(fit.r2)  # half a window: fresh
    assert estimator.confidence(30.0 + 75.0) == pytest.approx(fit.r2 / 2)
    assert estimator.confidence(30.0 + 100.0) == 0.0  # a whole window since the fit
    assert estimator.confidence(math.inf) == 0.0
    assert estimator.estimates()["r2"] == fit.r2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=50), min_size=0, max_size=200),
    st.floats(min_value=0, max_value=1e3),
)
def test_confidences_are_in_the_unit_interval(depths: list[float], later: float) -> None:
    intensity = IntensityEstimator(IntensityConfig(min_trades=5, confident_trades=50))
    volatility = VolatilityEstimator(VolatilityConfig(window_s=50.0, min_samples=2))
    for index, depth in enumerate(depths):
        intensity.on_trade(index * 0.1, depth, 0.0)
        volatility.on_mid(index * 0.1, 100.0 + depth)
    intensity.calibrate(len(depths) * 0.1)
    for value in (
        intensity.confidence(len(depths) * 0.1 + later),
        volatility.confidence(len(depths) * 0.1 + later),
        volatility.confidence(),
    ):
        assert 0.0 <= value <= 1.0
