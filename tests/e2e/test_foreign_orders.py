"""Orders mm did not place, at startup, end to end on the shipped config.toml on virtual time
(``tests/e2e/virtual.py``): with ``venue.cancel_foreign_orders = false`` (an account shared
with another client) the startup cancel-all cancels only mm's own orders (an earlier run's, by
mm's cloid prefix) and leaves the others, and so does the order audit after it; by default
(true) both go, as before. Either way mm logs and journals what it canceled and what it left.
Issue 14, item 7."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from loguru import logger

from mm import clock
from mm.app import Service
from mm.journal import DATABASE_NAME, read_events
from mm.model import OrderId, PlaceOrder, Side, Tif
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.wire import CLOID_PREFIX, NonceSource, is_own_cloid, new_cloid
from mm.venues.sim.config import SimConfig
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.venue import SimVenue
from tests.e2e.virtual import shipped_service, wait_for
from tests.ids import hl_oid

FOREIGN_CLOID = "0x" + "f0" * 16  # another program's cloid: not mm's prefix


@asynccontextmanager
async def venue_with_leftovers(key: str) -> AsyncIterator[tuple[SimVenue, dict[str, OrderId]]]:
    """A simulator (the shipped [sim] settings) on which the account of ``key`` already has
    three resting orders far from the market: one an earlier mm run left (mm's cloid), one
    another program placed (its own cloid) and one placed without a cloid (the web page)."""
    # The faucet funds the account, as the embedded venue funds the one mm trades for.
    sim = SimVenue(SimConfig(), fund_at_start=(L1Signer(key).address,))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        assert sim.url is not None
        async with RestTransport(sim.url) as rest:
            signer = L1Signer(key)
            client = HyperliquidClient(
                rest=rest,
                signer=signer,
                account=signer.address,
                mainnet=False,
                limiter=RateLimiter(),
                nonces=NonceSource(lambda: clock.wall_ms() - 60_000),  # behind mm's nonces
            )
            await client.metadata()
            mid = float(sim.mids()["BTC"])
            px = float(round(mid * 0.8))
            orders = {
                "own": PlaceOrder("BTC", Side.BUY, px, 0.001, Tif.GTC, new_cloid()),
                "foreign": PlaceOrder("BTC", Side.BUY, px - 1, 0.001, Tif.GTC, FOREIGN_CLOID),
            }
            results = await client.place(list(orders.values()))
            oids: dict[str, OrderId] = {
                name: getattr(r, "oid", OrderId(""))
                for name, r in zip(orders, results, strict=True)
            }
        # The web page's order carries no cloid: the engine's own book takes it as placed.
        placed = sim.engine.place(
            signer.address.lower(),
            OrderRequest(0, True, str(int(px - 2)), "0.001", reduce_only=False, tif="Gtc"),
            sim.now_ms(),
        )
        no_cloid = getattr(placed, "oid", 0)
        sim.publish_events()
        assert all(oids.values()), oids
        assert no_cloid, placed
        oids["no_cloid"] = hl_oid(no_cloid)  # the engine's own number: as mm's adapter reads it
        try:
            yield sim, oids
        finally:
            nursery.cancel_scope.cancel()


def resting_oids(sim: SimVenue, account: str) -> set[OrderId]:
    return {hl_oid(order.oid) for order in sim.engine.open_orders(account)}


def journal(service: Service, kind: str) -> list[dict[str, Any]]:
    return [entry.data for entry in read_events(service.config.run_dir / DATABASE_NAME, kind)]


@pytest.mark.parametrize("cancel_foreign", [False, True], ids=["leave-foreign", "default"])
async def test_startup_cancels_only_its_own_orders_when_told_to_leave_the_others(
    tmp_path: Path, autojump_clock: trio.abc.Clock, cancel_foreign: bool
) -> None:
    key = "0x" + secrets.token_hex(32)
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="INFO")
    try:
        async with venue_with_leftovers(key) as (sim, oids):
            overrides: dict[str, Any] = {"venue.url": sim.url}
            if not cancel_foreign:
                overrides["venue.cancel_foreign_orders"] = False
            async with shipped_service(
                tmp_path / "run", overrides, secrets={"MM_HL_PRIVATE_KEY": key}
            ) as service:
                account = service.adapter.account
                await wait_for(lambda: service.adapter.startup is not None, within=60)
                startup = service.adapter.startup
                assert startup is not None
                resting = resting_oids(sim, account)
                assert oids["own"] not in resting  # an earlier run's order: canceled
                # Two audits later (every 10 s, 5 s grace) the others are still as startup
                # left them: the audit leaves what startup left.
                await trio.sleep(30.0)
                resting = resting_oids(sim, account)
                listed = service.status()["order_audit"]["foreign_orders"]
                foreign_listed = {entry["oid"] for entry in listed}
        startup_entries = journal(service, "startup")
        orphan_entries = journal(service, "orphan_order")
    finally:
        logger.remove(sink)
    canceled = {o["oid"] for o in startup_entries[-1]["canceled_orders"]}
    left = {o["oid"] for o in startup_entries[-1]["foreign_left"]}
    others = {oids["foreign"], oids["no_cloid"]}
    if cancel_foreign:
        assert canceled == {oids["own"], *others}
        assert left == set()
        assert not others & resting
        assert startup.canceled == 3
    else:
        assert canceled == {oids["own"]}
        assert left == others
        assert others <= resting  # still at the venue, after startup and after the audits
        assert foreign_listed == others  # shown in mm status (foreign_orders)
        warned = {e["oid"] for e in orphan_entries if e["action"] == "warned"}
        assert warned == others
        assert not any(e["action"] == "canceled" for e in orphan_entries)
        assert {o.oid for o in startup.foreign_orders} == others
        assert any("left 2 order(s) of other clients alone" in line for line in warnings)
    assert startup_entries[-1]["canceled"] == len(canceled)
    own = next(o for o in startup_entries[-1]["canceled_orders"] if o["oid"] == oids["own"])
    assert own["cloid"].startswith(CLOID_PREFIX)
    assert is_own_cloid(own["cloid"])
    assert not is_own_cloid(FOREIGN_CLOID)
    assert any("startup: canceled" in line and f"oid {oids['own']}" in line for line in warnings)
