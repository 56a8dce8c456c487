"""Stale data means no quotes (issue 12, item 2), with the shipped config.toml on virtual time.

When the simulator stops pushing books (``stall_books``), every resting quote is canceled at the
venue within a second of the data gate closing (the book older than
``feeds.market.quality.max_age_ms``, 5 s; the quoter's own ``strategy.max_book_age_s``, 2 s,
acts first), stays off while the data is stale, and comes back by itself once books flow again,
with no rearm (the stall stays below the ladder's REDUCE_ONLY and KILL rungs).
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm import clock
from mm.app import Service
from tests.e2e.virtual import resting_sides, shipped_service, sim_client, wait_for


def quoting_both_sides(service: Service) -> bool:
    sides = resting_sides(service)
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


def nothing_rests(service: Service) -> bool:
    return not resting_sides(service)


async def test_a_stalled_book_feed_pulls_every_quote_and_quoting_resumes_by_itself(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service, sim_client(service) as sim:
        config = service.config
        await wait_for(lambda: quoting_both_sides(service), within=90.0)

        stalled_at = trio.current_time()
        assert (await sim.post("/sim/faults", json={"stall_books": True})).status_code == 200
        await wait_for(lambda: nothing_rests(service), within=30.0, poll=0.02)
        pulled_after = trio.current_time() - stalled_at
        gate_limit = config.feeds.market.quality.max_age_ms / 1000
        # Gone from the venue once the cancels commit, a block or two after they are sent.
        commit = config.sim.commit_delay_max_ms / 1000
        assert pulled_after <= gate_limit + 1.0, pulled_after
        # The quoter's own check (strategy.max_book_age_s, 2 s since the last book arrived)
        # pulled them, before the feed's 5 s flag: it used to be reset on every loop pass.
        assert pulled_after <= config.strategy.max_book_age_s + commit + 0.5, pulled_after
        symbols = service.status()["trading"]["symbols"]
        assert all(symbol["gate"] == "pulled: data_gate" for symbol in symbols.values())
        assert all(symbol["orders"] == 0 for symbol in symbols.values())

        # Nothing goes back on the book while the data stays stale (just short of the
        # ladder's REDUCE_ONLY rung, autonomy.feed_gap_s).
        while trio.current_time() - stalled_at < config.autonomy.feed_gap_s - 1.0:
            assert nothing_rests(service), resting_sides(service)
            await trio.sleep(0.05)

        assert (await sim.post("/sim/faults", json={"stall_books": False})).status_code == 200
        await wait_for(lambda: quoting_both_sides(service), within=20.0)
        status = service.status()
        assert status["killswitch"]["tripped"] is False
        assert status["mode"]["mode"] == "normal"
        assert all(symbol["gate"] == "quoting" for symbol in status["trading"]["symbols"].values())


async def test_the_staleness_ladder_acts_rung_by_rung(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A stall that lasts: pulled, then REDUCE_ONLY on a majority gap, then the kill switch,
    each at its shipped rung (config.toml's staleness ladder), never earlier."""
    async with shipped_service(tmp_path / "run") as service, sim_client(service) as sim:
        config = service.config
        await wait_for(lambda: quoting_both_sides(service), within=90.0)
        assert (await sim.post("/sim/faults", json={"stall_books": True})).status_code == 200
        await wait_for(lambda: nothing_rests(service), within=30.0, poll=0.02)
        feed = service.adapter.market_feed
        assert feed is not None
        arrived = [feed.last_book_ms(coin) for coin in config.strategy.symbols]
        last_book_ms = max(at for at in arrived if at is not None)

        def stale_for() -> float:
            return (clock.wall_ms() - last_book_ms) / 1000

        # Pulled at the first rung: the cancels sent then commit a block or two later.
        commit = config.sim.commit_delay_max_ms / 1000
        assert stale_for() <= config.strategy.max_book_age_s + commit + 0.1

        await wait_for(lambda: service.coordinator.status()["mode"] == "reduce_only", within=30.0)
        assert service.coordinator.status()["reason"] == "feed_gap_majority"
        assert stale_for() >= config.autonomy.feed_gap_s
        assert not service.killswitch.switch.tripped

        await wait_for(lambda: service.killswitch.switch.tripped, within=60.0)
        assert service.killswitch.status()["reason"] == "stale_data"
        assert stale_for() >= config.risk.stale_threshold_s
        assert nothing_rests(service)
