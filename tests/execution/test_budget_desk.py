"""The budget desk and the slots: a symbol that waits for tokens is planned again from its
latest ladder when they come, top of book first, and no order goes from a plan much older than
the symbol's latest book. A fake venue behind the real dispatcher and router; virtual time."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st

from mm.execution.budget import BudgetConfig, Want
from mm.execution.commands import QuoteLadder
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.orders import OrderRouter
from mm.execution.reconcile import ReconcileConfig
from mm.execution.slots import BudgetDesk, ExecutorConfig, ExecutorSlot, Handover, Mailbox
from mm.model import DesiredOrder, PlaceOrder, PlaceResult, Side
from tests.execution.test_slots import FakeVenue


def both(mid: float, levels: int = 2) -> tuple[DesiredOrder, ...]:
    orders = []
    for level in range(levels):
        orders.append(DesiredOrder(Side.BUY, mid - 1 - level, 0.01, level))
        orders.append(DesiredOrder(Side.SELL, mid + 1 + level, 0.01, level))
    return tuple(orders)


class Rig:
    def __init__(self, budget: int, *, latest: dict[str, float] | None = None) -> None:
        self.budget = budget
        self.venue = FakeVenue()
        self.dispatcher = Dispatcher()
        self.events: list[DispatchOutput] = []
        self.router = OrderRouter(self.dispatcher, self.venue, self.events.extend, lambda: 0)
        self.config = ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0))
        self.mailbox = Mailbox()
        self.desk = BudgetDesk(lambda: self.budget, self.config.budget, self.mailbox.replan)
        self.handovers: list[Handover] = []
        self.replans: list[str] = []
        self.latest = latest if latest is not None else {}
        self.slot = ExecutorSlot(
            0,
            self.mailbox,
            lambda: self.router,
            self.dispatcher,
            self.config,
            on_sending=self.handovers.append,
            desk=self.desk,
            latest_book_s=self.latest.get,
            replan=self.replans.append,
        )

    def spend(self, n: int) -> None:
        self.budget -= n

    def resting(self) -> list[float]:
        return sorted(px for _, px, _ in self.venue.resting.values())


async def test_a_waiting_symbol_is_planned_again_from_its_latest_ladder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rig = Rig(2)
    venue_place = rig.venue.place

    async def place(orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        rig.spend(len(orders))  # the limiter takes the tokens as the orders go
        return await venue_place(orders)

    rig.venue.place = place  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.slot.run)
        nursery.start_soon(rig.desk.run)
        rig.mailbox.put(QuoteLadder("BTC", both(100.0)))
        await trio.sleep(0.01)
        # Two tokens: the top of the book (both sides); level 1 waits.
        assert rig.resting() == [99.0, 101.0]
        assert rig.desk.waiting() == {"BTC"}
        # The book moves while the symbol waits: a new ladder, still no token.
        rig.mailbox.put(QuoteLadder("BTC", both(110.0)))
        await trio.sleep(0.01)
        assert rig.resting() == [99.0, 101.0]
        # Tokens come: what goes is planned from the latest ladder (the top first), not the
        # level-1 orders of the plan made at 100.
        rig.budget = 2
        await trio.sleep(rig.config.budget.poll_s * 2)
        assert 98.0 not in rig.resting()
        assert 102.0 not in rig.resting()
        assert set(rig.resting()) & {109.0, 111.0}
        waits = [h.budget_wait_s for h in rig.handovers if h.budget_wait_s is not None]
        assert waits
        assert all(w > 0 for w in waits)
        nursery.cancel_scope.cancel()


async def test_a_plan_older_than_the_latest_book_is_never_sent() -> None:
    latest = {"BTC": 10.0}
    rig = Rig(10, latest=latest)
    old = QuoteLadder("BTC", both(100.0), planned_from_s=10.0 - 0.6)  # 0.6 s behind
    plan = await rig.slot.execute(old)
    assert rig.resting() == []
    assert rig.replans == ["BTC"]  # the strategy is asked for a fresh one
    assert len(plan.deferred) == 4
    fresh = QuoteLadder("BTC", both(100.0), planned_from_s=10.0 - 0.5)  # one interval: sent
    await rig.slot.execute(fresh)
    assert len(rig.resting()) == 4
    assert [h.plan_age_s for h in rig.handovers] == [0.5]


async def test_tokens_go_to_the_top_of_the_waiting_books_and_are_held_for_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    requeued: list[str] = []
    budget = [0]

    def requeue(coin: str) -> bool:
        requeued.append(coin)
        return True

    desk = BudgetDesk(lambda: budget[0], BudgetConfig(), requeue)
    deep = [Want(2, 1, 0), Want(2, 1, 0)]
    top = [Want(0, 1, 0), Want(0, 1, 0)]
    assert desk.take("ETH", deep).n == 0
    assert desk.take("BTC", top).n == 0
    await trio.sleep(1.0)
    budget[0] = 1
    assert desk.poll() == {"BTC": 1}  # the top of BTC's book before ETH's depth
    assert requeued == ["BTC"]
    assert desk.free() == 0  # held for BTC: ETH cannot take it
    assert desk.take("ETH", deep).n == 0
    grant = desk.take("BTC", top)
    assert grant.n == 1
    assert grant.granted_at == trio.current_time()
    assert grant.waited_s == 1.0
    assert desk.free() == 0  # granted, not yet counted by the limiter: still held
    desk.settle("BTC")
    budget[0] = 0  # the limiter counted it
    assert desk.waiting() == {"BTC", "ETH"}
    budget[0] = 1  # the next token: BTC's other top order before ETH's depth, though BTC
    # was served just now and ETH never
    assert desk.poll() == {"BTC": 1}


async def test_decision_latency_runs_from_the_book_or_from_the_tokens_when_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rig = Rig(0)
    await trio.sleep(10.0)
    book_at = trio.current_time()
    await trio.sleep(0.002)
    rig.mailbox.put(QuoteLadder("BTC", both(100.0), book_received_ms=1, planned_from_s=book_at))
    await rig.slot.execute(await rig.mailbox.get())  # no token: nothing sent, nothing measured
    assert rig.handovers == []
    await trio.sleep(1.0)
    rig.budget = 4  # the tokens come a second later; the desk finds them at its poll
    assert rig.desk.poll() == {"BTC": 4}
    granted = trio.current_time()
    await trio.sleep(0.003)
    await rig.slot.execute(await rig.mailbox.get())  # planned again, from the same book
    (handover,) = rig.handovers
    # Measured from the tokens, not the book: the wait is the budget's, apart.
    assert handover.decision_s == pytest.approx(trio.current_time() - granted)
    assert handover.budget_wait_s == pytest.approx(trio.current_time() - book_at - 0.002)
    rig.handovers.clear()
    fresh = QuoteLadder("BTC", both(101.0), book_received_ms=1, planned_from_s=trio.current_time())
    await trio.sleep(0.001)
    await rig.slot.execute(fresh)
    (handover,) = rig.handovers
    assert handover.decision_s == pytest.approx(0.001)  # from the book: no wait this time
    assert handover.budget_wait_s is None


async def test_with_inventory_high_the_reducing_side_gets_the_token_first() -> None:
    rig = Rig(1)
    rig.slot.reducing = lambda coin: Side.SELL  # long and high: selling reduces
    await rig.slot.execute(QuoteLadder("BTC", both(100.0)))
    assert rig.resting() == [101.0]  # the top ask, not the top bid
    rig = Rig(1)
    rig.slot.reducing = lambda coin: Side.BUY  # short and high: buying reduces
    await rig.slot.execute(QuoteLadder("BTC", both(100.0)))
    assert rig.resting() == [99.0]


def _desk_state(desk: BudgetDesk) -> tuple[dict[str, object], ...]:
    """A copy of what the desk holds per symbol."""
    return (
        dict(desk._pending),
        dict(desk._reserved),
        dict(desk._granted_at),
        dict(desk._outstanding),
        dict(desk._since),
        dict(desk.served),
    )


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.sampled_from(["BTC", "ETH", "SOL"]), st.integers(0, 4)),
        st.tuples(st.just("poll"), st.just(""), st.just(0)),
        st.tuples(st.just("settle"), st.sampled_from(["BTC", "ETH", "SOL"]), st.just(0)),
        st.tuples(st.just("spend"), st.just(""), st.integers(-3, 3)),  # < 0: tokens come
        st.tuples(st.just("later"), st.just(""), st.integers(1, 5)),
    ),
    max_size=12,
)


@given(
    ops=_OPS,
    budget=st.integers(0, 8),
    coin=st.sampled_from(["BTC", "ETH", "SOL"]),
    levels=st.lists(st.integers(0, 3), max_size=6),
)
# Tokens reserved for BTC (2) and free ones (3) cover its 4 orders only together.
@example(
    ops=[("take", "BTC", 4), ("settle", "BTC", 0), ("poll", "", 0), ("spend", "", -3)],
    budget=2,
    coin="BTC",
    levels=[0, 1, 2, 3],
)
def test_take_all_grants_what_take_grants_when_every_order_may_go(
    ops: list[tuple[str, str, int]], budget: int, coin: str, levels: list[int]
) -> None:
    # Two desks through the same history; then one is asked take_all, the other take with
    # the ranked wants. take_all answers only when take grants every order, and then gives the
    # same grant and leaves the desk as take does; else it changes nothing. With no other
    # symbol waiting it always answers when take grants every order.
    wants = sorted(Want(level, 1, level % 2) for level in levels)

    async def main() -> None:
        tokens = [budget]
        desks = [BudgetDesk(lambda: tokens[0], BudgetConfig(), lambda _: True) for _ in (0, 1)]
        for op, which, n in ops:
            if op == "later":
                await trio.sleep(n * 0.01)
            elif op == "spend":
                tokens[0] -= n
            for desk in desks:
                if op == "take":
                    desk.take(which, [Want(level, 1, 0) for level in range(n)])
                elif op == "poll":
                    desk.poll()
                elif op == "settle":
                    desk.settle(which)
        before = _desk_state(desks[0])
        full = desks[0].take_all(coin, len(wants))
        grant = desks[1].take(coin, wants)
        if full is None:
            assert _desk_state(desks[0]) == before
            others_wait = any(other != coin for other in before[0])
            assert others_wait or grant.n < len(wants)
        else:
            assert full == grant
            assert _desk_state(desks[0]) == _desk_state(desks[1])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
