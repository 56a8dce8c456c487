"""Order reconciliation: unit cases and the acceptance properties (hypothesis)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.lifecycle import (
    TERMINAL_STATES,
    WORKING_STATES,
    OrderState,
    TrackedOrder,
)
from mm.execution.reconcile import (
    BLOCKED_STATES,
    LiveOrder,
    Plan,
    ReconcileConfig,
    _adjacency,
    matches,
    px_tolerance,
    reconcile,
)
from mm.model import DesiredOrder, PlaceOrder, Side, Tif
from mm.settings import ConfigError, structure_section
from tests.cyclic import no_cyclic_garbage
from tests.execution.reconcile_reference import reference_reconcile
from tests.ids import hl_oid

BUY, SELL = Side.BUY, Side.SELL
OPEN = OrderState.OPEN
CONFIG = ReconcileConfig(px_tolerance_bps=2.0, px_tolerance_ticks=0, sz_tolerance=0.1)


def live(cloid: str, side: Side, px: float, sz: float = 1.0, state: OrderState = OPEN) -> LiveOrder:
    return LiveOrder(cloid=cloid, oid=hl_oid(1), side=side, px=px, sz=sz, state=state)


def want(side: Side, px: float, sz: float = 1.0, level: int = 0) -> DesiredOrder:
    return DesiredOrder(side=side, px=px, sz=sz, level=level)


# --- unit cases --------------------------------------------------------------------------------


def test_exact_match_is_no_action() -> None:
    lives = [live("b", BUY, 99.0), live("a", SELL, 101.0)]
    plan = reconcile([want(BUY, 99.0), want(SELL, 101.0)], lives, CONFIG)
    assert plan.calls() == 0
    assert plan.is_empty
    assert {order.cloid for order, _ in plan.keep} == {"a", "b"}


def test_drift_within_tolerance_is_kept() -> None:
    # 2 bps of 100 is 0.02; size within 10%
    plan = reconcile([want(BUY, 100.015, 1.05)], [live("b", BUY, 100.0)], CONFIG)
    assert plan.calls() == 0
    assert len(plan.keep) == 1


def test_ticks_widen_the_price_tolerance() -> None:
    config = ReconcileConfig(px_tolerance_bps=0.0, px_tolerance_ticks=2, sz_tolerance=0.0)
    assert reconcile([want(BUY, 100.2)], [live("b", BUY, 100.0)], config, tick=0.1).is_empty
    assert not reconcile([want(BUY, 100.3)], [live("b", BUY, 100.0)], config, tick=0.1).is_empty


def test_drift_beyond_tolerance_is_one_modify() -> None:
    lives = [live("b0", BUY, 99.0), live("b1", BUY, 98.0), live("a0", SELL, 101.0)]
    desired = [want(BUY, 99.5, level=0), want(BUY, 98.5, 2.0, level=1), want(SELL, 101.5)]
    plan = reconcile(desired, lives, CONFIG)
    assert plan.calls() == 1
    assert plan.cancel == []
    assert plan.place == []
    assert {(o.cloid, d.px, d.sz) for o, d in plan.modify} == {
        ("b0", 99.5, 1.0),
        ("b1", 98.5, 2.0),
        ("a0", 101.5, 1.0),
    }


def test_extra_live_is_canceled() -> None:
    lives = [live("b0", BUY, 99.0), live("b1", BUY, 98.0)]
    plan = reconcile([want(BUY, 99.0)], lives, CONFIG)
    assert [o.cloid for o in plan.cancel] == ["b1"]
    assert plan.calls() == 1


def test_missing_is_placed() -> None:
    plan = reconcile([want(BUY, 99.0), want(SELL, 101.0)], [live("b", BUY, 99.0)], CONFIG)
    assert plan.place == [want(SELL, 101.0)]
    assert plan.calls() == 1


def test_terminal_orders_are_ignored() -> None:
    lives = [
        live(f"t{i}", BUY, 99.0, state=s) for i, s in enumerate(sorted(TERMINAL_STATES, key=str))
    ]
    plan = reconcile([want(BUY, 99.0)], lives, CONFIG)
    assert plan.place == [want(BUY, 99.0)]
    assert plan.keep == []
    assert plan.cancel == []
    assert plan.modify == []


@pytest.mark.parametrize("state", sorted(BLOCKED_STATES, key=str))
def test_blocked_orders_are_untouched(state: OrderState) -> None:
    # matching: it occupies the slot; nothing is re-placed
    plan = reconcile([want(BUY, 99.0)], [live("p", BUY, 99.0, state=state)], CONFIG)
    assert plan.is_empty
    assert plan.place == []
    assert [o.cloid for o, _ in plan.keep] == ["p"]
    # not matching: never canceled nor modified; the desired order waits for a later cycle
    plan = reconcile([want(BUY, 98.0)], [live("p", BUY, 99.0, state=state)], CONFIG)
    assert plan.is_empty
    assert plan.deferred == [want(BUY, 98.0)]
    assert [o.cloid for o in plan.untouched] == ["p"]
    # nothing desired: still not canceled
    plan = reconcile([], [live("p", BUY, 99.0, state=state)], CONFIG)
    assert plan.is_empty
    assert [o.cloid for o in plan.untouched] == ["p"]


def test_working_order_is_modified_before_deferring_on_a_pending_one() -> None:
    lives = [live("w", BUY, 99.0), live("p", BUY, 97.0, state=OrderState.PENDING_NEW)]
    plan = reconcile([want(BUY, 98.0)], lives, CONFIG)
    assert [(o.cloid, d.px) for o, d in plan.modify] == [("w", 98.0)]
    assert plan.deferred == []
    assert plan.cancel == []


def test_working_order_is_kept_rather_than_a_pending_twin() -> None:
    lives = [live("p", BUY, 99.0, state=OrderState.UNKNOWN), live("w", BUY, 99.0)]
    plan = reconcile([want(BUY, 99.0)], lives, CONFIG)
    assert plan.is_empty
    assert [o.cloid for o, _ in plan.keep] == ["w"]
    assert [o.cloid for o in plan.untouched] == ["p"]


def test_side_mismatch_is_never_modified() -> None:
    plan = reconcile([want(SELL, 101.0)], [live("b", BUY, 99.0)], CONFIG)
    assert plan.modify == []
    assert [o.cloid for o in plan.cancel] == ["b"]
    assert plan.place == [want(SELL, 101.0)]
    assert not matches(live("b", BUY, 101.0), want(SELL, 101.0), CONFIG)


def test_fewer_batches_beat_fewer_orders() -> None:
    # modify b0 + cancel b1 + place the ask = 3 calls; cancel both bids + place 2 = 2 calls
    lives = [live("b0", BUY, 99.0), live("b1", BUY, 98.0)]
    plan = reconcile([want(BUY, 99.5), want(SELL, 101.0)], lives, CONFIG)
    assert plan.calls() == 2
    assert plan.modify == []
    assert sorted(o.cloid for o in plan.cancel) == ["b0", "b1"]
    assert len(plan.place) == 2


def test_from_tracked() -> None:
    order = TrackedOrder.submit(
        PlaceOrder(coin="BTC", side=BUY, px=99.0, sz=2.0, tif=Tif.ALO, cloid="c1"), now_ms=1
    )
    snap = LiveOrder.from_tracked(order)
    assert (snap.cloid, snap.side, snap.px, snap.sz, snap.state) == (
        "c1",
        BUY,
        99.0,
        2.0,
        OrderState.PENDING_NEW,
    )


def test_config_checks() -> None:
    assert structure_section({}, ReconcileConfig, "reconcile") == ReconcileConfig()
    with pytest.raises(ConfigError, match=r"reconcile\.sz_tolerance"):
        structure_section({"sz_tolerance": 1.5}, ReconcileConfig, "reconcile")
    with pytest.raises(ConfigError, match=r"reconcile\.px_tolerance_bps"):
        structure_section({"px_tolerance_bps": -1.0}, ReconcileConfig, "reconcile")


# --- properties --------------------------------------------------------------------------------

ALL_STATES = sorted(OrderState, key=lambda s: s.value)
sides = st.sampled_from([BUY, SELL])
prices = st.integers(-20, 20).map(lambda k: 100.0 + 0.25 * k)
sizes = st.integers(1, 8).map(float)
configs = st.builds(
    ReconcileConfig,
    px_tolerance_bps=st.sampled_from([0.0, 1.0, 30.0, 60.0]),
    px_tolerance_ticks=st.sampled_from([0, 1, 3]),
    sz_tolerance=st.sampled_from([0.0, 0.2, 0.5]),
)
TICK = 0.25


@st.composite
def desired_lists(draw: st.DrawFn) -> list[DesiredOrder]:
    rows = draw(st.lists(st.tuples(sides, prices, sizes), max_size=8))
    return [want(s, p, z, level=i) for i, (s, p, z) in enumerate(rows)]


@st.composite
def live_lists(draw: st.DrawFn, states: list[OrderState]) -> list[LiveOrder]:
    rows = draw(st.lists(st.tuples(sides, prices, sizes, st.sampled_from(states)), max_size=8))
    return [live(f"c{i}", s, p, z, state) for i, (s, p, z, state) in enumerate(rows)]


def check_shape(
    plan: Plan, desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig
) -> None:
    """Property 3 and 4, and sides never mix."""
    acted = [o.cloid for o, _ in plan.keep + plan.modify] + [o.cloid for o in plan.cancel]
    acted += [o.cloid for o in plan.untouched]
    assert len(acted) == len(set(acted))
    levels = [d.level for _, d in plan.keep + plan.modify]
    levels += [d.level for d in plan.place + plan.deferred]
    assert len(levels) == len(set(levels))
    assert sorted(levels) == sorted(
        d.level for d in desired
    )  # every desired order is accounted for
    non_terminal = {o.cloid for o in lives if o.state not in TERMINAL_STATES}
    assert set(acted) == non_terminal
    for order, target in plan.modify:
        assert order.state in WORKING_STATES
        assert order.side is target.side
    for order in plan.cancel:
        assert order.state in WORKING_STATES
    for order, target in plan.keep:
        assert matches(order, target, config, TICK)


def run(desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig) -> Plan:
    plan = reconcile(desired, lives, config, tick=TICK)
    check_shape(plan, desired, lives, config)
    # cancel-everything-unmatched + place-everything-missing is always possible: at most 2 calls
    assert plan.calls() <= 2
    return plan


@settings(max_examples=300, deadline=None)
@given(desired_lists(), live_lists(ALL_STATES), configs)
def test_plan_shape_and_blocked_orders_untouched(
    desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig
) -> None:
    plan = run(desired, lives, config)
    blocked = {o.cloid for o in lives if o.state in BLOCKED_STATES}
    assert not blocked & {o.cloid for o, _ in plan.modify}
    assert not blocked & {o.cloid for o in plan.cancel}
    assert len(plan.deferred) <= len(plan.untouched)


@settings(max_examples=300, deadline=None)
@given(desired_lists(), live_lists([*sorted(WORKING_STATES, key=str), *TERMINAL_STATES]), configs)
def test_applying_the_plan_yields_the_desired_set(
    desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig
) -> None:
    plan = run(desired, lives, config)
    assert plan.deferred == []
    assert plan.untouched == []
    # apply: keep stays, modify moves to the desired px/sz, cancel removes, place adds
    after: dict[str, tuple[Side, float, float]] = {
        o.cloid: (o.side, o.px, o.sz) for o in lives if o.state not in TERMINAL_STATES
    }
    served: dict[int, str] = {}
    for order, target in plan.keep:
        served[target.level] = order.cloid
    for order, target in plan.modify:
        after[order.cloid] = (target.side, target.px, target.sz)
        served[target.level] = order.cloid
    for order in plan.cancel:
        del after[order.cloid]
    for target in plan.place:
        after[f"new{target.level}"] = (target.side, target.px, target.sz)
        served[target.level] = f"new{target.level}"
    # one-to-one: every resulting order serves exactly one desired order, within tolerance
    assert sorted(served.values()) == sorted(after)
    for target in desired:
        side, px, sz = after[served[target.level]]
        assert matches(LiveOrder("x", None, side, px, sz, OPEN), target, config, TICK)


@settings(max_examples=300, deadline=None)
@given(live_lists(sorted(WORKING_STATES | BLOCKED_STATES, key=str)), configs, st.randoms())
def test_no_actions_when_desired_equals_live_within_tolerance(
    lives: list[LiveOrder], config: ReconcileConfig, rnd: random.Random
) -> None:
    desired = []
    for i, order in enumerate(lives):
        px_room = 0.45 * px_tolerance(order.px, config, TICK)
        sz_room = 0.3 * config.sz_tolerance * order.sz
        px = order.px + rnd.uniform(-px_room, px_room)
        sz = order.sz + rnd.uniform(-sz_room, sz_room)
        desired.append(want(order.side, px, sz, level=i))
    rnd.shuffle(desired)
    plan = run(desired, lives, config)
    assert plan.calls() == 0
    assert plan.modify == []
    assert plan.cancel == []
    assert plan.place == []
    assert plan.deferred == []
    assert len(plan.keep) == len(lives)


@settings(max_examples=300, deadline=None)
@given(desired_lists(), live_lists(ALL_STATES), configs)
def test_the_side_index_finds_what_a_scan_of_every_pair_finds(
    desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig
) -> None:
    """The candidates of each live order, from the desired orders indexed by side with their
    tolerances computed once, are those ``matches`` accepts over every pair, in the same order
    (nearest price, then level, then index): the matching sees the same graph."""
    scanned = [
        [
            j
            for _, _, j in sorted(
                (abs(target.px - order.px), target.level, j)
                for j, target in enumerate(desired)
                if matches(order, target, config, TICK)
            )
        ]
        for order in lives
    ]
    assert _adjacency(lives, desired, config, TICK) == scanned


@settings(max_examples=500, deadline=None)
@given(desired_lists(), live_lists(ALL_STATES), configs, st.sampled_from([0.0, TICK]))
def test_the_plan_is_the_reference_implementations(
    desired: list[DesiredOrder], lives: list[LiveOrder], config: ReconcileConfig, tick: float
) -> None:
    """reconcile gives the plan of the implementation before issue 16's per-tick cuts (side
    lists instead of dicts keyed by Side, no pairing sort for nothing to pair): the same
    lists in the same order, over every state, blocked orders and deferrals included."""
    assert reconcile(desired, lives, config, tick=tick) == reference_reconcile(
        desired, lives, config, tick=tick
    )


def test_a_reconcile_makes_no_cyclic_garbage() -> None:
    """Kuhn's matching once recursed through a closure that held itself: a cycle a reconcile,
    freed by the collector in the live service's costliest collections."""
    lives = [live(f"c{i}", Side.BUY if i % 2 else Side.SELL, 100.0 + i) for i in range(6)]
    wants = [want(Side.BUY if i % 2 else Side.SELL, 100.2 + i, level=i) for i in range(6)]
    with no_cyclic_garbage():
        plan = reconcile(wants, lives, CONFIG)
    assert plan.keep or plan.modify
