"""Execution dispatch: two-tier routing, fill dedup, cancel-replace detection, timeouts, ghosts
and awaited requests; and a property over random venue histories delivered out of order and
duplicated."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mm.bounded import BoundedSet
from mm.execution.dispatch import (
    DispatchConfig,
    Dispatcher,
    DispatchOutput,
    FillEvent,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModifyRejected,
    OrderPartiallyFilled,
    OrderRejected,
    OrderRevived,
    OrderStateUnknown,
    OrderUpdated,
    UntrackedFill,
    UntrackedReport,
)
from mm.execution.lifecycle import IllegalTransition, LifecycleError, Op, OrderState
from mm.execution.registry import DuplicateCloid
from mm.model import (
    Fill,
    Filled,
    ModifyOrder,
    OrderId,
    OrderReport,
    OrderStatus,
    Rejected,
    Resting,
    Side,
    Tif,
)
from tests.execution.venue_events import CLOID, fill, opened, place, report
from tests.ids import hl_oid

S = OrderState


def kinds(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def modify(d: Dispatcher, px: float = 101.0, sz: float = 2.0, now: int = 3) -> None:
    d.request_modify(ModifyOrder(place(px=px, sz=sz)), now)


def state(d: Dispatcher, cloid: str = CLOID) -> OrderState:
    order = d.order(cloid)
    assert order is not None
    return order.state


# --- placing -----------------------------------------------------------------------------------


def test_ack_then_report_accepts_once() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    events = d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 2)
    assert events == [OrderAccepted(CLOID, hl_oid(11), "BTC", Side.BUY, 100.0, 3.0, 2)]
    assert d.on_order_report(report(11, "open"), 3) == []
    assert state(d) is S.OPEN


def test_the_dispatcher_acts_on_the_status_not_on_the_venues_word() -> None:
    # Another venue's words (none of them Hyperliquid's): the adapter's OrderStatus decides.
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 2)
    live = attrs.evolve(report(11, "open"), venue_status="NEW")
    assert d.on_order_report(live, 3) == []
    assert state(d) is S.OPEN
    gone = attrs.evolve(
        report(11, "open"), status=OrderStatus.CANCELED_BY_VENUE, venue_status="STP_CANCEL"
    )
    assert kinds(d.on_order_report(gone, 4)) == ["OrderCanceled"]
    order = d.order(CLOID)
    assert order is not None
    assert (order.state, order.reason) == (S.CANCELED, "STP_CANCEL")  # the venue's word kept
    odd = attrs.evolve(report(11, "open"), status=OrderStatus.UNRECOGNIZED, venue_status="NEW?")
    assert d.on_order_report(odd, 5) == []
    assert d.stats.unknown_status == 1


def test_report_before_ack_accepts_once() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    assert kinds(d.on_order_report(report(11, "open"), 2)) == ["OrderAccepted"]
    assert d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 3) == []
    assert d.registry.by_oid(hl_oid(11)) is d.order(CLOID)


def test_rejected_place() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    events = d.on_place_ack(CLOID, Rejected("Insufficient margin to place order."), 2)
    assert events == [OrderRejected(CLOID, None, "Insufficient margin to place order.", 2)]
    # The venue also reports a rejected post-only order, with an oid: no second event.
    assert d.on_order_report(report(11, "badAloPxRejected"), 3) == []
    assert d.registry.by_oid(hl_oid(11)) is d.order(CLOID)


def test_rejection_report_first_then_ack() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    assert kinds(d.on_order_report(report(11, "badAloPxRejected"), 2)) == ["OrderRejected"]
    assert d.on_place_ack(CLOID, Rejected("Post only order would have matched"), 3) == []


def test_filled_at_once() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    events = d.on_place_ack(CLOID, Filled(hl_oid(11), CLOID, 3.0, 100.0), 2)
    assert kinds(events) == ["OrderAccepted", "OrderFilled"]
    assert kinds(d.on_fill(fill(11, 1, 3.0), 3)) == ["FillEvent"]
    assert d.on_order_report(report(11, "filled", sz=0.0), 4) == []
    order = d.order(CLOID)
    assert order is not None
    assert order.filled_sz == 3.0


def test_ioc_short_fill_cancels_the_rest() -> None:
    d = Dispatcher()
    d.submit(place(tif=Tif.IOC), 1)
    events = d.on_place_ack(CLOID, Filled(hl_oid(11), CLOID, 1.0, 100.0), 2)
    assert kinds(events) == ["OrderCanceled"]
    assert kinds(d.on_fill(fill(11, 1, 1.0), 3)) == ["FillEvent"]
    assert state(d) is S.CANCELED


def test_duplicate_cloid_is_refused() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    with pytest.raises(DuplicateCloid):
        d.submit(place(), 2)


# --- fills and dedup ---------------------------------------------------------------------------


def test_partial_then_full_fills() -> None:
    d = opened()
    events = d.on_fill(fill(11, 1, 1.0, px=100.0), 3)
    assert kinds(events) == ["FillEvent", "OrderPartiallyFilled"]
    partial = events[1]
    assert isinstance(partial, OrderPartiallyFilled)
    assert (partial.filled_sz, partial.leaves_sz) == (1.0, 2.0)
    events = d.on_fill(fill(11, 2, 2.0, px=103.0), 4)
    assert kinds(events) == ["FillEvent", "OrderFilled"]
    done = events[1]
    assert isinstance(done, OrderFilled)
    assert done.filled_sz == 3.0
    assert done.avg_px == pytest.approx(102.0)
    assert d.on_order_report(report(11, "filled", sz=0.0), 5) == []


def test_duplicate_fill_is_applied_once() -> None:
    d = opened()
    assert kinds(d.on_fill(fill(11, 1), 3)) == ["FillEvent", "OrderPartiallyFilled"]
    assert d.on_fill(fill(11, 1), 4) == []
    assert d.stats.duplicate_fills == 1
    order = d.order(CLOID)
    assert order is not None
    assert order.filled_sz == 1.0


def test_snapshot_replay_after_resubscribe_is_deduplicated() -> None:
    d = opened()
    stream = [fill(11, 1), fill(11, 2)]
    for f in stream:
        d.on_fill(f, 3)
    snapshot = [*stream, fill(11, 3)]  # the userFills snapshot, with one fill that was missed
    outputs = [e for f in snapshot for e in d.on_fill(f, 4)]
    assert kinds(outputs) == ["FillEvent", "OrderFilled"]
    assert d.stats.duplicate_fills == 2
    assert state(d) is S.FILLED


def test_dedup_is_bounded_fifo() -> None:
    dedup = BoundedSet(2)
    assert not dedup.seen("a")
    assert not dedup.seen("b")
    assert dedup.seen("a")
    assert not dedup.seen("c")  # "a" is forgotten
    assert "a" not in dedup
    assert "b" in dedup
    assert len(dedup) == 2
    assert not dedup.seen("a")
    with pytest.raises(ValueError, match="at least 1"):
        BoundedSet(0)


def test_dedup_capacity_is_configurable() -> None:
    d = opened(dedup_capacity=1)
    d.on_fill(fill(11, 1, 0.5), 3)
    d.on_fill(fill(11, 2, 0.5), 4)
    assert d.on_fill(fill(11, 2, 0.5), 5) == []
    assert d.stats.duplicate_fills == 1


def test_fill_before_ack_uses_the_cloid() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    events = d.on_fill(fill(11, 1), 2)
    assert kinds(events) == ["OrderAccepted", "FillEvent", "OrderPartiallyFilled"]
    assert d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 3) == []
    assert state(d) is S.PARTIALLY_FILLED


def test_a_fill_without_its_client_id_is_given_the_one_its_order_is_tracked_by() -> None:
    """A venue's fill history may not carry the client id (KuCoin's /hf/fills): the fill
    audit's copy of a leg's fill must still reach the slot that routes by it."""
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 2)
    assert d.with_cloid(fill(11, 1, cloid=None)) == fill(11, 1)
    assert d.with_cloid(fill(11, 1)) == fill(11, 1)  # (it has one: as it is)
    unknown = fill(12, 2, cloid=None)  # an order not tracked here
    assert d.with_cloid(unknown) is unknown


def test_fill_for_the_wrong_instrument_goes_to_reconciliation() -> None:
    d = opened()
    wrong = attrs.evolve(fill(11, 1), coin="ETH")
    assert d.on_fill(wrong, 3) == [UntrackedFill(wrong)]
    assert d.stats.conflicts == 1
    order = d.order(CLOID)
    assert order is not None
    assert order.filled_sz == 0.0


# --- two-tier routing --------------------------------------------------------------------------


def test_untracked_reports_and_fills_go_to_the_second_tier() -> None:
    d = opened()
    external = report(99, "open", cloid=None)
    foreign = report(98, "open", cloid="0x" + "9" * 32)
    assert d.on_order_report(external, 3) == [UntrackedReport(external)]
    assert d.on_order_report(foreign, 3) == [UntrackedReport(foreign)]
    f = fill(99, 7, cloid=None)
    assert d.on_fill(f, 4) == [UntrackedFill(f)]
    assert d.on_fill(f, 5) == []  # duplicates are dropped for everyone
    assert d.stats.untracked_reports == 2
    assert d.stats.untracked_fills == 1


def test_report_with_our_oid_but_another_cloid_is_untracked() -> None:
    d = opened()
    odd = report(11, "canceled", cloid="0x" + "9" * 32)
    assert d.on_order_report(odd, 3) == [UntrackedReport(odd)]
    assert state(d) is S.OPEN


def test_report_without_cloid_matches_by_oid() -> None:
    d = opened()
    assert kinds(d.on_order_report(report(11, "canceled", cloid=None), 3)) == ["OrderCanceled"]


def test_live_report_for_an_unexpected_oid_under_our_cloid_is_reconciled() -> None:
    d = opened()
    stray = report(12, "open")
    assert d.on_order_report(stray, 3) == [UntrackedReport(stray)]
    assert d.stats.conflicts == 1
    assert state(d) is S.OPEN
    assert d.on_order_report(report(13, "canceled"), 4) == []  # a dead stray: nothing to do


def test_late_reports_after_retention_are_untracked() -> None:
    d = Dispatcher(DispatchConfig(terminal_retention=1))
    for i, cloid in enumerate(("0xa", "0xb")):
        d.submit(place(cloid=cloid), 1)
        d.on_place_ack(cloid, Resting(hl_oid(20 + i), cloid), 2)
        d.on_order_report(report(20 + i, "canceled", cloid=cloid), 3)
    assert d.on_order_report(report(21, "canceled", cloid="0xb"), 4) == []  # still retained
    late = report(20, "canceled", cloid="0xa")
    assert d.on_order_report(late, 4) == [UntrackedReport(late)]


def test_unknown_status_word_keeps_state_and_is_counted() -> None:
    d = opened()
    assert d.on_order_report(report(11, "somethingNew"), 3) == []
    assert d.stats.unknown_status == 1
    order = d.order(CLOID)
    assert order is not None
    assert order.state is S.OPEN
    assert order.unknown_words == ("somethingNew",)


@pytest.mark.parametrize(
    ("word", "event"),
    [
        ("canceled", OrderCanceled),
        ("marginCanceled", OrderCanceled),
        ("scheduledCancel", OrderCanceled),
        ("reduceOnlyCanceled", OrderCanceled),
        ("selfTradeCanceled", OrderCanceled),
        ("filled", OrderFilled),
    ],
)
def test_venue_ends_a_live_order(word: str, event: type) -> None:
    d = opened()
    events = d.on_order_report(report(11, word), 3)
    assert [type(e) for e in events] == [event]
    if isinstance(events[0], OrderCanceled):
        assert events[0].reason == word
    assert d.on_order_report(report(11, "open"), 4) == []  # a stale report never regresses


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_acked_then_reported() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    assert state(d) is S.PENDING_CANCEL
    assert kinds(d.on_cancel_ack(CLOID, None, 4)) == ["OrderCanceled"]
    assert d.on_order_report(report(11, "canceled"), 5) == []


def test_cancel_reported_then_acked() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    assert kinds(d.on_order_report(report(11, "canceled"), 4)) == ["OrderCanceled"]
    assert d.on_cancel_ack(CLOID, None, 5) == []


def test_cancel_refused_then_filled() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    refused = d.on_cancel_ack(CLOID, Rejected("Order was never placed, already canceled"), 4)
    assert kinds(refused) == ["OrderCancelRejected"]
    assert state(d) is S.OPEN
    assert kinds(d.on_order_report(report(11, "filled"), 5)) == ["OrderFilled"]


def test_fill_after_cancel_ack_is_applied_and_the_order_stays_canceled() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    d.on_cancel_ack(CLOID, None, 4)
    assert kinds(d.on_fill(fill(11, 1), 5)) == ["FillEvent"]
    order = d.order(CLOID)
    assert order is not None
    assert order.state is S.CANCELED
    assert order.filled_sz == 1.0


def test_fills_after_cancel_ack_that_complete_the_order_make_it_filled() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    d.on_cancel_ack(CLOID, None, 4)
    assert kinds(d.on_fill(fill(11, 1, 3.0), 5)) == ["FillEvent", "OrderFilled"]


def test_illegal_requests_raise_and_change_nothing() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    with pytest.raises(IllegalTransition):
        d.request_cancel(CLOID, 4)
    with pytest.raises(IllegalTransition):
        modify(d)
    assert state(d) is S.PENDING_CANCEL
    with pytest.raises(LifecycleError):
        d.request_cancel("0xnope", 4)


def test_contradicting_answers_are_counted_not_applied() -> None:
    d = opened()
    assert d.on_place_ack(CLOID, Rejected("late and wrong"), 3) == []
    assert d.on_cancel_ack(CLOID, None, 3) == []  # no cancel was sent
    assert d.stats.conflicts == 2
    assert state(d) is S.OPEN
    assert d.on_place_ack("0xnope", Resting(hl_oid(1), "0xnope"), 4) == []
    assert d.stats.unknown_acks == 1


def test_answers_for_unknown_cloids_are_counted() -> None:
    d = Dispatcher()
    nope = "0xnope"
    assert d.on_cancel_ack(nope, None, 1) == []
    assert d.on_modify_ack(nope, Resting(hl_oid(1), nope), 1) == []
    assert d.on_timeout(nope, 1) == []
    assert d.resolve_unknown(nope, None, 1) == []
    assert d.stats.unknown_acks == 4


# --- cancel-replace ----------------------------------------------------------------------------


def only_updates(events: Sequence[object]) -> list[OrderUpdated]:
    return [e for e in events if isinstance(e, OrderUpdated)]


@pytest.mark.parametrize("ack_position", [0, 1, 2])
@pytest.mark.parametrize("cancel_first", [True, False])
def test_modify_yields_one_update_and_no_cancel(cancel_first: bool, ack_position: int) -> None:
    d = opened()
    modify(d)
    assert state(d) is S.PENDING_MODIFY
    reports = [report(11, "canceled"), report(12, "open", px=101.0, orig_sz=2.0, sz=2.0)]
    if not cancel_first:
        reports.reverse()
    steps: list[Any] = list(reports)
    steps.insert(ack_position, "ack")
    events: list[object] = []
    for step in steps:
        if step == "ack":
            events += d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 5)
        else:
            events += d.on_order_report(step, 5)
    assert kinds(events) == ["OrderUpdated"]
    assert events[0] == OrderUpdated(CLOID, hl_oid(12), hl_oid(11), 101.0, 2.0, 5)
    order = d.order(CLOID)
    assert order is not None
    assert (order.state, order.oid, order.retired_oids) == (S.OPEN, hl_oid(12), (hl_oid(11),))
    assert d.pending_modify(CLOID) is None
    # Reports for the old oid afterwards do not regress the order.
    assert d.on_order_report(report(11, "open"), 6) == []
    assert d.on_order_report(report(11, "canceled"), 6) == []
    assert state(d) is S.OPEN


def test_modify_seen_first_through_a_fill_on_the_new_oid() -> None:
    d = opened()
    d.on_fill(fill(11, 1), 3)
    modify(d, sz=2.0, now=4)
    events = d.on_fill(fill(12, 2), 5)
    assert kinds(events) == ["OrderUpdated", "FillEvent", "OrderPartiallyFilled"]
    assert d.on_order_report(report(11, "canceled"), 6) == []
    assert d.on_order_report(report(12, "open", orig_sz=2.0), 6) == []
    assert d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 7) == []
    assert kinds(d.on_fill(fill(12, 3), 8)) == ["FillEvent", "OrderFilled"]
    order = d.order(CLOID)
    assert order is not None
    assert order.filled_sz == 3.0


def test_modify_whose_replacement_fills_at_once() -> None:
    d = opened()
    modify(d)
    events = d.on_modify_ack(CLOID, Filled(hl_oid(12), CLOID, 2.0, 101.0), 4)
    assert kinds(events) == ["OrderUpdated", "OrderFilled"]
    assert d.on_order_report(report(11, "canceled"), 5) == []
    assert d.on_order_report(report(12, "filled"), 5) == []


def test_modify_replacement_filled_reported_before_the_answer() -> None:
    d = opened()
    modify(d)
    assert d.on_order_report(report(11, "canceled"), 4) == []
    assert kinds(d.on_order_report(report(12, "filled"), 4)) == ["OrderUpdated", "OrderFilled"]
    assert d.on_modify_ack(CLOID, Filled(hl_oid(12), CLOID, 2.0, 101.0), 5) == []


def test_modify_refused_with_the_old_cancel_held_back_is_a_cancel() -> None:
    d = opened()
    modify(d)
    assert d.on_order_report(report(11, "canceled"), 4) == []
    assert d.stats.suppressed_cancels == 1
    events = d.on_modify_ack(CLOID, Rejected("Cannot modify canceled or filled order"), 5)
    assert kinds(events) == ["OrderModifyRejected", "OrderCanceled"]
    assert state(d) is S.CANCELED


def test_modify_refused_order_keeps_working() -> None:
    d = opened()
    modify(d)
    events = d.on_modify_ack(CLOID, Rejected("Insufficient margin"), 4)
    assert kinds(events) == ["OrderModifyRejected"]
    order = d.order(CLOID)
    assert order is not None
    assert (order.state, order.px, order.sz) == (S.OPEN, 100.0, 3.0)
    assert d.pending_modify(CLOID) is None
    # With the marker gone, a cancel of the order is a real cancel.
    assert kinds(d.on_order_report(report(11, "canceled"), 5)) == ["OrderCanceled"]


def test_modify_of_an_order_that_filled_meanwhile() -> None:
    d = opened()
    modify(d)
    assert kinds(d.on_order_report(report(11, "filled"), 4)) == ["OrderFilled"]
    assert d.pending_modify(CLOID) is None
    events = d.on_modify_ack(CLOID, Rejected("Cannot modify canceled or filled order"), 5)
    assert kinds(events) == ["OrderModifyRejected"]
    assert state(d) is S.FILLED


def test_non_plain_cancel_during_a_modify_is_a_real_cancel() -> None:
    d = opened()
    modify(d)
    assert kinds(d.on_order_report(report(11, "marginCanceled"), 4)) == ["OrderCanceled"]
    assert d.on_modify_ack(CLOID, Rejected("Cannot modify"), 5) == [
        OrderModifyRejected(CLOID, hl_oid(11), "Cannot modify", 5)
    ]


@pytest.mark.parametrize(
    "order_of",
    [
        ("cancel", "reject", "ack"),
        ("reject", "cancel", "ack"),
        ("ack", "cancel", "reject"),
        ("cancel", "ack", "reject"),
        ("reject", "ack", "cancel"),
    ],
)
def test_rejected_replacement_leg_ends_canceled_in_any_order(order_of: tuple[str, ...]) -> None:
    d = opened()
    modify(d)
    inputs: dict[str, Callable[[], Sequence[object]]] = {
        "cancel": lambda: d.on_order_report(report(11, "canceled"), 4),
        "reject": lambda: d.on_order_report(report(12, "badAloPxRejected"), 4),
        "ack": lambda: d.on_modify_ack(CLOID, Rejected("Post only order would have matched"), 4),
    }
    events = [e for name in order_of for e in inputs[name]()]
    assert Counter(kinds(events)) == Counter(["OrderModifyRejected", "OrderCanceled"])
    assert state(d) is S.CANCELED


def test_unknown_word_for_the_replacement_leg_waits_for_more() -> None:
    d = opened()
    modify(d)
    assert d.on_order_report(report(12, "somethingNew"), 4) == []
    assert d.stats.unknown_status == 1
    assert state(d) is S.PENDING_MODIFY
    assert kinds(d.on_order_report(report(12, "open"), 5)) == ["OrderUpdated"]


def test_two_modifies_in_a_row_with_late_reports() -> None:
    d = opened()
    modify(d, px=101.0)
    events: list[DispatchOutput] = []
    events += d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 4)
    modify(d, px=102.0, now=5)
    events += d.on_modify_ack(CLOID, Resting(hl_oid(13), CLOID), 6)
    # The venue's reports of both modifies arrive late, after both answers.
    for r in (
        report(11, "canceled"),
        report(12, "open"),
        report(12, "canceled"),
        report(13, "open"),
    ):
        events += d.on_order_report(r, 7)
    assert [(e.old_oid, e.oid) for e in only_updates(events)] == [
        (hl_oid(11), hl_oid(12)),
        (hl_oid(12), hl_oid(13)),
    ]
    assert kinds(events) == ["OrderUpdated", "OrderUpdated"]
    order = d.order(CLOID)
    assert order is not None
    assert (order.oid, order.px, order.state) == (hl_oid(13), 102.0, S.OPEN)


def test_second_modify_with_first_modifys_reports_in_between() -> None:
    d = opened()
    modify(d, px=101.0)
    d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 4)
    modify(d, px=102.0, now=5)
    assert d.on_order_report(report(11, "canceled"), 6) == []  # old leg of modify 1: stale
    assert d.on_order_report(report(12, "open"), 6) == []
    assert d.on_order_report(report(12, "canceled"), 6) == []  # old leg of modify 2: held
    assert kinds(d.on_order_report(report(13, "open"), 6)) == ["OrderUpdated"]


def test_modify_by_oid_target() -> None:
    d = opened()
    d.request_modify(ModifyOrder(place(px=101.0), oid=hl_oid(11)), 3)
    assert state(d) is S.PENDING_MODIFY
    marker = d.pending_modify(CLOID)
    assert marker is not None
    assert marker.old_oid == hl_oid(11)


def test_modify_must_keep_cloid_and_target_the_current_oid() -> None:
    d = opened()
    with pytest.raises(LifecycleError, match="keep its cloid"):
        d.request_modify(ModifyOrder(place(cloid="0xother"), oid=hl_oid(11)), 3)
    modify(d)
    d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 4)
    with pytest.raises(LifecycleError, match="replaced"):
        d.request_modify(ModifyOrder(place(), oid=hl_oid(11)), 5)
    assert state(d) is S.OPEN


def test_in_place_amend_keeps_the_oid() -> None:
    d = opened()
    modify(d, px=101.0)
    events = d.on_modify_ack(CLOID, Resting(hl_oid(11), CLOID), 4)
    assert events == [OrderUpdated(CLOID, hl_oid(11), hl_oid(11), 101.0, 2.0, 4)]
    order = d.order(CLOID)
    assert order is not None
    assert order.retired_oids == ()


def test_modify_answer_for_a_stale_oid_is_a_conflict() -> None:
    d = opened()
    assert d.on_modify_ack(CLOID, Resting(hl_oid(12), CLOID), 3) == []
    assert d.stats.conflicts == 1


# --- timeouts and unknown ----------------------------------------------------------------------


def test_place_timeout_then_resolved_live() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    assert d.on_timeout(CLOID, 5) == [OrderStateUnknown(CLOID, None, Op.PLACE, 5)]
    events = d.resolve_unknown(CLOID, report(11, "open"), 6)
    assert kinds(events) == ["OrderAccepted"]
    assert state(d) is S.OPEN


def test_place_timeout_then_never_placed() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_timeout(CLOID, 5)
    assert d.resolve_unknown(CLOID, None, 6) == [
        OrderRejected(CLOID, None, "not found at venue", 6)
    ]


def test_place_timeout_resolved_by_the_websocket() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_timeout(CLOID, 5)
    assert kinds(d.on_order_report(report(11, "open"), 6)) == ["OrderAccepted"]
    assert d.on_place_ack(CLOID, Resting(hl_oid(11), CLOID), 7) == []  # the late answer


def test_timeout_after_the_answer_is_a_no_op() -> None:
    d = opened()
    assert d.on_timeout(CLOID, 5) == []
    assert state(d) is S.OPEN


def test_cancel_timeout_then_expired() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    assert kinds(d.on_timeout(CLOID, 4)) == ["OrderStateUnknown"]
    assert d.on_order_report(report(11, "open"), 5) == []  # not conclusive
    assert state(d) is S.UNKNOWN
    assert kinds(d.resolve_unknown(CLOID, None, 6)) == ["OrderExpired"]


def test_cancel_timeout_resolved_open_by_order_status() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    d.on_timeout(CLOID, 4)
    assert d.resolve_unknown(CLOID, report(11, "open"), 5) == []
    assert state(d) is S.OPEN


def test_cancel_timeout_resolved_canceled() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    d.on_timeout(CLOID, 4)
    assert kinds(d.resolve_unknown(CLOID, report(11, "canceled"), 5)) == ["OrderCanceled"]


def test_modify_timeout_resolved_by_the_replacement() -> None:
    d = opened()
    modify(d)
    assert kinds(d.on_timeout(CLOID, 4)) == ["OrderStateUnknown"]
    assert d.on_order_report(report(11, "canceled"), 5) == []  # held back
    events = d.resolve_unknown(CLOID, report(12, "open", orig_sz=2.0), 6)
    assert kinds(events) == ["OrderUpdated"]
    assert state(d) is S.OPEN


def test_modify_timeout_resolved_by_the_old_oid() -> None:
    d = opened()
    modify(d)
    d.on_timeout(CLOID, 4)
    d.on_order_report(report(11, "canceled"), 5)
    events = d.resolve_unknown(CLOID, report(11, "canceled"), 6)
    assert kinds(events) == ["OrderModifyRejected", "OrderCanceled"]
    d2 = opened()
    modify(d2)
    d2.on_timeout(CLOID, 4)
    assert kinds(d2.resolve_unknown(CLOID, report(11, "open"), 6)) == ["OrderModifyRejected"]
    assert state(d2) is S.OPEN


def test_modify_timeout_resolved_by_the_rejected_replacement() -> None:
    d = opened()
    modify(d)
    d.on_timeout(CLOID, 4)
    d.on_order_report(report(11, "canceled"), 5)
    d.on_order_report(report(12, "badAloPxRejected"), 5)
    events = d.resolve_unknown(CLOID, report(12, "badAloPxRejected"), 6)
    assert kinds(events) == ["OrderModifyRejected", "OrderCanceled"]


def test_modify_timeout_rejected_replacement_without_the_old_cancel_stays_unknown() -> None:
    d = opened()
    modify(d)
    d.on_timeout(CLOID, 4)
    events = d.resolve_unknown(CLOID, report(12, "badAloPxRejected"), 6)
    assert kinds(events) == ["OrderModifyRejected"]
    assert state(d) is S.UNKNOWN  # the modify failed; the old order's fate is still unknown
    assert d.pending_modify(CLOID) is None
    assert d.on_order_report(report(11, "open"), 7) == []  # a WebSocket open is not conclusive
    assert d.resolve_unknown(CLOID, report(11, "open"), 8) == []
    assert state(d) is S.OPEN


def test_resolve_on_a_known_order_is_just_a_report() -> None:
    d = opened()
    assert d.resolve_unknown(CLOID, None, 5) == []
    assert d.resolve_unknown(CLOID, report(11, "open"), 5) == []
    assert kinds(d.resolve_unknown(CLOID, report(11, "filled"), 6)) == ["OrderFilled"]
    assert d.resolve_unknown(CLOID, report(11, "open", cloid="0xzz"), 7) == []
    assert d.stats.conflicts == 1


# --- orders that land late ----------------------------------------------------------------------


def test_a_place_not_found_while_it_may_still_land_stays_unknown_then_is_asked_again() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.may_land([CLOID], 3_500)  # its answer lost: it may land up to its expiry (+ allowance)
    d.on_timeout(CLOID, 5)
    assert d.resolve_unknown(CLOID, None, 6) == []  # the venue has not committed it yet
    assert (state(d), d.stats.may_still_land) == (S.UNKNOWN, 1)
    tracked = d.order(CLOID)
    assert tracked is not None
    assert tracked.landing_wait_ms(6) == 3_495
    assert kinds(d.resolve_unknown(CLOID, report(11, "open"), 3_501)) == ["OrderAccepted"]
    gone = Dispatcher()
    gone.submit(place(), 1)
    gone.may_land([CLOID], 3_500)
    gone.on_timeout(CLOID, 5)
    assert kinds(gone.resolve_unknown(CLOID, None, 3_501)) == ["OrderRejected"]  # expired now


def test_the_old_oid_still_open_is_no_proof_a_modify_failed_while_it_may_land() -> None:
    d = opened()
    modify(d)
    d.may_land([CLOID], 3_000)
    d.on_timeout(CLOID, 4)
    assert d.resolve_unknown(CLOID, report(11, "open"), 5) == []  # not committed yet
    assert state(d) is S.UNKNOWN
    assert d.pending_modify(CLOID) is not None  # the marker stays: the modify may land
    events = d.resolve_unknown(CLOID, report(12, "open", orig_sz=2.0), 3_001)
    assert kinds(events) == ["OrderUpdated"]  # it did
    failed = opened()
    modify(failed)
    failed.may_land([CLOID], 3_000)
    failed.on_timeout(CLOID, 4)
    assert kinds(failed.resolve_unknown(CLOID, report(11, "open"), 3_001)) == [
        "OrderModifyRejected"
    ]  # it can no longer land: it failed
    assert state(failed) is S.OPEN


def test_a_call_abandoned_leaves_its_orders_a_bound_not_an_eternity() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.caller_gone([CLOID], 4_000)  # the slot was cancelled mid-request at 500 (+3500 window)
    d.on_timeout(CLOID, 600)  # the auditor finds it stuck
    assert d.resolve_unknown(CLOID, None, 3_000) == []
    assert kinds(d.resolve_unknown(CLOID, None, 4_001)) == ["OrderRejected"]


def test_a_late_open_revives_an_order_taken_for_never_placed_and_it_is_live_again() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_timeout(CLOID, 2)
    assert kinds(d.resolve_unknown(CLOID, None, 3)) == ["OrderRejected"]
    assert d.registry.live() == []
    events = d.on_order_report(report(11, "open"), 9)
    assert kinds(events) == ["OrderRevived", "OrderAccepted"]
    assert events[0] == OrderRevived(CLOID, hl_oid(11), "rejected", 9)
    assert state(d) is S.OPEN
    assert [order.cloid for order in d.registry.live()] == [CLOID]  # managed again
    assert d.stats.revived == 1
    assert kinds(d.on_order_report(report(11, "canceled"), 10)) == ["OrderCanceled"]
    assert d.registry.live() == []


def test_a_late_fill_revives_an_order_taken_for_never_placed() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_timeout(CLOID, 2)
    d.resolve_unknown(CLOID, None, 3)
    events = d.on_fill(fill(11, 1, 1.0), 9)
    assert kinds(events) == ["OrderRevived", "OrderAccepted", "FillEvent", "OrderPartiallyFilled"]
    assert state(d) is S.PARTIALLY_FILLED
    assert [order.oid for order in d.registry.live()] == [hl_oid(11)]


def test_a_stale_open_after_our_cancel_does_not_revive() -> None:
    d = opened()
    d.request_cancel(CLOID, 3)
    d.on_cancel_ack(CLOID, None, 4)
    assert d.on_order_report(report(11, "open"), 5) == []  # sent before the cancel committed
    assert state(d) is S.CANCELED
    assert d.registry.live() == []


# --- ghosts and awaited requests ----------------------------------------------------------------


def test_a_ghost_takes_the_venues_word() -> None:
    d = opened()
    assert kinds(d.resolve_absent(CLOID, report(11, "canceled"), 5)) == ["OrderCanceled"]
    assert state(d) is S.CANCELED
    filled = opened()
    assert kinds(filled.resolve_absent(CLOID, report(11, "filled"), 5)) == ["OrderFilled"]


def test_a_ghost_the_venue_does_not_know_has_expired() -> None:
    d = opened()
    events = d.resolve_absent(CLOID, None, 5)
    assert kinds(events) == ["OrderExpired"]
    assert state(d) is S.EXPIRED
    assert d.resolve_unknown(CLOID, None, 6) == []  # the old path leaves a known order alone


def test_a_ghost_the_venue_says_is_open_stays_open() -> None:
    d = opened()
    assert d.resolve_absent(CLOID, report(11, "open"), 5) == []
    assert state(d) is S.OPEN


def test_resolve_absent_of_an_unknown_order_resolves_it() -> None:
    d = Dispatcher()
    d.submit(place(), 1)
    d.on_timeout(CLOID, 2)
    assert kinds(d.resolve_absent(CLOID, None, 3)) == ["OrderRejected"]  # never placed
    assert d.resolve_absent("0xnobody", None, 4) == []
    assert d.stats.unknown_acks == 1


def test_awaiting_marks_requests_until_the_caller_leaves_however_it_leaves() -> None:
    d = Dispatcher()
    with d.awaiting([CLOID, "0xb"]):
        with d.awaiting([CLOID]):
            assert d.awaited() == {CLOID, "0xb"}
        assert d.awaited() == {CLOID, "0xb"}  # still awaited by the outer caller
    assert d.awaited() == frozenset()
    with pytest.raises(RuntimeError), d.awaiting([CLOID]):
        raise RuntimeError("the caller was cancelled")
    assert d.awaited() == frozenset()


def test_a_cloid_awaited_twice_by_one_caller_is_counted_twice_and_let_go() -> None:
    d = Dispatcher()
    with d.awaiting([CLOID, "0xb"]):
        with d.awaiting([CLOID, CLOID]):
            assert d.awaited() == {CLOID, "0xb"}
        assert d.awaited() == {CLOID, "0xb"}
    assert d.awaited() == frozenset()
    with d.awaiting([CLOID, CLOID]):  # (no other caller: its count falls to nothing)
        assert d.awaited() == {CLOID}
    assert d.awaited() == frozenset()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="dedup_capacity"):
        DispatchConfig(dedup_capacity=0)


# --- property: any delivery order, duplicated, of a random venue history -------------------------


@dataclass
class Node:
    kind: str
    cloid: str | None
    payload: Any = None
    deps: list[int] = field(default_factory=list)
    race: bool = False  # a request that may find the order already done


@dataclass
class VenueEvent:
    """Something the venue did, in venue time: its reports and fills, and what caused it."""

    cause: int | None
    reports: list[OrderReport] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)


@dataclass
class Truth:
    cloid: str
    state: OrderState | None = None
    fills: list[Fill] = field(default_factory=list)
    modifies: int = 0
    final: OrderReport | None = None  # the venue's orderStatus answer for the cloid
    by_oid: dict[OrderId, OrderReport] = field(default_factory=dict)  # ... and for each oid


class World:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.next_oid = 1000
        self.next_tid = 1

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def oid(self) -> int:
        self.next_oid += 1
        return self.next_oid

    def tid(self) -> int:
        self.next_tid += 1
        return self.next_tid


CANCEL_ENDINGS = ["canceled", "marginCanceled", "reduceOnlyCanceled", "scheduledCancel"]


def build_order(data: st.DataObject, world: World, index: int) -> tuple[Truth, list[VenueEvent]]:
    cloid = f"0x{index:032x}"
    truth = Truth(cloid)
    events: list[VenueEvent] = []
    sz = float(data.draw(st.integers(2, 5), label="size"))
    px = 100.0 + index
    submit = world.add(Node("submit", cloid, place(cloid=cloid, sz=sz, px=px)))

    def rep(oid: int, word: str, remaining: float, orig: float, at_px: float) -> OrderReport:
        made = report(oid, word, cloid=cloid, px=at_px, sz=remaining, orig_sz=orig)
        truth.by_oid[hl_oid(oid)] = made
        return made

    def maybe_lost(event: VenueEvent) -> VenueEvent:
        """After a request's answer was lost, its reports may be lost too (a disconnect)."""
        if data.draw(st.booleans(), label="reports lost"):
            event.reports = []
        return event

    def fills_of(oid: int, size: float, at_px: float) -> list[Fill]:
        pieces = [1.0] * int(size) if size <= 2 else [1.0, size - 1.0]
        made = [fill(oid, world.tid(), p, cloid=cloid, px=at_px) for p in pieces]
        truth.fills.extend(made)
        return made

    kind = data.draw(
        st.sampled_from(["rest"] * 6 + ["lost_rest"] * 2 + ["reject", "fill_now", "lost_never"]),
        label="placement",
    )
    if kind == "reject":
        world.add(Node("place_ack", cloid, Rejected("Post only would match"), [submit]))
        truth.state = S.REJECTED
        if data.draw(st.booleans(), label="reported"):
            truth.final = rep(world.oid(), "badAloPxRejected", sz, sz, px)
            events.append(VenueEvent(submit, [truth.final]))
        return truth, events
    if kind == "lost_never":
        world.add(Node("timeout", cloid, None, [submit]))
        truth.state = S.REJECTED
        return truth, events
    oid = world.oid()
    if kind == "fill_now":
        world.add(Node("place_ack", cloid, Filled(hl_oid(oid), cloid, sz, px), [submit]))
        truth.final = rep(oid, "filled", 0.0, sz, px)
        events.append(VenueEvent(submit, [truth.final], fills_of(oid, sz, px)))
        truth.state = S.FILLED
        return truth, events

    last_ack: int | None = None
    if kind == "rest":
        last_ack = world.add(Node("place_ack", cloid, Resting(hl_oid(oid), cloid), [submit]))
    else:
        world.add(Node("timeout", cloid, None, [submit]))
    truth.final = rep(oid, "open", sz, sz, px)
    placed = VenueEvent(submit, [truth.final])
    events.append(maybe_lost(placed) if last_ack is None else placed)
    cur_sz, cur_filled, cur_px = sz, 0.0, px
    while True:
        partials = data.draw(st.integers(0, min(2, int(cur_sz - cur_filled) - 1)), label="fills")
        for _ in range(partials):
            events.append(VenueEvent(None, [], fills_of(oid, 1.0, cur_px)))
            cur_filled += 1.0
        options = ["stay", "fill_rest", "venue_cancel"]
        if last_ack is not None:
            options += ["cancel", "cancel_lost", "cancel_race", "modify_race", "modify_reject"]
            options += ["cancel_vanished", "modify_vanished"]
            if truth.modifies < 3:
                options += ["modify"] * 8
        ending = data.draw(st.sampled_from(options), label="next")
        event(f"step {ending}")
        remaining = cur_sz - cur_filled
        acked = last_ack if last_ack is not None else -1  # only used when there is one
        if ending == "stay":
            truth.state = S.PARTIALLY_FILLED if truth.fills else S.OPEN
            return truth, events
        if ending == "fill_rest" or ending in ("cancel_race", "modify_race"):
            if ending != "fill_rest":
                request = "cancel_req" if ending == "cancel_race" else "modify_req"
                payload = place(cloid=cloid, sz=2.0, px=cur_px + 1)
                req = world.add(Node(request, cloid, payload, [acked], race=True))
                reply = "cancel_ack" if ending == "cancel_race" else "modify_ack"
                world.add(Node(reply, cloid, Rejected("already filled"), [req]))
            truth.final = rep(oid, "filled", 0.0, cur_sz, cur_px)
            events.append(VenueEvent(None, [truth.final], fills_of(oid, remaining, cur_px)))
            truth.state = S.FILLED
            return truth, events
        if ending == "venue_cancel":
            word = data.draw(st.sampled_from(CANCEL_ENDINGS), label="word")
            truth.final = rep(oid, word, remaining, cur_sz, cur_px)
            events.append(VenueEvent(None, [truth.final]))
            truth.state = S.CANCELED
            return truth, events
        if ending in ("cancel_vanished", "modify_vanished"):
            # The request never reached the venue and its answer never came: UNKNOWN, until
            # the orderStatus answer at the end shows the order still resting.
            kind_of = "cancel_req" if ending == "cancel_vanished" else "modify_req"
            payload = place(cloid=cloid, sz=2.0, px=cur_px + 1)
            # Nothing the venue does later depends on it: it may find the order already done.
            req = world.add(Node(kind_of, cloid, payload, [acked], race=True))
            world.add(Node("timeout", cloid, None, [req]))
            last_ack = None
            continue
        if ending in ("cancel", "cancel_lost"):
            req = world.add(Node("cancel_req", cloid, None, [acked]))
            truth.final = rep(oid, "canceled", remaining, cur_sz, cur_px)
            if ending == "cancel":
                world.add(Node("cancel_ack", cloid, None, [req]))
                events.append(VenueEvent(req, [truth.final]))
            else:
                world.add(Node("timeout", cloid, None, [req]))
                events.append(maybe_lost(VenueEvent(req, [truth.final])))
            truth.state = S.CANCELED
            return truth, events
        # A modify: the venue cancels the old oid and places a new one under the same cloid.
        new_sz = float(data.draw(st.integers(1, 4), label="new size"))
        new_px = cur_px + 1.0
        req = world.add(
            Node("modify_req", cloid, place(cloid=cloid, sz=new_sz, px=new_px), [acked])
        )
        new_oid = world.oid()
        old_leg = rep(oid, "canceled", remaining, cur_sz, cur_px)
        lost = data.draw(st.booleans(), label="lost answer")
        if ending == "modify_reject":
            new_leg = rep(new_oid, "badAloPxRejected", new_sz, new_sz, new_px)
            answer: Any = Rejected("Post only order would have immediately matched")
        else:
            new_leg = rep(new_oid, "open", new_sz, new_sz, new_px)
            answer = Resting(hl_oid(new_oid), cloid)
        legs = (
            [old_leg, new_leg]
            if data.draw(st.booleans(), label="cancel first")
            else [
                new_leg,
                old_leg,
            ]
        )
        truth.final = new_leg
        if lost:
            events.append(maybe_lost(VenueEvent(req, legs)))
            world.add(Node("timeout", cloid, None, [req]))
            last_ack = None
        else:
            events.append(VenueEvent(req, legs))
            last_ack = world.add(Node("modify_ack", cloid, answer, [req]))
        if ending == "modify_reject":
            truth.state = S.CANCELED
            return truth, events
        truth.modifies += 1
        oid, cur_sz, cur_filled, cur_px = new_oid, new_sz, 0.0, new_px


def build_external(data: st.DataObject, world: World, index: int) -> list[VenueEvent]:
    cloid = None if data.draw(st.booleans(), label="ext cloid") else f"0xe{index:031x}"
    oid = world.oid()
    placed = report(oid, "open", cloid=cloid, px=90.0)
    events = [VenueEvent(None, [placed])]
    if data.draw(st.booleans(), label="ext fill"):
        events.append(VenueEvent(None, [], [fill(oid, world.tid(), 1.0, cloid=cloid)]))
    if data.draw(st.booleans(), label="ext cancel"):
        events.append(VenueEvent(None, [report(oid, "canceled", cloid=cloid, px=90.0)]))
    return events


def schedule(world: World, timelines: list[list[VenueEvent]], rng: random.Random) -> list[int]:
    """Merge the per-order timelines into venue time, chain the two streams, add duplicates
    and resubscriptions, and pick a random delivery order that respects the dependencies."""
    merged: list[VenueEvent] = []
    cursors = [0] * len(timelines)
    while True:
        active = [i for i, t in enumerate(timelines) if cursors[i] < len(t)]
        if not active:
            break
        i = rng.choice(active)
        merged.append(timelines[i][cursors[i]])
        cursors[i] += 1
    last = {"report": -1, "fill": -1}
    waiting: dict[str, set[int]] = {"report": set(), "fill": set()}
    stream_nodes: list[int] = []
    for happened in merged:
        if happened.cause is not None:
            for stream in waiting.values():
                stream.add(happened.cause)
        for kind, payloads in (("report", happened.reports), ("fill", happened.fills)):
            for payload in payloads:
                deps = sorted(waiting[kind]) + ([last[kind]] if last[kind] >= 0 else [])
                waiting[kind].clear()
                last[kind] = world.add(Node(kind, None, payload, deps))
                stream_nodes.append(last[kind])
    for index in stream_nodes:
        if rng.random() < 0.25:
            original = world.nodes[index]
            world.add(Node(original.kind, None, original.payload, [index]))
    for _ in range(rng.randint(0, 2)):
        world.add(Node("resubscribe", None))
    blockers = [set(n.deps) for n in world.nodes]
    dependents: dict[int, list[int]] = {}
    for index, node in enumerate(world.nodes):
        for dep in node.deps:
            dependents.setdefault(dep, []).append(index)
    ready = [i for i, b in enumerate(blockers) if not b]
    order: list[int] = []
    while ready:
        index = ready.pop(rng.randrange(len(ready)))
        order.append(index)
        for later in dependents.get(index, []):
            blockers[later].discard(index)
            if not blockers[later]:
                ready.append(later)
    assert len(order) == len(world.nodes)
    return order


def deliver(d: Dispatcher, world: World, order: list[int]) -> list[DispatchOutput]:
    outputs: list[DispatchOutput] = []
    skipped: set[int] = set()
    delivered_fills: list[Fill] = []
    for now, index in enumerate(order, start=10):
        node = world.nodes[index]
        cloid = node.cloid
        if node.kind == "submit":
            d.submit(node.payload, now)
        elif node.kind in ("cancel_req", "modify_req"):
            assert cloid is not None
            tracked = d.order(cloid)
            assert tracked is not None
            allowed = tracked.can_cancel if node.kind == "cancel_req" else tracked.can_modify
            if not allowed:
                assert node.race, node  # only a request that raced the venue may be moot
                assert tracked.is_terminal, tracked
                skipped.add(index)
            elif node.kind == "cancel_req":
                d.request_cancel(cloid, now)
            else:
                d.request_modify(ModifyOrder(node.payload), now)
        elif node.kind in ("place_ack", "cancel_ack", "modify_ack", "timeout"):
            assert cloid is not None
            if node.deps and node.deps[0] in skipped:
                continue
            if node.kind == "place_ack":
                outputs += d.on_place_ack(cloid, node.payload, now)
            elif node.kind == "cancel_ack":
                outputs += d.on_cancel_ack(cloid, node.payload, now)
            elif node.kind == "modify_ack":
                outputs += d.on_modify_ack(cloid, node.payload, now)
            else:
                outputs += d.on_timeout(cloid, now)
        elif node.kind == "report":
            outputs += d.on_order_report(node.payload, now)
        elif node.kind == "fill":
            delivered_fills.append(node.payload)
            outputs += d.on_fill(node.payload, now)
        else:  # resubscribe: the userFills snapshot repeats everything so far
            for f in list(delivered_fills):
                outputs += d.on_fill(f, now)
    return outputs


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_delivery_order_converges_to_the_truth(data: st.DataObject) -> None:
    world = World()
    n_orders = data.draw(st.integers(1, 4), label="orders")
    truths: list[Truth] = []
    timelines: list[list[VenueEvent]] = []
    for i in range(n_orders):
        truth, events = build_order(data, world, i + 1)
        truths.append(truth)
        timelines.append(events)
    externals = [build_external(data, world, i) for i in range(data.draw(st.integers(0, 2)))]
    external_oids = {e.reports[0].oid for e in (t[0] for t in externals)}
    rng = data.draw(st.randoms(use_true_random=False), label="rng")
    order = schedule(world, timelines + externals, rng)

    d = Dispatcher()
    outputs = deliver(d, world, order)
    for truth in truths:  # the shell asks orderStatus for every order at the end
        outputs += d.resolve_unknown(truth.cloid, truth.final, 10_000)
        tracked = d.order(truth.cloid)
        if tracked is not None and tracked.state is S.UNKNOWN and tracked.oid is not None:
            event("asked again by oid")  # only the failure of a modify was learned
            outputs += d.resolve_unknown(truth.cloid, truth.by_oid.get(tracked.oid), 10_001)

    assert d.stats.conflicts == 0, d.stats.last_conflict
    for name in ("suppressed_cancels", "duplicate_fills", "stale_reports", "rejected_replacements"):
        if getattr(d.stats, name):
            event(name)
    for truth in truths:
        event(f"ends {truth.state.name if truth.state else None}, {truth.modifies} modifies")
    if any(isinstance(e, OrderStateUnknown) for e in outputs):
        event("went unknown")
    if any(isinstance(e, OrderUpdated) for e in outputs) and any(
        isinstance(e, FillEvent) and e.fill.oid not in {t.final.oid for t in truths if t.final}
        for e in outputs
    ):
        event("fills on replaced oids")
    fill_events = [e for e in outputs if isinstance(e, FillEvent)]
    assert len({(e.fill.oid, e.fill.tid) for e in fill_events}) == len(fill_events)
    per_cloid: dict[str | None, Counter[str]] = {}
    for e in outputs:
        if isinstance(e, (UntrackedReport, UntrackedFill)):
            payload = e.report if isinstance(e, UntrackedReport) else e.fill
            assert payload.oid in external_oids  # only the external orders are untracked
            continue
        per_cloid.setdefault(e.cloid, Counter())[type(e).__name__] += 1
    for truth in truths:
        tracked = d.order(truth.cloid)
        assert tracked is not None
        expected_sz = sum(f.sz for f in truth.fills)
        assert tracked.state is truth.state, (truth, tracked)
        assert tracked.filled_sz == pytest.approx(expected_sz)
        if truth.fills:
            vwap = sum(f.sz * f.px for f in truth.fills) / expected_sz
            assert tracked.avg_fill_px == pytest.approx(vwap)
        assert tracked.fill_count == len(truth.fills)
        counts = per_cloid.get(truth.cloid, Counter())
        assert counts["FillEvent"] == len(truth.fills)
        assert counts["OrderUpdated"] == truth.modifies
        assert counts["OrderAccepted"] <= 1
        terminal_events = {
            S.FILLED: "OrderFilled",
            S.CANCELED: "OrderCanceled",
            S.REJECTED: "OrderRejected",
        }
        for end, name in terminal_events.items():
            assert counts[name] == (1 if truth.state is end else 0), (name, counts, truth)
        assert counts["OrderExpired"] == 0
    external_reports = sum(
        1 for n in world.nodes if n.kind == "report" and n.payload.oid in external_oids
    )
    assert sum(isinstance(e, UntrackedReport) for e in outputs) == external_reports
    external_fills = {
        (n.payload.oid, n.payload.tid)
        for n in world.nodes
        if n.kind == "fill" and n.payload.oid in external_oids
    }
    assert sum(isinstance(e, UntrackedFill) for e in outputs) == len(external_fills)


def test_event_classes_are_frozen() -> None:
    event = OrderCancelRejected(CLOID, hl_oid(11), "gone", 1)
    with pytest.raises(AttributeError):
        event.reason = "x"  # type: ignore[misc]
    assert OrderExpired(CLOID, hl_oid(11), "r", 1) != OrderExpired(CLOID, hl_oid(12), "r", 1)
