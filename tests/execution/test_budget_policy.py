"""The order budget's policy: which orders of a symbol go first, and how the tokens there are
are divided across the symbols waiting (mm.execution.budget). Tables, then properties."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mm.execution.budget import Want, divide, rank, reducing_side, want
from mm.model import DesiredOrder, Side


def top(n: int = 1) -> list[Want]:
    """``n`` top-of-book orders (a bid and an ask at level 0, ...), best first."""
    return sorted(Want(i // 2, 1, 0) for i in range(n))


def deep(level: int, n: int = 2) -> list[Want]:
    return [Want(level, 1, 0) for _ in range(n)]


@pytest.mark.parametrize(
    ("position", "notional", "limit", "expected"),
    [
        (0.0, 0.0, 1000.0, None),  # flat
        (1.0, 400.0, 1000.0, None),  # under half the limit: not high
        (1.0, 500.0, 1000.0, Side.SELL),  # long at the ratio: selling reduces
        (-2.0, -900.0, 1000.0, Side.BUY),  # short: buying reduces
        (1.0, 500.0, 0.0, None),  # no limit to measure against
    ],
)
def test_the_reducing_side_when_inventory_is_high(
    position: float, notional: float, limit: float, expected: Side | None
) -> None:
    assert reducing_side(position, notional, limit, 0.5) is expected


def test_within_a_symbol_top_of_book_then_the_reducing_side_then_a_missing_order() -> None:
    orders = [
        (DesiredOrder(Side.BUY, 99.0, 1.0, 1), False),  # level 1 bid, a place
        (DesiredOrder(Side.BUY, 100.0, 1.0, 0), True),  # top bid, a modify
        (DesiredOrder(Side.SELL, 101.0, 1.0, 0), True),  # top ask, a modify
        (DesiredOrder(Side.SELL, 101.0, 1.0, 0), False),  # top ask, a place
    ]
    flat = [want(d, modify=m, reducing=None) for d, m in orders]
    assert rank(flat) == [3, 1, 2, 0]  # top: a place before modifies; level 1 last
    long = [want(d, modify=m, reducing=Side.SELL) for d, m in orders]
    assert rank(long) == [3, 2, 1, 0]  # long and high: the asks first at the top


@pytest.mark.parametrize(
    ("tokens", "demands", "served", "expected"),
    [
        # Enough for everyone: all of it.
        (10, {"A": top(2), "B": top(2)}, {}, {"A": 2, "B": 2}),
        # Nothing to give.
        (0, {"A": top(2)}, {}, {"A": 0}),
        (-3, {"A": top(2)}, {}, {"A": 0}),
        # One token, two symbols waiting at the top: the one served longest ago.
        (1, {"A": top(2), "B": top(2)}, {"A": 5.0, "B": 3.0}, {"A": 0, "B": 1}),
        (1, {"A": top(2), "B": top(2)}, {"A": 5.0}, {"A": 0, "B": 1}),  # B never served
        # One token: the top of B's book before the depth of A's, whoever was served.
        (1, {"A": deep(2), "B": top(1)}, {"B": 1.0}, {"A": 0, "B": 1}),
        # Two tokens, three waiting: a top order each for the two served longest ago.
        (
            2,
            {"A": top(2), "B": top(2), "C": top(2)},
            {"A": 3.0, "B": 2.0, "C": 1.0},
            {"A": 0, "B": 1, "C": 1},
        ),
        # The share first: B's deep ladder gets its part even though A's top wants it all.
        (4, {"A": top(6), "B": deep(3, 4)}, {}, {"A": 2, "B": 2}),
        # The share left by a small demand goes to the best level left.
        (5, {"A": top(6), "B": deep(3, 1)}, {}, {"A": 4, "B": 1}),
        # A symbol with nothing to send gets nothing and takes no share.
        (2, {"A": top(4), "B": []}, {}, {"A": 2, "B": 0}),
    ],
)
def test_division_table(
    tokens: int,
    demands: dict[str, list[Want]],
    served: dict[str, float],
    expected: dict[str, int],
) -> None:
    assert divide(tokens, demands, served) == expected


wants_lists = st.lists(
    st.builds(Want, st.integers(0, 4), st.integers(0, 1), st.integers(0, 1)), max_size=8
).map(sorted)
demand_maps = st.dictionaries(st.sampled_from("ABCDEFG"), wants_lists, max_size=6)
served_maps = st.dictionaries(st.sampled_from("ABCDEFG"), st.floats(0, 100), max_size=6)


@given(tokens=st.integers(-5, 40), demands=demand_maps, served=served_maps)
def test_never_more_than_the_budget_nor_than_wanted_and_no_token_idle(
    tokens: int, demands: dict[str, list[Want]], served: dict[str, float]
) -> None:
    grants = divide(tokens, demands, served)
    assert set(grants) == set(demands)
    assert all(0 <= grants[c] <= len(demands[c]) for c in demands)
    total = sum(len(w) for w in demands.values())
    assert sum(grants.values()) == min(max(tokens, 0), total)


@given(tokens=st.integers(0, 40), demands=demand_maps, served=served_maps)
def test_every_symbol_gets_its_share(
    tokens: int, demands: dict[str, list[Want]], served: dict[str, float]
) -> None:
    grants = divide(tokens, demands, served)
    waiting = [c for c, w in demands.items() if w]
    if waiting:
        share = tokens // len(waiting)
        assert all(grants[c] >= min(len(demands[c]), share) for c in waiting)


# Found by hypothesis: one symbol at the best level, two tokens; the second goes a level down.
@example(
    tokens=2, demands={"A": [Want(0, 0, 0)], "B": [Want(1, 0, 0)], "C": [Want(1, 0, 0)]}, served={}
)
@given(tokens=st.integers(0, 40), demands=demand_maps, served=served_maps)
def test_top_of_book_first(
    tokens: int, demands: dict[str, list[Want]], served: dict[str, float]
) -> None:
    # Beyond its share, no symbol is given an order at a deeper level than one left waiting,
    # whoever's book it is; within a symbol the orders given are its best ones (a prefix).
    grants = divide(tokens, demands, served)
    waiting = [c for c, w in demands.items() if w]
    if not waiting:
        return
    share = tokens // len(waiting)
    denied = [demands[c][grants[c]].level for c in waiting if grants[c] < len(demands[c])]
    for coin in waiting:
        if grants[coin] > min(len(demands[coin]), share) and denied:
            assert demands[coin][grants[coin] - 1].level <= min(denied)
    if tokens < len(waiting):  # fewer tokens than symbols: the best levels there are go first
        given = [demands[c][0].level for c in waiting if grants[c]]
        left = [demands[c][0].level for c in waiting if not grants[c]]
        # (Not "every token at the very best level": with one symbol at level 0 and two
        # tokens, the second goes to a level-1 order; none of those left waiting is better.)
        assert not given or not left or max(given) <= min(left)


@given(
    n=st.integers(1, 8),
    rounds=st.integers(1, 5),
    served=st.lists(st.floats(0, 100), min_size=8, max_size=8),
)
def test_symbols_always_waiting_take_turns_one_token_at_a_time(
    n: int, rounds: int, served: list[float]
) -> None:
    # The steady state under pressure: every symbol wants its top of book, one token comes at
    # a time. Over any n tokens in a row each of the n symbols gets exactly one.
    coins = [f"C{i}" for i in range(n)]
    last = {coin: served[i] for i, coin in enumerate(coins)}
    given_to: list[str] = []
    for tick in range(n * rounds):
        grants = divide(1, {coin: top(2) for coin in coins}, last)
        (winner,) = [coin for coin, k in grants.items() if k]
        last[winner] = 1_000.0 + tick  # served now
        given_to.append(winner)
    for start in range(0, len(given_to) - n + 1):
        assert sorted(given_to[start : start + n]) == sorted(coins)
