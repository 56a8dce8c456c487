"""KuCoin's pools and weights, and the adapter's budget of them: it waits rather than be
refused, and trusts the venue's headers over its own count."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mm.venues.kucoin.limits import ENDPOINTS, POOL_QUOTAS, WINDOW_S, limit_of
from mm.venues.kucoin.rate_budget import RESET_MARGIN_S, PoolBudget, RateBudget


def test_each_endpoint_has_its_specified_pool_and_weight() -> None:
    assert limit_of("POST", "/api/v1/hf/orders") == ("Spot", 1)
    assert limit_of("DELETE", "/api/v1/hf/orders/cancelAll") == ("Spot", 30)  # not an order id
    assert limit_of("DELETE", "/api/v1/hf/orders/6710d8336afcdb0007319c27") == ("Spot", 1)
    assert limit_of("DELETE", "/api/v1/hf/orders/client-order/mm-1") == ("Spot", 1)
    assert limit_of("GET", "/api/v1/hf/orders/active") == ("Spot", 2)
    assert limit_of("GET", "/api/v1/hf/orders/6710d8336afcdb0007319c27") == ("Spot", 2)
    assert limit_of("GET", "/api/v1/market/orderbook/level2_20") == ("Public", 2)
    assert limit_of("POST", "/api/v1/bullet-private") == ("Spot", 10)
    assert limit_of("GET", "/api/v1/accounts") == ("Management", 5)
    with pytest.raises(KeyError, match="GET /api/v1/hf/orders/a/b"):
        limit_of("GET", "/api/v1/hf/orders/a/b")
    with pytest.raises(KeyError, match="PUT"):
        limit_of("PUT", "/api/v1/hf/orders")
    assert all(weight >= 1 for _, weight in ENDPOINTS.values())
    assert POOL_QUOTAS == {"Spot": 4_000, "Public": 2_000}


def test_a_pool_spends_then_waits_for_its_reset() -> None:
    pool = PoolBudget(100)
    assert pool.take(60, now=10.0) == 0.0
    assert pool.take(40, now=12.0) == 0.0
    assert pool.take(1, now=15.0) == pytest.approx(WINDOW_S - 5.0)  # the window opened at 10
    assert pool.remaining == 0  # nothing spent by a wait
    assert pool.take(100, now=10.0 + WINDOW_S) == 0.0
    with pytest.raises(ValueError, match=r"within 1\.\.100"):
        pool.take(101, now=50.0)
    with pytest.raises(ValueError, match=r"within 1\.\.100"):
        pool.take(0, now=50.0)


def test_the_venues_word_wins_within_a_window_only_when_it_is_smaller() -> None:
    budget = RateBudget()
    assert budget.take("Spot", 10, now=0.0) == 0.0
    headers = {
        "gw-ratelimit-limit": "4000",
        "gw-ratelimit-remaining": "3000",
        "gw-ratelimit-reset": "20000",
    }
    budget.observe("Spot", headers, now=1.0)  # another client spent 990 of this window
    spot = budget.pools["Spot"]
    assert spot.remaining == 3000
    assert spot.resets_at == pytest.approx(21.0 + RESET_MARGIN_S)  # the venue's window, not ours
    budget.observe(
        "Spot", {**headers, "gw-ratelimit-remaining": "3990"}, now=1.5
    )  # an older answer
    assert spot.remaining == 3000
    # A VIP level's quota, and a new window: the venue's figures replace ours.
    vip = {
        "GW-RateLimit-Limit": "6000",
        "gw-ratelimit-remaining": "5999",
        "gw-ratelimit-reset": "29000",
    }
    budget.observe("Spot", vip, now=22.0)
    assert (spot.quota, spot.remaining) == (6000, 5999)
    assert spot.resets_at == pytest.approx(51.0 + RESET_MARGIN_S)
    # A pool with no documented quota takes the one its answers state.
    budget.observe("Management", {**headers, "gw-ratelimit-limit": "2000"}, now=0.0)
    assert budget.pools["Management"].quota == 2000


def test_a_429_empties_the_pool_until_its_reset_and_bad_headers_are_counted() -> None:
    budget = RateBudget()
    budget.take("Public", 5, now=100.0)
    budget.refused("Public", now=101.0)
    assert budget.take("Public", 1, now=102.0) == pytest.approx(100.0 + WINDOW_S - 102.0)
    assert budget.take("Public", 1, now=100.0 + WINDOW_S) == 0.0
    assert budget.refusals == 1
    budget.refused("Spot", now=0.0)  # no window known: a whole one
    assert budget.take("Spot", 1, now=1.0) == pytest.approx(WINDOW_S - 1.0)
    before = budget.pools["Public"].remaining
    for bad in (
        {"gw-ratelimit-limit": "x", "gw-ratelimit-remaining": "1", "gw-ratelimit-reset": "1"},
        {"gw-ratelimit-limit": "10", "gw-ratelimit-remaining": "-1", "gw-ratelimit-reset": "1"},
        {"gw-ratelimit-limit": "0", "gw-ratelimit-remaining": "0", "gw-ratelimit-reset": "1"},
        {"gw-ratelimit-limit": "10"},
    ):
        budget.observe("Public", bad, now=131.0)
    assert budget.bad_headers == 4
    budget.observe("Public", {}, now=131.0)  # no headers at all: nothing said, nothing wrong
    assert budget.bad_headers == 4
    assert budget.pools["Public"].remaining == before


class Venue:
    """The venue's side: fixed windows of WINDOW_S from ``offset``, a quota, weights counted."""

    def __init__(self, quota: int, offset: float) -> None:
        self.quota, self.offset = quota, offset
        self.spent: dict[int, int] = {}

    def request(self, weight: int, now: float) -> tuple[bool, dict[str, str]]:
        window = int((now - self.offset) // WINDOW_S)
        spent = self.spent.get(window, 0)
        accepted = spent + weight <= self.quota
        if accepted:
            spent = self.spent[window] = spent + weight
        reset_ms = int(((window + 1) * WINDOW_S + self.offset - now) * 1000)
        headers = {
            "gw-ratelimit-limit": str(self.quota),
            "gw-ratelimit-remaining": str(self.quota - spent),
            "gw-ratelimit-reset": str(reset_ms),
        }
        return accepted, headers


# Found by hypothesis: the window spent, a wait to the reset the header said in whole
# milliseconds, and a send 0.5 ms before the venue's actual reset.
@example(
    offset=1.6875,
    requests=[(1.0, 3), (3.0, 1), (1.0, 1), (1.0, 1), *([(1.0, 367)] * 10), (1.0, 329)],
)
@given(
    offset=st.floats(0, WINDOW_S),
    requests=st.lists(st.tuples(st.floats(0.001, 3.0), st.integers(1, 400)), max_size=300),
)
def test_a_client_that_waits_as_told_is_never_refused(
    offset: float, requests: list[tuple[float, int]]
) -> None:
    """Whatever the venue's windows' alignment, a client that sends when the budget says and
    reads each answer's headers is never refused (without RESET_MARGIN_S, a request sent at a
    window's last millisecond was), and waits no longer than a window."""
    venue = Venue(4_000, offset)
    budget = RateBudget()
    now = 0.0
    for gap, weight in requests:
        now += gap
        wait = budget.take("Spot", weight, now)
        if wait > 0:
            assert wait <= WINDOW_S + RESET_MARGIN_S  # never longer than a window
            now += wait + 1e-6
            assert budget.take("Spot", weight, now) == 0.0
        accepted, headers = venue.request(weight, now)
        assert accepted
        budget.observe("Spot", headers, now)
