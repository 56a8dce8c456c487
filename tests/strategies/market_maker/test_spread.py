"""Tests for spread composition and the defensive factor."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.strategies.market_maker.spread import (
    DefensiveConfig,
    DefensiveFactor,
    SpreadConfig,
    SpreadFactor,
    compose,
)


def test_product_and_additive() -> None:
    result = compose(
        4.0,
        {SpreadFactor.TOXICITY: 1.5, SpreadFactor.QUOTA: 2.0},
        {"shadow": 1.0, "skew": 0.5},
    )
    assert result.multiplier == pytest.approx(3.0)
    assert not result.capped
    assert result.additive_bps == pytest.approx(1.5)
    assert result.half_spread_bps == pytest.approx(13.5)
    assert result.factors[SpreadFactor.TOXICITY] == 1.5
    status = result.status()
    assert status["factor_quota"] == 2.0
    assert status["additive_shadow"] == 1.0


def test_caps() -> None:
    result = compose(
        2.0,
        {f: 3.0 for f in SpreadFactor},
        {"shadow": 50.0},
        SpreadConfig(max_multiplier=10.0, max_additive_bps=20.0),
    )
    assert result.raw_multiplier == pytest.approx(3.0**6)
    assert result.multiplier == 10.0
    assert result.capped
    assert result.additive_bps == 20.0
    assert result.half_spread_bps == pytest.approx(40.0)


def test_factors_never_tighten_and_nan_widens() -> None:
    result = compose(5.0, {SpreadFactor.RISK: 0.2, SpreadFactor.STALENESS: math.nan})
    assert result.factors[SpreadFactor.RISK] == 1.0
    assert result.factors[SpreadFactor.STALENESS] == 10.0
    assert result.half_spread_bps == pytest.approx(50.0)


def test_negative_additive_floor() -> None:
    assert compose(1.0, {}, {"rebate": -15.0}).half_spread_bps == 0.0
    assert compose(1.0, {}, {"a": -30.0}).additive_bps == -20.0


@given(
    factors=st.dictionaries(
        st.sampled_from(list(SpreadFactor)), st.floats(allow_nan=True, allow_infinity=True)
    ),
    additive=st.dictionaries(st.text(max_size=3), st.floats(min_value=-1e6, max_value=1e6)),
    base=st.floats(min_value=0.0, max_value=1e4),
    cap=st.floats(min_value=1.0, max_value=50.0),
)
def test_product_never_above_cap(
    factors: dict[SpreadFactor, float], additive: dict[str, float], base: float, cap: float
) -> None:
    config = SpreadConfig(max_multiplier=cap)
    result = compose(base, factors, additive, config)
    assert 1.0 <= result.multiplier <= cap
    assert abs(result.additive_bps) <= config.max_additive_bps
    assert result.half_spread_bps >= 0.0
    assert result.half_spread_bps <= base * cap + config.max_additive_bps + 1e-9


def test_defensive_factor_bumps_and_decays() -> None:
    factor = DefensiveFactor(DefensiveConfig(bump=0.5, max_factor=2.0, half_life_s=10.0))
    assert factor.value(0.0) == 1.0
    assert factor.on_adverse_fill(0.0) == 1.5
    assert factor.value(10.0) == pytest.approx(1.25)
    assert factor.on_adverse_fill(10.0) == pytest.approx(1.75)
    assert factor.on_adverse_fill(10.0) == 2.0  # capped
    assert factor.value(1000.0) == pytest.approx(1.0, abs=1e-9)


_FACTOR = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1.5, 12.0, math.inf, math.nan]),
)


@given(
    pairs=st.lists(st.tuples(st.sampled_from(list(SpreadFactor)), _FACTOR), max_size=8),
    base=st.floats(allow_nan=True, allow_infinity=True),
)
def test_factors_as_pairs_compose_as_the_mapping_of_them(
    pairs: list[tuple[SpreadFactor, float]], base: float
) -> None:
    """(factor, value) pairs (the quote's form, no dict of its own) give the composition their
    dict gives, a repeated factor's later value replacing the earlier as in the dict."""
    additive = {"quota_shadow": 2.5}
    by_pairs = compose(base, tuple(pairs), additive, SpreadConfig())
    by_mapping = compose(base, dict(pairs), additive, SpreadConfig())
    assert repr(by_pairs) == repr(by_mapping)
