"""A market maker whose pairs cannot be valued in dollars does not trade, end to end: the
shipped config.toml on the embedded KuCoin face, on virtual time, quoting ETH-BTC alone.

Every amount of that book is in BTC, and nothing traded says what a BTC is worth in dollars.
The service's limits are in USD (``pretrade.max_order_notional_usd``, the strategy's
``max_position_usd``): valuing BTC at 1 (the only currency that is only ever a quote, taken
for the dollar before) let an order worth tens of thousands of dollars pass as a fraction of
one. Before, the market maker sized its quotes so (sells of about 1,000 ETH, worth some three
million dollars, the face refusing them for the balance). The strategy task now refuses to
start, saying which key and why, and no order is sent.
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm.app import Service
from mm.venues.sim.kucoin.server import DEV_USER
from tests.e2e.virtual import shipped_service, wait_for

KUCOIN_ETH_BTC = {
    "venue.kind": "kucoin",
    "feeds.coins": ["ETH-BTC"],
    "strategy.symbols": ["ETH-BTC"],
}
TRACKS = {"MM_SESSION__TRACKS": '[{ name = "crypto", symbols = ["ETH-BTC"], always_open = true }]'}


WHY = (
    "strategy.symbols: the pairs traded value every currency in BTC, which is not a dollar "
    "(USD, USDC, USDT): trade a pair of BTC against one, so that the limits in USD can be applied"
)


def our_orders(service: Service) -> int:
    """The orders the service sent to the face (its other users are the face's own makers)."""
    face = service.kucoin_venue
    assert face is not None
    return sum(1 for taken in face.exchange.orders.values() if taken.user == DEV_USER)


async def test_pairs_valued_in_btc_alone_never_quote(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run", KUCOIN_ETH_BTC, TRACKS) as service:
        # The strategy task refuses to start, each restart again, until the supervisor gives
        # up on the trading subtree: the kill switch trips with the reason, nothing is sent.
        await wait_for(lambda: service.status()["killswitch"]["tripped"], within=120)
        killswitch = service.status()["killswitch"]
        assert killswitch["reason"] == "escalation"
        assert WHY in killswitch["values"]["error"]
        await trio.sleep(60)  # and it stays so
        assert len(service.adapter.dispatcher.registry) == 0  # no order was ever sent
        assert our_orders(service) == 0
        assert service.trading.portfolio.currency_mark("BTC", {"ETH-BTC": 0.05}) is None
