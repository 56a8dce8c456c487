"""The KuCoin face's rate-limit table and windows: the specification's figures, literal paths
before templates, and no window ever letting through more than its quota."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm.venues.kucoin.limits import ENDPOINTS
from mm.venues.sim.kucoin.quota import PUBLIC, WEIGHTS, WINDOW_S, Quotas, weigh


def test_endpoints_weigh_as_listed_and_literal_paths_win_over_templates() -> None:
    assert weigh("POST", "/api/v1/hf/orders") == ("Spot", 1)
    assert weigh("GET", "/api/v1/hf/orders/active") == ("Spot", 2)
    assert weigh("DELETE", "/api/v1/hf/orders/cancelAll") == ("Spot", 30)
    assert weigh("DELETE", "/api/v1/hf/orders/0123456789abcdef01234567") == ("Spot", 1)
    assert weigh("GET", "/api/v1/hf/orders/client-order/mm-1") == ("Spot", 2)
    assert weigh("GET", "/api/v1/market/orderbook/level2_20") == (PUBLIC, 2)
    assert weigh("GET", "/api/v1/accounts") == ("Management", 5)
    assert weigh("GET", "/api/v1/nothing") == (PUBLIC, 1)
    assert weigh("PUT", "/api/v1/hf/orders") == (PUBLIC, 1)


def test_the_table_agrees_with_the_adapter_s() -> None:
    """Both tables were read from the official SDK's specification (@78c90c77); the adapter's
    (``mm.venues.kucoin.limits``) is checked against it by its own tests. Every endpoint both
    list weighs the same, and the face charges every endpoint the adapter calls."""
    assert set(ENDPOINTS) <= set(WEIGHTS)
    for key, value in ENDPOINTS.items():
        assert WEIGHTS[key] == value, key


def test_a_window_refuses_what_does_not_fit_and_resets_after_30_seconds() -> None:
    quotas = Quotas({"Spot": 10})
    assert quotas.charge("Spot", "alice", 6, 100.0).remaining == 4
    refused = quotas.charge("Spot", "alice", 5, 110.0)
    assert (refused.allowed, refused.remaining, refused.reset_ms) == (False, 4, 20_000)
    assert quotas.charge("Spot", "bob", 10, 110.0).allowed  # per owner
    fresh = quotas.charge("Spot", "alice", 5, 100.0 + WINDOW_S)
    assert (fresh.allowed, fresh.remaining, fresh.reset_ms) == (True, 5, 30_000)
    quotas.forget(100.0 + WINDOW_S + 1)
    assert quotas.charge("Spot", "bob", 10, 200.0).allowed  # bob's window was forgotten


@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.floats(0, 5, allow_nan=False)), min_size=1, max_size=80
    )
)
def test_no_window_lets_more_than_its_quota_through(requests: list[tuple[int, float]]) -> None:
    quotas = Quotas({"Spot": 20})
    now = 0.0
    windows: dict[float, int] = {}  # window start -> weight let through
    start: float | None = None  # a window opens with the first request after the last one
    for weight, wait in requests:
        now += wait
        if start is None or now >= start + WINDOW_S:
            start = now
        charge = quotas.charge("Spot", "alice", weight, now)
        if charge.allowed:
            windows[start] = windows.get(start, 0) + weight
        assert charge.remaining == 20 - windows.get(start, 0) >= 0
        assert 0 <= charge.reset_ms <= WINDOW_S * 1000
    assert all(used <= 20 for used in windows.values())
