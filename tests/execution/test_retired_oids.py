"""The bound on an order's retired oids, through the dispatcher: an order modified for hours
keeps its newest ``RETIRED_OIDS_KEPT`` oids, and a very late report or fill for an oid it has
forgotten is handled safely: never lost, never applied twice, never regressing the order."""

from __future__ import annotations

import pytest

from mm.execution.dispatch import (
    Dispatcher,
    FillEvent,
    OrderPartiallyFilled,
    UntrackedFill,
    UntrackedReport,
)
from mm.execution.lifecycle import RETIRED_OIDS_KEPT, OrderState
from mm.model import ModifyOrder, Resting
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
