"""Tests of the simulator's limit order book: price-time priority, fills, levels, self-trades."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm.venues.sim.book import Order, OrderBook


def order(oid: int, user: str, is_buy: bool, px: int, sz: int) -> Order:
    return Order(
        oid=oid, user=user, asset=0, is_buy=is_buy, px=px, sz=sz, orig_sz=sz, timestamp=oid
    )


def book_of(*orders: Order) -> OrderBook:
    book = OrderBook()
    for resting in orders:
        book.insert(resting)
    return book


def test_empty_book() -> None:
    book = OrderBook()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert not book.would_cross(True, 10**9)
    assert not book.would_cross(False, 1)
    assert book.match(True, 100, 5, "taker") == ([], [], 5)
    assert book.levels(True, 5) == []
    assert book.levels(False, 5) == []


def test_best_prices_and_would_cross() -> None:
    book = book_of(
        order(1, "m", True, 99, 1),
        order(2, "m", True, 98, 1),
        order(3, "m", False, 101, 1),
        order(4, "m", False, 102, 1),
    )
    assert book.best_bid() == 99
    assert book.best_ask() == 101
    assert book.would_cross(True, 101)
    assert not book.would_cross(True, 100)
    assert book.would_cross(False, 99)
    assert not book.would_cross(False, 100)


def test_better_price_trades_first() -> None:
    book = book_of(
        order(1, "m", False, 102, 1), order(2, "m", False, 100, 1), order(3, "m", False, 101, 1)
    )
    matches, expired, remaining = book.match(True, 102, 3, "taker")
    assert [(m.maker.oid, m.px, m.sz) for m in matches] == [(2, 100, 1), (3, 101, 1), (1, 102, 1)]
    assert expired == []
    assert remaining == 0
    assert book.best_ask() is None
    assert book.orders == {}


def test_bids_are_hit_from_the_highest() -> None:
    book = book_of(
        order(1, "m", True, 98, 1), order(2, "m", True, 99, 1), order(3, "m", True, 97, 1)
    )
    matches, _, remaining = book.match(False, 98, 5, "taker")
    assert [(m.maker.oid, m.px) for m in matches] == [(2, 99), (1, 98)]
    assert remaining == 3
    assert book.best_bid() == 97


def test_fifo_within_a_level() -> None:
    book = book_of(order(1, "a", False, 100, 2), order(2, "b", False, 100, 2))
    book.insert(order(3, "c", False, 100, 2))
    matches, _, _ = book.match(True, 100, 5, "taker")
    assert [(m.maker.oid, m.sz) for m in matches] == [(1, 2), (2, 2), (3, 1)]
    assert list(book.orders) == [3]
    assert book.orders[3].sz == 1


def test_limit_price_is_respected_and_trades_at_the_makers_price() -> None:
    book = book_of(order(1, "m", False, 100, 1), order(2, "m", False, 101, 5))
    matches, _, remaining = book.match(True, 100, 3, "taker")
    assert [(m.maker.oid, m.px, m.sz) for m in matches] == [(1, 100, 1)]
    assert remaining == 2
    assert book.best_ask() == 101
    sell = book_of(order(1, "m", True, 105, 1))
    (match,), _, _ = sell.match(False, 90, 1, "taker")
    assert match.px == 105  # the maker's price, not the taker's limit


def test_partial_fill_keeps_the_maker_at_the_front() -> None:
    first, second = order(1, "a", False, 100, 5), order(2, "b", False, 100, 5)
    book = book_of(first, second)
    matches, _, remaining = book.match(True, 100, 3, "taker")
    assert [(m.maker.oid, m.sz) for m in matches] == [(1, 3)]
    assert remaining == 0
    assert first.sz == 2
    assert first.orig_sz == 5
    assert book.level_size(False, 100) == 7
    matches, _, _ = book.match(True, 100, 3, "taker")
    assert [(m.maker.oid, m.sz) for m in matches] == [(1, 2), (2, 1)]
    assert second.sz == 4


def test_remove() -> None:
    book = book_of(order(1, "a", True, 100, 1), order(2, "b", True, 100, 2))
    book.insert(order(3, "c", True, 100, 3))
    removed = book.remove(2)
    assert removed is not None
    assert removed.oid == 2
    assert book.remove(2) is None
    assert book.remove(42) is None
    assert book.levels(True, 5) == [(100, 4, 2)]
    matches, _, _ = book.match(False, 100, 4, "taker")
    assert [m.maker.oid for m in matches] == [1, 3]  # FIFO survives a removal in the middle
    assert book.best_bid() is None


def test_remove_the_last_order_of_a_level_removes_the_level() -> None:
    book = book_of(order(1, "a", False, 100, 1), order(2, "a", False, 101, 1))
    book.remove(1)
    assert book.best_ask() == 101
    assert book.levels(False, 5) == [(101, 1, 1)]
    assert not book.would_cross(True, 100)


def test_levels_aggregate_best_first_with_a_depth_cap() -> None:
    book = book_of(
        order(1, "a", True, 99, 1),
        order(2, "b", True, 99, 2),
        order(3, "a", True, 97, 4),
        order(4, "a", True, 98, 8),
        order(5, "a", False, 103, 1),
        order(6, "a", False, 101, 2),
        order(7, "b", False, 101, 3),
        order(8, "b", False, 102, 5),
    )
    assert book.levels(True, 10) == [(99, 3, 2), (98, 8, 1), (97, 4, 1)]
    assert book.levels(False, 10) == [(101, 5, 2), (102, 5, 1), (103, 1, 1)]
    assert book.levels(True, 2) == [(99, 3, 2), (98, 8, 1)]
    assert book.levels(False, 1) == [(101, 5, 2)]
    assert book.levels(True, 0) == []
    assert book.levels(False, 0) == []
    assert book.level_size(True, 99) == 3
    assert book.level_size(True, 50) == 0
    assert sorted(o.oid for o in book.iter_orders()) == list(range(1, 9))


def test_levels_follow_partial_fills() -> None:
    book = book_of(order(1, "a", False, 101, 2), order(2, "b", False, 101, 3))
    book.match(True, 101, 1, "taker")
    assert book.levels(False, 1) == [(101, 4, 2)]


def test_self_trade_expires_own_resting_orders_instead_of_trading() -> None:
    own_front = order(1, "me", False, 100, 2)
    other = order(2, "them", False, 100, 2)
    own_next = order(3, "me", False, 101, 2)
    deeper = order(4, "them", False, 102, 2)
    book = book_of(own_front, other, own_next, deeper)
    matches, expired, remaining = book.match(True, 102, 3, "me")
    assert [(m.maker.oid, m.sz) for m in matches] == [(2, 2), (4, 1)]
    assert expired == [own_front, own_next]
    assert remaining == 0
    assert own_front.sz == 2  # expired untouched, not traded
    assert sorted(book.orders) == [4]
    assert book.levels(False, 5) == [(102, 1, 1)]


def test_self_trade_only_within_the_limit() -> None:
    book = book_of(order(1, "them", False, 100, 1), order(2, "me", False, 101, 1))
    matches, expired, remaining = book.match(True, 100, 5, "me")
    assert [m.maker.oid for m in matches] == [1]
    assert expired == []
    assert remaining == 4
    assert list(book.orders) == [2]


def test_a_taker_meeting_only_its_own_orders_trades_nothing() -> None:
    book = book_of(order(1, "me", True, 100, 1), order(2, "me", True, 99, 1))
    matches, expired, remaining = book.match(False, 99, 5, "me")
    assert matches == []
    assert [o.oid for o in expired] == [1, 2]
    assert remaining == 5
    assert book.best_bid() is None


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(90, 110), st.integers(1, 5), st.sampled_from("ab")),
        max_size=40,
    ),
    st.booleans(),
    st.integers(90, 110),
    st.integers(1, 60),
)
def test_match_walks_the_side_in_price_time_order(
    resting: list[tuple[bool, int, int, str]], is_buy: bool, limit: int, size: int
) -> None:
    book = OrderBook()
    for oid, (buy, px, sz, user) in enumerate(resting, start=1):
        # Keep the book uncrossed, as the engine does: bids at or below 100, asks above.
        if buy != (px <= 100):
            px = 200 - px if buy else 201 - px
        book.insert(order(oid, user, buy, px, sz))
    side = [o for o in book.iter_orders() if o.is_buy != is_buy]
    side.sort(key=lambda o: (-o.px if o.is_buy else o.px, o.oid))
    eligible = [o for o in side if (o.px <= limit if is_buy else o.px >= limit)]
    expected_sizes = {o.oid: o.sz for o in side}
    matches, expired, remaining = book.match(is_buy, limit, size, "a")
    # The makers met, in order, are a prefix of the eligible orders, in priority order.
    met = [m.maker.oid for m in matches] + [o.oid for o in expired]
    assert (
        sorted(met, key=[o.oid for o in eligible].index)
        == [o.oid for o in eligible][: len(set(met))]
    )
    assert all(m.maker.user == "b" for m in matches)
    assert all(o.user == "a" for o in expired)
    assert size == remaining + sum(m.sz for m in matches)
    for match in matches:
        assert match.px == match.maker.px
        assert expected_sizes[match.maker.oid] - match.sz == match.maker.sz
    if remaining:
        assert all(o.oid in met for o in eligible)
