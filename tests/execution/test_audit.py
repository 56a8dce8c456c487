"""The order audit's pure decision: what is an orphan, a ghost or a stuck order, given the
registry, the venue's open orders and the grace; and properties over random registries and
snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.audit import (
    AuditConfig,
    Snapshot,
    audit,
    find_ghosts,
    find_orphans,
    find_stuck,
    is_orphan,
)
from mm.execution.dispatch import Dispatcher
from mm.execution.lifecycle import WORKING_STATES, OrderState
from mm.model import (
    ModifyOrder,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.settings import ConfigError, structure_section
from mm.venues.hyperliquid.status import order_status
from tests.ids import hl_oid

S = OrderState
GRACE = 5_000
STUCK = 15_000


def cloid(n: int) -> str:
    return f"0x{n:032x}"


def place(n: int, px: float = 100.0, side: Side = Side.BUY) -> PlaceOrder:
    return PlaceOrder("BTC", side, px, 1.0, Tif.ALO, cloid(n))


def venue(
    oid: OrderId, *, cloid: str | None = None, time_ms: int = 0, px: float = 100.0
) -> OpenOrder:
    return OpenOrder("BTC", Side.BUY, px, 1.0, 1.0, oid, cloid, time_ms)


def report(oid: OrderId, n: int, status: str) -> OrderReport:
    return OrderReport(
        "BTC", Side.BUY, 100.0, 1.0, 1.0, oid, cloid(n), 0, order_status(status), 0, status
    )


def resting(d: Dispatcher, n: int, oid: OrderId, at: int = 0, px: float = 100.0) -> None:
    d.submit(place(n, px), at)
    d.on_place_ack(cloid(n), Resting(oid, cloid(n)), at)


def snap(*orders: OpenOrder, at: int) -> Snapshot:
    return Snapshot(tuple(orders), at)


# --- orphans -------------------------------------------------------------------------------------


def test_a_foreign_order_is_an_orphan_once_past_the_grace() -> None:
    d = Dispatcher()
    theirs = venue(hl_oid(99), cloid="0xforeign", time_ms=1_000)
    assert not is_orphan(d.registry, theirs, 1_000 + GRACE - 1, GRACE)
    assert is_orphan(d.registry, theirs, 1_000 + GRACE, GRACE)
    assert find_orphans(d.registry, snap(theirs, at=1_000 + GRACE), GRACE) == (theirs,)


def test_our_live_orders_are_never_orphans() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    d.submit(place(2), 0)  # its answer is still on the way
    late = 10 * GRACE
    assert not is_orphan(d.registry, venue(hl_oid(11), cloid=cloid(1)), late, GRACE)
    assert not is_orphan(d.registry, venue(hl_oid(11)), late, GRACE)  # by oid alone
    assert not is_orphan(
        d.registry, venue(hl_oid(12), cloid=cloid(2)), late, GRACE
    )  # by cloid alone


def test_an_order_ended_here_but_resting_there_is_an_orphan_after_the_grace() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    d.resolve_absent(cloid(1), None, 10_000)  # ended here at 10 s
    zombie = venue(hl_oid(11), cloid=cloid(1))
    assert not is_orphan(d.registry, zombie, 10_000 + GRACE - 1, GRACE)  # a report may lag
    assert is_orphan(d.registry, zombie, 10_000 + GRACE, GRACE)


def test_an_order_without_cloid_that_may_be_our_unanswered_one_is_spared() -> None:
    d = Dispatcher()
    d.submit(place(1, px=100.0), 0)
    maybe_ours = venue(hl_oid(99), time_ms=0)
    assert not is_orphan(d.registry, maybe_ours, 5 * GRACE, GRACE)
    assert is_orphan(d.registry, venue(hl_oid(98), px=105.0), 5 * GRACE, GRACE)  # another price
    d.on_timeout(cloid(1), 6_000)
    assert not is_orphan(d.registry, maybe_ours, 7 * GRACE, GRACE)  # UNKNOWN is never gone
    d.resolve_unknown(cloid(1), None, 8_000)
    assert is_orphan(d.registry, maybe_ours, 9 * GRACE, GRACE)


def test_a_pending_modify_spares_a_cloidless_order_at_its_target_price() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11), px=100.0)
    d.request_modify(ModifyOrder(place(1, px=101.0)), 1)
    assert not is_orphan(d.registry, venue(hl_oid(12), px=101.0), 5 * GRACE, GRACE)


# --- ghosts --------------------------------------------------------------------------------------


def test_a_ghost_needs_two_misses_a_grace_apart() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    ghosts, suspects = find_ghosts(d.registry, snap(at=1_000), GRACE, {})
    assert ghosts == ()
    assert suspects == {cloid(1): 1_000}
    ghosts, suspects = find_ghosts(d.registry, snap(at=1_000 + GRACE - 1), GRACE, suspects)
    assert ghosts == ()
    assert suspects == {cloid(1): 1_000}
    ghosts, suspects = find_ghosts(d.registry, snap(at=1_000 + GRACE), GRACE, suspects)
    assert ghosts == (cloid(1),)
    assert suspects == {}


def test_a_listed_order_is_no_suspect() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    resting(d, 2, oid=hl_oid(12))
    suspects = {cloid(1): 0, cloid(2): 0}
    listed = snap(
        venue(hl_oid(11), cloid=cloid(1)), venue(hl_oid(12)), at=GRACE
    )  # by cloid, or by oid
    assert find_ghosts(d.registry, listed, GRACE, suspects) == ((), {})


def test_refused_requests_are_no_sign_of_life() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    suspects = {cloid(1): 1_000}
    d.request_cancel(cloid(1), 2_000)  # the slot pokes the order the venue no longer has...
    d.on_cancel_ack(
        cloid(1), Rejected("Order was never placed, already canceled, or filled."), 2_001
    )
    d.request_modify(ModifyOrder(place(1, px=101.0)), 3_000)
    d.on_modify_ack(cloid(1), Rejected("Cannot modify canceled or filled order"), 3_001)
    ghosts, _ = find_ghosts(d.registry, snap(at=1_000 + GRACE), GRACE, suspects)
    assert ghosts == (cloid(1),)  # ...which does not make it look alive


def test_an_order_seen_alive_since_the_snapshot_or_the_first_miss_is_not_judged_by_it() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11), at=2_000)
    assert find_ghosts(d.registry, snap(at=1_999), GRACE, {}) == ((), {})  # too old to judge
    order = d.order(cloid(1))
    assert order is not None
    suspects = {cloid(1): 1_000}  # missed before it was seen alive (at 2 s): the clock restarts
    assert find_ghosts(d.registry, snap(at=1_000 + GRACE), GRACE, suspects) == (
        (),
        {cloid(1): 1_000 + GRACE},
    )


def test_an_order_being_poked_is_judged_all_the_same() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    resting(d, 2, oid=hl_oid(12))
    _, suspects = find_ghosts(d.registry, snap(at=1_000), GRACE, {})
    d.request_modify(ModifyOrder(place(1, px=101.0)), 1_000 + GRACE)  # in flight
    d.request_cancel(cloid(2), 1_000 + GRACE)
    ghosts, suspects = find_ghosts(d.registry, snap(at=1_000 + GRACE), GRACE, suspects)
    assert ghosts == (cloid(1), cloid(2))
    assert suspects == {}


def test_orders_on_their_way_or_unknown_are_never_ghosts() -> None:
    d = Dispatcher()
    d.submit(place(1), 0)  # PENDING_NEW
    resting(d, 2, oid=hl_oid(12))
    d.request_cancel(cloid(2), 0)
    d.on_timeout(cloid(2), 0)  # UNKNOWN
    long_ago = {cloid(n): 0 for n in range(1, 3)}
    assert find_ghosts(d.registry, snap(at=10 * GRACE), GRACE, long_ago) == ((), {})


def test_a_stuck_order_is_asked_about_once_as_stuck_not_as_a_ghost() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    d.request_cancel(cloid(1), 0)  # and its caller went away
    findings = audit(
        d.registry,
        snap(at=STUCK),
        STUCK,
        grace_ms=GRACE,
        stuck_after_ms=STUCK,
        absent_since={cloid(1): 0},
    )
    assert (findings.ghosts, findings.stuck) == ((), (cloid(1),))


# --- stuck ---------------------------------------------------------------------------------------


def test_a_pending_order_nobody_awaits_is_stuck_after_the_deadline() -> None:
    d = Dispatcher()
    d.submit(place(1), 1_000)
    assert find_stuck(d.registry, 1_000 + STUCK - 1, STUCK, frozenset()) == ()
    assert find_stuck(d.registry, 1_000 + STUCK, STUCK, frozenset()) == (cloid(1),)
    assert find_stuck(d.registry, 1_000 + STUCK, STUCK, {cloid(1)}) == ()  # still awaited


def test_an_unknown_order_is_stuck_when_nothing_was_heard_for_the_deadline() -> None:
    d = Dispatcher()
    d.submit(place(1), 0)
    d.on_timeout(cloid(1), 2_000)
    assert find_stuck(d.registry, 2_000 + STUCK - 1, STUCK, ()) == ()
    assert find_stuck(d.registry, 2_000 + STUCK, STUCK, ()) == (cloid(1),)


def test_working_and_ended_orders_are_never_stuck() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    resting(d, 2, oid=hl_oid(12))
    d.resolve_absent(cloid(2), report(hl_oid(12), 2, "canceled"), 1)
    assert find_stuck(d.registry, 100 * STUCK, STUCK, ()) == ()


# --- one audit -----------------------------------------------------------------------------------


def test_an_audit_finds_all_three() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))  # the ghost
    d.submit(place(2), 0)  # stuck
    theirs = venue(hl_oid(99), cloid="0xforeign", time_ms=0)
    findings = audit(
        d.registry,
        snap(theirs, at=STUCK),
        STUCK,
        grace_ms=GRACE,
        stuck_after_ms=STUCK,
        absent_since={cloid(1): 0},
    )
    assert findings.orphans == (theirs,)
    assert findings.ghosts == (cloid(1),)
    assert findings.stuck == (cloid(2),)
    assert findings.absent_since == {}


def test_without_a_snapshot_only_stuck_orders_are_found_and_suspects_are_kept() -> None:
    d = Dispatcher()
    resting(d, 1, oid=hl_oid(11))
    d.submit(place(2), 0)
    findings = audit(
        d.registry, None, STUCK, grace_ms=GRACE, stuck_after_ms=STUCK, absent_since={cloid(1): 0}
    )
    assert (findings.orphans, findings.ghosts, findings.stuck) == ((), (), (cloid(2),))
    assert findings.absent_since == {cloid(1): 0}


# --- configuration -------------------------------------------------------------------------------


def test_the_defaults() -> None:
    config = AuditConfig()
    assert (config.every_s, config.grace_s, config.orphans, config.stuck_after_s) == (
        10.0,
        5.0,
        "cancel",
        15.0,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"orphans": "ignore"}, "executor.audit.orphans: must be one of cancel, warn"),
        ({"every_s": 0}, "executor.audit.every_s: must be > 0"),
        ({"grace_s": -1.0}, "executor.audit.grace_s: must be > 0"),
        ({"stuck_after_s": 0.0}, "executor.audit.stuck_after_s: must be > 0"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        structure_section(data, AuditConfig, "executor.audit")


# --- properties ----------------------------------------------------------------------------------

STEPS = st.sampled_from(["place", "ack", "cancel", "modify", "timeout", "gone", "none"])


@st.composite
def registries(draw: st.DrawFn) -> tuple[Dispatcher, list[int]]:
    """A dispatcher whose orders went through random steps at random times."""
    d = Dispatcher()
    n_orders = draw(st.integers(0, 6))
    times = []
    for n in range(1, n_orders + 1):
        at = draw(st.integers(0, 60_000))
        times.append(at)
        d.submit(place(n, px=100.0 + n), at)
        for step in draw(st.lists(STEPS, max_size=4)):
            now = at + draw(st.integers(0, 30_000))
            order = d.order(cloid(n))
            assert order is not None
            if step == "ack" and order.oid is None and order.state is S.PENDING_NEW:
                d.on_place_ack(cloid(n), Resting(hl_oid(1000 + n), cloid(n)), now)
            elif step == "cancel" and order.can_cancel:
                d.request_cancel(cloid(n), now)
            elif step == "modify" and order.can_modify:
                d.request_modify(ModifyOrder(place(n, px=200.0 + n)), now)
            elif step == "timeout":
                d.on_timeout(cloid(n), now)
            elif step == "gone" and order.oid is not None:
                d.resolve_absent(cloid(n), report(order.oid, n, "canceled"), now)
    return d, times


@st.composite
def snapshots(draw: st.DrawFn, d: Dispatcher) -> Snapshot:
    ours = [
        venue(o.oid, cloid=o.cloid, time_ms=o.created_ms)
        for o in d.registry
        if o.oid is not None and draw(st.booleans())
    ]
    theirs = [
        venue(
            hl_oid(5000 + i),
            cloid=draw(st.sampled_from([None, f"0xforeign{i}"])),
            time_ms=draw(st.integers(0, 120_000)),
            px=draw(st.sampled_from([101.0, 102.0, 150.0])),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return Snapshot(tuple(ours + theirs), draw(st.integers(60_000, 150_000)))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), built=registries(), grace=st.integers(1, 20_000))
def test_the_audit_never_takes_ours_for_an_orphan_nor_a_listed_order_for_a_ghost(
    data: st.DataObject, built: tuple[Dispatcher, list[int]], grace: int
) -> None:
    d, _ = built
    snapshot = data.draw(snapshots(d))
    awaited = frozenset(data.draw(st.sets(st.sampled_from([cloid(n) for n in range(1, 7)]))))
    suspects = data.draw(
        st.dictionaries(st.sampled_from([cloid(n) for n in range(1, 7)]), st.integers(0, 150_000))
    )
    now = snapshot.asked_ms + data.draw(st.integers(0, 5_000))
    findings = audit(
        d.registry,
        snapshot,
        now,
        grace_ms=grace,
        stuck_after_ms=STUCK,
        awaited=awaited,
        absent_since=suspects,
    )
    listed = {o.cloid for o in snapshot.orders} | {o.oid for o in snapshot.orders}
    for orphan in findings.orphans:
        assert snapshot.asked_ms - orphan.time_ms >= grace
        mine = d.registry.find(orphan.cloid, orphan.oid)
        assert mine is None or mine.is_terminal  # never one of our live orders
    for ghost in findings.ghosts:
        order = d.order(ghost)
        assert order is not None
        assert order.state in (*WORKING_STATES, S.PENDING_CANCEL, S.PENDING_MODIFY)
        assert order.cloid not in listed
        assert order.oid not in listed
        assert snapshot.asked_ms - suspects[ghost] >= grace  # missed twice, a grace apart
        assert order.seen_ms is not None
        assert order.seen_ms <= suspects[ghost]
    for cloid_, first in findings.absent_since.items():
        order = d.order(cloid_)
        assert order is not None
        assert order.cloid not in listed
        assert order.oid not in listed
        assert order.seen_ms is not None
        assert order.seen_ms <= first
        assert snapshot.asked_ms - first < grace
    for stuck in findings.stuck:
        order = d.order(stuck)
        assert order is not None
        assert stuck not in awaited
        assert order.state in (S.PENDING_NEW, S.PENDING_CANCEL, S.PENDING_MODIFY, S.UNKNOWN)
    assert not set(findings.ghosts) & set(findings.stuck)


@settings(max_examples=200, deadline=None)
@given(built=registries(), grace=st.integers(1, 20_000))
def test_a_complete_snapshot_finds_no_ghost_and_no_orphan_of_ours(
    built: tuple[Dispatcher, list[int]], grace: int
) -> None:
    d, _ = built
    everything = tuple(
        venue(o.oid, cloid=o.cloid, time_ms=o.created_ms)
        for o in d.registry.live()
        if o.oid is not None
    )
    findings = audit(
        d.registry,
        Snapshot(everything, 200_000),
        200_000,
        grace_ms=grace,
        stuck_after_ms=STUCK,
        absent_since={o.cloid: 0 for o in d.registry},
    )
    assert findings.orphans == ()
    assert findings.ghosts == ()
    assert findings.absent_since == {}
