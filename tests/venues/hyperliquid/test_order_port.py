"""The Hyperliquid client as the venue port's order side, on the simulator over loopback.

What the port promises the executor, checked against the venue: its client order ids are the
venue's format and mm's own, its capability flags are what the venue honours, its failures are
the port's exceptions (which execution acts on without knowing the venue), and its dead-man's
switch arms at the venue.
"""

from __future__ import annotations

import re
import secrets
from functools import partial

import httpx
import pytest
import trio

from mm import clock
from mm.model import ModifyOrder, PlaceOrder, Rejected, Resting, Side, Tif
from mm.venues.base import (
    MalformedAnswer,
    OrderCapabilities,
    OrderClient,
    OrderFateUnknown,
    RateLimited,
    RequestTimeout,
    VenueClient,
    VenueError,
)
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.codec import CodecError
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.sim.faults import FaultConfig
from tests.venues.hyperliquid.harness import passive, setup

# The venue's cloid: a 128-bit hex string (the SDK's Cloid).
CLOID = re.compile(r"0x[0-9a-f]{32}")


def typed(client: HyperliquidClient) -> VenueClient:
    return client  # mypy checks that the client satisfies the port


def place(client: OrderClient, px: float, tif: Tif = Tif.GTC, side: Side = Side.BUY) -> PlaceOrder:
    return PlaceOrder("BTC", side, px, 0.001, tif, client.new_client_id())


async def test_client_ids_are_the_venues_format_and_mms_own() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, hl):
            client = typed(hl)
            made = [client.new_client_id() for _ in range(1000)]
            assert len(set(made)) == 1000
            assert all(CLOID.fullmatch(cloid) for cloid in made)
            assert all(client.is_own_client_id(cloid) for cloid in made)
            assert all(client.is_own_client_id(cloid.upper()) for cloid in made)
            # Another client's ids, and an order placed without one, are not mm's.
            assert not client.is_own_client_id("0x" + secrets.token_hex(16).replace("6d", "00"))
            assert not client.is_own_client_id(None)
            # The venue takes them as cloids: an order is found by its id.
            order = place(client, passive(venue, Side.BUY))
            (placed,) = await client.place([order])
            assert isinstance(placed, Resting)
            assert placed.cloid == order.cloid
            report = await client.order_status(cloid=order.cloid)
            assert report is not None
            assert report.cloid == order.cloid


async def test_the_capability_flags_are_what_the_venue_honours() -> None:
    with trio.fail_after(20):
        async with setup() as (venue, hl):
            client = typed(hl)
            caps = client.capabilities
            assert caps == OrderCapabilities(
                modify=True,
                max_batch=None,
                post_only=True,
                ioc=True,
                market_by_quote=False,
                test_orders=False,
            )
            mid = float(venue.mids()["BTC"])
            # modify: a resting order is amended in place and keeps its client id.
            order = place(client, passive(venue, Side.BUY))
            await client.place([order])
            moved = PlaceOrder("BTC", Side.BUY, order.px * 0.99, 0.001, Tif.GTC, order.cloid)
            (modified,) = await client.modify([ModifyOrder(moved)])
            assert isinstance(modified, Resting)
            (resting,) = await client.open_orders()
            assert resting.cloid == order.cloid
            assert resting.px == pytest.approx(moved.px, rel=1e-4)
            # post-only: rests when passive, refused (not filled) when it would take.
            passive_alo, crossing_alo = (
                place(client, passive(venue, Side.BUY), Tif.ALO),
                place(client, mid * 1.01, Tif.ALO),
            )
            rests, refused = await client.place([passive_alo, crossing_alo])
            assert isinstance(rests, Resting)
            assert isinstance(refused, Rejected)
            # IOC: never rests (a passive one is canceled by the venue, not left open).
            (ioc,) = await client.place([place(client, passive(venue, Side.BUY), Tif.IOC)])
            assert isinstance(ioc, Rejected)
            assert {o.cloid for o in await client.open_orders()} == {order.cloid, passive_alo.cloid}
            # No batch limit: a hundred orders in one request are answered one by one.
            px = passive(venue, Side.BUY, away=0.3)
            batch = [place(client, px * (1 - i * 1e-4)) for i in range(100)]
            results = await client.place(batch)
            assert len(results) == 100
            assert all(isinstance(result, Resting) for result in results)


async def test_a_rate_limit_is_the_ports_rate_limited() -> None:
    with trio.fail_after(15):
        async with setup(websocket=False) as (venue, client):
            assert venue.url is not None
            async with httpx.AsyncClient(base_url=venue.url) as control:
                await control.post("/sim/faults", json={"http_429": 1.0})
            with pytest.raises(RateLimited) as refused:
                await client.place([place(client, passive(venue, Side.BUY))])
            assert isinstance(refused.value, VenueError)
            assert "429" in str(refused.value)


async def test_a_lost_answer_is_the_ports_order_fate_unknown() -> None:
    with trio.fail_after(20):
        faults = FaultConfig(ws_drop_post_replies=1.0)
        async with setup(faults=faults, post_timeout_s=0.3) as (venue, client):
            order = place(client, passive(venue, Side.BUY))
            with pytest.raises(OrderFateUnknown) as caught:
                await client.place([order])
            assert caught.value.cloids == (order.cloid,)
            assert caught.value.lands_by_ms is not None
            assert caught.value.lands_by_ms > clock.wall_ms()


async def test_a_request_timeout_is_the_ports() -> None:
    # A venue that takes the connection and never answers.
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
            port = listener.socket.getsockname()[1]
            async with RestTransport(f"http://127.0.0.1:{port}", deadline_s=0.2) as rest:
                with pytest.raises(RequestTimeout):
                    await rest.info({"type": "meta"})
            nursery.cancel_scope.cancel()


def test_an_unreadable_answer_is_a_malformed_answer_not_a_refusal() -> None:
    # A refusal means the request did not act; an answer that does not parse says nothing.
    assert issubclass(CodecError, MalformedAnswer)
    assert not issubclass(CodecError, VenueError)
    assert not issubclass(MalformedAnswer, VenueError)


def test_a_batch_limit_is_at_least_one_order() -> None:
    flags = {"modify": True, "post_only": True, "ioc": True}
    flags |= {"market_by_quote": False, "test_orders": False}
    with pytest.raises(ValueError, match="max_batch"):
        OrderCapabilities(max_batch=0, **flags)
    assert OrderCapabilities(max_batch=1, **flags).max_batch == 1


async def test_the_dead_mans_switch_arms_at_the_venue() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, hl):
            switch = typed(hl).dead_mans_switch
            assert switch is not None
            venue.credit_volume(hl.account, 1_000_000)  # past the venue's volume gate
            assert await switch.traded_volume() == pytest.approx(1_000_000)
            at_ms = venue.now_ms() + 60_000
            await switch.schedule_cancel(at_ms)
            assert venue.engine.scheduled_time(hl.account) == at_ms
            await switch.schedule_cancel(None)
            assert venue.engine.scheduled_time(hl.account) is None
