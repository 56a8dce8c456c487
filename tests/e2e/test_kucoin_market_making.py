"""The market maker on the simulator's KuCoin face, in-process on virtual time, with the
shipped config.toml but for the venue: ``venue.kind = "kucoin"`` and KuCoin's symbols.

A spot account has balances, not positions. Its fills must not read as a drift from the venue
(the venue reports no position) nor as a liquidation (a position moved with no fill to explain
it): the balances the portfolio moves with each fill are reconciled with the venue's instead,
and they agree. So the market maker quotes, is filled, and keeps trading: the kill switch stays
armed and the mode NORMAL minutes after the first fill.
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm.app import Service
from tests.e2e.virtual import shipped_service, wait_for

SYMBOLS = ("BTC-USDT", "ETH-USDT")
KUCOIN = {
    "venue.kind": "kucoin",
    "feeds.coins": list(SYMBOLS),
    "strategy.symbols": list(SYMBOLS),
}
TRACKS = {  # (an array of tables: given as the TOML it is)
    "MM_SESSION__TRACKS": (
        '[{ name = "crypto", symbols = ["BTC-USDT", "ETH-USDT"], always_open = true }]'
    )
}
AFTER_FIRST_FILL_S = 120.0  # past autonomy's drift grace (10 s) and risk's liquidation window


def fills(service: Service) -> int:
    positions = service.trading.positions
    return sum(
        (p.fills_buy + p.fills_sell) for coin in SYMBOLS if (p := positions.get(coin)) is not None
    )


async def test_the_market_maker_keeps_trading_on_kucoin_spot(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run", KUCOIN, TRACKS) as service:
        await wait_for(lambda: fills(service) > 0, within=180)
        seen = service.monitor.readings
        await trio.sleep(AFTER_FIRST_FILL_S)
        assert fills(service) >= 10  # it kept quoting and being filled
        status = service.status()
        assert status["killswitch"]["tripped"] is False, status["killswitch"]
        assert status["mode"]["mode"] == "normal", status["mode"]
        assert service.monitor.drifting == {}
        # The balances were compared, and agree: the venue's, read after those fills, are the
        # portfolio's (which started from the venue's and moved with every fill).
        assert service.monitor.readings is not seen
        balances = service.portfolio.balances.snapshot()
        assert balances["USDT"] != 100_000.0  # fills moved it
        assert set(balances) >= {"BTC", "ETH", "USDT"}
