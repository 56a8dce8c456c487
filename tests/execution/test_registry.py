"""The order identity registry: cloid and oid lookups, modify re-keying, bounded retention of
terminal orders, and in-flight bookkeeping."""

from __future__ import annotations

import gc
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.execution import lifecycle
from mm.execution.lifecycle import RETIRED_OIDS_KEPT, Op, OrderState, TrackedOrder, Transition
from mm.execution.registry import DuplicateCloid, OrderRegistry
from mm.model import Fill, PlaceOrder, Side, Tif
from mm.venues.hyperliquid.status import order_status
from tests.ids import hl_oid, hl_tid


def said(order: TrackedOrder, word: str, oid: int, now_ms: int, **kwargs: Any) -> Transition:
    """The venue's status word for ``oid``, as Hyperliquid's adapter maps it."""
    return order.report(order_status(word), hl_oid(oid), now_ms, word=word, **kwargs)


def tracked(cloid: str, now_ms: int = 1) -> TrackedOrder:
    order = PlaceOrder(coin="BTC", side=Side.BUY, px=100.0, sz=1.0, tif=Tif.GTC, cloid=cloid)
    return TrackedOrder.submit(order, now_ms)


def finish(registry: OrderRegistry, order: TrackedOrder, oid: int) -> None:
    order.ack_resting(hl_oid(oid), 2)
    said(order, "canceled", oid, 3)
    registry.sync(order)


def test_register_and_look_up_by_cloid() -> None:
    registry = OrderRegistry()
    order = tracked("0xa")
    registry.register(order)
    assert registry.get("0xa") is order
    assert "0xa" in registry
    assert len(registry) == 1
    assert registry.find("0xa", None) is order
    assert registry.current_oid("0xa") is None
    assert registry.get("0xb") is None
    assert registry.find(None, None) is None
    assert list(registry) == [order]


def test_duplicate_cloid_is_refused() -> None:
    registry = OrderRegistry()
    registry.register(tracked("0xa"))
    with pytest.raises(DuplicateCloid):
        registry.register(tracked("0xa"))


def test_oid_indexed_on_ack_and_on_modify() -> None:
    registry = OrderRegistry()
    order = tracked("0xa")
    registry.register(order)
    order.ack_resting(hl_oid(11), 2)
    registry.sync(order)
    assert registry.by_oid(hl_oid(11)) is order
    assert registry.current_oid("0xa") == hl_oid(11)
    order.request_modify(101.0, 1.0, Tif.GTC, 3)
    order.replaced(hl_oid(12), 4)
    registry.sync(order)
    assert registry.current_oid("0xa") == hl_oid(12)
    assert registry.by_oid(hl_oid(12)) is order
    assert registry.by_oid(hl_oid(11)) is order  # a late report for the replaced oid still matches
    assert registry.find(None, hl_oid(11)) is order
    assert registry.find("0xother", hl_oid(12)) is order


def test_oid_owned_by_another_order_is_refused() -> None:
    registry = OrderRegistry()
    first, second = tracked("0xa"), tracked("0xb")
    registry.register(first)
    registry.register(second)
    first.ack_resting(hl_oid(11), 2)
    registry.sync(first)
    second.ack_resting(hl_oid(11), 2)
    with pytest.raises(DuplicateCloid):
        registry.sync(second)


def test_registering_an_order_whose_oid_is_taken_fails() -> None:
    registry = OrderRegistry()
    first, second = tracked("0xa"), tracked("0xb")
    registry.register(first)
    first.ack_resting(hl_oid(11), 2)
    registry.sync(first)
    second.ack_resting(hl_oid(11), 2)
    with pytest.raises(DuplicateCloid):
        registry.register(second)
    assert "0xb" not in registry


def test_sync_of_an_unregistered_order_fails() -> None:
    with pytest.raises(KeyError):
        OrderRegistry().sync(tracked("0xa"))


def test_terminal_orders_are_kept_up_to_the_bound_oldest_first() -> None:
    registry = OrderRegistry(terminal_capacity=2)
    live = tracked("0xlive")
    registry.register(live)
    orders = [tracked(f"0x{i}") for i in range(3)]
    for i, order in enumerate(orders):
        registry.register(order)
        finish(registry, order, oid=100 + i)
    assert registry.get("0x0") is None
    assert registry.by_oid(hl_oid(100)) is None
    assert registry.get("0x1") is orders[1]
    assert registry.by_oid(hl_oid(101)) is orders[1]
    assert registry.get("0x2") is orders[2]
    assert registry.get("0xlive") is live  # live orders are never dropped
    assert registry.evicted == 1
    assert registry.live() == [live]
    registry.sync(orders[2])  # syncing again does not count it twice
    assert registry.get("0x1") is orders[1]


def test_evicted_order_drops_all_its_oids() -> None:
    registry = OrderRegistry(terminal_capacity=1)
    order = tracked("0xa")
    registry.register(order)
    order.ack_resting(hl_oid(11), 2)
    order.request_modify(101.0, 1.0, Tif.GTC, 3)
    order.replaced(hl_oid(12), 4)
    said(order, "filled", 12, 5)
    registry.sync(order)
    other = tracked("0xb")
    registry.register(other)
    finish(registry, other, 13)
    assert registry.by_oid(hl_oid(11)) is None
    assert registry.by_oid(hl_oid(12)) is None
    assert registry.get("0xa") is None


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        OrderRegistry(terminal_capacity=0)


def test_in_flight_since_and_in_flight() -> None:
    registry = OrderRegistry()
    placed, answered, unknown = tracked("0xa", 10), tracked("0xb", 11), tracked("0xc", 12)
    for order in (placed, answered, unknown):
        registry.register(order)
    answered.ack_resting(hl_oid(21), 15)
    registry.sync(answered)
    unknown.timed_out(20)
    registry.sync(unknown)
    assert registry.in_flight_since("0xa") == 10
    assert registry.in_flight_since("0xb") is None
    assert registry.in_flight_since("0xnope") is None
    assert {o.cloid for o in registry.in_flight()} == {"0xa", "0xc"}  # UNKNOWN is not gone
    answered.request_cancel(30)
    assert registry.in_flight_since("0xb") == 30


def test_overdue_lists_pending_requests_past_the_timeout() -> None:
    registry = OrderRegistry()
    old, young, unknown = tracked("0xa", 0), tracked("0xb", 900), tracked("0xc", 0)
    for order in (old, young, unknown):
        registry.register(order)
    unknown.timed_out(500)
    assert unknown.state is OrderState.UNKNOWN
    assert registry.overdue(now_ms=1000, timeout_ms=1000) == [old]
    assert registry.overdue(now_ms=1900, timeout_ms=1000) == [old, young]


COINS = ("BTC", "ETH", "SOL")


class _Counter:
    """Fresh oid numbers, and how far they went."""

    def __init__(self, start: int) -> None:
        self.next = start

    def __next__(self) -> int:
        self.next += 1
        return self.next - 1


def next_oid(counter: _Counter) -> int:
    return counter.next


STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["place", "ack", "modify", "dead_leg", "finish", "time_out", "not_found", "revive"]
        ),
        st.sampled_from(COINS),
    ),
    max_size=40,
)


@given(capacity=st.integers(min_value=1, max_value=4), kept=st.integers(1, 3), steps=STEPS)
def test_queries_agree_when_orders_forget_retired_oids(
    capacity: int, kept: int, steps: list[tuple[str, str]]
) -> None:
    """The same, with orders that keep only their newest 1 to 3 retired oids: an oid an order
    forgot is unindexed at its next sync (by_oid finds no order for it)."""
    with mock.patch.object(lifecycle, "RETIRED_OIDS_KEPT", kept):
        check_queries_against_a_scan(capacity, steps)


@given(capacity=st.integers(min_value=1, max_value=4), steps=STEPS)
def test_queries_agree_with_a_scan_of_every_retained_order(
    capacity: int, steps: list[tuple[str, str]]
) -> None:
    """The indexes the per-cycle queries read (live orders, by symbol too, and every oid an
    order has had) never drift from the orders themselves, through modifies, ends, evictions
    and revivals."""
    check_queries_against_a_scan(capacity, steps)


def check_queries_against_a_scan(capacity: int, steps: list[tuple[str, str]]) -> None:
    registry = OrderRegistry(terminal_capacity=capacity)
    made: list[TrackedOrder] = []
    oids = _Counter(10_000)
    for now_ms, (step, coin) in enumerate(steps, start=1):
        if step == "place" or not made:
            order = TrackedOrder.submit(
                PlaceOrder(coin, Side.BUY, 100.0, 1.0, Tif.GTC, f"0x{len(made)}"), now_ms
            )
            made.append(order)
            registry.register(order)
            continue
        order = made[now_ms % len(made)]
        oid = 1000 + made.index(order)
        retained_now = order.cloid in registry
        if step == "revive" and order.state is OrderState.REJECTED and retained_now:
            said(order, "open", oid, now_ms)  # it landed after all: live again
            assert not order.is_terminal
            registry.sync(order)
        if order.is_terminal or not retained_now:
            continue
        if step == "ack" and order.state is OrderState.PENDING_NEW:
            order.ack_resting(hl_oid(oid), now_ms)
        elif step == "finish":
            if order.oid is None:
                order.ack_resting(hl_oid(oid), now_ms)
            assert order.oid is not None
            order.report(order_status("canceled"), order.oid, now_ms, word="canceled")
        elif step == "time_out" and order.state is OrderState.PENDING_NEW:
            order.timed_out(now_ms)
        elif step == "not_found" and order.state is OrderState.UNKNOWN:
            order.resolved_missing(now_ms)  # taken for never placed
        elif step == "modify" and order.state is OrderState.OPEN:
            order.request_modify(101.0, 1.0, Tif.GTC, now_ms)
            order.replaced(hl_oid(next(oids)), now_ms)  # a new oid; the old one is retired
        elif step == "dead_leg":
            order.retire_oid(hl_oid(next(oids)))  # a replacement the venue rejected
        candidates = [hl_oid(n) for n in (*range(10_000, next_oid(oids)), 1000 + made.index(order))]
        for candidate in candidates:  # changed and not yet synced: still exact
            assert registry.is_retired(order, candidate) == (candidate in order.retired_oids)
        registry.sync(order)
        retained = list(registry)
        for known in retained:
            for candidate in candidates:
                assert registry.is_retired(known, candidate) == (candidate in known.retired_oids)
        assert registry.live() == [o for o in retained if not o.is_terminal]
        assert registry.live_count() == len(registry.live())
        for symbol in (*COINS, "XRP"):
            assert registry.live(symbol) == [
                o for o in retained if o.coin == symbol and not o.is_terminal
            ]
        for known in retained:
            for had in (known.oid, *known.retired_oids):
                if had is not None:
                    assert registry.by_oid(had) is known
        for candidate in candidates:  # what no retained order has or keeps is not indexed
            holders = [o for o in retained if candidate in (o.oid, *o.retired_oids)]
            assert registry.by_oid(candidate) is (holders[0] if holders else None)
        assert registry.in_flight() == [o for o in retained if o.oid is None and not o.is_terminal]
        assert registry.overdue(now_ms, 0) == [
            o
            for o in retained
            if o.in_flight_since_ms is not None
            and o.state in {OrderState.PENDING_NEW, OrderState.PENDING_CANCEL}
        ]


def test_a_revived_order_is_live_again_and_retention_forgets_it() -> None:
    registry = OrderRegistry(terminal_capacity=1)
    order = tracked("0xa")
    registry.register(order)
    order.timed_out(2)
    order.resolved_missing(3)  # taken for never placed
    registry.sync(order)
    assert registry.live() == []
    said(order, "open", 11, 4)  # and yet it landed
    registry.sync(order)
    assert registry.live() == [order]
    assert registry.by_oid(hl_oid(11)) is order
    other = tracked("0xb")
    registry.register(other)
    finish(registry, other, 12)  # fills the retention: the revived order is not evicted
    assert registry.get("0xa") is order
    assert registry.evicted == 0


def test_an_order_modified_for_hours_keeps_its_newest_retired_oids_indexed() -> None:
    """The bound: an order modified 1,000 times keeps (and the registry indexes) only its newest
    RETIRED_OIDS_KEPT oids; a late report for an older one is no longer found by its oid, by its
    cloid it still is."""
    registry = OrderRegistry()
    order = tracked("0xa")
    registry.register(order)
    order.ack_resting(hl_oid(0), 1)
    registry.sync(order)
    for n in range(1, 1_001):
        order.request_modify(100.0 + n, 1.0, Tif.GTC, n)
        order.replaced(hl_oid(n), n)
        registry.sync(order)
    assert order.retired_oids == tuple(hl_oid(n) for n in range(1_000 - RETIRED_OIDS_KEPT, 1_000))
    assert order.retired_dropped == 1_000 - RETIRED_OIDS_KEPT
    assert len(registry._by_oid) == RETIRED_OIDS_KEPT + 1
    assert registry.by_oid(hl_oid(1_000 - RETIRED_OIDS_KEPT)) is order
    assert registry.by_oid(hl_oid(999 - RETIRED_OIDS_KEPT)) is None
    assert registry.find("0xa", hl_oid(0)) is order
    assert registry.is_retired(order, hl_oid(999))
    assert not registry.is_retired(order, hl_oid(0))
    said(order, "canceled", 1_000, 2_000)
    registry.sync(order)
    registry.terminal_capacity = 1
    finish(registry, tracked_registered(registry, "0xb"), 3_000)  # evicted, with what it kept
    assert "0xa" not in registry
    assert all(registry.by_oid(hl_oid(n)) is None for n in range(1_001))


def tracked_registered(registry: OrderRegistry, cloid: str) -> TrackedOrder:
    order = tracked(cloid)
    registry.register(order)
    return order


def test_a_compact_order_is_the_order_field_for_field() -> None:
    """Every field survives TrackedOrder.compact and from_compact (a field added later with no
    value set here fails the first assertion: give it one)."""
    order = TrackedOrder(
        cloid="0xc",
        coin="ETH",
        side=Side.SELL,
        px=101.5,
        sz=2.0,
        orig_sz=3.0,
        tif=Tif.ALO,
        reduce_only=True,
        created_ms=1,
        updated_ms=2,
        state=OrderState.UNKNOWN,
        oid=hl_oid(7),
        retired_oids=(hl_oid(5), hl_oid(6)),
        filled_sz=1.0,
        avg_fill_px=101.0,
        oid_filled_sz=0.5,
        fill_count=2,
        answered_filled_sz=0.25,
        accepted=True,
        acked_ms=3,
        seen_ms=4,
        terminal_ms=5,
        in_flight_since_ms=6,
        pending=Op.MODIFY,
        base=OrderState.PARTIALLY_FILLED,
        cancel_sent=True,
        modify_target=(102.0, 1.5, Tif.GTC),
        reason="why",
        unknown_words=("odd",),
        lands_by_ms=9.5,
        retired_dropped=3,
    )
    defaults = TrackedOrder.submit(PlaceOrder("BTC", Side.BUY, 1.0, 1.0, Tif.IOC, "0xd"), 0)
    assert all(
        getattr(order, field.name) != getattr(defaults, field.name)
        for field in attrs.fields(TrackedOrder)
    )
    values = order.compact()
    gc.collect()  # the tuples inside first (or in the same collection), then the one outside
    gc.collect()
    assert not gc.is_tracked(values)
    assert attrs.asdict(TrackedOrder.from_compact(values)) == attrs.asdict(order)
    assert attrs.asdict(TrackedOrder.from_compact(defaults.compact())) == attrs.asdict(defaults)


def test_terminal_orders_are_kept_cold_and_thawed_on_lookup() -> None:
    registry = OrderRegistry(terminal_capacity=10)
    held = tracked("0xa")
    registry.register(held)
    finish(registry, held, 11)
    for n in range(2, 5):
        finish(registry, tracked_registered(registry, f"0x{n}"), 10 + n)
    gc.collect()
    gc.collect()
    cold = list(registry._cold.values())
    assert len(cold) == 4
    assert not any(gc.is_tracked(values) for values in cold)
    assert all(order is None for order in registry._by_cloid.values())
    # Still held here: the same object comes back, by cloid and by oid.
    assert registry.get("0xa") is held
    assert registry.by_oid(hl_oid(11)) is held
    registry.sync(held)  # terminal still: cold again
    assert registry._by_cloid["0xa"] is None
    # Held by nobody: rebuilt, equal, and the one every later lookup gets while it is warm.
    expected = attrs.asdict(registry.get("0x2"))  # type: ignore[arg-type]
    registry.sync(registry.get("0x2"))  # type: ignore[arg-type]
    gc.collect()
    again = registry.find("0x2", None)
    assert again is not None
    assert attrs.asdict(again) == expected
    assert registry.by_oid(hl_oid(12)) is again
    assert set(registry._cold_refs) == {"0xa"}  # only the order still held here
    # A late fill on a cold order: applied to the thawed order, kept when it cools again.
    late = Fill(
        "BTC",
        Side.BUY,
        100.0,
        0.5,
        5,
        hl_oid(13),
        hl_tid(1),
        "0x3",
        0.0,
        "USDC",
        False,
        0.0,
        "Open Long",
        0.0,
        "0x0",
    )
    third = registry.find("0x3", hl_oid(13))
    assert third is not None
    third.apply_fill(late, 6)
    registry.sync(third)
    del third
    gc.collect()
    assert registry.get("0x3").filled_sz == 0.5  # type: ignore[union-attr]
    assert [order.cloid for order in registry] == ["0xa", "0x2", "0x3", "0x4"]
