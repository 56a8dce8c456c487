"""The risk system end to end on the simulator: forced liquidation, stalled feed."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from mm.app import Service
from mm.config import load_config, resolve_secrets
from tests.conftest import eventually
from tests.e2e.fast import FAST


def service_for(write_config: Any, **sections: dict[str, Any]) -> Service:
    config = load_config(write_config(**FAST, **sections), {})
    return Service(config, resolve_secrets(config, {}))


def tripped_for(service: Service) -> str | None:
    original = service.killswitch.switch.original
    return original.reason.value if original else None


async def test_a_forced_liquidation_trips_the_kill_switch(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(90):
            assert service.venue is not None
            assert service.venue.url is not None
            engine, account = service.venue.engine, service.adapter.account
            await eventually(lambda: bool(engine.open_orders(account)), within=45)
            async with httpx.AsyncClient(base_url=service.venue.url) as sim:
                body = {"user": account, "coin": "BTC", "szi": "0.02"}  # ~4x the max position
                assert (await sim.post("/sim/liquidate", json=body)).status_code == 200
            await eventually(lambda: tripped_for(service) is not None, within=20)
            assert tripped_for(service) == "liquidation_detected"
            await eventually(lambda: not engine.open_orders(account), within=2)
            service.request_stop("test finished")


async def test_pretrade_checks_refuse_orders_before_the_venue(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    # Every quote is $50: a $20 notional cap refuses them all, and the venue never sees one.
    service = service_for(write_config, pretrade={"max_order_notional_usd": 20.0})
    registry = service.registry

    def refused() -> float:
        labels = {"check": "max_notional"}
        return registry.get_sample_value("mm_pretrade_rejections_total", labels) or 0.0

    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(60):
            assert service.venue is not None
            engine, account = service.venue.engine, service.adapter.account
            await eventually(lambda: refused() >= 4, within=45)
            assert engine.open_orders(account) == []
            assert engine.history.get(account) is None  # no order of ours ever reached it
            service.request_stop("test finished")


async def test_a_cascade_trips_the_kill_switch_and_every_order_goes(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(90):
            assert service.venue is not None
            assert service.venue.url is not None
            engine, account = service.venue.engine, service.adapter.account
            await eventually(lambda: bool(engine.open_orders(account)), within=45)
            async with httpx.AsyncClient(base_url=service.venue.url) as sim:
                # A liquidation cascade (forced one-sided flow, the bids thinning) at about
                # 7%/s: under the price-velocity kill (15%/s), so the cascade severity trips it.
                cascade = {"coin": "BTC", "move": -0.2, "duration_s": 3.0}
                assert (await sim.post("/sim/cascade", json=cascade)).status_code == 200
            await eventually(lambda: tripped_for(service) is not None, within=15)
            tripped_at = trio.current_time()
            assert tripped_for(service) == "cascade"
            await eventually(lambda: not engine.open_orders(account), within=1.0)
            assert trio.current_time() - tripped_at <= 1.0
            # Feeds and admin stay up while trading is stopped.
            async with httpx.AsyncClient(base_url=str(service.admin_url)) as admin:
                assert (await admin.get("/healthz")).status_code == 200
            version = service.adapter.bus.version("ETH")
            await service.adapter.bus.wait_newer("ETH", version)
            service.request_stop("test finished")
