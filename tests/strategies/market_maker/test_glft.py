"""GLFT quotes: hand-computed values, limits, symmetry, post-only clamping and monotonicity."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.strategies.market_maker.glft import GlftParams, glft_coefficients, glft_quotes

# Hand-checked: x = xi*delta/k; c1 = ln(1+x)/(xi*delta);
# c2 = sqrt(g/(2*A*delta*k)*(1+x)^(k/(xi*delta)+1)).
# Set 1: sigma .5, A 1.5, k 2, g = xi = .1, delta 1: x = .05, c1 = 10*ln(1.05),
#        c2 = sqrt(1/60 * 1.05**21) = sqrt(0.0464327...) = 0.2154825...
# Set 2: sigma 3, A .8, k .05, g .01, xi .02, delta .5: x = .2, c1 = 100*ln(1.2),
#        c2 = sqrt(.25 * 1.2**6) = sqrt(0.746496) = 0.864 exactly.
CASES = [
    # sigma, A, k, gamma, xi, delta, q, c1, c2
    (0.5, 1.5, 2.0, 0.1, 0.1, 1.0, 2.0, 0.4879016416943205, 0.21548250471912422),
    (3.0, 0.8, 0.05, 0.01, 0.02, 0.5, -3.0, 18.232155679395458, 0.864),
]


@pytest.mark.parametrize(("sigma", "a", "k", "gamma", "xi", "delta", "q", "c1", "c2"), CASES)
def test_hand_computed(
    sigma: float,
    a: float,
    k: float,
    gamma: float,
    xi: float,
    delta: float,
    q: float,
    c1: float,
    c2: float,
) -> None:
    params = GlftParams(gamma=gamma, xi=xi, order_size=delta, max_position=100.0)
    assert glft_coefficients(a, k, params) == pytest.approx((c1, c2), rel=1e-12)
    mid = 1000.0
    quotes = glft_quotes(mid, None, None, sigma, a, k, q, params)
    half = c1 + delta / 2 * sigma * c2
    skew = sigma * c2
    assert quotes.half_spread == pytest.approx(half, rel=1e-12)
    assert quotes.skew == pytest.approx(skew, rel=1e-12)
    assert quotes.reservation == pytest.approx(mid - skew * q, rel=1e-12)
    assert quotes.bid == pytest.approx(mid - skew * q - half, rel=1e-12)
    assert quotes.ask == pytest.approx(mid - skew * q + half, rel=1e-12)


def test_literal_quote() -> None:
    params = GlftParams(gamma=0.1, order_size=1.0, max_position=5.0)  # xi defaults to gamma
    quotes = glft_quotes(100.0, 99.0, 101.0, 0.5, 1.5, 2.0, 2.0, params)
    # reservation = 100 - 2 * 0.10774125..., half spread = 0.48790164 + 0.5 * 0.10774125
    assert quotes.reservation == pytest.approx(99.78451749528087)
    assert quotes.half_spread == pytest.approx(0.5417722678741015)
    assert quotes.bid == pytest.approx(99.24274522740677)
    assert quotes.ask == pytest.approx(100.32628976315497)


def test_inventory_limits_suppress_the_right_side() -> None:
    params = GlftParams(gamma=0.1, order_size=1.0, max_position=3.0)
    long = glft_quotes(100.0, 99.0, 101.0, 0.5, 1.5, 2.0, 3.0, params)
    assert long.bid is None
    assert long.ask is not None
    short = glft_quotes(100.0, 99.0, 101.0, 0.5, 1.5, 2.0, -3.0, params)
    assert short.ask is None
    assert short.bid is not None
    inside = glft_quotes(100.0, 99.0, 101.0, 0.5, 1.5, 2.0, 2.0, params)
    assert inside.bid is not None
    assert inside.ask is not None


def test_zero_sigma_gives_no_skew_and_c1_half_spread() -> None:
    params = GlftParams(gamma=0.1, order_size=1.0)
    quotes = glft_quotes(100.0, None, None, 0.0, 1.5, 2.0, 4.0, params)
    assert quotes.skew == 0.0
    assert quotes.half_spread == pytest.approx(10 * math.log(1.05))
    assert quotes.reservation == 100.0
    tiny = glft_quotes(100.0, None, None, 1e-9, 1.5, 2.0, 4.0, params)
    assert tiny.skew == pytest.approx(0.0, abs=1e-8)
    assert tiny.half_spread == pytest.approx(10 * math.log(1.05), abs=1e-8)


@pytest.mark.parametrize(
    ("a", "k", "sigma", "match"),
    [
        (0.0, 1.0, 1.0, "A > 0"),
        (1.0, 0.0, 1.0, "k > 0"),
        (1.0, -2.0, 1.0, "k > 0"),
        (-1.0, 1.0, 1.0, "A > 0"),
        (1.0, 1.0, -0.1, "sigma >= 0"),
    ],
)
def test_degenerate_inputs(a: float, k: float, sigma: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        glft_quotes(100.0, None, None, sigma, a, k, 0.0, GlftParams())


positive_floats = st.floats(min_value=1e-3, max_value=1e3)


@given(
    q=st.floats(min_value=-5.0, max_value=5.0),
    sigma=st.floats(min_value=0.0, max_value=10.0),
    a=positive_floats,
    k=positive_floats,
    gamma=st.floats(min_value=1e-3, max_value=10.0),
)
def test_symmetry(q: float, sigma: float, a: float, k: float, gamma: float) -> None:
    params = GlftParams(gamma=gamma, max_position=10.0)
    mid = 1000.0
    up = glft_quotes(mid, None, None, sigma, a, k, q, params)
    down = glft_quotes(mid, None, None, sigma, a, k, -q, params)
    assert up.half_spread == down.half_spread
    assert up.reservation - mid == pytest.approx(mid - down.reservation, rel=1e-9, abs=1e-9)
    if up.bid is not None and down.ask is not None:
        assert mid - up.bid == pytest.approx(down.ask - mid, rel=1e-9, abs=1e-9)
    if up.ask is not None and down.bid is not None:
        assert up.ask - mid == pytest.approx(mid - down.bid, rel=1e-9, abs=1e-9)
    # With a moderate spread every side is present and the mirror is exact.
    near = glft_quotes(mid, None, None, sigma, 1.0, 1.0, q, GlftParams(gamma=0.1))
    far = glft_quotes(mid, None, None, sigma, 1.0, 1.0, -q, GlftParams(gamma=0.1))
    assert near.bid is not None
    assert far.ask is not None
    assert mid - near.bid == pytest.approx(far.ask - mid, rel=1e-9, abs=1e-9)


@given(
    mid=st.floats(min_value=1.0, max_value=1e5),
    bid_off=st.floats(min_value=-0.05, max_value=0.05),
    width=st.floats(min_value=-0.01, max_value=0.05),
    tick_frac=st.one_of(st.none(), st.floats(min_value=1e-6, max_value=1e-3)),
    sigma=st.floats(min_value=0.0, max_value=100.0),
    a=positive_floats,
    k=st.floats(min_value=1e-4, max_value=1e3),
    q=st.floats(min_value=-20.0, max_value=20.0),
    gamma=st.floats(min_value=1e-4, max_value=10.0),
)
def test_never_crosses_the_book(
    mid: float,
    bid_off: float,
    width: float,
    tick_frac: float | None,
    sigma: float,
    a: float,
    k: float,
    q: float,
    gamma: float,
) -> None:
    best_bid = mid * (1 + bid_off)
    best_ask = best_bid + mid * width  # may be locked or crossed too
    tick = None if tick_frac is None else mid * tick_frac
    params = GlftParams(gamma=gamma, max_position=10.0)
    quotes = glft_quotes(mid, best_bid, best_ask, sigma, a, k, q, params, tick=tick)
    if quotes.bid is not None:
        assert quotes.bid < best_ask
        assert quotes.bid > 0
    if quotes.ask is not None:
        assert quotes.ask > best_bid
    if quotes.bid is not None and quotes.ask is not None:
        assert quotes.bid < quotes.ask


@given(
    sigma=st.floats(min_value=1e-3, max_value=10.0),
    a=positive_floats,
    k=positive_floats,
    gamma=st.floats(min_value=1e-3, max_value=10.0),
    factor=st.floats(min_value=1.01, max_value=10.0),
    xi=st.floats(min_value=1e-3, max_value=10.0),
)
def test_larger_gamma_widens_the_spread(
    sigma: float, a: float, k: float, gamma: float, factor: float, xi: float
) -> None:
    # With xi held fixed c1 does not move and c2 grows with gamma.
    low = glft_quotes(100.0, None, None, sigma, a, k, 0.0, GlftParams(gamma=gamma, xi=xi))
    high = glft_quotes(100.0, None, None, sigma, a, k, 0.0, GlftParams(gamma=gamma * factor, xi=xi))
    assert high.half_spread > low.half_spread
