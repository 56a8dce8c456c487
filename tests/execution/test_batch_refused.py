"""A batch refused as a whole (issue 14, item 4), through the order router and the real client
against the simulator, as the service runs them.

The venue answers one error status for a batch it refuses before looking at its orders (an
invalid asset, a non-post-only order during the post-only period after an upgrade). Each order
of the batch takes that error: placed orders end REJECTED with the venue's text (never left
PENDING_NEW), a refused modify leaves the order where it was, a refused cancel leaves it live
and tracked. A batch refused beside another that was answered (post-only orders travel apart)
refuses only its own orders. An answer whose statuses fit no order of the batch leaves its
orders unknown, and each is settled from the venue's orderStatus; nothing is sent twice.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from mm.execution.lifecycle import OrderState
from mm.model import ModifyOrder, OrderId, PlaceOrder, Side, Tif
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.sim.hyperliquid.prevalidate import INVALID_ASSET, POST_ONLY_PERIOD
from tests.conftest import eventually
from tests.execution.test_orders import Rig, rig

S = OrderState
UPGRADE = "Only post-only orders allowed immediately after network upgrade"


def bids(r: Rig, count: int, tif: Tif = Tif.GTC, coin: str = "BTC") -> list[PlaceOrder]:
    px = float(r.venue.mids()[coin]) * 0.9
    sz = 0.001 if coin == "BTC" else 0.01
    return [
        PlaceOrder(coin, Side.BUY, px * (1 - i / 1000), sz, tif, new_cloid()) for i in range(count)
    ]


def state(r: Rig, cloid: str) -> OrderState:
    order = r.router.dispatcher.order(cloid)
    assert order is not None
    return order.state


def reason(r: Rig, cloid: str) -> str | None:
    order = r.router.dispatcher.order(cloid)
    assert order is not None
    return order.reason


def venue_cloids(r: Rig) -> set[str | None]:
    return {order.cloid for order in r.venue.engine.open_orders(r.client.account)}


async def test_orders_refused_as_a_batch_are_each_rejected_with_the_venues_text() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            r.venue.faults.update({"post_only_period": True})
            orders = bids(r, 3)
            await r.router.place(orders)
            assert POST_ONLY_PERIOD == UPGRADE
            for order in orders:
                assert state(r, order.cloid) is S.REJECTED
                assert reason(r, order.cloid) == UPGRADE
            assert r.router.dispatcher.awaited() == frozenset()
            assert venue_cloids(r) == set()
            r.venue.faults.update({"post_only_period": False})
            again = bids(r, 2)
            await r.router.place(again)
            assert [state(r, order.cloid) for order in again] == [S.OPEN, S.OPEN]


async def test_a_batch_refused_beside_an_answered_one_refuses_only_its_own_orders() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            r.venue.faults.update({"post_only_period": True})
            post_only = bids(r, 2, Tif.ALO)
            others = bids(r, 2, Tif.GTC)
            await r.router.place([post_only[0], others[0], post_only[1], others[1]])
            assert [state(r, o.cloid) for o in post_only] == [S.OPEN, S.OPEN]
            assert [state(r, o.cloid) for o in others] == [S.REJECTED, S.REJECTED]
            assert venue_cloids(r) == {o.cloid for o in post_only}


async def test_an_error_answer_for_one_batch_leaves_the_other_batchs_orders_placed() -> None:
    """An ``err`` answer for the IOC/GTC batch while the post-only batch rested: each side of
    the call keeps its own answer (it used to reject the resting post-only orders too)."""
    with trio.fail_after(20):
        async with rig() as r:
            real = r.client._action
            text = "Order price cannot be more than 80% away from the reference price"

            async def refuse_others(action: dict[str, Any], **kwargs: Any) -> Any:
                tifs = {o["t"]["limit"]["tif"] for o in action.get("orders", [])}
                if action["type"] == "order" and "Alo" not in tifs:
                    return {"status": "err", "response": text}  # the venue refused it whole
                return await real(action, **kwargs)

            r.client._action = refuse_others  # type: ignore[method-assign]
            # The answers alone decide: the stream's reports (which would say "open") are lost.
            r.venue.faults.update({"ws_drop": 1.0})
            post_only, other = bids(r, 1, Tif.ALO)[0], bids(r, 1, Tif.GTC)[0]
            other = attrs.evolve(other, px=other.px * 0.99)
            await r.router.place([post_only, other])
            assert state(r, post_only.cloid) is S.OPEN
            assert (state(r, other.cloid), reason(r, other.cloid)) == (S.REJECTED, text)


async def test_a_cancel_refused_as_a_batch_leaves_the_orders_live_and_tracked() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            orders = bids(r, 2)
            await r.router.place(orders)
            r.venue.faults.update({"invalid_assets": ["BTC"]})
            await r.router.cancel([order.cloid for order in orders])
            assert [state(r, o.cloid) for o in orders] == [S.OPEN, S.OPEN]
            kinds = [kind for order in orders for kind in r.of(order.cloid)]
            assert kinds.count("OrderCancelRejected") == 2
            assert venue_cloids(r) == {o.cloid for o in orders}
            r.venue.faults.update({"invalid_assets": []})
            await r.router.cancel([order.cloid for order in orders])
            assert [state(r, o.cloid) for o in orders] == [S.CANCELED, S.CANCELED]
            assert venue_cloids(r) == set()


async def test_a_modify_refused_as_a_batch_leaves_the_orders_where_they_were() -> None:
    with trio.fail_after(20):
        async with rig() as r:
            orders = bids(r, 2)
            await r.router.place(orders)
            r.venue.faults.update({"invalid_assets": ["BTC"]})
            moved = [ModifyOrder(attrs.evolve(o, px=o.px * 0.99)) for o in orders]
            await r.router.modify(moved)
            for order in orders:
                tracked = r.router.dispatcher.order(order.cloid)
                assert tracked is not None
                assert (tracked.state, tracked.px) == (S.OPEN, order.px)
                assert "OrderModifyRejected" in r.of(order.cloid)
            kinds = [event for order in orders for event in r.of(order.cloid)]
            assert "OrderCanceled" not in kinds
            assert venue_cloids(r) == {o.cloid for o in orders}
            assert INVALID_ASSET in {e.reason for e in r.events if hasattr(e, "reason")}


async def test_statuses_that_fit_no_order_are_settled_from_the_venue_never_sent_again() -> None:
    """The venue acted but its answer lays onto no order (a status missing): the orders are
    unknown, then each is what orderStatus says (resting, then canceled), and nothing is
    sent twice."""
    with trio.fail_after(20):
        async with rig() as r:
            real_action, real_status = r.client._action, r.client.order_status
            sent: list[str] = []
            asked: list[str | None] = []

            async def drop_a_status(action: dict[str, Any], **kwargs: Any) -> Any:
                sent.append(action["type"])
                answer = await real_action(action, **kwargs)
                if action["type"] in ("order", "cancelByCloid"):
                    answer["response"]["data"]["statuses"].pop()
                return answer

            async def order_status(*, oid: OrderId | None = None, cloid: str | None = None) -> Any:
                asked.append(cloid if oid is None else oid)
                return await real_status(oid=oid, cloid=cloid)

            r.client._action = drop_a_status  # type: ignore[method-assign]
            r.client.order_status = order_status  # type: ignore[method-assign]
            orders = bids(r, 3, Tif.ALO)
            await r.router.place(orders)
            assert sent == ["order"]
            assert sorted(map(str, asked)) == sorted(o.cloid for o in orders)
            for order in orders:
                assert state(r, order.cloid) is S.OPEN
                assert r.of(order.cloid).count("OrderAccepted") == 1
            assert venue_cloids(r) == {o.cloid for o in orders}
            asked.clear()
            await r.router.cancel([o.cloid for o in orders])
            assert sent == ["order", "cancelByCloid"]
            assert sorted(map(str, asked)) == sorted(o.cloid for o in orders)
            await eventually(lambda: all(state(r, o.cloid) is S.CANCELED for o in orders))
            assert venue_cloids(r) == set()
            assert r.router.dispatcher.awaited() == frozenset()
