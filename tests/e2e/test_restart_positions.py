"""A restart starts from the venue's positions and applies no journaled fill twice (issue 13,
item 1), end to end on the shipped config.toml on virtual time.

The venue outlives the service (``tests/e2e/outside.py``): mm trades, ETH's position is closed
behind its back (another client of the account), mm stops, BTC trades behind its back while mm
is down, and mm starts again on the same run directory. After the restart every configured
coin's position is the venue's (zero for a coin the venue no longer lists) within 5 s, and the
user stream forwards exactly the fills the journal lacks: the newest journaled fills used to
come through again on every start (the history ended at the last fill's time, not at the fills
the journal holds). A restart that finds the kill switch tripped still takes the venue's
positions: they were seeded only when the strategy started, which the tripped switch holds.
And a first run that journaled no fill before it stopped (or was killed) leaves where the
account's history ends in the journal: the fills made after it are not taken for history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from mm.app import Service
from mm.feeds.history import HISTORY_START
from mm.journal import DATABASE_NAME, read_events
from tests.e2e.outside import (
    agrees,
    flatten,
    in_sync,
    journaled_keys,
    local_positions,
    outside_venue,
    take,
    venue_fill_keys,
    venue_positions,
)
from tests.e2e.virtual import shipped_service, wait_for
from tests.ids import hl_oid, hl_tid


def journaled(service: Service, kind: str) -> list[dict[str, Any]]:
    return [entry.data for entry in read_events(service.config.run_dir / DATABASE_NAME, kind)]


async def test_a_restart_takes_the_venues_positions_and_replays_no_journaled_fill(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as venue:
        overrides = {"venue.url": venue.url}
        async with shipped_service(run_dir, overrides) as service:
            user = service.adapter.account
            await in_sync(service)
            await wait_for(lambda: venue_positions(venue, user)["ETH"] != 0.0, within=600)
            flatten(venue, user, "ETH")
            await wait_for(lambda: local_positions(service)["ETH"] == 0.0, within=10)
            newest = max(venue.engine.fills[user], key=lambda fill: fill.time)
            # The flatten is the newest fill, and journaled: what the floor let through again.
            newest_key = (hl_tid(newest.tid), hl_oid(newest.oid))
            await wait_for(lambda: newest_key in journaled_keys(service), within=10)
        # Stopped (every order canceled); BTC trades behind its back while it is down.
        before = journaled_keys(service)
        assert set(before) == venue_fill_keys(venue, user)
        take(venue, user, "BTC", True, 0.001)
        while_down = venue_fill_keys(venue, user) - set(before)
        assert while_down

        async with shipped_service(run_dir, overrides) as service:
            await in_sync(service)
            restarted = trio.current_time()
            await wait_for(lambda: agrees(service, venue), within=5)
            assert trio.current_time() - restarted <= 5
            stream = service.adapter.user_stream
            assert stream is not None
            # Exactly the fills the journal lacked come through: none journaled comes again.
            assert sum(stream.recovered_fills.values()) == len(while_down)
            await wait_for(lambda: while_down <= set(journaled_keys(service)), within=5)
        after = journaled_keys(service)
        assert len(after) == len(set(after))
        assert set(after) == venue_fill_keys(venue, user)


async def test_a_restart_with_the_kill_switch_tripped_takes_the_venues_positions(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as venue:
        overrides = {"venue.url": venue.url}
        async with shipped_service(run_dir, overrides) as service:
            user = service.adapter.account
            await in_sync(service)
            await wait_for(lambda: venue_positions(venue, user)["ETH"] != 0.0, within=600)
            flatten(venue, user, "ETH")
            await wait_for(lambda: local_positions(service)["ETH"] == 0.0, within=10)
            await service.killswitch.kill("before a restart")
        # What the kill left in ETH: flat, unless a quote filled before its cancel committed.
        eth = venue_positions(venue, user)["ETH"]
        take(venue, user, "BTC", False, 0.002)  # while down
        assert venue_positions(venue, user)["BTC"] != 0.0

        async with shipped_service(run_dir, overrides) as service:
            await in_sync(service)
            assert service.killswitch.switch.tripped  # restored: the strategy does not run
            await wait_for(lambda: agrees(service, venue), within=5)
            assert local_positions(service)["ETH"] == eth


async def test_fills_after_a_first_run_that_journaled_none_are_not_taken_for_history(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """A first run stops (or is killed) before it journals a single fill: the fills made since
    it started are the account's to journal at the restart, not history of the account's past
    (the restart took a baseline of its own, and lost them)."""
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as venue:
        overrides = {"venue.url": venue.url}
        async with shipped_service(run_dir, overrides) as service:
            user = service.adapter.account
            await in_sync(service)
            await wait_for(lambda: bool(journaled(service, HISTORY_START)), within=5)
            assert journaled_keys(service) == []
        take(venue, user, "BTC", True, 0.002)
        take(venue, user, "ETH", False, 0.02)
        made = venue_fill_keys(venue, user)
        assert made

        async with shipped_service(run_dir, overrides) as service:
            await in_sync(service)
            await wait_for(lambda: made <= set(journaled_keys(service)), within=5)
            await wait_for(lambda: agrees(service, venue), within=5)
            assert len(journaled(service, HISTORY_START)) == 1  # the first run's, kept
