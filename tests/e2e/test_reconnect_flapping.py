"""Reconnect flapping counts venue disconnects (issue 13, item 7), with the shipped config.toml
on virtual time.

One ``POST /sim/disconnect`` drops the market and the user feeds together. That used to count
as two reconnects, so three disconnects in five minutes reached the shipped flapping limit of
five and latched REDUCE_ONLY. Now three stay NORMAL, and five, the shipped limit, reduce.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from mm.app import Service
from mm.ops.autonomy import Mode, Reason
from mm.venues.hyperliquid.ws import WsConnection
from tests.e2e.virtual import shipped_service, sim_client, wait_for
from tests.hyperliquid_adapter import hyperliquid


def feed_sockets(service: Service) -> tuple[WsConnection, WsConnection]:
    """The market feed's socket and the user feed's (the order client's)."""
    market, client = hyperliquid(service).market_ws, hyperliquid(service).client
    assert market is not None
    assert client is not None
    assert client.ws is not None
    return market, client.ws


def connects(service: Service) -> tuple[int, int]:
    market, user = feed_sockets(service)
    return market.health.connects, user.health.connects


def both_back(service: Service, before: tuple[int, int]) -> bool:
    """Both sockets reconnected since ``before`` (a new connect each) and up."""
    market, user = feed_sockets(service)
    now = connects(service)
    return (
        market.connected and user.connected and all(n > b for n, b in zip(now, before, strict=True))
    )


async def drop_the_venue(service: Service, sim: httpx.AsyncClient) -> None:
    """One venue disconnect: every socket closed at once; back when both feeds reconnected."""
    before = connects(service)
    reply = await sim.post("/sim/disconnect")
    assert reply.json()["closed"] == 2
    await wait_for(lambda: both_back(service, before), within=30.0)


async def test_three_venue_disconnects_stay_normal_and_five_reduce(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service, sim_client(service) as sim:
        config = service.config.autonomy
        assert config.flapping_reconnects == 5  # the shipped limit, in flapping_window_s
        await wait_for(service.adapter.healthy, within=60.0)
        started = trio.current_time()
        for _ in range(3):
            await drop_the_venue(service, sim)
        # Counted once each, and nothing reduces, while all three are still in the window.
        await trio.sleep(2 * config.check_every_s)
        assert service.monitor.readings.reconnects == 3
        assert service.coordinator.mode is Mode.NORMAL
        assert service.coordinator.status()["reason"] is None

        for _ in range(2):
            await drop_the_venue(service, sim)
        assert trio.current_time() - started < config.flapping_window_s
        await wait_for(lambda: service.coordinator.mode is Mode.REDUCE_ONLY, within=5.0)
        assert service.coordinator.autonomy.reason is Reason.FEED_RECONNECT_FLAPPING
        assert service.monitor.readings.reconnects == 5
