"""Requests the limiter did not see (issue 14, item 6), with the shipped config.toml on virtual
time.

The user stream read the venue (its history's ``userFills``, a resync's ``frontendOpenOrders``,
``clearinghouseState`` and paged ``userFillsByTime``) straight over REST, outside the rate
limiter, and the venue's weight per 20 items listed was charged nowhere: a catch-up after a
restart spent the IP budget behind the limiter's back, and a 429 met there did not slow it.
Every request now goes through the limiter at its true weight (the simulator charges the
per-item weight too), and a 429 on any path backs it off.
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm.app import Service
from mm.venues.sim.engine import Filled, OrderRequest
from mm.venues.sim.venue import SimVenue
from tests.e2e.outside import outside_venue
from tests.e2e.virtual import resting_sides, shipped_service, venue, wait_for
from tests.hyperliquid_adapter import hyperliquid

IP = "127.0.0.1"  # every request of the service, to the simulator on loopback
MINUTE = 60.0
MISSED = 10_000  # the most fills userFillsByTime reaches: five full pages


def resting(service: Service, sim: SimVenue) -> bool:
    """Some order of the service rests at the venue (one side only at the inventory limit)."""
    return bool(sim.engine.open_orders(service.adapter.account))


def quoting(service: Service, sim: SimVenue | None = None) -> bool:
    """Both sides of every coin rest at the venue (``sim``: the one the service trades on,
    when it is not the embedded one)."""
    if sim is None:
        sides = resting_sides(service)
    else:
        sides = {}
        for order in sim.engine.open_orders(service.adapter.account):
            sides.setdefault(sim.specs[order.asset].name, set()).add("B" if order.is_buy else "A")
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


async def trade_while_away(sim: SimVenue, user: str, count: int) -> None:
    """``count`` fills of ``user`` while mm is stopped (another client of the account): small
    IOCs taking BTC's best level, buying and selling in turn, a hundred a second (mm stays
    away longer than the venue's minute: no weight of its last run is left in the window,
    which a new process cannot know of). An IOC that finds nothing (the book between two
    requotes) is tried again after the next."""
    btc = sim.specs[0]
    filled = 0
    for _ in range(2 * count // 100):
        if filled == count:
            return
        mid = float(sim.mids()["BTC"])
        above = btc.px_str(btc.round_px(mid * 1.01, up=True))
        below = btc.px_str(btc.round_px(mid * 0.99, up=False))
        for _ in range(min(100, count - filled)):
            buy = filled % 2 == 0
            request = OrderRequest(0, buy, above if buy else below, "0.0003", tif="Ioc")
            if isinstance(sim.engine.place(user, request, sim.now_ms()), Filled):
                filled += 1
        await trio.sleep(1.0)
    assert filled == count, f"{filled} of {count} IOCs filled"


async def test_a_full_catch_up_stays_within_the_venues_weight_limit(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as sim:
        # The shipped config, on a simulator that outlives the service.
        overrides = {"venue.url": sim.url}
        async with shipped_service(run_dir, overrides) as service:
            await wait_for(lambda: quoting(service, sim), within=MINUTE)
            await trio.sleep(30.0)  # fills journaled: the restart resyncs from the newest
            account = service.adapter.account
        await trade_while_away(sim, account, MISSED)
        assert len(sim.engine.fills[account]) == MISSED
        charged_before = sim.ip_limits.charged(IP)
        async with shipped_service(run_dir, overrides) as service:
            history = service.adapter.fill_history
            # Every fill made while mm was away comes through, once: the resync pages
            # through all of them (the snapshot of the resubscribe lists them too).
            await wait_for(lambda: sum(history.recovered.values()) >= MISSED, within=10 * MINUTE)
            await wait_for(lambda: resting(service, sim), within=MINUTE)
            await trio.sleep(MINUTE)
            stream = service.adapter.user_stream
            assert stream is not None
            assert stream.recovered_fills["rest"] + stream.duplicate_fills["rest"] >= MISSED
            assert sum(history.recovered.values()) == MISSED
            # The venue never refused a request and its window never held more than its limit.
            assert sim.ip_limits.refused(IP) == 0
            assert sim.ip_limits.peak(IP) <= sim.ip_limits.config.ip_weight_per_minute
            # The limiter saw every weight the venue charged (all of it went through it).
            limiter = hyperliquid(service).limiter
            assert limiter.weight_total >= sim.ip_limits.charged(IP) - charged_before
            assert limiter.rejections == 0
            assert service.status()["killswitch"]["tripped"] is False, service.status()[
                "killswitch"
            ]


async def test_a_429_on_the_resync_backs_the_limiter_off(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting(service), within=MINUTE)
        sim = venue(service)
        stream = service.adapter.user_stream
        limiter = hyperliquid(service).limiter
        assert stream is not None
        assert limiter.rejections == 0
        # The venue answers 429 to the resync's heavy reads over REST (the order client asks
        # over the WebSocket post while its socket is up, and its other reads are not these).
        heavy = ["frontendOpenOrders", "userFillsByTime"]
        sim.faults.update({"http_429": 1.0, "http_paths": ["/info"], "http_info_types": heavy})
        failures = stream.resync_failures
        sim.disconnect_all("test: a reconnect, so a resync")
        await wait_for(lambda: stream.resync_failures > failures, within=MINUTE)
        now = trio.current_time()
        # The limiter was told: every request waits out its backoff, and its budget is cut.
        assert limiter.rejections >= 1
        blocked_until = limiter.blocked_until("order")
        assert blocked_until > now
        assert limiter.budget_factor(now) < 1.0
        # The resync tries again only once the backoff is over (and meets a 429 again); then
        # the venue answers again (soon: fills made while the socket was down wait for the
        # resync, and the liquidation detector gives them 5 s).
        await wait_for(lambda: stream.resync_failures > failures + 1, within=MINUTE)
        assert trio.current_time() >= blocked_until
        assert hyperliquid(service).sync_rate_limited >= 2
        sim.faults.update({"http_429": 0.0, "http_paths": [], "http_info_types": []})
        # Every 429 the venue answered reaches the limiter, from whichever path it came (one
        # may still be on its way back when the fault stops).
        await wait_for(lambda: limiter.rejections == sim.faults.too_many, within=10.0)
        # The resync's 429s were waits, not API errors of trading: no trip, and once the
        # venue answers again the stream syncs and mm quotes.
        await wait_for(lambda: stream.synced.is_set(), within=2 * MINUTE)
        await wait_for(lambda: resting(service, sim), within=MINUTE)
        status = service.status()
        assert status["killswitch"]["tripped"] is False
        assert status["mode"]["mode"] == "normal"
