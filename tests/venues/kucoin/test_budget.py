"""The KuCoin budget as the port reads it: headroom per pool, the order budget with its
reserve, rejections and the wait of a refused read, on the run's clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.base import RequestBudget
from mm.venues.kucoin.budget import KucoinBudget
from mm.venues.kucoin.limits import WINDOW_S
from mm.venues.kucoin.rate_budget import RateBudget

HEADERS = {
    "gw-ratelimit-limit": "4000",
    "gw-ratelimit-remaining": "1000",
    "gw-ratelimit-reset": "7000",
}


def test_a_fresh_budget_is_full_less_the_reserve() -> None:
    budget: RequestBudget = KucoinBudget(RateBudget(), order_reserve=0.1)
    assert budget.headroom_by_kind(0.0) == {"Spot": 1.0, "Public": 1.0}
    assert budget.headroom(0.0) == 1.0
    assert budget.order_budget(0.0) == 3_600
    assert budget.rejections == 0


def test_the_venues_figures_and_the_windows_reset() -> None:
    rates = RateBudget()
    budget = KucoinBudget(rates, order_reserve=0.1)
    rates.observe("Spot", HEADERS, 10.0)
    assert budget.headroom_by_kind(10.0)["Spot"] == 0.25
    assert budget.headroom(10.0) == 0.25  # the tightest pool
    assert budget.order_budget(10.0) == 600  # 1,000 left less 400 kept for cancels and reads
    assert budget.headroom_by_kind(17.1)["Spot"] == 1.0  # past the venue's reset
    assert budget.order_budget(17.1) == 3_600


def test_a_refused_read_waits_for_its_pools_reset() -> None:
    rates = RateBudget()
    budget = KucoinBudget(rates)
    rates.observe("Management", HEADERS, 0.0)
    rates.refused("Management", 1.0)
    assert budget.rejections == 1
    assert budget.headroom_by_kind(1.0)["Management"] == 0.0
    assert budget.read_retry_wait(1.0, counted=True) == pytest.approx(6.05)
    assert budget.read_retry_wait(8.0, counted=True) == 0.5  # the window passed: a short pause
    assert budget.read_retry_wait(8.0, counted=False) == WINDOW_S  # a refusal not told of
    assert budget.rejections == 2


@given(
    remaining=st.integers(min_value=0, max_value=4_000),
    reserve=st.floats(min_value=0, max_value=0.99),
)
def test_shares_stay_within_bounds(remaining: int, reserve: float) -> None:
    rates = RateBudget()
    budget = KucoinBudget(rates, order_reserve=reserve)
    rates.observe("Spot", HEADERS | {"gw-ratelimit-remaining": str(remaining)}, 0.0)
    assert all(0 <= share <= 1 for share in budget.headroom_by_kind(0.0).values())
    assert 0 <= budget.order_budget(0.0) <= remaining


@given(
    pools=st.dictionaries(
        st.sampled_from(["Spot", "Public", "Management", "Earn"]),
        st.tuples(
            st.integers(min_value=1, max_value=4_000),  # the venue's quota
            st.integers(min_value=-50, max_value=4_000),  # what it says is left
            st.integers(min_value=0, max_value=30_000),  # ms to the reset
            st.booleans(),  # then refused (a 429)
        ),
        max_size=4,
    ),
    now=st.floats(min_value=0, max_value=60),
)
def test_headroom_is_the_tightest_share(
    pools: dict[str, tuple[int, int, int, bool]], now: float
) -> None:
    """``headroom`` (worked out on every book, without a dict) is the least of the shares
    ``headroom_by_kind`` gives, whatever the pools' windows say."""
    rates = RateBudget()
    budget = KucoinBudget(rates)
    for name, (limit, remaining, reset_ms, refused) in pools.items():
        headers = {
            "gw-ratelimit-limit": str(limit),
            "gw-ratelimit-remaining": str(remaining),
            "gw-ratelimit-reset": str(reset_ms),
        }
        rates.observe(name, headers, 1.0)
        if refused:
            rates.refused(name, 2.0)
    assert budget.headroom(now) == min(budget.headroom_by_kind(now).values())


def test_a_reserve_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="order_reserve"):
        KucoinBudget(RateBudget(), order_reserve=1.0)
