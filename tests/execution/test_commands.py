"""The executor's commands: a bad command is refused when built, and the multi-leg state
machine sends each next leg only from the previous leg's fills, stops on a refusal, a timeout
or a leg that filled nothing, and never sends more than a leg's size."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.execution.commands import GroupState, Leg, LegGroup, MultiLeg, QuoteLadder
from mm.model import DesiredOrder, Side, Tif


def triangle() -> MultiLeg:
    return MultiLeg(
        "g1",
        (
            Leg("ETH", Side.BUY, 2.0, 3000.0),
            Leg("BTC", Side.SELL, 0.1, 60000.0),
            Leg("SOL", Side.BUY, 40.0),  # a market leg
        ),
    )


def test_a_ladder_is_post_only_unless_asked() -> None:
    ladder = QuoteLadder("BTC", (DesiredOrder(Side.BUY, 100.0, 1.0),))
    assert ladder.tif is Tif.ALO
    assert QuoteLadder("BTC", (), tif=Tif.GTC).tif is Tif.GTC


def test_a_ladder_planned_from_a_book_is_the_same_ladder_with_that_time() -> None:
    ladder = QuoteLadder(
        "BTC", (DesiredOrder(Side.SELL, 101.0, 0.5, 1),), 0.5, 123, Tif.GTC, planned_from_s=1.0
    )
    assert ladder.planned_from(7.5) == attrs.evolve(ladder, planned_from_s=7.5)
    # Every field is carried over: a field added later fails here until planned_from has it.
    names = [field.name for field in attrs.fields(QuoteLadder)]
    assert names == ["coin", "desired", "tick", "book_received_ms", "tif", "planned_from_s"]


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: MultiLeg("g", ()), "legs: a multi-leg command needs at least one leg"),
        (lambda: Leg("BTC", Side.BUY, 0.0), "sz: must be positive"),
        (lambda: Leg("BTC", Side.BUY, 1.0, -5.0), "px: must be positive or None"),
        (lambda: Leg("BTC", Side.BUY, 1.0, 5.0, Tif.ALO), "tif: a leg is immediate (IOC)"),
    ],
)
def test_a_bad_command_is_refused_naming_the_field(build: object, error: str) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        build()  # type: ignore[operator]


def test_the_next_leg_waits_for_the_fills_the_venue_reports() -> None:
    group = LegGroup(triangle())
    first = group.next_order()
    assert first is not None
    assert (first.index, first.sz) == (0, 2.0)
    assert group.next_order() is None  # sent once
    group.on_ended(0, 1.0)  # the IOC ended with 1.0 filled: its fills are not in yet
    assert group.next_order() is None
    group.on_fill(0, 0.4)
    assert group.next_order() is None
    group.on_fill(0, 0.6)
    second = group.next_order()
    assert second is not None
    assert second.index == 1
    assert second.sz == pytest.approx(0.05)  # half of the first leg filled: half the second
    group.on_fill(1, 0.05)  # filled whole: no end report needed
    third = group.next_order()
    assert third is not None
    assert third.index == 2
    assert third.sz == pytest.approx(20.0)
    assert third.leg.px is None
    group.on_fill(2, 20.0)
    assert group.state is GroupState.DONE
    assert group.reason is None
    assert group.next_order() is None


def test_a_refusal_or_a_timeout_stops_the_group_and_says_so() -> None:
    group = LegGroup(triangle())
    group.next_order()
    group.on_fill(0, 2.0)
    group.next_order()
    group.on_refused(1, "Order could not immediately match against any resting orders.")
    assert group.state is GroupState.STOPPED
    assert group.reason == (
        "leg 1 (sell BTC) refused: Order could not immediately match against any resting orders."
    )
    assert group.next_order() is None
    timed_out = LegGroup(triangle())
    timed_out.next_order()
    timed_out.on_timeout(0)
    assert timed_out.reason == "leg 0 (buy ETH) timed out"
    empty = LegGroup(triangle())
    empty.next_order()
    empty.on_ended(0, 0.0)
    assert empty.reason == "leg 0 (buy ETH) filled nothing"


events = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.integers(0, 2), st.floats(0.0, 3.0)),
        st.tuples(st.just("ended"), st.integers(0, 2), st.floats(0.0, 3.0)),
        st.tuples(st.just("refused"), st.integers(0, 2), st.just(0.0)),
        st.tuples(st.just("timeout"), st.integers(0, 2), st.just(0.0)),
        st.tuples(st.just("send"), st.just(0), st.just(0.0)),
    ),
    max_size=40,
)


@given(events)
def test_legs_go_in_order_each_from_its_predecessors_fills(
    script: list[tuple[str, int, float]],
) -> None:
    command = triangle()
    group = LegGroup(command)
    sent: list[int] = []
    fills_at_send: list[float] = []  # the previous leg's counted fills when a leg went out
    for kind, index, amount in script:
        if kind == "send":
            order = group.next_order()
            if order is not None:
                assert order.index == len(sent)  # in order, each once
                previous = group.filled[order.index - 1] if order.index else None
                if previous is not None:
                    assert previous > 0  # only from fills
                    ratio = min(previous / command.legs[order.index - 1].sz, 1.0)
                    assert order.sz == pytest.approx(command.legs[order.index].sz * ratio)
                assert order.sz <= command.legs[order.index].sz * (1 + 1e-9)
                sent.append(order.index)
                fills_at_send.append(previous or 0.0)
        elif kind == "fill":
            group.on_fill(index, amount)
        elif kind == "ended":
            group.on_ended(index, amount)
        elif kind == "refused":
            group.on_refused(index, "no")
        else:
            group.on_timeout(index)
        if group.state is GroupState.STOPPED:
            assert group.reason is not None
            assert f"leg {group.index}" in group.reason
            assert group.next_order() is None
        # Fills count only for the leg at the venue, never beyond what the venue reports.
        for leg, filled in enumerate(group.filled):
            if leg not in sent:
                assert filled == 0.0
    assert sent == list(range(len(sent)))
    if group.state is GroupState.DONE:
        assert sent == [0, 1, 2]
        assert group.reason is None
