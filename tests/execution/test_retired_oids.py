"""The bound on an order's retired oids, through the dispatcher: an order modified for hours
keeps its newest ``RETIRED_OIDS_KEPT`` oids, and a very late report or fill for an oid it has
forgotten is handled safely: never lost, never applied twice, never regressing the order."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mm.execution import lifecycle
from mm.execution.dispatch import (
    Dispatcher,
    DispatchOutput,
    FillEvent,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderUpdated,
    UntrackedFill,
    UntrackedReport,
)
from mm.execution.lifecycle import RETIRED_OIDS_KEPT, OrderState
from mm.model import ModifyOrder, OrderId, Rejected, Resting
from tests.execution.venue_events import CLOID, fill, opened, place, report
from tests.ids import hl_oid

MODIFIES = 3 * RETIRED_OIDS_KEPT


def modified_for_hours() -> Dispatcher:
    """An order placed as oid 0 and modified MODIFIES times (oids 1, 2, ...), each modify
    answered and its old leg's cancel reported."""
    d = opened(0)
    for n in range(1, MODIFIES + 1):
        now = 10 * n
        d.request_modify(ModifyOrder(place(px=100.0 + n)), now)
        d.on_modify_ack(CLOID, Resting(hl_oid(n), CLOID), now + 1)
        assert d.on_order_report(report(n - 1, "canceled"), now + 2) == []
    return d


def test_an_order_modified_for_hours_keeps_its_newest_oids() -> None:
    d = modified_for_hours()
    order = d.order(CLOID)
    assert order is not None
    assert (order.state, order.oid) == (OrderState.OPEN, hl_oid(MODIFIES))
    assert order.retired_oids == tuple(
        hl_oid(n) for n in range(MODIFIES - RETIRED_OIDS_KEPT, MODIFIES)
    )
    assert order.retired_dropped == MODIFIES - RETIRED_OIDS_KEPT
    assert d.registry.by_oid(hl_oid(0)) is None
    assert d.registry.by_oid(hl_oid(MODIFIES - RETIRED_OIDS_KEPT)) is order


@pytest.mark.parametrize("oid", [0, MODIFIES - 1], ids=["forgotten", "kept"])
def test_a_late_fill_for_a_retired_oid_is_applied_once_by_its_cloid(oid: int) -> None:
    """Forgotten or kept, the same: its size counts in the order's total, not on its leg."""
    d = modified_for_hours()
    order = d.order(CLOID)
    assert order is not None
    late = fill(oid, 7)  # it filled before that leg was replaced; delivered only now
    events = d.on_fill(late, 10_000)
    assert [type(e) for e in events] == [FillEvent, OrderPartiallyFilled]
    assert (order.filled_sz, order.fill_count, order.oid_filled_sz) == (1.0, 1, 0.0)
    assert (order.state, order.oid) == (OrderState.PARTIALLY_FILLED, hl_oid(MODIFIES))
    assert d.on_fill(late, 10_001) == []  # again (a resubscribe's snapshot): not applied twice
    assert d.stats.duplicate_fills == 1
    assert order.filled_sz == 1.0


def test_a_late_fill_without_a_cloid_for_a_forgotten_oid_is_passed_on_untracked() -> None:
    d = modified_for_hours()
    late = fill(0, 8, cloid=None)
    assert d.on_fill(late, 10_000) == [UntrackedFill(late)]
    assert d.on_fill(late, 10_001) == []  # deduplicated all the same
    order = d.order(CLOID)
    assert order is not None
    assert order.filled_sz == 0.0


def test_a_late_report_for_a_forgotten_oid_does_not_regress_the_order() -> None:
    d = modified_for_hours()
    assert d.on_order_report(report(0, "canceled"), 10_000) == []  # stale by its cloid
    assert d.on_order_report(report(0, "filled"), 10_001) == []
    without = report(1, "canceled", cloid=None)
    assert d.on_order_report(without, 10_002) == [UntrackedReport(without)]
    order = d.order(CLOID)
    assert order is not None
    assert (order.state, order.oid) == (OrderState.OPEN, hl_oid(MODIFIES))


# --- a late event for a forgotten oid while the order has a modify in flight -------------------
#
# The order has forgotten oid 0 (and every oid up to MODIFIES - RETIRED_OIDS_KEPT - 1), so an
# event naming it under the order's cloid looks like one for an oid the order never had: what a
# modify's replacement leg looks like. Only the modify's answer (or an orderStatus answer for the
# cloid) names the replacement for sure; until one comes, such an event is held, never taken for
# the replacement's.

NEW = MODIFIES + 1  # the oid the modify in flight gets


def modifying() -> Dispatcher:
    """`modified_for_hours`, then one more modify sent and not answered yet."""
    d = modified_for_hours()
    d.request_modify(ModifyOrder(place(px=99.0, sz=2.0)), 20_000)
    return d


def answered(d: Dispatcher, now: int = 20_010) -> list[str]:
    return [type(e).__name__ for e in d.on_modify_ack(CLOID, Resting(hl_oid(NEW), CLOID), now)]


def test_a_late_fill_for_a_forgotten_oid_during_a_modify_is_not_the_replacements() -> None:
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_fill(fill(0, 9), 20_001) == []  # held: the answer will say which leg is new
    assert (order.state, order.oid) == (OrderState.PENDING_MODIFY, hl_oid(MODIFIES))
    assert answered(d) == ["OrderUpdated", "FillEvent", "OrderPartiallyFilled"]
    assert (order.state, order.oid, order.px, order.sz) == (
        OrderState.PARTIALLY_FILLED,
        hl_oid(NEW),
        99.0,
        2.0,
    )
    # Counted in the order's total, on no leg: it filled long before this one was placed.
    assert (order.filled_sz, order.oid_filled_sz) == (1.0, 0.0)
    assert d.on_fill(fill(0, 9), 20_011) == []  # and once only
    assert d.pending_modify(CLOID) is None


@pytest.mark.parametrize("word", ["canceled", "filled", "open", "marginCanceled"])
def test_a_late_report_for_a_forgotten_oid_during_a_modify_changes_nothing(word: str) -> None:
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_order_report(report(0, word), 20_001) == []
    assert (order.state, order.oid) == (OrderState.PENDING_MODIFY, hl_oid(MODIFIES))
    events = answered(d)
    assert events[0] == "OrderUpdated"
    # Replayed once the replacement is known: a stale report (a live one for an oid the order
    # does not track goes to reconciliation, as it would with no modify in flight).
    assert events[1:] == (["UntrackedReport"] if word == "open" else [])
    assert (order.state, order.oid) == (OrderState.OPEN, hl_oid(NEW))


def test_the_replacements_own_events_before_the_answer_are_applied_to_it() -> None:
    """Held as well (they cannot be told from a forgotten oid's by themselves), then applied
    to the replacement, in the order they came, once the answer names it."""
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_order_report(report(NEW, "open", px=99.0, sz=2.0, orig_sz=2.0), 20_001) == []
    assert d.on_fill(fill(NEW, 10, sz=0.5), 20_002) == []
    assert d.on_order_report(report(MODIFIES, "canceled"), 20_003) == []  # the old leg
    assert answered(d) == ["OrderUpdated", "FillEvent", "OrderPartiallyFilled"]
    assert (order.state, order.oid) == (OrderState.PARTIALLY_FILLED, hl_oid(NEW))
    assert (order.filled_sz, order.oid_filled_sz) == (0.5, 0.5)  # on the new leg
    assert [type(e).__name__ for e in d.on_fill(fill(NEW, 11, sz=1.5), 20_020)] == [
        "FillEvent",
        "OrderFilled",
    ]


@pytest.mark.parametrize("word", ["filled", "marginCanceled"])
def test_the_replacements_end_before_the_answer_ends_the_order(word: str) -> None:
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_order_report(report(NEW, word, sz=0.0, orig_sz=2.0), 20_001) == []
    end = "OrderFilled" if word == "filled" else "OrderCanceled"
    assert answered(d) == ["OrderUpdated", end]
    assert (order.oid, order.reason) == (hl_oid(NEW), word)


def test_a_lost_answer_is_settled_by_the_cloids_status_and_the_held_events_follow() -> None:
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_fill(fill(NEW, 12), 20_001) == []
    assert d.on_fill(fill(0, 13), 20_002) == []
    d.may_land([CLOID], None)
    assert [type(e).__name__ for e in d.on_timeout(CLOID, 25_000)] == ["OrderStateUnknown"]
    # orderStatus by cloid names the cloid's current venue order: the replacement, for sure.
    events = d.resolve_unknown(CLOID, report(NEW, "open", px=99.0, sz=2.0, orig_sz=2.0), 26_000)
    assert [type(e).__name__ for e in events] == [
        "OrderUpdated",
        "FillEvent",
        "OrderPartiallyFilled",
        "FillEvent",
        "OrderPartiallyFilled",
    ]
    assert (order.state, order.oid) == (OrderState.PARTIALLY_FILLED, hl_oid(NEW))
    assert (order.filled_sz, order.oid_filled_sz) == (2.0, 1.0)


def test_a_refused_modify_replays_the_held_events_on_the_order_as_it_was() -> None:
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_fill(fill(0, 14), 20_001) == []
    assert d.on_order_report(report(0, "canceled"), 20_002) == []
    events = d.on_modify_ack(CLOID, Rejected("Cannot modify"), 20_010)
    assert [type(e).__name__ for e in events] == [
        "OrderModifyRejected",
        "FillEvent",
        "OrderPartiallyFilled",
    ]
    assert (order.state, order.oid) == (OrderState.PARTIALLY_FILLED, hl_oid(MODIFIES))
    assert (order.filled_sz, order.oid_filled_sz) == (1.0, 0.0)


def test_an_order_that_ends_with_events_held_replays_them() -> None:
    """The old leg filled before the modify could take it: the modify is over, and a held
    fill is applied to the ended order (never lost)."""
    d = modifying()
    order = d.order(CLOID)
    assert order is not None
    assert d.on_fill(fill(0, 15), 20_001) == []
    events = d.on_order_report(report(MODIFIES, "filled", sz=0.0), 20_002)
    assert [type(e).__name__ for e in events] == ["OrderFilled", "FillEvent"]
    assert (order.state, order.oid, order.filled_sz) == (
        OrderState.FILLED,
        hl_oid(MODIFIES),
        1.0,
    )
    assert d.pending_modify(CLOID) is None


# --- any interleaving of modifies, their evidence and late events for old oids ----------------

# Modifies and answers twice as often as the rest: orders soon forget oids.
STEPS = ("modify", "answer") * 2 + (
    "new_open",
    "new_fill",
    "old_cancel",
    "late_fill",
    "late_report",
)
LATE_WORDS = ("canceled", "filled", "open", "marginCanceled")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kept=st.integers(1, 3),
    steps=st.lists(
        st.tuples(st.sampled_from(STEPS), st.integers(0, 1_000)), min_size=10, max_size=80
    ),
)
def test_late_events_for_old_oids_never_pass_for_the_replacement(
    kept: int, steps: list[tuple[str, int]]
) -> None:
    """Orders that keep only their newest 1 to 3 retired oids, modified again and again, with the
    modify's evidence (the replacement's open report and fills, the old leg's cancel) and late
    reports and fills for any of the order's old oids, kept or forgotten, arriving in between in
    any order. The order's oid is only ever the one the answers named (or the replacement,
    before its answer), every modify yields one update from the old oid to the new, no late
    event ends the order, and once the modifies are answered every fill is counted once, on the
    leg it was made on."""
    with mock.patch.object(lifecycle, "RETIRED_OIDS_KEPT", kept):
        d = opened(0)
        order = d.order(CLOID)
        assert order is not None
        current, next_oid = 0, 1
        pending: int | None = None  # the oid the modify in flight gets
        late_in_modify = False  # for the statistics: the case this is about happened
        filled: Counter[int] = Counter()  # fills made, by the oid they were made on
        expected_updates: list[tuple[OrderId, OrderId]] = []
        outputs: list[DispatchOutput] = []

        def answer(now: int) -> None:
            nonlocal current, pending
            assert pending is not None
            outputs.extend(d.on_modify_ack(CLOID, Resting(hl_oid(pending), CLOID), now))
            expected_updates.append((hl_oid(current), hl_oid(pending)))
            current, pending = pending, None

        for tid, (step, pick) in enumerate(steps):
            now = 10 + tid
            if step == "modify" and pending is None:
                d.request_modify(ModifyOrder(place(px=100.0 + next_oid)), now)
                pending, next_oid = next_oid, next_oid + 1
            elif step == "answer" and pending is not None:
                answer(now)
            elif step == "new_open" and pending is not None:
                outputs.extend(d.on_order_report(report(pending, "open"), now))
            elif step == "new_fill":
                oid = current if pending is None else pending
                outputs.extend(d.on_fill(fill(oid, tid, sz=0.01), now))
                filled[oid] += 1
            elif step == "old_cancel" and pending is not None:
                outputs.extend(d.on_order_report(report(current, "canceled"), now))
            if step.startswith("late") and pending is not None and order.retired_dropped:
                late_in_modify = True
            if step == "late_fill" and current > 0:
                oid = pick % current
                outputs.extend(d.on_fill(fill(oid, tid, sz=0.01), now))
                filled[oid] += 1
            elif step == "late_report" and current > 0:
                word = LATE_WORDS[pick % len(LATE_WORDS)]
                outputs.extend(d.on_order_report(report(pick % current, word), now))
            assert not order.is_terminal
            allowed = {hl_oid(current)} if pending is None else {hl_oid(current), hl_oid(pending)}
            assert order.oid in allowed
        if pending is not None:
            answer(10 + len(steps))
        event(f"a late event in a modify, oids forgotten: {late_in_modify}")
        assert order.oid == hl_oid(current)
        assert d.pending_modify(CLOID) is None
        updates = [(e.old_oid, e.oid) for e in outputs if isinstance(e, OrderUpdated)]
        assert updates == expected_updates
        assert not [e for e in outputs if isinstance(e, (OrderCanceled, OrderFilled))]
        assert order.fill_count == sum(filled.values())
        assert order.filled_sz == pytest.approx(0.01 * sum(filled.values()))
        assert order.oid_filled_sz == pytest.approx(0.01 * filled[current])
