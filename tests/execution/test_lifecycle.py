"""The order lifecycle state machine: every transition, every venue status word, and illegal
inputs that must change nothing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.lifecycle import (
    RETIRED_OIDS_KEPT,
    TERMINAL_STATES,
    IllegalTransition,
    Op,
    OrderState,
    TrackedOrder,
    Transition,
)
from mm.model import Fill, OrderStatus, PlaceOrder, Side, Tif
from mm.venues.hyperliquid.status import order_status
from tests.ids import hl_number, hl_oid, hl_tid
from tests.venues.hyperliquid.test_status import ALL_WORDS, LIVE_WORDS

S = OrderState


def said(order: TrackedOrder, word: str, oid: int, now_ms: int, **kwargs: Any) -> Transition:
    """The venue's status word for ``oid``, as Hyperliquid's adapter maps it."""
    return order.report(order_status(word), hl_oid(oid), now_ms, word=word, **kwargs)


def place(sz: float = 3.0, tif: Tif = Tif.GTC, cloid: str = "0xc1") -> PlaceOrder:
    return PlaceOrder(coin="BTC", side=Side.BUY, px=100.0, sz=sz, tif=tif, cloid=cloid)


def fill(sz: float, *, oid: int = 11, tid: int = 1, px: float = 100.0) -> Fill:
    return Fill(
        coin="BTC",
        side=Side.BUY,
        px=px,
        sz=sz,
        time_ms=5,
        oid=hl_oid(oid),
        tid=hl_tid(tid),
        cloid="0xc1",
        fee=0.0,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="Open Long",
        closed_pnl=0.0,
        hash="0x0",
    )


def new(sz: float = 3.0, tif: Tif = Tif.GTC) -> TrackedOrder:
    return TrackedOrder.submit(place(sz, tif), now_ms=1)


def opened(oid: int = 11) -> TrackedOrder:
    order = new()
    order.ack_resting(hl_oid(oid), 2)
    return order


def partially_filled() -> TrackedOrder:
    order = opened()
    order.apply_fill(fill(1.0), 3)
    return order


def pending_cancel() -> TrackedOrder:
    order = opened()
    order.request_cancel(3)
    return order


def pending_modify() -> TrackedOrder:
    order = opened()
    order.request_modify(101.0, 2.0, Tif.GTC, 3)
    return order


def unknown_place() -> TrackedOrder:
    order = new()
    order.timed_out(4)
    return order


def terminal(state: OrderState) -> TrackedOrder:
    order = opened()
    if state is S.FILLED:
        said(order, "filled", 11, 5)
    elif state is S.CANCELED:
        said(order, "canceled", 11, 5)
    elif state is S.REJECTED:
        order = new()
        order.ack_rejected("no", 5)
    else:
        order.request_cancel(4)
        order.timed_out(5)
        order.resolved_missing(6)
    assert order.state is state
    return order


def target_of(order: TrackedOrder) -> object:
    return order.modify_target


def snapshot(order: TrackedOrder) -> dict[str, Any]:
    return attrs.asdict(order)


def assert_unchanged(order: TrackedOrder, action: Any) -> None:
    before = snapshot(order)
    with pytest.raises(IllegalTransition):
        action()
    assert snapshot(order) == before


# --- submit and the place answer ---------------------------------------------------------------


def test_submit_is_pending_new_and_in_flight() -> None:
    order = new()
    assert order.state is S.PENDING_NEW
    assert order.pending is Op.PLACE
    assert order.in_flight_since_ms == 1
    assert order.oid is None
    assert order.sz == order.orig_sz == 3.0
    assert not order.is_terminal


def test_submit_refuses_non_positive_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        new(sz=0.0)


def test_ack_resting_opens_and_accepts() -> None:
    order = new()
    tr = order.ack_resting(hl_oid(11), 2)
    assert (tr.before, tr.after, tr.accepted) == (S.PENDING_NEW, S.OPEN, True)
    assert order.oid == hl_oid(11)
    assert order.acked_ms == 2
    assert order.in_flight_since_ms is None
    again = order.ack_resting(hl_oid(11), 3)
    assert not again.changed
    assert not again.accepted


def test_ack_resting_for_another_oid_is_illegal() -> None:
    order = opened()
    assert_unchanged(order, lambda: order.ack_resting(hl_oid(12), 3))


def test_ack_filled_in_full_is_filled() -> None:
    order = new()
    tr = order.ack_filled(hl_oid(11), 3.0, 2)
    assert (tr.after, tr.accepted, order.oid) == (S.FILLED, True, hl_oid(11))
    assert order.filled_sz == 0.0  # fills are truth: they follow on the user stream


def test_ack_filled_short_ioc_cancels_the_rest() -> None:
    order = new(tif=Tif.IOC)
    tr = order.ack_filled(hl_oid(11), 1.0, 2)
    assert tr.after is S.CANCELED
    assert order.reason == "canceled"


def test_ack_filled_short_gtc_is_live() -> None:
    order = new()
    assert order.ack_filled(hl_oid(11), 1.0, 2).after is S.OPEN


def test_ack_rejected() -> None:
    order = new()
    tr = order.ack_rejected("Insufficient margin", 2)
    assert tr.after is S.REJECTED
    assert order.reject_reason == "Insufficient margin"
    assert order.terminal_ms == 2


def test_ack_rejected_after_the_order_went_live_is_illegal() -> None:
    order = opened()
    assert_unchanged(order, lambda: order.ack_rejected("no", 3))


def test_ack_rejected_on_terminal_is_a_no_op() -> None:
    order = terminal(S.CANCELED)
    tr = order.ack_rejected("no", 9)
    assert tr.ignored
    assert order.state is S.CANCELED


# --- every venue status word (Hyperliquid's, as its adapter maps them) -----------------------


def expected_from(start: OrderState, word: str) -> OrderState:
    status = order_status(word)
    if status is OrderStatus.OPEN:
        return S.OPEN
    if status is OrderStatus.FILLED:
        return S.FILLED
    if status is OrderStatus.REJECTED and start is S.PENDING_NEW:
        return S.REJECTED
    return S.CANCELED  # a cancel word, or a rejection word for an order that was live


@pytest.mark.parametrize("word", ALL_WORDS)
def test_word_from_pending_new(word: str) -> None:
    order = new()
    tr = said(order, word, 11, 2)
    assert tr.after is expected_from(S.PENDING_NEW, word)
    assert order.oid == hl_oid(11)
    if tr.after.is_terminal:
        assert order.reason == word


@pytest.mark.parametrize("word", ALL_WORDS)
def test_word_from_open(word: str) -> None:
    order = opened()
    assert said(order, word, 11, 3).after is expected_from(S.OPEN, word)


@pytest.mark.parametrize("word", ALL_WORDS)
def test_word_from_partially_filled(word: str) -> None:
    order = partially_filled()
    expected = expected_from(S.OPEN, word)
    assert said(order, word, 11, 4).after is (
        S.PARTIALLY_FILLED if expected is S.OPEN else expected
    )


@pytest.mark.parametrize("word", ALL_WORDS)
def test_word_from_pending_cancel(word: str) -> None:
    order = pending_cancel()
    expected = expected_from(S.OPEN, word)
    assert said(order, word, 11, 4).after is (S.PENDING_CANCEL if expected is S.OPEN else expected)


@pytest.mark.parametrize("word", ALL_WORDS)
def test_word_from_unknown_place(word: str) -> None:
    order = unknown_place()
    assert said(order, word, 11, 5).after is expected_from(S.PENDING_NEW, word)


@pytest.mark.parametrize("word", ALL_WORDS)
@pytest.mark.parametrize("state", [S.CANCELED, S.REJECTED, S.EXPIRED])
def test_terminal_states_move_only_to_filled_or_revive_on_a_live_word(
    state: OrderState, word: str
) -> None:
    order = terminal(state)
    oid = hl_number(order.oid) if order.oid is not None else 11
    tr = said(order, word, oid, 9)
    if word == "filled":
        assert tr.after is S.FILLED
    elif word in LIVE_WORDS and state is not S.CANCELED:
        # Refused, or unknown to the venue, and yet live there: working again, managed.
        assert (tr.after, tr.revived, order.oid) == (S.OPEN, state, hl_oid(oid))
        assert (order.reason, order.terminal_ms, order.pending) == (None, None, None)
        assert tr.accepted is (state is S.REJECTED)  # first seen live (an EXPIRED one had been)
    else:
        assert tr.after is state
        assert tr.revived is None


@pytest.mark.parametrize("word", ALL_WORDS)
def test_filled_is_never_left(word: str) -> None:
    order = terminal(S.FILLED)
    tr = said(order, word, 11, 9)
    assert tr.after is S.FILLED
    assert not tr.changed


def test_unknown_word_keeps_state_and_is_flagged() -> None:
    order = opened()
    tr = said(order, "brandNewStatus", 11, 3)
    assert not tr.changed
    assert tr.ignored is not None
    assert order.state is S.OPEN
    assert order.unknown_words == ("brandNewStatus",)


def test_report_for_another_oid_is_illegal() -> None:
    order = opened()
    assert_unchanged(order, lambda: said(order, "canceled", 99, 3))


# --- fills ------------------------------------------------------------------------------------


def test_partial_then_full_fill_by_cumulative_size() -> None:
    order = opened()
    tr = order.apply_fill(fill(1.0, tid=1, px=100.0), 3)
    assert (tr.after, order.filled_sz) == (S.PARTIALLY_FILLED, 1.0)
    assert order.leaves_sz == 2.0
    tr = order.apply_fill(fill(2.0, tid=2, px=103.0), 4)
    assert tr.after is S.FILLED
    assert order.filled_sz == 3.0
    assert order.avg_fill_px == pytest.approx(102.0)
    assert order.fill_count == 2
    assert order.leaves_sz == 0.0


def test_fill_before_the_ack_accepts_and_learns_the_oid() -> None:
    order = new()
    tr = order.apply_fill(fill(1.0, oid=11), 2)
    assert (tr.after, tr.accepted, order.oid) == (S.PARTIALLY_FILLED, True, hl_oid(11))
    assert order.ack_resting(hl_oid(11), 3).after is S.PARTIALLY_FILLED


def test_fill_resolves_an_unknown_place() -> None:
    order = unknown_place()
    assert order.apply_fill(fill(1.0), 5).after is S.PARTIALLY_FILLED


def test_late_partial_fill_after_cancel_is_applied_and_stays_canceled() -> None:
    order = terminal(S.CANCELED)
    tr = order.apply_fill(fill(1.0), 9)
    assert tr.after is S.CANCELED
    assert order.filled_sz == 1.0


def test_late_fill_completing_a_canceled_order_makes_it_filled() -> None:
    order = pending_cancel()
    order.cancel_acked(5)
    order.apply_fill(fill(1.0, tid=1), 6)
    tr = order.apply_fill(fill(2.0, tid=2), 7)
    assert (tr.before, tr.after) == (S.CANCELED, S.FILLED)


def test_fill_while_cancel_pending_keeps_pending_and_updates_the_base() -> None:
    order = pending_cancel()
    assert order.apply_fill(fill(1.0), 4).after is S.PENDING_CANCEL
    assert order.cancel_refused("already gone", 5).after is S.PARTIALLY_FILLED


def test_full_fill_while_cancel_pending_is_filled() -> None:
    order = pending_cancel()
    assert order.apply_fill(fill(3.0), 4).after is S.FILLED
    assert order.cancel_refused("filled", 5).after is S.FILLED


def test_fill_for_another_coin_or_side_is_illegal() -> None:
    order = opened()
    other = attrs.evolve(fill(1.0), coin="ETH")
    assert_unchanged(order, lambda: order.apply_fill(other, 3))
    flipped = attrs.evolve(fill(1.0), side=Side.SELL)
    assert_unchanged(order, lambda: order.apply_fill(flipped, 3))
    empty = attrs.evolve(fill(1.0), sz=0.0)
    assert_unchanged(order, lambda: order.apply_fill(empty, 3))


# --- cancel ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [new, opened, partially_filled, unknown_place])
def test_cancel_can_be_requested(make: Any) -> None:
    order = make()
    before = order.state
    tr = order.request_cancel(7)
    assert tr.after is S.PENDING_CANCEL
    assert order.in_flight_since_ms == 7
    refused = order.cancel_refused("gone", 8)
    assert refused.after is before
    assert refused.refused is Op.CANCEL


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES, key=str))
def test_cancel_of_a_terminal_order_is_illegal(state: OrderState) -> None:
    order = terminal(state)
    assert_unchanged(order, lambda: order.request_cancel(9))


def test_cancel_while_cancel_or_modify_pending_is_illegal() -> None:
    for order in (pending_cancel(), pending_modify()):
        assert_unchanged(order, functools.partial(order.request_cancel, 9))


def test_cancel_acked() -> None:
    order = pending_cancel()
    tr = order.cancel_acked(5)
    assert tr.after is S.CANCELED
    assert order.reason == "canceled"
    assert order.cancel_acked(6).ignored  # a duplicate answer


def test_cancel_ack_without_a_cancel_is_illegal() -> None:
    order = opened()
    assert_unchanged(order, lambda: order.cancel_acked(5))
    assert_unchanged(order, lambda: order.cancel_refused("x", 5))


def test_cancel_of_a_pending_new_order_then_place_ack() -> None:
    order = new()
    order.request_cancel(2)
    tr = order.ack_resting(hl_oid(11), 3)
    assert (tr.after, tr.accepted) == (S.PENDING_CANCEL, True)
    assert order.cancel_refused("gone", 4).after is S.OPEN


def test_cancel_of_a_pending_new_order_then_place_rejected() -> None:
    order = new()
    order.request_cancel(2)
    assert order.ack_rejected("margin", 3).after is S.REJECTED


# --- modify ------------------------------------------------------------------------------------


def test_modify_requested_and_replaced() -> None:
    order = partially_filled()
    tr = order.request_modify(101.0, 2.0, Tif.ALO, 4)
    assert tr.after is S.PENDING_MODIFY
    assert target_of(order) == (101.0, 2.0, Tif.ALO)
    tr = order.replaced(hl_oid(12), 5)
    assert (tr.after, tr.replaced_oid) == (S.PARTIALLY_FILLED, hl_oid(11))
    assert (order.oid, order.retired_oids, order.px, order.sz) == (
        hl_oid(12),
        (hl_oid(11),),
        101.0,
        2.0,
    )
    assert order.tif is Tif.ALO
    assert order.oid_filled_sz == 0.0
    assert order.filled_sz == 1.0
    assert order.modify_target is None
    assert order.knows_oid(hl_oid(11))
    assert order.knows_oid(hl_oid(12))


def test_replaced_takes_the_venues_values() -> None:
    order = pending_modify()
    order.replaced(hl_oid(12), 5, px=101.5, sz=2.5)
    assert (order.px, order.sz) == (101.5, 2.5)


def test_fill_on_a_retired_oid_counts_but_does_not_complete_the_new_one() -> None:
    order = pending_modify()
    order.replaced(hl_oid(12), 5)
    tr = order.apply_fill(fill(2.0, oid=11), 6)
    assert tr.after is S.PARTIALLY_FILLED
    assert (order.filled_sz, order.oid_filled_sz) == (2.0, 0.0)
    assert order.apply_fill(fill(2.0, oid=12, tid=2), 7).after is S.FILLED


def test_modify_refused_returns_to_the_base_state() -> None:
    order = pending_modify()
    tr = order.modify_refused("Cannot modify canceled or filled order", 5)
    assert (tr.after, tr.refused) == (S.OPEN, Op.MODIFY)
    assert order.modify_target is None
    assert order.modify_refused("again", 6).ignored


@pytest.mark.parametrize("make", [new, pending_cancel, unknown_place])
def test_modify_needs_a_working_order(make: Any) -> None:
    order = make()
    assert_unchanged(order, lambda: order.request_modify(1.0, 1.0, Tif.GTC, 9))


def test_modify_size_must_be_positive() -> None:
    order = opened()
    with pytest.raises(ValueError, match="positive"):
        order.request_modify(1.0, 0.0, Tif.GTC, 9)


def test_replaced_without_a_modify_is_illegal() -> None:
    order = opened()
    assert_unchanged(order, lambda: order.replaced(hl_oid(12), 5))
    order = pending_modify()
    order.retire_oid(hl_oid(12))
    assert_unchanged(order, lambda: order.replaced(hl_oid(12), 5))


# --- timeouts and unknown ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "op"), [(new, Op.PLACE), (pending_cancel, Op.CANCEL), (pending_modify, Op.MODIFY)]
)
def test_timeout_makes_a_pending_order_unknown(make: Any, op: Op) -> None:
    order = make()
    tr = order.timed_out(9)
    assert tr.after is S.UNKNOWN
    assert order.pending is op


@pytest.mark.parametrize("make", [opened, partially_filled])
def test_timeout_with_nothing_pending_is_a_no_op(make: Any) -> None:
    order = make()
    assert order.timed_out(9).ignored


def test_unknown_place_resolved_by_a_late_ack() -> None:
    order = unknown_place()
    assert order.ack_resting(hl_oid(11), 6).after is S.OPEN


def test_unknown_cancel_not_resolved_by_a_websocket_open() -> None:
    order = pending_cancel()
    order.timed_out(5)
    assert said(order, "open", 11, 6).after is S.UNKNOWN
    assert said(order, "open", 11, 7, authoritative=True).after is S.OPEN


def test_unknown_cancel_resolved_by_a_late_cancel_ack() -> None:
    order = pending_cancel()
    order.timed_out(5)
    assert order.cancel_acked(6).after is S.CANCELED


def test_unknown_cancel_refused_returns_to_base() -> None:
    order = pending_cancel()
    order.timed_out(5)
    assert order.cancel_refused("gone", 6).after is S.OPEN


def test_unknown_modify_resolved_by_the_replacement() -> None:
    order = pending_modify()
    order.timed_out(5)
    assert order.replaced(hl_oid(12), 6).after is S.OPEN


def test_unknown_modify_refused_returns_to_base() -> None:
    order = pending_modify()
    order.timed_out(5)
    assert order.modify_refused("no", 6).after is S.OPEN


def test_unknown_never_placed_is_rejected() -> None:
    order = unknown_place()
    tr = order.resolved_missing(9)
    assert tr.after is S.REJECTED
    assert order.reject_reason == "not found at venue"


def test_unknown_once_live_is_expired() -> None:
    order = pending_cancel()
    order.timed_out(5)
    assert order.resolved_missing(9).after is S.EXPIRED


def test_resolved_missing_on_a_known_order_is_a_no_op() -> None:
    order = opened()
    assert order.resolved_missing(9).ignored
    assert order.state is S.OPEN


def test_seen_is_when_the_venue_last_showed_the_order_alive() -> None:
    assert new().seen_ms is None
    order = new()
    order.ack_resting(hl_oid(11), 3)
    assert order.seen_ms == 3
    said(order, "open", 11, 4)
    assert order.seen_ms == 4
    order.apply_fill(fill(1.0, oid=11, tid=1), 5)
    assert order.seen_ms == 5
    order.request_cancel(6)
    order.cancel_refused("already canceled", 7)
    order.request_modify(101.0, 3.0, Tif.GTC, 8)
    order.modify_refused("cannot modify", 9)
    assert order.seen_ms == 5  # refusals are no sign of life
    order.request_modify(101.0, 3.0, Tif.GTC, 10)
    order.replaced(hl_oid(12), 11)
    assert order.seen_ms == 11


def test_a_working_order_the_venue_neither_lists_nor_knows_has_expired() -> None:
    for order in (opened(), partially_filled()):
        tr = order.vanished(9)
        assert (tr.after, order.reason, order.terminal_ms) == (S.EXPIRED, "absent at venue", 9)
        assert order.pending is None


def test_vanished_resolves_unknown_as_missing_and_leaves_the_rest() -> None:
    order = unknown_place()
    assert order.vanished(9).after is S.REJECTED  # never placed
    for busy in (pending_cancel(), pending_modify(), new()):
        state = busy.state
        assert busy.vanished(9).ignored  # a request in flight: not the auditor's call here
        assert busy.state is state


def test_retrying_a_cancel_on_an_unknown_cancel_keeps_the_base() -> None:
    order = partially_filled()
    order.request_cancel(4)
    order.timed_out(5)
    order.request_cancel(6)
    assert order.cancel_refused("gone", 7).after is S.PARTIALLY_FILLED


def test_cancel_on_unknown_place_refused_goes_back_to_unknown() -> None:
    order = unknown_place()
    order.request_cancel(5)
    assert order.cancel_refused("gone", 6).after is S.UNKNOWN
    assert order.pending is Op.PLACE


def test_unknown_modify_blocks_a_cancel() -> None:
    order = pending_modify()
    order.timed_out(5)
    assert not order.can_cancel
    assert_unchanged(order, lambda: order.request_cancel(6))


# --- orders that land late (the venue commits a block or two after it takes an action in) -------


def test_not_found_while_the_place_may_still_land_changes_nothing() -> None:
    order = new()
    order.may_land(1_000)  # the place's answer was lost; it expires (plus allowance) at 1000
    order.timed_out(5)
    tr = order.resolved_missing(999)
    assert (tr.after, tr.ignored) == (S.UNKNOWN, "may still land")
    assert order.landing_wait_ms(999) == 2  # asked again just after the bound
    assert order.resolved_missing(1_001).after is S.REJECTED  # now it never will


def test_not_found_for_a_modify_that_may_still_land_changes_nothing() -> None:
    order = pending_modify()
    order.may_land(500)
    order.timed_out(5)
    assert order.resolved_missing(400).after is S.UNKNOWN
    assert order.resolved_missing(501).after is S.EXPIRED


def test_a_place_whose_caller_still_waits_is_never_taken_for_missing() -> None:
    # A cancel of an order whose place is still awaited times out: not found proves nothing,
    # the place's own answer (or its lost-answer bound) decides.
    order = new()
    order.request_cancel(3)
    order.timed_out(4)
    assert order.resolved_missing(10_000_000).after is S.UNKNOWN
    assert order.landing_wait_ms(10) is None  # no bound to wait for: not the asker's to settle
    order.may_land(50)  # the place's answer is lost now: bounded
    assert order.resolved_missing(40).after is S.UNKNOWN
    assert order.resolved_missing(60).after is S.REJECTED


def test_a_caller_gone_leaves_a_bound_and_an_exact_one_is_kept() -> None:
    abandoned = new()
    abandoned.caller_gone(70)  # cancelled mid-request: sent before now, expiring within the window
    abandoned.timed_out(30)  # the auditor finds it stuck
    assert abandoned.resolved_missing(60).after is S.UNKNOWN
    assert abandoned.resolved_missing(71).after is S.REJECTED
    exact = new()
    exact.may_land(40)
    exact.caller_gone(90)  # a looser bound does not replace the known expiry
    exact.timed_out(30)
    assert exact.resolved_missing(41).after is S.REJECTED


def test_without_a_bound_not_found_is_final_at_once() -> None:
    order = new()
    order.timed_out(4)  # no expiry was known (nor answered unreadably: may_land(None))
    assert order.resolved_missing(5).after is S.REJECTED
    unreadable = new()
    unreadable.may_land(None)
    unreadable.timed_out(4)
    assert unreadable.resolved_missing(5).after is S.REJECTED


def test_a_late_resting_answer_or_report_revives_an_order_taken_for_never_placed() -> None:
    for evidence in ("ack", "report"):
        order = unknown_place()
        order.resolved_missing(5)
        assert order.state is S.REJECTED
        tr = order.ack_resting(hl_oid(31), 9) if evidence == "ack" else said(order, "open", 31, 9)
        assert (tr.before, tr.after, tr.revived, tr.accepted) == (
            S.REJECTED,
            S.OPEN,
            S.REJECTED,
            True,
        )
        assert (order.oid, order.is_terminal, order.can_cancel) == (hl_oid(31), False, True)


def test_a_late_fill_revives_a_rejected_order_and_a_full_one_fills_it() -> None:
    order = unknown_place()
    order.resolved_missing(5)
    tr = order.apply_fill(fill(1.0, oid=31), 9)
    assert (tr.after, tr.revived, tr.fill, order.oid) == (
        S.PARTIALLY_FILLED,
        S.REJECTED,
        tr.fill,
        hl_oid(31),
    )
    assert order.leaves_sz == 2.0
    whole = unknown_place()
    whole.resolved_missing(5)
    assert whole.apply_fill(fill(3.0, oid=32), 9).after is S.FILLED


def test_a_canceled_order_is_not_revived_by_an_open_sent_before_the_cancel() -> None:
    order = pending_cancel()
    order.cancel_acked(5)
    tr = said(order, "open", 11, 6)
    assert (tr.after, tr.revived, tr.ignored) == (S.CANCELED, None, "terminal")
    assert order.apply_fill(fill(1.0), 7).after is S.CANCELED


# --- property: illegal inputs never corrupt, terminal states are final ----------------------------

ACTIONS = st.sampled_from(
    [
        "ack_resting",
        "ack_other_oid",
        "ack_filled",
        "ack_rejected",
        "report",
        "fill",
        "request_cancel",
        "cancel_acked",
        "cancel_refused",
        "request_modify",
        "replaced",
        "modify_refused",
        "timed_out",
        "resolved_missing",
        "vanished",
        "may_land_soon",
        "may_land_never",
        "caller_gone",
    ]
)
LANDING = {
    "may_land_soon": lambda order, now: order.may_land(now + 3),
    "may_land_never": lambda order, now: order.may_land(None),
    "caller_gone": lambda order, now: order.caller_gone(now + 2),
}
LIVE_EVIDENCE = ("ack_resting", "ack_other_oid", "ack_filled", "report", "fill")


def run(
    order: TrackedOrder, action: str, word: str, now: int, oid: int, tid: int, next_oid: int
) -> Transition:
    calls: dict[str, Callable[[], Transition]] = {
        "ack_resting": lambda: order.ack_resting(hl_oid(oid), now),
        "ack_other_oid": lambda: order.ack_resting(hl_oid(oid + 1000), now),
        "ack_filled": lambda: order.ack_filled(hl_oid(oid), 4.0, now),
        "ack_rejected": lambda: order.ack_rejected("no", now),
        "report": lambda: said(order, word, oid, now),
        "fill": lambda: order.apply_fill(fill(1.0, oid=oid, tid=tid), now),
        "request_cancel": lambda: order.request_cancel(now),
        "cancel_acked": lambda: order.cancel_acked(now),
        "cancel_refused": lambda: order.cancel_refused("gone", now),
        "request_modify": lambda: order.request_modify(100.0, 4.0, Tif.GTC, now),
        "replaced": lambda: order.replaced(hl_oid(next_oid), now),
        "modify_refused": lambda: order.modify_refused("no", now),
        "timed_out": lambda: order.timed_out(now),
        "resolved_missing": lambda: order.resolved_missing(now),
        "vanished": lambda: order.vanished(now),
    }
    return calls[action]()


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(ACTIONS, st.sampled_from([*ALL_WORDS, "weird"])), max_size=25),
)
def test_random_inputs_never_corrupt_state(steps: list[tuple[str, str]]) -> None:
    order = new(sz=4.0)
    applied = 0.0
    tid = 0
    next_oid = 20
    for now, (action, word) in enumerate(steps, start=10):
        before = snapshot(order)
        oid = hl_number(order.oid) if order.oid is not None else 11
        if action in LANDING:
            LANDING[action](order, now)
            assert snapshot(order) == {**before, "lands_by_ms": order.lands_by_ms}
            continue
        landing = order.may_still_land(now)
        try:
            tr = run(order, action, word, now, oid, tid, next_oid)
        except IllegalTransition:
            assert snapshot(order) == before
            continue
        if action == "fill":
            applied += 1.0
            tid += 1
        if action == "replaced":
            next_oid += 1
        was = before["state"]
        assert tr.before is was
        assert tr.after is order.state
        if was is S.FILLED:
            assert order.state is S.FILLED
        elif tr.revived is not None:
            # Only the venue's word that it lives undoes a refusal or an "unknown to the venue".
            assert was in (S.REJECTED, S.EXPIRED)
            assert tr.revived is was
            assert action in LIVE_EVIDENCE
            assert order.state in (S.OPEN, S.PARTIALLY_FILLED)
        elif was.is_terminal:
            assert order.state in (was, S.FILLED)
        if action in ("resolved_missing", "vanished") and landing:
            # Not found while the place or modify may still land proves nothing.
            assert order.state is was
        assert order.filled_sz == applied
        if order.is_terminal:
            assert order.pending is None
            assert order.modify_target is None


@pytest.mark.parametrize("state", list(OrderState))
def test_terminal_is_membership_of_the_terminal_states(state: OrderState) -> None:
    """The state's and the order's is_terminal say what TERMINAL_STATES says, for every state
    (they test a tuple of the same members, not the set)."""
    order = new()
    order.state = state
    assert state.is_terminal is (state in TERMINAL_STATES)
    assert order.is_terminal is (state in TERMINAL_STATES)
    assert {
        OrderState.FILLED,
        OrderState.CANCELED,
        OrderState.REJECTED,
        OrderState.EXPIRED,
    } == TERMINAL_STATES


@settings(max_examples=100)
@given(
    st.lists(st.integers(0, 60), min_size=20, max_size=80),
    st.integers(0, 40),
    st.lists(st.integers(0, 60), max_size=30),
)
def test_a_retired_oid_is_one_in_the_retired_list(
    retired: list[int], keep: int, more: list[int]
) -> None:
    """is_retired_oid says ``oid in retired_oids`` at every length, also after the list was
    replaced by a shorter one; the list never holds more than RETIRED_OIDS_KEPT, the newest."""
    order = opened(oid=1_000)
    candidates = [hl_oid(n) for n in range(62)]
    for number in retired:
        order.retire_oid(hl_oid(number))
        assert all(order.is_retired_oid(c) == (c in order.retired_oids) for c in candidates)
    order.retired_oids = order.retired_oids[:keep]
    assert all(order.is_retired_oid(c) == (c in order.retired_oids) for c in candidates)
    for number in more:
        order.retire_oid(hl_oid(number))
        assert all(order.is_retired_oid(c) == (c in order.retired_oids) for c in candidates)
        assert all(order.knows_oid(c) == (c in order.retired_oids) for c in candidates)


def test_retired_oids_keep_the_newest_and_count_the_rest() -> None:
    order = opened(oid=0)
    retired = []
    for n in range(1, 2 * RETIRED_OIDS_KEPT + 6):
        order.request_modify(100.0, 1.0, Tif.GTC, n)
        order.replaced(hl_oid(n), n)
        retired.append(hl_oid(n - 1))
        assert order.retired_oids == tuple(retired[-RETIRED_OIDS_KEPT:])
        assert order.retired_dropped == len(retired) - len(order.retired_oids)
    assert not order.knows_oid(hl_oid(0))
    assert order.knows_oid(hl_oid(2 * RETIRED_OIDS_KEPT + 5))
    order.retire_oid(hl_oid(10_000))  # a rejected replacement leg: retired and bounded alike
    assert order.retired_oids[-1] == hl_oid(10_000)
    assert len(order.retired_oids) == RETIRED_OIDS_KEPT
