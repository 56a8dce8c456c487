"""mm/bounded.py: the bounded set remembers the last ``capacity`` keys, and remembers value
records in a form the garbage collector does not walk, with the same membership."""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Hashable

import attrs
from hypothesis import given
from hypothesis import strategies as st

from mm.bounded import BoundedSet, compact_key
from mm.model import OrderId, OrderReport, OrderStatus, Side


@attrs.frozen
class Tagged:
    """A record with a field left out of its equality, and one compared through a key."""

    name: str
    note: str = attrs.field(eq=False)
    size: str = attrs.field(eq=str.lower, default="x")


@attrs.frozen
class Other:
    name: str
    note: str


def reports() -> st.SearchStrategy[OrderReport]:
    small = st.sampled_from([0.0, -0.0, 1.0, 2.5])
    return st.builds(
        OrderReport,
        coin=st.sampled_from(["BTC", "ETH"]),
        side=st.sampled_from(Side),
        px=small,
        sz=small,
        orig_sz=small,
        oid=st.sampled_from(["1", "2"]),
        cloid=st.sampled_from([None, "0xa"]),
        time_ms=st.integers(0, 2),
        status=st.sampled_from(OrderStatus),
        status_time_ms=st.integers(0, 2),
        venue_status=st.sampled_from(["open", "canceled"]),
    )


KEYS = st.one_of(
    reports(),
    st.tuples(st.sampled_from(["1", "2"]), st.integers(0, 2)),
    st.builds(
        Tagged,
        st.sampled_from(["a", "b"]),
        st.sampled_from(["n", "m"]),
        st.sampled_from(["x", "X", "y"]),
    ),
    st.builds(Other, st.sampled_from(["a", "b"]), st.sampled_from(["n", "m"])),
    st.sampled_from(Side),
    st.sampled_from(["a", "BUY", "buy"]),
)


@given(KEYS, KEYS)
def test_compact_keys_are_equal_exactly_when_the_keys_are(a: Hashable, b: Hashable) -> None:
    assert (compact_key(a) == compact_key(b)) == (a == b)
    if a == b:
        assert hash(compact_key(a)) == hash(compact_key(b))


@given(st.integers(1, 5), st.lists(KEYS, max_size=40))
def test_the_set_is_the_last_capacity_distinct_keys(capacity: int, keys: list[Hashable]) -> None:
    remembered = BoundedSet(capacity)
    model: deque[Hashable] = deque()
    for key in keys:
        was = any(key == known for known in model)
        assert remembered.seen(key) is was
        if not was:
            model.append(key)
            if len(model) > capacity:
                model.popleft()
        assert len(remembered) == len(model)
        for probe in keys:
            assert (probe in remembered) == any(probe == known for known in model)


def test_remembered_reports_are_not_tracked_by_the_collector() -> None:
    remembered = BoundedSet(100)
    for n in range(100):
        report = OrderReport(
            "BTC",
            Side.BUY,
            100.0 + n,
            1.0,
            1.0,
            OrderId(str(n)),
            "0xa",
            n,
            OrderStatus.OPEN,
            n,
            "open",
        )
        assert gc.is_tracked(report)
        remembered.add(report)
    gc.collect()
    assert not any(gc.is_tracked(key) for key in remembered._keys)
    assert not any(gc.is_tracked(key) for key in remembered._order)
    again = OrderReport(
        "BTC", Side.BUY, 107.0, 1.0, 1.0, OrderId("7"), "0xa", 7, OrderStatus.OPEN, 7, "open"
    )
    assert again in remembered
