"""A slot's plan trimmed to the order budget: the levels that matter first, nothing lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm.execution.lifecycle import OrderState
from mm.execution.reconcile import LiveOrder, Plan
from mm.execution.slots import within_budget
from mm.model import DesiredOrder, Side
from tests.ids import hl_oid


def desired(side: Side, level: int) -> DesiredOrder:
    px = 100.0 - level if side is Side.BUY else 101.0 + level
    return DesiredOrder(side, px, 1.0, level)


def live(side: Side, level: int) -> LiveOrder:
    px = 99.5 - level if side is Side.BUY else 101.5 + level
    return LiveOrder(f"0x{side.value}{level}", hl_oid(1), side, px, 1.0, OrderState.OPEN)


def test_a_plan_within_the_budget_is_sent_whole() -> None:
    plan = Plan(modify=[(live(Side.BUY, 0), desired(Side.BUY, 0))], place=[desired(Side.SELL, 0)])
    assert within_budget(plan, 2) is plan


def test_the_top_of_each_side_first_and_a_missing_order_before_moving_one() -> None:
    plan = Plan(
        modify=[(live(Side.BUY, level), desired(Side.BUY, level)) for level in range(3)],
        place=[desired(Side.SELL, level) for level in range(3)],
        cancel=[live(Side.SELL, 9)],
    )
    trimmed = within_budget(plan, 3)
    # The empty ask side gets its top order, the bid side its top modify, then the next place.
    assert trimmed.place == [desired(Side.SELL, 0), desired(Side.SELL, 1)]
    assert trimmed.modify == [(live(Side.BUY, 0), desired(Side.BUY, 0))]
    assert trimmed.cancel == plan.cancel  # cancels cost no order budget
    assert sorted(d.level for d in trimmed.deferred) == [1, 2, 2]


def test_no_budget_sends_only_cancels() -> None:
    plan = Plan(place=[desired(Side.BUY, 0)], cancel=[live(Side.SELL, 0)])
    trimmed = within_budget(plan, 0)
    assert (trimmed.place, trimmed.modify, trimmed.cancel) == ([], [], plan.cancel)
    assert trimmed.deferred == [desired(Side.BUY, 0)]


levels = st.lists(st.tuples(st.sampled_from(list(Side)), st.integers(0, 5)), max_size=12)


@given(places=levels, modifies=levels, budget=st.integers(-2, 30))
def test_trimming_never_exceeds_the_budget_and_loses_nothing(
    places: list[tuple[Side, int]], modifies: list[tuple[Side, int]], budget: int
) -> None:
    plan = Plan(
        place=[desired(side, level) for side, level in places],
        modify=[(live(side, level), desired(side, level)) for side, level in modifies],
    )
    trimmed = within_budget(plan, budget)
    sent = len(trimmed.place) + len(trimmed.modify)
    assert sent == min(len(places) + len(modifies), max(budget, 0))
    assert sent + len(trimmed.deferred) == len(places) + len(modifies)
    sent_levels = [d.level for d in trimmed.place] + [d.level for _, d in trimmed.modify]
    if trimmed.deferred and sent_levels:
        assert max(sent_levels) <= min(d.level for d in trimmed.deferred)
