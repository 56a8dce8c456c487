"""Tests for the API-quota tiers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Side
from mm.strategies.market_maker.quota import QuotaConfig, QuotaTier, decide


@pytest.mark.parametrize(
    ("h", "tier"),
    [
        (1.0, QuotaTier.FULL),
        (0.5, QuotaTier.FULL),
        (0.3, QuotaTier.NORMAL),
        (0.15, QuotaTier.MINIMAL),
        (0.07, QuotaTier.CONSERVATION),
        (0.02, QuotaTier.CRITICAL),
        (0.005, QuotaTier.EXHAUSTED),
    ],
)
def test_tiers(h: float, tier: QuotaTier) -> None:
    assert decide(h).tier is tier


def test_reference_values() -> None:
    full = decide(1.0)
    assert full.levels == 5
    assert full.spread_multiplier == 1.0
    assert not full.veto
    assert full.shadow_spread_bps == pytest.approx(0.5)
    assert decide(0.10).shadow_spread_bps == pytest.approx(5.0)
    assert decide(0.0).shadow_spread_bps == pytest.approx(50.0)
    hip3 = decide(0.07, inventory=2.0)
    assert hip3.spread_multiplier == pytest.approx(1 / math.sqrt(0.07))  # ~3.78x
    assert hip3.inventory_forcing
    assert hip3.side is Side.SELL
    assert decide(0.07, inventory=-1.0).side is Side.BUY
    assert decide(0.07).side is None
    assert decide(0.01).spread_multiplier == 5.0
    assert decide(0.005).veto
    assert decide(0.2).levels == 3  # floor(sqrt(0.4) * 5)
    assert decide(0.0).levels == 1


def test_bad_headroom_is_zero() -> None:
    assert decide(math.nan).veto
    assert decide(-1.0).headroom == 0.0
    assert decide(7.0).headroom == 1.0


@given(
    a=st.floats(allow_nan=False),
    b=st.floats(allow_nan=False),
    max_levels=st.integers(min_value=1, max_value=20),
)
def test_levels_monotone_in_headroom(a: float, b: float, max_levels: int) -> None:
    lo, hi = sorted((a, b))
    config = QuotaConfig(max_levels=max_levels)
    low, high = decide(lo, config=config), decide(hi, config=config)
    assert 1 <= low.levels <= high.levels <= max_levels
    assert low.shadow_spread_bps >= high.shadow_spread_bps
    assert low.spread_multiplier >= high.spread_multiplier
    assert 1.0 <= high.spread_multiplier <= config.max_multiplier
