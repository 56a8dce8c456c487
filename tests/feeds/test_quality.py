"""Data-quality checks on book updates: freshness, crossed/locked, time, unconfirmed jumps."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from mm.book import Book
from mm.feeds.quality import BookQuality, Issue, QualityConfig, Verdict
from mm.model import Level

NOW = 1_000_000


def book(mid: float, *, time_ms: int = NOW, half_spread: float = 0.5) -> Book:
    return Book("BTC", time_ms, (Level(mid - half_spread, 1.0),), (Level(mid + half_spread, 1.0),))


def quality() -> BookQuality:
    return BookQuality(QualityConfig(max_age_ms=2_000, jump_threshold=0.10))


def test_a_normal_update_is_accepted() -> None:
    verdict = quality().check(book(100.0), NOW)
    assert verdict.accept
    assert verdict.issues == ()
    assert verdict.book is not None


def test_an_old_timestamp_is_flagged_stale() -> None:
    verdict = quality().check(book(100.0, time_ms=NOW - 2_001), NOW)
    assert verdict.accept
    assert verdict.issues == (Issue.STALE,)


def test_a_crossed_book_is_rejected_and_a_locked_one_flagged() -> None:
    q = quality()
    crossed = Book("BTC", NOW, (Level(101.0, 1.0),), (Level(100.0, 1.0),))
    assert q.check(crossed, NOW).issues == (Issue.CROSSED,)
    assert not q.check(crossed, NOW).accept
    locked = Book("BTC", NOW, (Level(100.0, 1.0),), (Level(100.0, 1.0),))
    verdict = q.check(locked, NOW)
    assert verdict.accept
    assert verdict.issues == (Issue.LOCKED,)


def test_time_going_backwards_is_rejected() -> None:
    q = quality()
    assert q.check(book(100.0, time_ms=NOW), NOW).accept
    verdict = q.check(book(100.1, time_ms=NOW - 1), NOW)
    assert not verdict.accept
    assert Issue.TIME_BACKWARDS in verdict.issues


def test_a_jump_is_held_until_the_next_update_confirms_it() -> None:
    q = quality()
    q.check(book(100.0), NOW)
    held = q.check(book(115.0, time_ms=NOW + 1), NOW + 1)
    assert not held.accept
    assert held.issues == (Issue.JUMP_UNCONFIRMED,)
    confirmed = q.check(book(114.0, time_ms=NOW + 2), NOW + 2)
    assert confirmed.accept
    assert confirmed.book is not None
    assert confirmed.book.mid == 114.0


def test_a_jump_refuted_by_the_next_update_is_never_published() -> None:
    q = quality()
    q.check(book(100.0), NOW)
    assert not q.check(book(130.0, time_ms=NOW + 1), NOW + 1).accept
    back = q.check(book(100.5, time_ms=NOW + 2), NOW + 2)
    assert back.accept
    assert back.issues == (Issue.JUMP_REFUTED,)
    assert q.last is not None
    assert q.last.mid == 100.5


def test_a_one_sided_book_is_accepted_and_flagged() -> None:
    one_sided = Book("BTC", NOW, (Level(100.0, 1.0),), ())
    verdict = quality().check(one_sided, NOW)
    assert verdict.accept
    assert verdict.issues == (Issue.ONE_SIDED,)


mids = st.floats(min_value=1.0, max_value=1_000_000.0, allow_nan=False)


@given(st.lists(st.tuples(mids, st.floats(min_value=0.0, max_value=5.0)), max_size=40))
def test_never_publishes_a_crossed_book_or_an_unconfirmed_jump(
    updates: list[tuple[float, float]],
) -> None:
    q = quality()
    published: list[Book] = []
    for step, (mid, half_spread) in enumerate(updates):
        verdict = q.check(book(mid, time_ms=NOW + step, half_spread=half_spread - 1.0), NOW + step)
        if verdict.accept:
            assert verdict.book is not None
            published.append(verdict.book)
    for before, after in itertools.pairwise(published):
        assert not after.is_crossed
        if before.mid and after.mid and abs(after.mid / before.mid - 1) > 0.10:
            # A jump reached the bus only because an update near it had been held first.
            assert after.time_ms - before.time_ms >= 2


def test_a_cascade_that_keeps_jumping_is_confirmed_not_frozen() -> None:
    q = quality()
    q.check(book(100.0), NOW)
    assert not q.check(book(88.0, time_ms=NOW + 1), NOW + 1).accept  # held
    verdict = q.check(book(77.0, time_ms=NOW + 2), NOW + 2)  # the fall continues
    assert verdict.accept
    assert q.last is not None
    assert q.last.mid == 77.0


_PRICES = st.one_of(
    st.floats(min_value=90.0, max_value=130.0),
    st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
)
_UPDATES = st.lists(
    st.tuples(
        st.one_of(st.none(), _PRICES),  # best bid (None: no bids)
        st.one_of(st.none(), _PRICES),  # best ask
        st.integers(min_value=-3, max_value=3),  # time step, ms (backwards too)
        st.integers(min_value=0, max_value=3_000),  # age when checked, ms
    ),
    max_size=30,
)


@given(_UPDATES)
@example([(0.0, 0.0, 0, 0), (100.0, 101.0, 1, 0)])  # a last mid of zero (locked at zero)
@example([(-1.0, 1.0, 0, 0), (100.0, 101.0, 1, 0), (100.0, 101.0, 1, 0)])
def test_the_usual_update_is_judged_as_by_the_full_checks(updates: list[Any]) -> None:
    """``check`` takes a shortcut for the usual update; through any run of updates (stale,
    backwards, one-sided, crossed, locked, jumps held, confirmed and refuted, zero and NaN
    prices) its verdicts and state are those of the full checks alone. So are those of
    ``accept_usual`` then, where it does not accept, ``check_unusual`` (the feed's way)."""
    fast, full, split = quality(), quality(), quality()
    time_ms = NOW
    for bid, ask, step, age in updates:
        time_ms += step
        levels = (
            () if bid is None else (Level(bid, 1.0),),
            () if ask is None else (Level(ask, 1.0),),
        )
        update = Book("BTC", time_ms, *levels)
        got, expected = fast.check(update, time_ms + age), full.check_unusual(update, time_ms + age)
        assert got == expected  # (accept, issues, book)
        assert (fast.last, fast.held) == (full.last, full.held)
        if split.accept_usual(update, time_ms + age):
            assert expected == Verdict(True, (), update)
        else:
            assert split.check_unusual(update, time_ms + age) == expected
        assert (split.last, split.held) == (full.last, full.held)
