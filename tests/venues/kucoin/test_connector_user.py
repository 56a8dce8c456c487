"""The KuCoin connector's user connection as it starts: it reads the account's fee rates
first (the user stream charges each match the account's rate), and a 429 on that read, as
the user feed restarts among other readers of the venue, is waited out as every step of
startup's is, not a crash of the feed (campaign seeds 58 and 72 of config.triarb.toml)."""

from __future__ import annotations

import trio
import trio.testing

from mm.connection import ConnectionConfig
from mm.execution.startup import StartupWaits
from mm.venues.kucoin.connector import KucoinConnector
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue


async def test_a_429_on_the_fee_rates_as_the_user_connection_starts_is_waited_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = KucoinSimVenue(seed=7)
    connector = KucoinConnector(
        credentials=DEV_KEY, symbols=("BTC-USDT",), rest_deadline_s=5.0, access_recheck_s=60.0
    )
    waits = StartupWaits(connector.limiter)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        venue.faults.update({"http_429": 1.0})  # every request refused for 5 s

        async def lift() -> None:
            await trio.sleep(5.0)
            venue.faults.update({"http_429": 0.0})

        nursery.start_soon(lift)
        started = trio.current_time()
        user = await nursery.start(
            connector.run_user, url, ConnectionConfig(), lambda transition: None, waits
        )
        assert trio.current_time() - started >= 5.0
        assert waits.rate_limited >= 1
        assert venue.faults.too_many >= 1
        assert user.unchecked is not None
        nursery.cancel_scope.cancel()
