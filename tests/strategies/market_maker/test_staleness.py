"""The staleness factor: widen as inputs age, up to a cap, only for signals that warmed up."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.strategies.market_maker.staleness import StalenessConfig, StalenessTracker, staleness_factor

CONFIG = StalenessConfig(
    book_fresh_s=1.0,
    book_full_s=3.0,
    trades_fresh_s=60.0,
    trades_full_s=300.0,
    max_factor=2.0,
    warm_observations=10,
)


def fed(books: int = 0, trades: int = 0, at: float = 0.0) -> StalenessTracker:
    tracker = StalenessTracker(CONFIG)
    for index in range(books):
        tracker.on_book(at - (books - 1 - index) * 0.5)
    for index in range(trades):
        tracker.on_trade(at - (trades - 1 - index) * 0.5)
    return tracker


def test_a_signal_that_never_warmed_up_is_not_stale() -> None:
    # The cold-start guard (reference A.5d): 9 books then an hour of silence, no trades ever.
    tracker = fed(books=9, at=0.0)
    assert tracker.factor(3_600.0) == 1.0
    assert tracker.components(3_600.0)["book_warm"] == 0.0
    assert StalenessTracker(CONFIG).factor(1e9) == 1.0  # nothing at all


@pytest.mark.parametrize(
    ("age", "factor"), [(0.0, 1.0), (1.0, 1.0), (2.0, 1.5), (3.0, 2.0), (60.0, 2.0)]
)
def test_a_warm_book_widens_with_age_up_to_the_cap(age: float, factor: float) -> None:
    tracker = fed(books=10, at=100.0)
    assert tracker.factor(100.0 + age) == pytest.approx(factor)


def test_the_worst_signal_decides_and_they_do_not_compound() -> None:
    tracker = fed(books=10, trades=10, at=100.0)
    tracker.on_book(280.0)  # a fresh book; the tape is 180 s old
    assert tracker.book_factor(280.0) == 1.0
    assert tracker.trades_factor(280.0) == pytest.approx(1.5)
    assert tracker.factor(280.0) == pytest.approx(1.5)
    assert tracker.factor(420.0) == 2.0  # both at the cap: still the cap
    assert tracker.components(420.0)["book_factor"] == 2.0


def test_fresh_data_clears_it_at_once() -> None:
    tracker = fed(books=10, at=0.0)
    assert tracker.factor(10.0) == 2.0
    tracker.on_book(10.0)
    assert tracker.factor(10.0) == 1.0


def test_broken_times() -> None:
    tracker = fed(books=10, at=50.0)
    tracker.on_book(math.nan)  # ignored
    assert tracker.book.observations == 10
    tracker.on_book(20.0)  # late: the last update stays at 50
    assert tracker.book.last == 50.0
    assert tracker.factor(math.nan) == 2.0  # a broken clock on a warm signal widens
    assert fed(books=3, at=50.0).factor(math.nan) == 1.0  # not warm: nothing to widen
    assert tracker.factor(40.0) == 1.0  # a query before the last update: age 0
    far = fed(books=10, at=-1e308)
    assert far.factor(1e308) == 2.0  # an age too large for a float is still stale
    assert all(math.isfinite(value) for value in far.components(1e308).values())


def test_components_are_plain_numbers() -> None:
    parts = StalenessTracker(CONFIG).components(5.0)
    assert parts["book_age_s"] == -1.0
    assert parts["factor"] == 1.0
    assert all(math.isfinite(value) for value in parts.values())


@pytest.mark.parametrize(
    ("age", "fresh", "full", "factor"),
    [(5.0, 5.0, 5.0, 1.0), (5.1, 5.0, 5.0, 3.0), (-1.0, 0.0, 1.0, 1.0), (math.inf, 0.0, 1.0, 3.0)],
)
def test_staleness_factor_edges(age: float, fresh: float, full: float, factor: float) -> None:
    assert staleness_factor(age, fresh, full, 3.0) == factor


@settings(max_examples=200)
@given(
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
    st.floats(min_value=0, max_value=1e4),
    st.floats(min_value=0, max_value=1e4),
    st.floats(min_value=1, max_value=100),
)
def test_staleness_factor_is_bounded_and_monotone_in_age(
    age: float, older: float, fresh: float, full: float, cap: float
) -> None:
    value = staleness_factor(age, fresh, full, cap)
    assert 1.0 <= value <= cap
    if math.isfinite(age) and math.isfinite(older) and older >= age:
        assert staleness_factor(older, fresh, full, cap) >= value


@settings(max_examples=100)
@given(st.lists(st.tuples(st.booleans(), st.floats(allow_nan=True)), max_size=40), st.floats())
def test_tracker_factor_is_bounded(updates: list[tuple[bool, float]], query: float) -> None:
    tracker = StalenessTracker(CONFIG)
    for is_book, now in updates:
        if is_book:
            tracker.on_book(now)
        else:
            tracker.on_trade(now)
    assert 1.0 <= tracker.factor(query) <= CONFIG.max_factor
    assert all(math.isfinite(value) for value in tracker.components(query).values())
