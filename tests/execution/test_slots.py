"""Executor slots: conflating mailboxes, stable symbol assignment, and reconciliation sent
through the real dispatcher and order router to a fake venue."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import trio
import trio.testing

from mm.execution.commands import QuoteLadder
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.orders import OrderRouter
from mm.execution.reconcile import ReconcileConfig
from mm.execution.slots import ExecutorConfig, ExecutorSlot, Mailbox, slot_for
from mm.model import (
    CancelOrder,
    CancelResult,
    DesiredOrder,
    ModifyOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    Resting,
    Side,
)
from tests.ids import hl_oid


class FakeVenue:
    """Accepts everything; remembers what rests."""

    def __init__(self) -> None:
        self.oids = itertools.count(100)
        self.resting: dict[str, tuple[int, float, float]] = {}  # cloid -> (oid, px, sz)
        self.calls: list[str] = []
        self.client_ids = itertools.count(1)

    def new_client_id(self) -> str:
        return f"0x{next(self.client_ids):032x}"

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        self.calls.append("place")
        results: list[PlaceResult] = []
        for order in orders:
            oid = next(self.oids)
            self.resting[order.cloid] = (oid, order.px, order.sz)
            results.append(Resting(hl_oid(oid), order.cloid))
        return results

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        self.calls.append("modify")
        results: list[PlaceResult] = []
        for modify in modifies:
            oid = next(self.oids)
            self.resting[modify.order.cloid] = (oid, modify.order.px, modify.order.sz)
            results.append(Resting(hl_oid(oid), modify.order.cloid))
        return results

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        for cancel in cancels:
            assert cancel.cloid is not None
            del self.resting[cancel.cloid]
        return [None for _ in cancels]

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        return None


def ladder(*prices: float, side: Side = Side.BUY) -> tuple[DesiredOrder, ...]:
    return tuple(DesiredOrder(side, px, 0.01, level) for level, px in enumerate(prices))


def rig() -> tuple[ExecutorSlot, FakeVenue, list[DispatchOutput]]:
    venue = FakeVenue()
    dispatcher = Dispatcher()
    events: list[DispatchOutput] = []
    router = OrderRouter(dispatcher, venue, events.extend, lambda: 0)
    config = ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0))
    slot = ExecutorSlot(0, Mailbox(), lambda: router, dispatcher, config)
    return slot, venue, events


async def test_a_ladder_is_placed_then_moved_then_pulled() -> None:
    slot, venue, events = rig()
    first = await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    assert len(first.place) == 2
    assert sorted(px for _, px, _ in venue.resting.values()) == [99.0, 100.0]
    same = await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    assert same.calls() == 0  # already where the strategy wants it
    moved = await slot.execute(QuoteLadder("BTC", ladder(101.0, 100.0)))
    assert len(moved.modify) + len(moved.keep) == 2  # modified in place, cloids kept
    assert sorted(px for _, px, _ in venue.resting.values()) == [100.0, 101.0]
    pulled = await slot.execute(QuoteLadder("BTC", ()))
    assert len(pulled.cancel) == 2
    assert venue.resting == {}
    assert venue.calls == ["place", "modify", "cancel"]
    kinds = [type(event).__name__ for event in events]
    assert kinds.count("OrderAccepted") == 2
    assert len(moved.keep) == 1  # the order at 100 serves the new level 1 as it is
    assert kinds.count("OrderUpdated") == len(moved.modify) == 1  # one update, never a cancel
    assert kinds.count("OrderCanceled") == 2  # only the final pull


async def test_orders_carry_the_client_ids_the_venues_adapter_makes() -> None:
    slot, venue, _ = rig()
    await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    assert sorted(venue.resting) == [f"0x{1:032x}", f"0x{2:032x}"]


async def test_symbols_keep_to_their_own_orders() -> None:
    slot, venue, _ = rig()
    await slot.execute(QuoteLadder("BTC", ladder(100.0)))
    await slot.execute(QuoteLadder("ETH", ladder(10.0)))
    plan = await slot.execute(QuoteLadder("BTC", ()))
    assert len(plan.cancel) == 1
    assert [px for _, px, _ in venue.resting.values()] == [10.0]


async def test_the_mailbox_keeps_the_latest_signal_per_symbol() -> None:
    mailbox = Mailbox()
    mailbox.put(QuoteLadder("BTC", ladder(1.0)))
    mailbox.put(QuoteLadder("ETH", ladder(2.0)))
    mailbox.put(QuoteLadder("BTC", ladder(3.0)))
    assert len(mailbox) == 2
    assert mailbox.replaced == 1
    first, second = await mailbox.get(), await mailbox.get()
    assert (first.coin, first.desired[0].px) == ("BTC", 3.0)
    assert (second.coin, second.desired[0].px) == ("ETH", 2.0)


async def test_a_slot_waits_for_signals(autojump_clock: trio.testing.MockClock) -> None:
    slot, venue, _ = rig()
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        await trio.sleep(10)
        assert venue.calls == []
        slot.mailbox.put(QuoteLadder("BTC", ladder(100.0)))
        await trio.sleep(1)
        assert venue.calls == ["place"]
        nursery.cancel_scope.cancel()


def test_a_symbol_always_maps_to_the_same_slot() -> None:
    for slots in (1, 2, 3, 8):
        for coin in ("BTC", "ETH", "SOL", "DOGE"):
            assert slot_for(coin, slots) == slot_for(coin, slots)
            assert 0 <= slot_for(coin, slots) < slots
    assert {slot_for(coin, 2) for coin in ("BTC", "ETH", "SOL", "DOGE")} == {0, 1}


async def test_nothing_is_sent_while_the_client_is_down() -> None:
    venue = FakeVenue()
    slot = ExecutorSlot(0, Mailbox(), lambda: None, Dispatcher(), ExecutorConfig())
    plan = await slot.execute(QuoteLadder("BTC", ladder(100.0)))
    assert len(plan.place) == 1
    assert venue.calls == []


async def test_an_intent_refused_by_the_pretrade_checks_is_never_sent() -> None:
    venue = FakeVenue()
    dispatcher = Dispatcher()
    router = OrderRouter(dispatcher, venue, lambda _: None, lambda: 0)
    slot = ExecutorSlot(
        0,
        Mailbox(),
        lambda: router,
        dispatcher,
        ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0)),
        # Refuse anything priced at or above 100.5.
        allow=lambda orders: [order for order in orders if order.px < 100.5],
    )
    plan = await slot.execute(QuoteLadder("BTC", ladder(101.0, 100.0)))
    assert len(plan.place) == 2
    assert [px for _, px, _ in venue.resting.values()] == [100.0]


async def test_after_a_request_a_slot_sends_only_what_the_budget_allows_by_then(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Every request takes a block or two to be answered; meanwhile another slot spends the
    # order budget. What is left of the plan is trimmed to the budget of the moment it is
    # sent (the rest waits for the next signal), instead of waiting in the limiter for tokens
    # that the other slots would take first.
    budget = [10]

    class SlowVenue(FakeVenue):
        async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
            await trio.sleep(0.3)
            budget[0] = 1  # the other slot spent the rest meanwhile
            return await super().cancel(cancels)

    venue = SlowVenue()
    dispatcher = Dispatcher()
    events: list[DispatchOutput] = []
    router = OrderRouter(dispatcher, venue, events.extend, lambda: 0)
    config = ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0))
    slot = ExecutorSlot(0, Mailbox(), lambda: router, dispatcher, config, budget=lambda: budget[0])
    await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    budget[0] = 10
    # Both bids go, two asks are new: after the cancel, the budget is 1: the top ask only.
    plan = await slot.execute(QuoteLadder("BTC", ladder(105.0, 106.0, side=Side.SELL)))
    assert venue.calls == ["place", "cancel", "place"]
    assert [px for _, px, _ in venue.resting.values()] == [105.0]
    assert (len(plan.cancel), len(plan.place), len(plan.modify)) == (2, 1, 0)
    assert [d.px for d in plan.deferred] == [106.0]  # for the next signal


async def test_a_symbol_awaiting_the_venue_does_not_hold_the_others_of_its_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The venue answers BTC's requests a block later; ETH, on the same slot, goes meanwhile.
    # BTC's ladders that come while it waits collapse into the latest, sent after its answer.
    class SlowBtc(FakeVenue):
        async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
            if orders[0].coin == "BTC":
                await trio.sleep(1.0)
            return await super().place(orders)

    venue = SlowBtc()
    dispatcher = Dispatcher()
    router = OrderRouter(dispatcher, venue, lambda _: None, lambda: 0)
    slot = ExecutorSlot(0, Mailbox(), lambda: router, dispatcher, ExecutorConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        slot.mailbox.put(QuoteLadder("BTC", ladder(100.0)))
        await trio.sleep(0.01)
        slot.mailbox.put(QuoteLadder("ETH", ladder(10.0)))
        slot.mailbox.put(QuoteLadder("BTC", ladder(101.0, 100.5)))
        slot.mailbox.put(QuoteLadder("BTC", ladder(102.0, 100.5)))  # the latest BTC wins
        await trio.sleep(0.1)
        assert [px for _, px, _ in venue.resting.values()] == [10.0]  # ETH did not wait
        await trio.sleep(3.0)
        assert sorted(px for _, px, _ in venue.resting.values()) == [10.0, 100.5, 102.0]
        assert slot.cycles == 3  # BTC twice (its first and its latest ladder), ETH once
        nursery.cancel_scope.cancel()


async def test_a_plan_whose_modify_the_venue_held_sends_no_place_once_a_newer_ladder_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Campaign seed 100 (1 hour): a modify's answer took 3.5 s (the venue's 5xx, a retry);
    meanwhile the book went stale and the strategy pulled (an empty ladder), but the slot went
    on with its old plan and placed two new orders on the stale book, which filled. The rest
    of a plan is now dropped once a newer ladder of its symbol waits: the pull goes next."""

    class SlowModify(FakeVenue):
        async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
            await trio.sleep(3.5)
            return await super().modify(modifies)

    venue = SlowModify()
    dispatcher = Dispatcher()
    router = OrderRouter(dispatcher, venue, lambda _: None, lambda: 0)
    config = ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0))
    slot = ExecutorSlot(0, Mailbox(), lambda: router, dispatcher, config)
    await slot.execute(QuoteLadder("BTC", ladder(100.0)))
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        slot.mailbox.put(QuoteLadder("BTC", ladder(101.0, 99.0, 98.0)))  # a modify, 2 places
        await trio.sleep(2.0)
        slot.mailbox.put(QuoteLadder("BTC", ()))  # the data went stale: pull
        await trio.sleep(5.0)
        assert venue.resting == {}
        assert venue.calls == ["place", "modify", "cancel"]  # the two places never went
        assert slot.superseded == 1
        nursery.cancel_scope.cancel()


class HeldBtc(FakeVenue):
    """Answers BTC's places and modifies 10 s late: a reply the venue lost, then the
    orderStatus that asks about it lost too (campaign seed 562)."""

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        if self.calls:  # (the first place, the resting orders, is answered at once)
            await trio.sleep(10.0)
        return await super().place(orders)

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        await trio.sleep(10.0)
        return await super().modify(modifies)


def held_rig() -> tuple[ExecutorSlot, HeldBtc]:
    venue = HeldBtc()
    dispatcher = Dispatcher()
    router = OrderRouter(dispatcher, venue, lambda _: None, lambda: 0)
    config = ExecutorConfig(reconcile=ReconcileConfig(px_tolerance_bps=1.0))
    return ExecutorSlot(0, Mailbox(), lambda: router, dispatcher, config), venue


async def test_a_pull_cancels_the_resting_quotes_at_once_while_a_place_is_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Campaign seed 562 (1 hour): a place's reply was lost, and the orderStatus asking about
    it too; the symbol's worker waited 10 s for them, and the pull that came as the book went
    stale waited behind it, leaving the symbol's other quotes resting on the stale book. The
    pull now cancels at once what no request holds; the held order goes once answered."""
    slot, venue = held_rig()
    await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        slot.mailbox.put(QuoteLadder("BTC", ladder(100.0, 99.0, 98.0)))  # one more place
        await trio.sleep(1.0)
        slot.mailbox.put(QuoteLadder("BTC", ()))  # the data went stale: pull
        await trio.sleep(0.5)
        assert venue.resting == {}  # both resting quotes are gone; the place is still held
        assert slot.pulled_at_once == 1
        await trio.sleep(10.0)
        assert venue.resting == {}  # the held order was canceled once answered
        assert venue.calls == ["place", "cancel", "place", "cancel"]  # as answered
        assert slot.dispatcher.registry.live("BTC") == []
        nursery.cancel_scope.cancel()


async def test_a_pull_while_a_modify_is_held_cancels_the_others_and_then_the_modified_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = held_rig()
    await slot.execute(QuoteLadder("BTC", ladder(100.0, 99.0)))
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        slot.mailbox.put(QuoteLadder("BTC", ladder(101.0, 99.0)))  # 100 is moved to 101
        await trio.sleep(1.0)
        slot.mailbox.put(QuoteLadder("BTC", ()))
        await trio.sleep(0.5)
        # The order the modify holds is left to it (its lifecycle allows no cancel now).
        assert [px for _, px, _ in venue.resting.values()] == [100.0]
        await trio.sleep(10.0)
        assert venue.resting == {}
        assert venue.calls == ["place", "cancel", "modify", "cancel"]  # as answered
        nursery.cancel_scope.cancel()


async def test_a_pull_that_finds_the_worker_free_is_its_to_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = held_rig()
    async with trio.open_nursery() as nursery:
        await nursery.start(slot.run)
        slot.mailbox.put(QuoteLadder("BTC", ladder(100.0, 99.0)))
        await trio.sleep(1.0)
        slot.mailbox.put(QuoteLadder("BTC", ()))
        await trio.sleep(1.0)
        assert venue.resting == {}
        assert venue.calls == ["place", "cancel"]
        assert slot.pulled_at_once == 0
        nursery.cancel_scope.cancel()


async def test_a_claimed_symbols_ladders_go_to_its_worker_not_the_queue() -> None:
    mailbox = Mailbox()
    mailbox.put(QuoteLadder("BTC", ladder(1.0)))
    assert (await mailbox.get()).desired[0].px == 1.0
    mailbox.claim("BTC")
    mailbox.put(QuoteLadder("BTC", ladder(2.0)))
    mailbox.put(QuoteLadder("BTC", ladder(3.0)))  # the latest wins, as for the queue
    mailbox.put(QuoteLadder("ETH", ladder(4.0)))
    assert (len(mailbox), mailbox.replaced) == (2, 1)
    assert (await mailbox.get()).coin == "ETH"  # BTC is not in the queue
    assert (await mailbox.take("BTC")).desired[0].px == 3.0
    assert len(mailbox) == 0
    assert mailbox.replan("BTC")  # again from the last ladder handed out, to its worker
    assert (await mailbox.take("BTC")).desired[0].px == 3.0
    try:
        mailbox.claim("BTC")
    except RuntimeError:
        pass
    else:
        raise AssertionError("a symbol claimed twice")


async def test_a_released_symbols_waiting_ladder_queues_again() -> None:
    mailbox = Mailbox()
    mailbox.claim("BTC")
    mailbox.put(QuoteLadder("BTC", ladder(1.0)))
    mailbox.release("BTC")
    mailbox.release("BTC")  # once is enough
    assert (await mailbox.get()).desired[0].px == 1.0
    mailbox.put(QuoteLadder("BTC", ladder(2.0)))  # unclaimed: queued
    assert (await mailbox.get()).desired[0].px == 2.0


async def test_a_worker_waits_for_its_symbols_next_ladder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox()
    mailbox.claim("BTC")
    taken: list[float] = []

    async def worker() -> None:
        taken.append((await mailbox.take("BTC")).desired[0].px)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        await trio.sleep(1)
        assert taken == []
        mailbox.put(QuoteLadder("BTC", ladder(5.0)))
        await trio.sleep(1)
    assert taken == [5.0]


async def test_a_slot_restarted_after_a_failure_executes_the_ladder_left_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The first ladder's requests fail (the slot fails, its supervisor restarts it); the
    # ladder that came meanwhile waits in the mailbox for the restarted slot.
    class FailingOnce(FakeVenue):
        failed = False

        async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
            if not self.failed:
                self.failed = True
                await trio.sleep(1.0)
                raise RuntimeError("the venue broke")
            return await super().place(orders)

    venue = FailingOnce()
    dispatcher = Dispatcher()
    router = OrderRouter(dispatcher, venue, lambda _: None, lambda: 0)
    mailbox = Mailbox()
    mailbox.put(QuoteLadder("BTC", ladder(100.0)))
    slot = ExecutorSlot(0, mailbox, lambda: router, dispatcher, ExecutorConfig())
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(slot.run)
            await trio.sleep(0.5)
            mailbox.put(QuoteLadder("BTC", ladder(101.0)))
    except* RuntimeError:
        pass
    assert len(mailbox) == 1
    executed: list[float] = []
    restarted = ExecutorSlot(
        0,
        mailbox,
        lambda: router,
        dispatcher,
        ExecutorConfig(),
        on_sent=lambda ladder, _: executed.append(ladder.desired[0].px),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(restarted.run)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert executed == [101.0]  # (the order of the failed place stays pending: not re-sent)
