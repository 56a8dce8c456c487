"""The multi-leg executor on KuCoin: the service built from the shipped ``config.triarb.toml``
(only the run directory, the admin port and the log format overridden, never a threshold) on
the embedded KuCoin face, on virtual time.

A group buys ETH with BTC (ETH-BTC, IOC through the book), then sells on ETH-USDT, through
the book, the ETH the first leg's fill bought (sized from it), through ``service.legs.execute``,
the pre-trade gate and the order router, as every multi-leg command goes (the shipped risk
limits keep it small: ~150 USD a leg, the face's best level holds ~2,000 USD, so each fills
whole):

* sent once the service has run a little while, the group ends done, the second leg sized
  from the first's fill, and the positions kept from fills hold both legs' fills;
* sent the moment the service is ready (the face answers at once on virtual time, so the
  first leg fills in the very millisecond the startup read the account), the group ends done
  too: a fill of an order placed after that read is no part of what the read found;
* a first leg the venue refuses (the face's refusal with KuCoin's 200004) stops the group in
  the venue's words, and no second order reaches the face.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from mm.app import Service
from mm.execution.commands import GroupState, Leg, LegGroup, MultiLeg
from mm.model import Side
from mm.venues.sim.kucoin.server import DEV_USER, KucoinSimVenue
from mm.venues.sim.kucoin.spot import SpotOrder
from tests.e2e.virtual import SHIPPED_TRIARB_CONFIG, shipped_service, sim_client, wait_for

ETH_PLANNED = 0.05  # each leg's planned ETH, ~150 USD: far under the shipped limits
THROUGH = 0.001  # how far past the opposite best price each leg goes (within the collar)


def ready(service: Service) -> bool:
    """Every book the legs are priced and checked from is in and fresh, and nothing stops
    trading."""
    adapter = service.adapter
    booked = all(adapter.bus.latest(c) is not None for c in ("BTC-USDT", "ETH-USDT", "ETH-BTC"))
    return (
        booked
        and adapter.client is not None
        and not adapter.stale_coins()
        and service.not_trading() == []
    )


def face(service: Service) -> KucoinSimVenue:
    assert service.kucoin_venue is not None, "config.triarb.toml runs the embedded face"
    return service.kucoin_venue


def dev_orders(service: Service) -> list[SpotOrder]:
    """Every order the dev account placed at the face, in the order the face took them."""
    orders = face(service).exchange.orders.values()
    return sorted((o for o in orders if o.user == DEV_USER), key=lambda o: o.number)


def round_trip(service: Service) -> MultiLeg:
    """Buy ETH with BTC through the book, then sell what it bought for USDT through the
    book."""
    adapter = service.adapter
    client = adapter.client
    assert client is not None
    eth_btc, eth_usdt = adapter.bus.latest("ETH-BTC"), adapter.bus.latest("ETH-USDT")
    assert eth_btc is not None
    assert eth_btc.best_ask is not None
    assert eth_usdt is not None
    assert eth_usdt.best_bid is not None
    buy_px = client.instrument("ETH-BTC").round_price(eth_btc.best_ask * (1 + THROUGH), up=True)
    sell_px = client.instrument("ETH-USDT").round_price(eth_usdt.best_bid * (1 - THROUGH), up=False)
    return MultiLeg(
        "eth-round-trip",
        (
            Leg("ETH-BTC", Side.BUY, ETH_PLANNED, buy_px),
            Leg("ETH-USDT", Side.SELL, ETH_PLANNED, sell_px),
        ),
    )


async def execute(service: Service, command: MultiLeg) -> LegGroup:
    """``command`` through the service's executor, its pre-trade gate and the shipped leg
    timeout."""
    with trio.fail_after(60):
        (group,) = await service.legs.execute(
            command,
            allow=service.trading.pretrade.refusal,
            leg_timeout_s=service.config.executor.leg_timeout_s,
        )
    return group


def assert_done_from_the_first_fill(service: Service, group: LegGroup) -> None:
    assert group.state is GroupState.DONE, group.reason
    first, second = dev_orders(service)
    assert (first.request.symbol, second.request.symbol) == ("ETH-BTC", "ETH-USDT")
    assert (str(first.end), str(second.end)) == ("filled", "filled")
    bought, sold = float(first.filled), float(second.filled)
    assert group.filled == [bought, sold]
    # The second leg was sized from the first's fill (the fraction of its plan that filled).
    assert group.sent[1] == pytest.approx(min(bought / ETH_PLANNED, 1.0) * ETH_PLANNED)
    assert second.size is not None
    assert float(second.size) == pytest.approx(group.sent[1])
    # The positions kept from fills hold both legs' (neither was taken for part of the
    # startup's account read).
    positions = service.portfolio.positions
    assert positions.position("ETH-BTC") == pytest.approx(bought)
    assert positions.position("ETH-USDT") == pytest.approx(-sold)


async def test_a_two_leg_group_sizes_its_second_leg_from_the_first_legs_fill(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path, config_file=SHIPPED_TRIARB_CONFIG) as service:
        await wait_for(lambda: ready(service), within=30.0)
        await trio.sleep(1.0)  # the service has run a while: the startup is in the past
        group = await execute(service, round_trip(service))
        assert_done_from_the_first_fill(service, group)


async def test_a_group_sent_the_moment_the_service_is_ready_is_not_lost_to_the_startup(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path, config_file=SHIPPED_TRIARB_CONFIG) as service:
        await wait_for(lambda: ready(service), within=30.0)
        group = await execute(service, round_trip(service))
        assert_done_from_the_first_fill(service, group)


async def test_a_first_leg_the_venue_refuses_stops_the_group_in_its_words(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path, config_file=SHIPPED_TRIARB_CONFIG) as service:
        await wait_for(lambda: ready(service), within=30.0)
        async with sim_client(service) as sim:
            reply = await sim.post(
                "/sim/faults",
                json={"refuse_orders": 1, "refuse_symbol": "ETH-BTC", "refuse_code": "200004"},
            )
            assert reply.status_code == 200, reply.text
        group = await execute(service, round_trip(service))
        assert group.state is GroupState.STOPPED
        assert group.reason is not None
        assert group.reason.startswith("leg 0 (buy ETH-BTC) refused: ")
        assert "Balance insufficient" in group.reason
        assert face(service).faults.refused["ETH-BTC"] == 1
        assert dev_orders(service) == []  # the refused one placed nothing; no second leg
        assert group.sent[1] == 0.0
