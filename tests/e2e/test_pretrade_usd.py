"""The pre-trade notional limit in USD on a pair quoted in BTC, end to end: the service built
from the shipped ``config.triarb.toml`` (only the run directory, the admin port and the log
format overridden, never a threshold) on the embedded KuCoin face, on virtual time.

Two IOC buys of ETH-BTC go as every order of the service goes, through its pre-trade gate
and then its order router, sized from the live books against the shipped
``pretrade.max_order_notional_usd``: one worth 1.2x the limit in USD (its notional in BTC, a
fraction of one, is far under the limit read as USD) is refused by ``max_notional`` and never
reaches the face; one worth half the limit passes, reaches the face and fills.
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm.app import Service
from mm.model import PlaceOrder, Side, Tif
from mm.venues.sim.kucoin.server import DEV_USER
from tests.e2e.virtual import SHIPPED_TRIARB_CONFIG, shipped_service, wait_for

SHIPPED_LIMIT_USD = 10_000.0  # config.toml's [pretrade] max_order_notional_usd


def fresh(service: Service) -> bool:
    """Both books the orders are sized from are in, and none is stale."""
    adapter = service.adapter
    booked = all(adapter.bus.latest(coin) is not None for coin in ("BTC-USDT", "ETH-BTC"))
    return booked and adapter.client is not None and not adapter.stale_coins()


async def buy_eth_btc(service: Service, usd: float) -> tuple[PlaceOrder, str | None]:
    """Buy ``usd`` worth of ETH with BTC as an IOC, as every order of the service goes: the
    pre-trade gate, then (when it passes) the order router. The order, and the gate's refusal
    (None: it passed and was sent)."""
    adapter = service.adapter
    client, router = adapter.client, adapter.router
    assert client is not None
    assert router is not None
    btc_usdt, eth_btc = adapter.bus.latest("BTC-USDT"), adapter.bus.latest("ETH-BTC")
    assert btc_usdt is not None
    assert btc_usdt.mid is not None
    assert eth_btc is not None
    assert eth_btc.best_ask is not None
    instrument = client.instrument("ETH-BTC")
    px = instrument.round_price(eth_btc.best_ask * 1.001, up=True)  # marketable, in the collar
    sz = instrument.round_size(usd / (px * btc_usdt.mid), up=False)
    order = PlaceOrder("ETH-BTC", Side.BUY, px, sz, Tif.IOC, router.new_client_id())
    refusal = service.trading.pretrade.refusal(order)
    if refusal is None:
        await router.place([order])
    return order, refusal


async def test_a_btc_quoted_order_over_the_usd_limit_is_refused_and_one_under_it_fills(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path, config_file=SHIPPED_TRIARB_CONFIG) as service:
        limit = service.config.pretrade.max_order_notional_usd
        assert limit == SHIPPED_LIMIT_USD  # the shipped limit, as it ships
        await wait_for(lambda: fresh(service) and service.not_trading() == [], within=30.0)
        venue = service.kucoin_venue
        assert venue is not None, "config.triarb.toml runs the embedded face"

        def at_face(order: PlaceOrder) -> list[str]:
            """How the face's orders with ``order``'s client id ended (None: still open)."""
            return [
                str(taken.end)
                for taken in venue.exchange.orders.values()
                if taken.user == DEV_USER and taken.request.client_oid == order.cloid
            ]

        large, refusal = await buy_eth_btc(service, 1.2 * limit)
        assert large.px * large.sz < 1.0  # its notional in BTC: read as USD, far under the limit
        assert refusal is not None
        assert refusal.startswith("pre-trade check max_notional: notional 1")
        assert " BTC at " in refusal

        small, refusal = await buy_eth_btc(service, 0.5 * limit)
        assert refusal is None
        await wait_for(lambda: at_face(small) == ["filled"], within=5.0)
        assert at_face(large) == []  # never sent
