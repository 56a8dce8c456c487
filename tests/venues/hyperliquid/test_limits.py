"""The weight of an ``/info`` request once answered, and what a client reserves before it is
(the per-type weights and the per-item rule alone are tested with the simulator's limits, in
``tests/venues/sim/test_ratelimit.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.hyperliquid import limits
from mm.venues.hyperliquid.limits import (
    MAX_ITEMS_RETURNED,
    answered_info_weight,
    items_returned,
    reserved_info_weight,
)

USER = "0x" + "ab" * 20


def test_the_items_of_an_answer_are_the_entries_of_its_list() -> None:
    assert items_returned([{}] * 45) == 45
    assert items_returned([]) == 0
    assert items_returned({"universe": [1, 2, 3]}) == 0  # not a listing
    assert items_returned(None) == 0
    assert items_returned("2000 fills") == 0


def test_a_page_of_fills_weighs_20_plus_1_per_20_fills() -> None:
    by_time = {"type": "userFillsByTime", "user": USER, "startTime": 0}
    assert answered_info_weight(by_time, [{}] * 2000) == 120
    assert answered_info_weight(by_time, [{}] * 45) == 22
    assert answered_info_weight(by_time, [{}] * 19) == 20  # whole groups only
    assert answered_info_weight(by_time, []) == 20
    recent = {"type": "userFills", "user": USER}
    assert answered_info_weight(recent, [{}] * 2000) == 120
    orders = {"type": "historicalOrders", "user": USER}
    assert answered_info_weight(orders, [{}] * 40) == 22


def test_candles_weigh_1_more_per_60() -> None:
    candles = {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m"}}
    assert answered_info_weight(candles, [{}] * 5000) == 20 + 83
    assert answered_info_weight(candles, [{}] * 59) == 20


@pytest.mark.parametrize(
    ("request_type", "weight"),
    [
        ("frontendOpenOrders", 20),
        ("openOrders", 20),
        ("meta", 20),
        ("userRateLimit", 20),
        ("clearinghouseState", 2),
        ("orderStatus", 2),
        ("l2Book", 2),
        ("userRole", 60),
    ],
)
def test_other_answers_weigh_their_request_whatever_they_list(
    request_type: str, weight: int
) -> None:
    request = {"type": request_type, "user": USER}
    assert answered_info_weight(request, [{}] * 500) == weight
    assert reserved_info_weight(request) == weight


def test_a_client_reserves_the_largest_answer_the_docs_allow() -> None:
    assert reserved_info_weight({"type": "userFillsByTime", "user": USER}) == 120
    assert reserved_info_weight({"type": "userFills", "user": USER}) == 120
    assert reserved_info_weight({"type": "historicalOrders", "user": USER}) == 120
    assert reserved_info_weight({"type": "candleSnapshot"}) == 103
    # A listing whose largest answer the docs do not give reserves its own weight.
    assert reserved_info_weight({"type": "recentTrades", "coin": "BTC"}) == 20
    assert reserved_info_weight({"type": 7}) == 20  # unreadable: the default weight
    assert 5 * MAX_ITEMS_RETURNED["userFillsByTime"] == limits.FILLS_RETAINED


@given(
    request_type=st.sampled_from(sorted(MAX_ITEMS_RETURNED)),
    share=st.floats(0.0, 1.0),
)
def test_no_answer_weighs_more_than_its_reservation(request_type: str, share: float) -> None:
    request = {"type": request_type, "user": USER}
    most = MAX_ITEMS_RETURNED[request_type]
    answer: list[dict[str, str]] = [{}] * round(most * share)
    weight = answered_info_weight(request, answer)
    assert limits.info_weight(request) <= weight <= reserved_info_weight(request)
    assert answered_info_weight(request, [{}] * most) == reserved_info_weight(request)
