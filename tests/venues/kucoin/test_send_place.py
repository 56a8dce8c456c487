"""``KucoinClient.send_place`` (the port's optional ``SendsPlaceNow``) against the simulator's
KuCoin face over loopback on virtual time: each order written at once answers as the same
order through ``place`` does; what is refused before the venue is answered at once, nothing
sent; and with nothing free to write on, nothing is sent."""

from __future__ import annotations

import attrs
import pytest
import trio

from mm.model import Filled, OrderStatus, PlaceOrder, PlaceResult, Rejected, Resting, Side, Tif
from mm.venues.base import PendingPlace, SendsPlaceNow
from tests.venues.kucoin.test_client import Face, face_client


async def both_ways(face: Face, order: PlaceOrder) -> tuple[PlaceResult, PlaceResult]:
    """``order`` by ``send_place`` (its result awaited in another task) and its twin (a new
    cloid) by ``place``."""
    client = face.client
    assert client.rest.lane is not None
    await client.rest.lane.wait_idle(2)
    assert client.place_ready()
    sent = client.send_place(order)
    assert sent is not None
    assert not isinstance(sent, Resting | Filled | Rejected)  # written: its answer to come
    pending: PendingPlace = sent
    results: list[PlaceResult] = []

    async def await_it() -> None:
        results.append(await pending.result())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(await_it)
    (placed,) = await client.place([attrs.evolve(order, cloid=client.new_client_id())])
    return results[0], placed


async def test_it_is_the_ports_sends_place_now(autojump_clock: trio.abc.Clock) -> None:
    async with face_client() as face:
        assert isinstance(face.client, SendsPlaceNow)


async def test_a_resting_order_answers_as_place_does(autojump_clock: trio.abc.Clock) -> None:
    async with face_client() as face:
        order = face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC)
        sent, placed = await both_ways(face, order)
        assert isinstance(sent, Resting)
        assert isinstance(placed, Resting)
        assert sent.cloid == order.cloid
        assert sent.oid != placed.oid
        status = await face.client.order_status(cloid=order.cloid)
        assert status is not None
        assert status.oid == sent.oid


async def test_a_crossing_ioc_fills_as_through_place(autojump_clock: trio.abc.Clock) -> None:
    async with face_client() as face:
        order = face.order(Side.BUY, face.crossing(Side.BUY), Tif.IOC)
        sent, placed = await both_ways(face, order)
        assert isinstance(sent, Filled)
        assert isinstance(placed, Filled)
        assert sent.cloid == order.cloid
        assert sent.total_sz == pytest.approx(order.sz) == placed.total_sz


@pytest.mark.parametrize("why", ["balance", "post-only"])
async def test_the_venues_refusal_is_rejected_as_through_place(
    why: str, autojump_clock: trio.abc.Clock
) -> None:
    async with face_client() as face:
        if why == "balance":
            order = face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC, notional=10**9)
        else:
            order = face.order(Side.BUY, face.crossing(Side.BUY), Tif.ALO)
        sent, placed = await both_ways(face, order)
        assert isinstance(sent, Rejected)
        assert sent == placed
        status = await face.client.order_status(cloid=order.cloid)
        if why == "balance":  # refused whole (a post-only that would take is taken in, ended)
            assert status is None
        else:
            assert status is not None
            assert status.status is OrderStatus.CANCELED


async def test_refusals_before_the_venue_are_answered_at_once_and_send_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with face_client() as face:
        client = face.client
        assert client.rest.lane is not None
        await client.rest.lane.wait_idle(2)
        good = face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC)
        reduce_only = attrs.evolve(good, reduce_only=True)
        off_grid = attrs.evolve(good, sz=float(client.instrument(good.coin).size_increment) / 10)
        pool = client.rest.budget.pool("Spot")
        for order in (reduce_only, off_grid):
            spent = pool.remaining
            sent = client.send_place(order)
            assert isinstance(sent, Rejected)
            assert pool.remaining == spent  # nothing sent
            assert client.rest.lane.idle == 2
            assert [sent] == await client.place([order])
            assert await client.order_status(cloid=order.cloid) is None
        assert "reduce-only" in client.send_place(reduce_only).reason  # type: ignore[union-attr]


async def test_none_when_nothing_can_write_it_now(autojump_clock: trio.abc.Clock) -> None:
    async with face_client() as face:
        client = face.client
        lane = client.rest.lane
        assert lane is not None
        await lane.wait_idle(2)
        order = face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC)
        pool = client.rest.budget.pool("Spot")
        left = pool.remaining
        pool.remaining = 0  # the budget says to wait (the window open: it was spent in)
        assert pool.resets_at is not None
        assert not client.place_ready()
        assert client.send_place(order) is None
        pool.remaining = left
        assert client.place_ready()
        # Both connections busy with orders whose answers are not read yet: none is free.
        first = client.send_place(face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC))
        second = client.send_place(face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC))
        assert first is not None
        assert second is not None
        assert not client.place_ready()
        assert client.send_place(order) is None
        for pending in (first, second):
            assert isinstance(await pending.result(), Resting)  # type: ignore[union-attr]
        assert await client.order_status(cloid=order.cloid) is None
