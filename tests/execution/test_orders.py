"""Orders through their whole lifecycle against the simulator: router answers and user-stream
reports through one dispatcher, as the service runs them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import httpx
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
    ModifyOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    Side,
    Tif,
)
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
