"""Orders through their whole lifecycle against the simulator: router answers and user-stream
reports through one dispatcher, as the service runs them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import httpx
import pytest
import trio

from mm.execution.dispatch import (
    Dispatcher,
    DispatchOutput,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderStateUnknown,
    OrderUpdated,
)
from mm.execution.lifecycle import OrderState
from mm.execution.orders import OrderRouter
from mm.feeds.user import UserFeed, UserStreamConfig, UserStreamEvent
from mm.model import (
    CancelOrder,
    CancelResult,
    Fill,
    Filled,
    ModifyOrder,
    OrderId,
    OrderReport,
    OrderStatus,
    PlaceOrder,
    PlaceResult,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import OrderFateUnknown, RateLimited, VenueError
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.rate_limit import Cost
from mm.venues.hyperliquid.user_stream import HyperliquidUserStream
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.venue import SimVenue
from tests.conftest import eventually
from tests.venues.hyperliquid.harness import passive, setup

TAKER = "0x" + "7a" * 20


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.define
class Rig:
    venue: SimVenue
    client: HyperliquidClient
    router: OrderRouter
    stream: UserFeed
    events: list[DispatchOutput]

    def of(self, cloid: str) -> list[str]:
        return [type(e).__name__ for e in self.events if getattr(e, "cloid", None) == cloid]


@asynccontextmanager
async def rig(action_expiry_s: float = 3.0) -> AsyncIterator[Rig]:
    async with setup(post_timeout_s=0.5, action_expiry_s=action_expiry_s) as (venue, client):
        assert client.ws is not None
        dispatcher = Dispatcher()
        events: list[DispatchOutput] = []
        router = OrderRouter(dispatcher, client, events.extend, now_ms)
        send, receive = trio.open_memory_channel[UserStreamEvent](1_000)
        deadline_s = UserStreamConfig().rest_deadline_s
        user = HyperliquidUserStream(client.account, client.ws, client.rest, deadline_s=deadline_s)
        stream = UserFeed(user, send)

        async def route() -> None:
            async for event in receive:
                if isinstance(event, Fill):
                    events.extend(dispatcher.on_fill(event, now_ms()))
                elif isinstance(event, OrderReport):
                    events.extend(dispatcher.on_order_report(event, now_ms()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route)
            await nursery.start(stream.run)
            await stream.synced.wait()
            venue.engine.fund(TAKER, 1_000_000)
            try:
                yield Rig(venue, client, router, stream, events)
            finally:
                nursery.cancel_scope.cancel()


def state(r: Rig, cloid: str) -> OrderState:
    order = r.router.dispatcher.order(cloid)
    assert order is not None
    return order.state


def take(venue: SimVenue, px: float, sz: str) -> None:
    """Another user sells down to ``px`` (our bid, rounded as the client sent it)."""
    spec = venue.specs[0]
    request = OrderRequest(0, False, spec.px_str(spec.round_px(px, up=False)), sz, tif="Ioc")
    venue.engine.place(TAKER, request, venue.now_ms())
    venue.publish_events()


async def test_partial_fills_then_filled() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            # Inside the simulator's spread, so ours is the best bid the taker meets first.
            px = passive(r.venue, Side.BUY, away=0.0001)
            order = PlaceOrder("BTC", Side.BUY, px, 0.003, Tif.GTC, new_cloid())
            await r.router.place([order])
            await eventually(lambda: "OrderAccepted" in r.of(order.cloid))
            take(r.venue, px, "0.001")
            await eventually(lambda: "OrderPartiallyFilled" in r.of(order.cloid))
            take(r.venue, px, "0.002")
            await eventually(lambda: "OrderFilled" in r.of(order.cloid))
            await trio.sleep(0.3)
            kinds = r.of(order.cloid)
            assert kinds.count("OrderAccepted") == 1
            assert kinds.count("FillEvent") == 2  # each fill once, never twice
            assert kinds.count("OrderFilled") == 1
            assert any(isinstance(e, OrderPartiallyFilled) for e in r.events)
            assert any(isinstance(e, OrderFilled) for e in r.events)


async def test_a_modify_or_cancel_of_an_order_filled_meanwhile_is_left_out() -> None:
    """Campaign seed 22 (1 hour): a slot planned a modify, awaited its cancels, and meanwhile
    the order filled; the modify's lifecycle refused it (IllegalTransition) and the slot
    crashed. The router now leaves an ended order out and sends the rest."""
    with trio.fail_after(20):
        async with rig() as r:
            px = passive(r.venue, Side.BUY, away=0.0001)
            filled = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            other = PlaceOrder(
                "BTC", Side.BUY, passive(r.venue, Side.BUY), 0.001, Tif.GTC, new_cloid()
            )
            await r.router.place([filled, other])
            await eventually(lambda: "OrderAccepted" in r.of(other.cloid))
            take(r.venue, px, "0.001")
            await eventually(lambda: "OrderFilled" in r.of(filled.cloid))
            lower = attrs.evolve(other, px=other.px * 0.99)
            await r.router.modify(
                [ModifyOrder(attrs.evolve(filled, px=px * 0.99)), ModifyOrder(lower)]
            )
            await eventually(lambda: "OrderUpdated" in r.of(other.cloid))
            await r.router.cancel([filled.cloid])  # (nothing left to send)
            await r.router.cancel([filled.cloid, other.cloid])
            await eventually(lambda: "OrderCanceled" in r.of(other.cloid))
            assert "OrderUpdated" not in r.of(filled.cloid)
            assert "OrderCanceled" not in r.of(filled.cloid)


async def test_modify_is_one_update_and_no_cancel() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            await eventually(lambda: "OrderAccepted" in r.of(order.cloid))
            await r.router.modify([ModifyOrder(attrs.evolve(order, px=px * 0.99))])
            await eventually(lambda: "OrderUpdated" in r.of(order.cloid))
            await trio.sleep(0.5)  # the venue's report of the old oid's cancel arrives too
            kinds = r.of(order.cloid)
            assert kinds.count("OrderUpdated") == 1
            assert "OrderCanceled" not in kinds
            updated = next(e for e in r.events if isinstance(e, OrderUpdated))
            (resting,) = await r.client.open_orders()
            assert updated.oid == resting.oid


async def test_cancel_by_cloid() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            await r.router.cancel([order.cloid])
            await eventually(lambda: "OrderCanceled" in r.of(order.cloid))
            await trio.sleep(0.3)
            assert r.of(order.cloid).count("OrderCanceled") == 1
            assert await r.client.open_orders() == []


async def test_a_cancel_refused_for_an_order_already_gone_asks_its_fate_at_once() -> None:
    """The venue answers a cancel with "never placed, already canceled, or filled" when an
    earlier cancel of ours took effect but its answer and the stream's report were lost (a
    connection closed between them; mm sends a cancel again over REST). The order is not open:
    its fate is asked at once, not left working until the order audit finds it absent."""
    with trio.fail_after(20):
        async with rig() as r:
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            assert state(r, order.cloid) is OrderState.OPEN
            r.venue.faults.update({"ws_drop": 1.0})  # the stream's "canceled" is lost
            (resting,) = r.venue.engine.open_orders(r.client.account)
            assert r.venue.engine.cancel(r.client.account, 0, resting.oid, r.venue.now_ms()) is None
            r.venue.publish_events()
            await r.router.cancel([order.cloid])
            kinds = r.of(order.cloid)
            assert kinds[-2:] == ["OrderCancelRejected", "OrderCanceled"], kinds
            assert state(r, order.cloid) is OrderState.CANCELED


async def test_a_cancel_refused_for_an_order_still_open_leaves_it_working() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            r.venue.faults.update({"invalid_assets": ["BTC"]})  # the action refused whole
            await r.router.cancel([order.cloid])
            assert r.of(order.cloid)[-1] == "OrderCancelRejected"
            assert state(r, order.cloid) is OrderState.OPEN
            r.venue.faults.update({"invalid_assets": []})
            assert [o.cloid for o in await r.client.open_orders()] == [order.cloid]


async def test_a_lost_ack_is_resolved_without_a_second_order() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            assert r.venue.url is not None
            async with httpx.AsyncClient(base_url=r.venue.url) as control:
                # The answer and the stream's reports are lost; the venue still acts.
                faults = {"ws_drop_post_replies": 1.0, "ws_drop": 1.0}
                await control.post("/sim/faults", json=faults)
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            kinds = r.of(order.cloid)
            assert kinds[0] == "OrderStateUnknown"
            assert "OrderAccepted" in kinds  # resolved by orderStatus, not by sending again
            assert any(isinstance(e, OrderStateUnknown) for e in r.events)
            assert any(isinstance(e, OrderAccepted) for e in r.events)
            mine = [o for o in await r.client.open_orders() if o.cloid == order.cloid]
            assert len(mine) == 1
            assert not any(isinstance(e, OrderCanceled) for e in r.events)


async def test_the_address_limit_error_rejects_cleanly_and_throttles() -> None:
    with trio.fail_after(20):
        async with setup(address_initial_requests=3) as (venue, client):
            dispatcher = Dispatcher()
            events: list[DispatchOutput] = []
            router = OrderRouter(dispatcher, client, events.extend, now_ms)
            px = passive(venue, Side.BUY)
            for step in range(4):
                price = px * (1 - step / 1000)
                await router.place(
                    [PlaceOrder("BTC", Side.BUY, price, 0.001, Tif.GTC, new_cloid())]
                )
            kinds = [type(event).__name__ for event in events]
            assert kinds.count("OrderAccepted") == 3
            rejected = [event for event in events if isinstance(event, OrderRejected)]
            assert len(rejected) == 1  # refused whole: tracked as rejected, nothing untracked
            assert rejected[0].reason.startswith("Too many cumulative requests sent")
            # The limiter took the venue's figures from the error: the next order must wait for
            # the venue's one-request-per-10-s allowance instead of being refused again.
            assert client.limiter.address_cap() == 3
            wait = client.limiter.wait_time(Cost.orders(1), trio.current_time())
            assert wait >= 9.0
            assert len(await client.open_orders()) == 3


async def drop_the_socket_once_taken_in(venue: SimVenue) -> None:
    """Drop every WebSocket as soon as the venue holds an action not committed yet: the
    request is on its way, its answer will never come."""
    while not len(venue.commits):  # noqa: ASYNC110 - the venue's queue, filled by the request
        await trio.sleep(0.001)
    venue.disconnect_all("test: the socket drops with the action on its way")


async def test_an_order_on_its_way_when_its_socket_dropped_is_asked_again_after_its_expiry() -> (
    None
):
    # The venue commits a block or two after it took the order in: asked at once, it does not
    # know it yet. Taken for never placed (REJECTED), it landed unmanaged; now it is asked
    # again once its expiry has passed, and found.
    with trio.fail_after(20):
        async with rig(action_expiry_s=1.0) as r:
            dispatcher = r.router.dispatcher
            order = PlaceOrder(
                "BTC", Side.BUY, passive(r.venue, Side.BUY), 0.001, Tif.GTC, new_cloid()
            )
            sent = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drop_the_socket_once_taken_in, r.venue)
                await r.router.place([order])
            kinds = r.of(order.cloid)
            assert kinds[:2] == ["OrderStateUnknown", "OrderAccepted"]
            assert "OrderRejected" not in kinds
            assert dispatcher.stats.may_still_land >= 1  # "unknownOid" at first: set aside
            assert trio.current_time() - sent >= r.client.landing_window_ms / 1000
            tracked = dispatcher.order(order.cloid)
            assert tracked is not None
            assert tracked.state is OrderState.OPEN
            (resting,) = await r.client.open_orders()
            assert (resting.cloid, resting.oid) == (order.cloid, tracked.oid)


async def test_a_modify_on_its_way_when_its_socket_dropped_is_not_taken_for_failed() -> None:
    # Asked at once, the venue still shows the old oid under the cloid: that is no proof the
    # modify failed while it may still land. Asked again after its expiry: the replacement.
    with trio.fail_after(20):
        async with rig(action_expiry_s=1.0) as r:
            dispatcher = r.router.dispatcher
            px = passive(r.venue, Side.BUY)
            order = PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid())
            await r.router.place([order])
            await eventually(lambda: "OrderAccepted" in r.of(order.cloid))
            await eventually(lambda: r.client.ws is not None and r.client.ws.connected)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drop_the_socket_once_taken_in, r.venue)
                await r.router.modify([ModifyOrder(attrs.evolve(order, px=px * 0.99))])
            kinds = r.of(order.cloid)
            assert "OrderModifyRejected" not in kinds
            assert kinds.count("OrderUpdated") == 1
            assert dispatcher.stats.may_still_land >= 1
            tracked = dispatcher.order(order.cloid)
            assert tracked is not None
            (resting,) = await r.client.open_orders()
            assert (resting.oid, tracked.oid, tracked.state) == (
                tracked.oid,
                resting.oid,
                OrderState.OPEN,
            )


class HangingVenue:
    """A venue whose order requests never come back (the caller gives up first)."""

    def new_client_id(self) -> str:
        raise AssertionError("the test names its orders")

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        return None


async def test_a_call_abandoned_mid_request_leaves_the_landing_window_as_its_bound(
    autojump_clock: trio.abc.Clock,
) -> None:
    dispatcher = Dispatcher()

    def virtual_ms() -> int:
        return round(trio.current_time() * 1000)

    events: list[DispatchOutput] = []
    router = OrderRouter(
        dispatcher, HangingVenue(), events.extend, virtual_ms, landing_window_ms=3_500
    )
    order = PlaceOrder("BTC", Side.BUY, 100.0, 0.001, Tif.GTC, new_cloid())
    with trio.move_on_after(2.0):  # a stop, a kill, a restart of the slot
        await router.place([order])
    tracked = dispatcher.order(order.cloid)
    assert tracked is not None
    gone = virtual_ms()
    assert tracked.lands_by_ms == gone + 3_500  # what it sent may land until then
    assert order.cloid not in dispatcher.awaited()
    dispatcher.on_timeout(order.cloid, gone + 1)  # found stuck
    assert dispatcher.resolve_unknown(order.cloid, None, gone + 3_000) == []
    (rejected,) = dispatcher.resolve_unknown(order.cloid, None, gone + 3_501)
    assert isinstance(rejected, OrderRejected)


# --- send_place: registered and written now, settled later ---------------------------------------


class FatePending:
    """A written order's pending result: ``outcome`` (a result, or an error to raise) once
    ``answered`` is set."""

    def __init__(self, outcome: PlaceResult | Exception) -> None:
        self.outcome = outcome
        self.answered = trio.Event()
        self.answered.set()

    async def result(self) -> PlaceResult:
        await self.answered.wait()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@attrs.define(eq=False)
class NowVenue:
    """A venue that writes one order at once (``SendsPlaceNow``), answering each order by
    ``outcome``: at once (a result returned by ``send_place``, or an error it raises), or
    pending (``FatePending``). ``place`` answers the same outcomes, so the two ways compare.
    What the dispatcher held of each order when it was written is kept in ``seen``."""

    dispatcher: Dispatcher
    outcome: PlaceResult | Exception | FatePending
    status: OrderReport | None = None  # what orderStatus says
    ready: bool = True
    seen: list[tuple[OrderState | None, bool]] = attrs.Factory(list)

    def new_client_id(self) -> str:
        raise AssertionError("the test names its orders")

    def place_ready(self) -> bool:
        return self.ready

    def send_place(self, order: PlaceOrder) -> PlaceResult | FatePending | None:
        tracked = self.dispatcher.order(order.cloid)
        self.seen.append(
            (tracked.state if tracked else None, order.cloid in self.dispatcher.awaited())
        )
        if not self.ready:
            return None
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        (order,) = orders
        sent = self.send_place(order)
        assert sent is not None
        return [await sent.result()] if isinstance(sent, FatePending) else [sent]

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        raise AssertionError("not in these tests")

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        raise AssertionError("not in these tests")

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        return self.status


OID = OrderId("sim:1")
ORDER = PlaceOrder("BTC", Side.BUY, 100.0, 0.002, Tif.GTC, "now-1")


def virtual_ms() -> int:
    return round(trio.current_time() * 1000)


def report(status: OrderStatus) -> OrderReport:
    return OrderReport("BTC", Side.BUY, 100.0, 0.002, 0.002, OID, "now-1", 0, status, 0, "open")


def now_router(
    outcome: PlaceResult | Exception | FatePending, status: OrderReport | None = None
) -> tuple[OrderRouter, NowVenue, list[DispatchOutput]]:
    dispatcher = Dispatcher()
    venue = NowVenue(dispatcher, outcome, status)
    events: list[DispatchOutput] = []
    router = OrderRouter(dispatcher, venue, events.extend, virtual_ms, landing_window_ms=3_500)
    return router, venue, events


OUTCOMES: dict[str, tuple[PlaceResult | Exception | FatePending, OrderReport | None]] = {
    "resting": (FatePending(Resting(OID, "now-1")), None),
    "filled": (FatePending(Filled(OID, "now-1", 0.002, 100.0)), None),
    "rejected by the venue": (FatePending(Rejected("balance")), None),
    "rejected at once": (Rejected("reduce-only"), None),
    "refused whole": (RateLimited("429"), None),
    "unknown, then found": (
        FatePending(OrderFateUnknown(["now-1"], "lost", lands_by_ms=None)),
        report(OrderStatus.OPEN),
    ),
    "unknown, never placed": (
        FatePending(OrderFateUnknown(["now-1"], "lost", lands_by_ms=None)),
        None,
    ),
}


def shown(events: Sequence[DispatchOutput]) -> list[tuple[str, object]]:
    return [(type(e).__name__, getattr(e, "reason", None)) for e in events]


@pytest.mark.parametrize("name", list(OUTCOMES))
async def test_send_place_then_settle_applies_the_answer_as_place_does(
    name: str, autojump_clock: trio.abc.Clock
) -> None:
    outcome, status = OUTCOMES[name]
    router, venue, events = now_router(outcome, status)
    assert router.place_ready()
    sent = router.send_place(ORDER)
    assert sent is not None
    # Registered, and awaited, before the venue wrote it; still so until settled.
    assert venue.seen == [(OrderState.PENDING_NEW, True)]
    tracked = router.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert tracked.state is OrderState.PENDING_NEW
    assert router.dispatcher.awaited() == {ORDER.cloid}
    async with trio.open_nursery() as nursery:  # settled in a task of its own
        nursery.start_soon(sent.settle)
    assert router.dispatcher.awaited() == frozenset()
    placed, _, placed_events = now_router(outcome, status)
    await placed.place([ORDER])
    assert shown(events) == shown(placed_events)
    twin = placed.dispatcher.order(ORDER.cloid)
    assert twin is not None
    assert (tracked.state, tracked.oid) == (twin.state, twin.oid)
    expected = {
        "resting": OrderState.OPEN,
        "filled": OrderState.FILLED,
        "unknown, then found": OrderState.OPEN,
    }.get(name, OrderState.REJECTED)
    assert tracked.state is expected
    if name.startswith("unknown"):
        assert shown(events)[0][0] == "OrderStateUnknown"


class KucoinLikeNotSent(VenueError):
    """A venue's "refused whole: never sent" (KuCoin's ``KucoinNotSent``)."""


async def test_a_venue_error_from_send_place_is_rejected(
    autojump_clock: trio.abc.Clock,
) -> None:
    router, _, events = now_router(KucoinLikeNotSent("not one byte went out"))
    sent = router.send_place(ORDER)
    assert sent is not None
    await sent.settle()
    tracked = router.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert tracked.state is OrderState.REJECTED
    (rejected,) = [e for e in events if isinstance(e, OrderRejected)]
    assert "not one byte went out" in rejected.reason


async def test_abandoned_it_is_the_callers_gone_and_no_longer_awaited(
    autojump_clock: trio.abc.Clock,
) -> None:
    router, _, events = now_router(FatePending(Resting(OID, "now-1")))
    sent = router.send_place(ORDER)
    assert sent is not None
    await trio.sleep(1.0)
    sent.abandon()
    tracked = router.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert tracked.lands_by_ms == virtual_ms() + 3_500  # what it sent may land until then
    assert tracked.state is OrderState.PENDING_NEW  # the auditor's to resolve
    assert router.dispatcher.awaited() == frozenset()
    sent.abandon()  # (once is enough: the mark is not dropped twice)
    assert router.dispatcher.awaited() == frozenset()
    with pytest.raises(RuntimeError, match="settled already"):
        await sent.settle()
    assert events == []


async def test_settled_twice_raises_and_the_awaiting_mark_is_dropped_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    router, _, events = now_router(FatePending(Resting(OID, "now-1")))
    sent = router.send_place(ORDER)
    other = router.send_place(attrs.evolve(ORDER, cloid="now-2"))
    assert sent is not None
    assert other is not None
    with router.dispatcher.awaiting([ORDER.cloid]):  # another caller awaits it too
        await sent.settle()
        assert router.dispatcher.awaited() == {ORDER.cloid, "now-2"}
        with pytest.raises(RuntimeError, match="settled already"):
            await sent.settle()
        sent.abandon()  # after settle: nothing
        assert router.dispatcher.awaited() == {ORDER.cloid, "now-2"}
    assert [type(e).__name__ for e in events] == ["OrderAccepted"]
    other.abandon()


async def test_a_settle_cancelled_leaves_the_landing_window_as_its_bound(
    autojump_clock: trio.abc.Clock,
) -> None:
    pending = FatePending(Resting(OID, "now-1"))
    pending.answered = trio.Event()  # never answered
    router, _, _ = now_router(pending)
    sent = router.send_place(ORDER)
    assert sent is not None
    with trio.move_on_after(2.0):
        await sent.settle()
    tracked = router.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert tracked.lands_by_ms == virtual_ms() + 3_500
    assert router.dispatcher.awaited() == frozenset()


async def test_a_venue_without_the_way_registers_nothing_and_one_not_ready_rejects() -> None:
    hanging_events: list[DispatchOutput] = []
    hanging = OrderRouter(Dispatcher(), HangingVenue(), hanging_events.extend, virtual_ms)
    assert not hanging.place_ready()  # no SendsPlaceNow at all
    assert hanging.send_place(ORDER) is None
    assert hanging.dispatcher.order(ORDER.cloid) is None
    assert hanging.dispatcher.awaited() == frozenset()
    assert hanging_events == []
    # Sent without asking place_ready first, to a venue that cannot write now: registered,
    # answered Rejected, never at the venue (nothing out of step with it).
    router, venue, _ = now_router(FatePending(Resting(OID, "now-1")))
    venue.ready = False
    assert not router.place_ready()
    sent = router.send_place(ORDER)
    assert sent is not None
    await sent.settle()
    tracked = router.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert tracked.state is OrderState.REJECTED
    assert tracked.reason == "the venue could not write it at once"
    assert router.dispatcher.awaited() == frozenset()


async def test_a_venue_that_fails_otherwise_leaves_the_order_as_place_does(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Not a refusal (a bug in the adapter, say): raised to the caller, and the order left as
    a failed ``place`` leaves it, to land up to the landing window from now."""
    router, _, _ = now_router(KeyError("BTC"))
    with pytest.raises(KeyError):
        router.send_place(ORDER)
    placed, _, _ = now_router(KeyError("BTC"))
    with pytest.raises(KeyError):
        await placed.place([ORDER])
    for dispatcher in (router.dispatcher, placed.dispatcher):
        assert dispatcher.awaited() == frozenset()
    tracked, twin = router.dispatcher.order(ORDER.cloid), placed.dispatcher.order(ORDER.cloid)
    assert tracked is not None
    assert twin is not None
    assert twin.lands_by_ms == virtual_ms() + 3_500
    assert tracked.lands_by_ms == twin.lands_by_ms
