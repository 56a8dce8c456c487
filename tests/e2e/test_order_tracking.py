"""Orders mm stops tracking, end to end on the simulator with the shipped config.toml, on
virtual time (``tests/e2e/virtual.py``): orphans placed on mm's account by another client are
canceled (or, with ``orphans = "warn"``, left and reported); a ghost (an order mm believes live
that the venue canceled without mm hearing of it) and a stuck order (its request's answer lost
and its caller gone) are settled by asking the venue. Issue 12, section 4."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from mm import clock
from mm.app import Service
from mm.execution.lifecycle import OrderState, TrackedOrder
from mm.journal import DATABASE_NAME, read_events
from mm.model import CancelOrder, Filled, OrderId, PlaceOrder, Resting, Side, Tif
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.wire import NonceSource, new_cloid
from tests.e2e.virtual import shipped_service, sim_client, wait_for
from tests.hyperliquid_adapter import hyperliquid
from tests.ids import hl_oid

S = OrderState
NEW_KEY = "0x" + secrets.token_hex(32)


@asynccontextmanager
async def second_client(service: Service, key: str) -> AsyncIterator[HyperliquidClient]:
    """Another client of mm's account, as a second program signing with the same key would
    be: its own connection, nonces and rate limiter (its nonces run an hour ahead of mm's, so
    two actions in one virtual millisecond never share one)."""
    assert service.venue_url is not None
    async with RestTransport(service.venue_url) as rest:
        client = HyperliquidClient(
            rest=rest,
            signer=L1Signer(key),
            account=service.adapter.account,
            mainnet=False,
            limiter=RateLimiter(),
            nonces=NonceSource(lambda: clock.wall_ms() + 3_600_000),
        )
        await client.metadata()
        yield client


async def in_sync(service: Service) -> None:
    """Started (the startup sequence has canceled what was open) and the user stream in sync."""

    def ready() -> bool:
        adapter = service.adapter
        stream = adapter.user_stream
        started = adapter.startup is not None and adapter.client is not None
        return started and stream is not None and stream.synced.is_set()

    await wait_for(ready, within=30)


def venue_oids(service: Service) -> set[OrderId]:
    assert service.venue is not None
    engine = service.venue.engine
    return {hl_oid(order.oid) for order in engine.open_orders(service.adapter.account)}


def journal(service: Service, kind: str) -> list[dict[str, Any]]:
    return [entry.data for entry in read_events(service.config.run_dir / DATABASE_NAME, kind)]


def sample(service: Service, name: str, **labels: str) -> float:
    return service.registry.get_sample_value(name, labels) or 0.0


async def set_faults(sim: httpx.AsyncClient, **faults: Any) -> None:
    (await sim.post("/sim/faults", json=faults)).raise_for_status()


def far_bid(service: Service, coin: str = "BTC") -> float:
    """A bid 10% under the market (it will not fill), at a price the venue accepts."""
    assert service.venue is not None
    mark = service.venue.engine.mark(service.venue.engine.by_name[coin].index)
    assert mark is not None
    return float(round(mark * 0.9))


async def place_foreign(service: Service, other: HyperliquidClient) -> OrderId:
    order = PlaceOrder("BTC", Side.BUY, far_bid(service), 0.001, Tif.ALO, new_cloid())
    (result,) = await other.place([order])
    assert isinstance(result, Resting | Filled), result
    return result.oid


async def test_an_order_another_client_placed_is_canceled_counted_and_journaled(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    secrets_ = {"MM_HL_PRIVATE_KEY": NEW_KEY}
    async with shipped_service(tmp_path / "run", secrets=secrets_) as service:
        audit = service.config.executor.audit
        assert audit.orphans == "cancel"  # the shipped policy
        await in_sync(service)
        async with second_client(service, NEW_KEY) as other:
            oid = await place_foreign(service, other)
            placed = trio.current_time()
            assert oid in venue_oids(service)
            await trio.sleep(audit.grace_s - 0.5)
            assert oid in venue_oids(service)  # within the grace it may be an order on its way
            await wait_for(lambda: oid not in venue_oids(service), within=audit.every_s + 1)
            assert trio.current_time() - placed <= audit.every_s + audit.grace_s + 0.5
            await wait_for(lambda: bool(journal(service, "orphan_order")), within=5)
            assert not service.killswitch.switch.tripped
        (entry,) = journal(service, "orphan_order")  # mm's own orders were never taken for it
        assert (entry["oid"], entry["action"], entry["coin"]) == (oid, "canceled", "BTC")
        assert sample(service, "mm_orders_orphaned_total", action="canceled") == 1
        status = service.order_auditor.status()
        assert (status["orphans_canceled"], status["foreign_orders"]) == (1, [])


async def test_with_warn_another_clients_order_stays_and_is_reported(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    secrets_ = {"MM_HL_PRIVATE_KEY": NEW_KEY}
    overrides = {"executor.audit.orphans": "warn"}
    async with shipped_service(tmp_path / "run", overrides, secrets_) as service:
        audit = service.config.executor.audit
        await in_sync(service)
        async with second_client(service, NEW_KEY) as other:
            oid = await place_foreign(service, other)

            def reported() -> bool:
                shown = service.order_auditor.status()["foreign_orders"]
                return [order["oid"] for order in shown] == [oid]

            await wait_for(reported, within=audit.every_s + audit.grace_s + 0.5)
            assert sample(service, "mm_orders_foreign") == 1
            await trio.sleep(2 * audit.every_s)  # more audits: left alone, warned about once
            assert oid in venue_oids(service)
            assert reported()
            assert sample(service, "mm_orders_orphaned_total", action="warned") == 1
            assert sample(service, "mm_orders_orphaned_total", action="canceled") == 0
            (entry,) = journal(service, "orphan_order")
            assert (entry["oid"], entry["action"]) == (oid, "warned")
            (shown,) = service.order_auditor.status()["foreign_orders"]
            assert (shown["coin"], shown["side"], shown["sz"]) == ("BTC", "buy", 0.001)
            (canceled,) = await other.cancel([CancelOrder("BTC", oid=oid)])
            assert canceled is None
            await wait_for(lambda: not reported(), within=audit.every_s + 0.5)
            assert service.order_auditor.status()["foreign_orders"] == []
            assert sample(service, "mm_orders_foreign") == 0
            assert not service.killswitch.switch.tripped


def working(service: Service, coin: str = "BTC") -> list[TrackedOrder]:
    return [
        order
        for order in service.adapter.dispatcher.registry.live()
        if order.coin == coin and order.state is S.OPEN and order.oid is not None
    ]


async def test_a_ghost_is_settled_to_what_the_venue_says(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    secrets_ = {"MM_HL_PRIVATE_KEY": NEW_KEY}
    async with (
        shipped_service(tmp_path / "run", secrets=secrets_) as service,
        sim_client(service) as sim,
    ):
        audit = service.config.executor.audit
        await in_sync(service)
        await wait_for(lambda: bool(working(service)), within=60)  # mm quotes BTC
        client = hyperliquid(service).client
        assert client is not None
        assert client.ws is not None
        assert client.ws.connected
        async with second_client(service, NEW_KEY) as other:
            # The venue cancels one of mm's quotes and the report of it is lost.
            ghost = None
            with trio.fail_after(30):
                while ghost is None:  # a quote mm moved meanwhile cannot be canceled: the next
                    await wait_for(lambda: bool(working(service)), within=5)
                    candidate = working(service)[0]
                    assert candidate.oid is not None
                    await set_faults(sim, ws_drop=1.0)
                    (result,) = await other.cancel([CancelOrder("BTC", oid=candidate.oid)])
                    ghost = candidate if result is None else None
                    if ghost is None:  # books flow again while the next candidate is found
                        await set_faults(sim, ws_drop=0.0)
            # A query on mm's user socket: its answer comes after every frame queued before it,
            # so the cancel's report has been through the fault (dropped) once it is here.
            await client.open_orders()
            await set_faults(sim, ws_drop=0.0)
        gone = trio.current_time()
        assert ghost.oid not in venue_oids(service)
        assert not ghost.is_terminal  # mm believes it live
        await wait_for(lambda: ghost.is_terminal, within=2 * audit.every_s + audit.grace_s)
        assert ghost.reason == "canceled"  # the venue's word, asked for
        assert ghost.state is S.CANCELED
        assert trio.current_time() - gone <= 2 * audit.every_s + audit.grace_s
        await wait_for(lambda: bool(journal(service, "ghost_order")), within=5)
        entries = [e for e in journal(service, "ghost_order") if e["cloid"] == ghost.cloid]
        assert len(entries) == 1  # asked once (then applied, or once its request was answered)
        assert entries[0]["venue_status"] == "canceled"
        assert sample(service, "mm_orders_ghost_resolved_total", state="canceled") >= 1
        assert not service.killswitch.switch.tripped


async def test_a_stuck_order_is_settled_by_asking_the_venue_not_left_pending(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    secrets_ = {"MM_HL_PRIVATE_KEY": NEW_KEY}
    async with (
        shipped_service(tmp_path / "run", secrets=secrets_) as service,
        sim_client(service) as sim,
    ):
        audit = service.config.executor.audit
        await in_sync(service)
        router, client = service.adapter.router, hyperliquid(service).client
        assert router is not None
        assert client is not None
        assert client.ws is not None
        assert client.ws.connected
        assert service.venue is not None
        engine, account = service.venue.engine, service.adapter.account
        order = PlaceOrder("BTC", Side.BUY, far_bid(service), 0.001, Tif.ALO, new_cloid())

        def at_venue() -> list[OrderId]:
            return [hl_oid(o.oid) for o in engine.open_orders(account) if o.cloid == order.cloid]

        # The answer and the report of a place are lost, and the caller goes away meanwhile
        # (a slot cancelled mid-request: by a stop, a kill or a restart of its subtree).
        await set_faults(sim, ws_drop_post_replies=1.0, ws_drop=1.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.place, [order])
            await wait_for(lambda: bool(at_venue()), within=5)
            nursery.cancel_scope.cancel()
        (placed,) = at_venue()
        await set_faults(sim, ws_drop_post_replies=0.0)
        await client.open_orders()  # on mm's user socket: after the place's lost report
        await set_faults(sim, ws_drop=0.0)
        stuck = service.adapter.dispatcher.order(order.cloid)
        assert stuck is not None
        assert stuck.state is S.PENDING_NEW
        assert order.cloid not in service.adapter.dispatcher.awaited()
        left = trio.current_time()

        def settled() -> bool:
            return any(e["cloid"] == order.cloid for e in journal(service, "stuck_order"))

        await wait_for(settled, within=audit.stuck_after_s + audit.every_s + 1)
        assert trio.current_time() - left <= audit.stuck_after_s + audit.every_s + 1
        (entry,) = [e for e in journal(service, "stuck_order") if e["cloid"] == order.cloid]
        assert (entry["before"], entry["after"], entry["venue_status"]) == (
            "pending_new",
            "open",
            "open",
        )
        assert stuck.oid == placed  # the order the venue has: settled by asking, not re-sent
        assert at_venue() in ([], [placed])  # still resting, or since canceled as unwanted
        assert sample(service, "mm_orders_stuck_resolved_total", state="open") == 1
        assert not service.killswitch.switch.tripped
